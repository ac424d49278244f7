//! `--once`: flush transactions sent from a second thread, so the next batch of records is read
//! and profiled while Redis takes the previous one.
//!
//! At most one transaction is in flight: sending the next one waits for the previous to be
//! committed (transactions stay in order, and memory holds at most two flushes), and so does
//! any read from Redis ([`BackgroundWriter::wait`]), so a window reopened from Redis sees every
//! write before it.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::profile::profiler::Writes;
use crate::profile::window::Grid;
use crate::store::redis_store::{RedisStore, StoreError, WriteStats};

/// One flush transaction.
pub struct Job {
    /// The data.
    pub writes: Writes,
    /// The checkpoints of the lines it covers.
    pub checkpoints: Vec<(String, String)>,
    /// The flush counter.
    pub seq: u64,
    /// The window grid.
    pub grid: Grid,
}

/// The writer thread and its connection.
pub struct BackgroundWriter {
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Result<(), StoreError>>,
    in_flight: bool,
    handle: Option<JoinHandle<WriteStats>>,
}

impl BackgroundWriter {
    /// Start the thread with its own connection to `url`.
    pub fn start(url: &str, label: String) -> Result<BackgroundWriter, StoreError> {
        let mut store = RedisStore::connect(url)?;
        let (jobs, incoming) = mpsc::sync_channel::<Job>(1);
        let (results, done) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("redis-writer".into())
            .spawn(move || {
                for job in incoming {
                    let r = store.write(&job.writes, job.grid, &label, &job.checkpoints, job.seq);
                    drop(job);
                    if results.send(r).is_err() {
                        break;
                    }
                }
                store.stats
            })
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        Ok(BackgroundWriter {
            jobs: Some(jobs),
            done,
            in_flight: false,
            handle: Some(handle),
        })
    }

    /// Wait until the transaction in flight (if any) is committed.
    pub fn wait(&mut self) -> Result<(), StoreError> {
        if !self.in_flight {
            return Ok(());
        }
        self.in_flight = false;
        match self.done.recv() {
            Ok(r) => r,
            Err(_) => Err(StoreError::Writer("no result".into())),
        }
    }

    /// Send a transaction, after the previous one is committed.
    pub fn send(&mut self, job: Job) -> Result<(), StoreError> {
        self.wait()?;
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| StoreError::Writer("already finished".into()))?;
        jobs.send(job)
            .map_err(|_| StoreError::Writer("it exited".into()))?;
        self.in_flight = true;
        Ok(())
    }

    /// Wait for the last transaction and stop the thread; its command counts.
    pub fn finish(mut self) -> Result<WriteStats, StoreError> {
        let last = self.wait();
        self.jobs = None;
        let stats = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        last.map(|()| stats)
    }
}
