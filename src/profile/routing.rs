//! Which IPs get profiles and on which side a flow is counted, from the home network and the
//! analysis direction (spec README, the four-case table; Slips bugs 16 and 17 fixed).

use std::net::IpAddr;
use std::str::FromStr;

use ipnetwork::IpNetwork;

use crate::model::flow::Role;

/// The analysis direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Count only traffic leaving a profile (the profile as Client). The default.
    #[default]
    Out,
    /// Also count traffic arriving at a profile (as Server).
    All,
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Direction, String> {
        match s {
            "out" => Ok(Direction::Out),
            "all" => Ok(Direction::All),
            other => Err(format!("direction must be `out` or `all`, not `{other}`")),
        }
    }
}

/// The routing rules of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routing {
    /// Home networks (IPv4 and IPv6); empty: every IP gets a profile.
    pub home: Vec<IpNetwork>,
    /// Analysis direction.
    pub direction: Direction,
}

/// One profile a flow touches: the IP, and the side it is counted on (`None`: the profile
/// exists but this flow adds no data to it).
pub type Touch = (IpAddr, Option<Role>);

impl Routing {
    /// Whether `ip` is in the home network (always true without one).
    pub fn is_home(&self, ip: IpAddr) -> bool {
        self.home.is_empty() || self.home.iter().any(|n| n.contains(ip))
    }

    /// The profiles a flow from `saddr` to `daddr` touches, source first.
    pub fn route(&self, saddr: IpAddr, daddr: IpAddr) -> Vec<Touch> {
        let inbound = match self.direction {
            Direction::Out => None,
            Direction::All => Some(Role::Server),
        };
        let mut out = Vec::with_capacity(2);
        if self.is_home(saddr) {
            out.push((saddr, Some(Role::Client)));
        }
        if self.is_home(daddr) {
            out.push((daddr, inbound));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn routing(home: &[&str], direction: Direction) -> Routing {
        Routing {
            home: home.iter().map(|h| h.parse().unwrap()).collect(),
            direction,
        }
    }

    #[test]
    fn four_cases() {
        let (h1, h2, ext) = (ip("192.168.1.10"), ip("192.168.1.20"), ip("8.8.8.8"));
        let home = ["192.168.1.0/24", "2001:db8::/32"];
        use Role::*;
        // Home net set, all: out of and into each home IP; home-to-home counts for both ends.
        let r = routing(&home, Direction::All);
        assert_eq!(r.route(h1, ext), vec![(h1, Some(Client))]);
        assert_eq!(r.route(ext, h1), vec![(h1, Some(Server))]);
        assert_eq!(
            r.route(h1, h2),
            vec![(h1, Some(Client)), (h2, Some(Server))]
        );
        assert_eq!(r.route(ext, ip("1.1.1.1")), vec![]);
        // Home net set, out: only out of each home IP.
        let r = routing(&home, Direction::Out);
        assert_eq!(r.route(h1, ext), vec![(h1, Some(Client))]);
        assert_eq!(r.route(ext, h1), vec![(h1, None)]);
        assert_eq!(r.route(h1, h2), vec![(h1, Some(Client)), (h2, None)]);
        // No home net, all: every IP, both sides.
        let r = routing(&[], Direction::All);
        assert_eq!(
            r.route(ext, h1),
            vec![(ext, Some(Client)), (h1, Some(Server))]
        );
        // No home net, out: destination profiles exist but stay empty.
        let r = routing(&[], Direction::Out);
        assert_eq!(r.route(ext, h1), vec![(ext, Some(Client)), (h1, None)]);
        // IPv6 home networks.
        let r = routing(&home, Direction::All);
        assert_eq!(
            r.route(ip("2001:db8::1"), ip("2a00::1")),
            vec![(ip("2001:db8::1"), Some(Client))]
        );
    }

    #[test]
    fn direction_parses() {
        assert_eq!("all".parse::<Direction>(), Ok(Direction::All));
        assert!("both".parse::<Direction>().is_err());
    }
}
