//! Stage 6 of the pipeline: the Redis layout. [`keys`] names every key, [`pyjson`] is the one
//! Python-compatible encoder every stored value goes through, [`redis_store`] connects, reads
//! back and writes in pipelined batches.

pub mod keys;
pub mod pyjson;
pub mod redis_store;
