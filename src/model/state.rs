//! Established / NotEstablished, from Zeek's `conn_state` as Slips decided it (reference §2.4).

/// The summary of a connection state used in key names and flow JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnSummary {
    /// The connection was established.
    Established,
    /// It was not.
    NotEstablished,
}

impl ConnSummary {
    /// `Established` / `NotEstablished` (as in key names and the flow's `state`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnSummary::Established => "Established",
            ConnSummary::NotEstablished => "NotEstablished",
        }
    }

    /// Summarise a raw state (substring tests, in Slips' order) with the flow's packet count.
    pub fn from_state(state: &str, pkts: u64) -> ConnSummary {
        // Zeek's own states first: what the substring tests give them, without the tests.
        match state {
            "SF" | "S1" | "S2" | "S3" | "RSTO" | "OTH" => ConnSummary::Established,
            "S0" | "REJ" | "RSTOS0" | "RSTRH" | "SH" | "SHR" => ConnSummary::NotEstablished,
            _ => Self::by_substrings(state, pkts),
        }
    }

    /// [`ConnSummary::from_state`] for any text: Slips' substring tests in its order.
    fn by_substrings(state: &str, pkts: u64) -> ConnSummary {
        use ConnSummary::*;
        if state.contains("new") || state.contains("established") {
            return Established;
        }
        if state.contains("closed") {
            return NotEstablished;
        }
        if ["S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR"]
            .iter()
            .any(|s| state.contains(s))
        {
            return NotEstablished;
        }
        if ["S1", "SF", "S2", "S3", "RSTO", "RSTP", "OTH"]
            .iter()
            .any(|s| state.contains(s))
        {
            return Established;
        }
        let pre = state.split('_').next().unwrap_or("");
        if ["ECO", "UNK", "CON", "EST"].iter().any(|s| pre.contains(s)) {
            Established
        } else if pre.contains("INT") {
            NotEstablished
        } else if pre.contains("RST") || pre.contains("FIN") {
            if pkts <= 3 {
                NotEstablished
            } else {
                Established
            }
        } else {
            NotEstablished
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConnSummary::{self, *};

    #[test]
    fn zeek_state_table() {
        for s in ["S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR", "", "-"] {
            assert_eq!(ConnSummary::from_state(s, 10), NotEstablished, "{s}");
        }
        for s in ["S1", "SF", "S2", "S3", "RSTO", "OTH"] {
            assert_eq!(ConnSummary::from_state(s, 1), Established, "{s}");
        }
        assert_eq!(ConnSummary::from_state("RSTR", 3), NotEstablished);
        assert_eq!(ConnSummary::from_state("RSTR", 10), Established);
    }

    #[test]
    fn zeek_states_summarised_as_the_substring_tests_do() {
        let zeek = [
            "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR",
            "OTH",
        ];
        for s in zeek {
            for pkts in 0..6 {
                assert_eq!(
                    ConnSummary::from_state(s, pkts),
                    ConnSummary::by_substrings(s, pkts),
                    "{s} {pkts}"
                );
            }
        }
    }
}
