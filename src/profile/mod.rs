//! Stage 4 of the pipeline: profiles and timewindows. Today: the rules every aggregate is built
//! from — the window grid, the connection-state summary and the behavioural letters.

pub mod aggregate;
pub mod letters;
pub mod routing;
pub mod state;
pub mod window;
