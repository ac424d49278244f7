//! Stage 5 of the pipeline: the timeline text the analyst reads in Kalipso — one main line per
//! connection and one sub-line per dns/ssl/http record joined to it (reference §6, spec README
//! "Timeline").
//!
//! [`services`] names ports (the `portinfo` table), [`clock`] writes the timestamp prefix in the
//! chosen zone, [`lines`] formats the texts. Which lines a window holds, and in which order, is
//! decided by `profile::window_state`.

pub mod clock;
pub mod entries;
pub mod lines;
pub mod services;

pub use clock::Clock;
pub use services::PortNames;

/// What the timeline needs besides the records: port names, the clock and what is known of
/// the peers (the outbound line's `| <ipinfo>`).
#[derive(Clone, Debug)]
pub struct TimelineStyle {
    /// Port names.
    pub names: PortNames,
    /// Timestamp zone.
    pub clock: Clock,
    /// Country, ASN and blocklists (empty: no suffix).
    pub ipinfo: std::sync::Arc<crate::enrich::IpInfo>,
    /// Text lines in a LIST (2020) or JSON entries in a ZSET (the current Kalipso).
    pub layout: crate::model::layout::Layout,
}

impl Default for TimelineStyle {
    fn default() -> Self {
        TimelineStyle {
            names: PortNames::builtin(),
            clock: Clock::Utc,
            ipinfo: Default::default(),
            layout: Default::default(),
        }
    }
}
