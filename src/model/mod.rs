//! The nouns every stage shares, with no I/O and no rendering of timeline text: the conn as
//! profiled ([`flow::Flow`], [`flow::Role`]), its connection state ([`state`]), the dns/http/ssl
//! record joined to it ([`alt::AltRecord`]), the contract's order of a window's records
//! ([`order`]), the window grid with a window's id ([`window::Grid`], [`window::WinId`]), and
//! which Redis layout a database holds ([`layout::Layout`]), and `--no-flows`' compact form of a
//! window's records ([`records`]).

pub mod alt;
pub mod flow;
pub mod layout;
pub mod order;
pub mod records;
pub mod state;
pub mod window;
