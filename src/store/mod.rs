//! Stage 6 of the pipeline: the Redis layout. [`keys`] names every key, [`redis_store`]
//! connects, reads back and writes in pipelined batches. Every stored value is encoded by
//! [`crate::pyjson`], the one Python-compatible encoder.

pub mod keys;
pub mod redis_store;
