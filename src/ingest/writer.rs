//! `--once`: flush transactions sent from a second thread, so the next batch of records is read
//! and profiled while Redis takes the previous one.
//!
//! A transaction's windows may be sent in parts while the flush is still being rendered
//! ([`BackgroundWriter::send_windows`]): each part is queued in Redis (inside the open `MULTI`)
//! and leaves memory, so a flush that closes many large windows never sits whole in memory.
//! The transaction is committed by [`BackgroundWriter::send`].
//!
//! At most one transaction is in flight: starting the next one waits for the previous to be
//! committed (transactions stay in order), and so does any read from Redis
//! ([`BackgroundWriter::wait`]), so a window reopened from Redis sees every write before it.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::join::WinId;
use crate::profile::profiler::Writes;
use crate::profile::window::Grid;
use crate::profile::window_state::WindowWrite;
use crate::store::redis_store::{RedisStore, StoreError, WriteStats};

/// What the writer thread receives: parts of the open transaction, then its end.
enum Part {
    Windows(Vec<(WinId, WindowWrite)>, Grid),
    Commit(Job),
}

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
    jobs: Option<mpsc::SyncSender<Part>>,
    done: mpsc::Receiver<Result<(), StoreError>>,
    /// A committed transaction's result is awaited.
    in_flight: bool,
    /// Parts of the next transaction were sent.
    open: bool,
    handle: Option<JoinHandle<WriteStats>>,
}

impl BackgroundWriter {
    /// Start the thread with its own connection to `url`.
    pub fn start(url: &str, label: String) -> Result<BackgroundWriter, StoreError> {
        let mut store = RedisStore::connect(url)?;
        let (jobs, incoming) = mpsc::sync_channel::<Part>(1);
        let (results, done) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("redis-writer".into())
            .spawn(move || {
                let mut incoming = incoming.into_iter();
                while let Some(first) = incoming.next() {
                    let r = transaction(&mut store, &label, first, &mut incoming);
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
            open: false,
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

    /// Send windows of the next transaction ahead of it (it opens after the previous one is
    /// committed); [`BackgroundWriter::send`] commits it. No read from Redis may come between.
    pub fn send_windows(
        &mut self,
        windows: Vec<(WinId, WindowWrite)>,
        grid: Grid,
    ) -> Result<(), StoreError> {
        if !self.open {
            self.wait()?;
            self.open = true;
        }
        self.put(Part::Windows(windows, grid))
    }

    /// Send (the rest of) a transaction and commit it, after the previous one is committed.
    pub fn send(&mut self, job: Job) -> Result<(), StoreError> {
        if !self.open {
            self.wait()?;
        }
        self.open = false;
        self.put(Part::Commit(job))?;
        self.in_flight = true;
        Ok(())
    }

    fn put(&mut self, part: Part) -> Result<(), StoreError> {
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| StoreError::Writer("already finished".into()))?;
        jobs.send(part)
            .map_err(|_| StoreError::Writer("it exited".into()))
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

/// Send one transaction, from its `first` part to its commit. After a failure the rest of its
/// parts are still taken (and dropped), so the next transaction starts at its own first part.
fn transaction(
    store: &mut RedisStore,
    label: &str,
    first: Part,
    rest: &mut impl Iterator<Item = Part>,
) -> Result<(), StoreError> {
    let mut tx = store.begin();
    let mut part = first;
    loop {
        match part {
            Part::Windows(windows, grid) => {
                let failed = match &mut tx {
                    Ok(t) => t.windows(&windows, grid).err(),
                    Err(_) => None,
                };
                if let Some(e) = failed {
                    tx = Err(e);
                }
            }
            Part::Commit(job) => {
                return tx?.commit(&job.writes, job.grid, label, &job.checkpoints, job.seq);
            }
        }
        part = rest
            .next()
            .ok_or_else(|| StoreError::Writer("a transaction was left unfinished".into()))?;
    }
}
