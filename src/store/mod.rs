//! Stage 6 of the pipeline: the Redis layout. Today: the Python-compatible encoder every stored
//! value goes through.

pub mod pyjson;
