//! kalipso-ingest: a streaming Zeek log ingestor that writes the Redis layout the Kalipso viewer
//! of the Stratosphere Linux IPS reads.
//!
//! The modules follow the data flow: `source` (find and tail files) → [`zeek`] (parse) →
//! join (uid) → profile → timeline → store (Redis). See `docs/architecture.md`.

pub mod config;
pub mod enrich;
pub mod ingest;
pub mod inspect;
pub mod join;
pub mod model;
pub mod profile;
pub mod pyjson;
pub mod replay;
pub mod source;
pub mod store;
pub mod timeline;
pub mod zeek;
