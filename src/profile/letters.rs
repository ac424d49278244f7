//! Stratosphere behavioural letters of a tuple (reference §4.1): one symbol per flow from its
//! periodicity, size and duration, and the gap since the previous flow of the same tuple.

/// What is stored per tuple: the previous and current flow start (`[ts_prev|false, ts_cur]`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TupleClock {
    /// Start of the flow before the last one (`false` in JSON when absent).
    pub prev: Option<f64>,
    /// Start of the last flow.
    pub last: Option<f64>,
}

const TABLE: [[[char; 3]; 3]; 5] = [
    [['1', '2', '3'], ['4', '5', '6'], ['7', '8', '9']],
    [['a', 'b', 'c'], ['d', 'e', 'f'], ['g', 'h', 'i']],
    [['A', 'B', 'C'], ['D', 'E', 'F'], ['G', 'H', 'I']],
    [['r', 's', 't'], ['u', 'v', 'w'], ['x', 'y', 'z']],
    [['R', 'S', 'T'], ['U', 'V', 'W'], ['X', 'Y', 'Z']],
];

/// Python division where a zero divisor raises; Slips caught it and used 1.
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 1.0 } else { a / b }
}

/// The duration and size classes of a flow (`dur` seconds, `size` total bytes): all its
/// symbol needs besides the times.
pub fn symbol_classes(dur: f64, size: u64) -> (u8, u8) {
    let dcls = if dur <= 0.1 {
        0
    } else if dur <= 10.0 {
        1
    } else {
        2
    };
    let scls = if size <= 250 {
        0
    } else if size <= 1100 {
        1
    } else {
        2
    };
    (dcls, scls)
}

/// The symbol of a new flow (`now` its start, `dur` seconds, `size` total bytes), appended to
/// `letters`; returns the new clock (`[last, now]`).
pub fn add_symbol(
    letters: &mut String,
    clock: TupleClock,
    now: f64,
    dur: f64,
    size: u64,
) -> TupleClock {
    add_symbol_classes(letters, clock, now, symbol_classes(dur, size))
}

