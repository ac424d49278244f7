//! Stage 4 of the pipeline: profiles and timewindows — which IPs get profiles and which side of
//! a flow they count ([`routing`]), each window's records and
//! aggregate ([`window_state`], [`aggregate`], [`letters`]), and the [`profiler`]
//! that places every record.

pub mod aggregate;
pub mod evidence;
pub mod letters;
pub mod profiler;
pub mod routing;
pub mod schedule;
pub mod window_state;