/// [`add_symbol`] with the flow's [`symbol_classes`].
pub fn add_symbol_classes(
    letters: &mut String,
    clock: TupleClock,
    now: f64,
    (dcls, scls): (u8, u8),
) -> TupleClock {
    // Python: `now - False == now` for the first flow of the tuple.
    let t2 = now - clock.last.unwrap_or(0.0);
    let (per, zeros) = match (clock.prev, clock.last) {
        (Some(last_last), Some(last)) => {
            let t1 = last - last_last;
            let zeros = if t2 >= 3600.0 {
                (t2 / 3600.0).trunc() as usize
            } else {
                0
            };
            let td = if t2 >= t1 {
                ratio(t2, t1)
            } else {
                ratio(t1, t2)
            };
            let per = if td <= 1.05 {
                1
            } else if td <= 1.3 {
                2
            } else if td <= 5.0 {
                3
            } else {
                4
            };
            (per, zeros)
        }
        _ => (0, 0),
    };
    letters.extend(std::iter::repeat_n('0', zeros));
    letters.push(TABLE[per][scls as usize][dcls as usize]);
    if t2 <= 5.0 {
        letters.push('.');
    } else if t2 <= 60.0 {
        letters.push(',');
    } else if t2 <= 300.0 {
        letters.push('+');
    } else if t2 <= 3600.0 {
        letters.push('*');
    }
    TupleClock {
        prev: clock.last,
        last: Some(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(flows: &[(f64, f64, u64)]) -> (String, TupleClock) {
        let mut letters = String::new();
        let mut clock = TupleClock::default();
        for &(ts, dur, size) in flows {
            clock = add_symbol(&mut letters, clock, ts, dur, size);
        }
        (letters, clock)
    }

    #[test]
    fn reference_dns_example() {
        // Three 124-byte, 0.01 s DNS flows 1.88 s then 1.0 s apart give "11.r." (reference §4.1).
        let (l, c) = run(&[
            (1582810000.123456, 0.020135, 124),
            (1582810002.0, 0.01, 124),
            (1582810003.0, 0.01, 124),
        ]);
        assert_eq!(l, "11.r.");
        assert_eq!((c.prev, c.last), (Some(1582810002.0), Some(1582810003.0)));
    }

    #[test]
    fn single_flows_from_the_oracle() {
        assert_eq!(run(&[(1582810000.5, 0.5, 1600)]).0, "8");
        assert_eq!(run(&[(1582810001.0, 12.5, 6000)]).0, "9");
        assert_eq!(run(&[(1582810004.0, 0.0, 0)]).0, "1");
        assert_eq!(run(&[(1582810005.0, 30.0, 1024)]).0, "6");
    }

    #[test]
    fn periodicity_classes() {
        // Gaps 10 then 10 (TD 1) strong periodic; 10 then 12 (1.2) weak periodic;
        // 10 then 30 (3) weak non-periodic; 10 then 100 (10) strong non-periodic.
        let base = 1_000_000.0;
        let p = |g2: f64| {
            run(&[
                (base, 0.0, 100),
                (base + 10.0, 0.0, 100),
                (base + 10.0 + g2, 0.0, 100),
            ])
            .0
        };
        assert_eq!(p(10.0), "11,a,");
        assert_eq!(p(12.0), "11,A,");
        assert_eq!(p(30.0), "11,r,");
        assert_eq!(p(100.0), "11,R+");
        // Boundaries are inclusive: TD exactly 1.05, 1.3, 5.
        assert_eq!(p(10.5), "11,a,");
        assert_eq!(p(13.0), "11,A,");
        assert_eq!(p(50.0), "11,r,");
    }

    #[test]
    fn time_gap_symbols_and_zeros() {
        let base = 1_000_000.0;
        let gap = |g: f64| run(&[(base, 0.0, 100), (base + g, 0.0, 100)]).0;
        assert_eq!(gap(5.0), "11.");
        assert_eq!(gap(60.0), "11,");
        assert_eq!(gap(300.0), "11+");
        assert_eq!(gap(3600.0), "11*");
        assert_eq!(gap(3600.5), "11");
        // Zeros come from the third flow on, one per full hour of gap.
        let l = run(&[
            (base, 0.0, 100),
            (base + 10.0, 0.0, 100),
            (base + 10.0 + 7300.0, 0.0, 100),
        ])
        .0;
        assert_eq!(l, "11,00R");
    }

    #[test]
    fn size_and_duration_classes() {
        let l = |dur: f64, size: u64| run(&[(1e6, dur, size)]).0;
        assert_eq!(
            (l(0.1, 250), l(10.0, 250), l(10.1, 250)),
            ("1".into(), "2".into(), "3".into())
        );
        assert_eq!(
            (l(0.0, 1100), l(5.0, 1101), l(11.0, 1101)),
            ("4".into(), "8".into(), "9".into())
        );
    }

    #[test]
    fn division_by_zero_counts_as_periodic() {
        // Equal timestamps: T1 = T2 = 0 → TD = 1 → strong periodic.
        let l = run(&[(1e6, 0.0, 10), (1e6, 0.0, 10), (1e6, 0.0, 10)]).0;
        assert_eq!(l, "11.a.");
        // T1 > 0, T2 = 0: T1/T2 divides by zero → TD = 1.
        let l = run(&[(1e6, 0.0, 10), (1e6 + 2.0, 0.0, 10), (1e6 + 2.0, 0.0, 10)]).0;
        assert_eq!(l, "11.a.");
    }

    #[test]
    fn tiny_relative_timestamps_get_a_gap_symbol_on_the_first_flow() {
        // `now - False == now`: a first flow at ts 2.5 has T2 = 2.5.
        assert_eq!(run(&[(2.5, 0.0, 10)]).0, "1.");
        assert_eq!(run(&[(100.0, 0.0, 10)]).0, "1+");
    }
}
