//! The commit worker of `--once` and follow mode: flush transactions sent from a second thread
//! with its own connection, so the next records are read and profiled while Redis takes the
//! previous ones.
//!
//! A transaction's windows may be sent in parts while the flush is still being rendered
//! ([`CommitWorker::send_windows`], `--once`): each part is queued in Redis (inside the open
//! `MULTI`) and leaves memory, so a flush that closes many large windows never sits whole in
//! memory. The transaction is committed by [`CommitWorker::send`]. Follow mode hands whole
//! transactions over ([`CommitWorker::hand_over`]) and gets each one back with its result
//! ([`CommitWorker::result`]), so that a failed one can be recovered and retried.
//!
//! At most one transaction is in flight: starting the next one waits for the previous to be
//! committed (transactions stay in order), and so does any read from Redis
//! ([`CommitWorker::wait`]), so a window reopened from Redis sees every write before it. The
//! connection is made when the first transaction comes, and again after one failed.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::model::window::{Grid, WinId};
use crate::profile::profiler::Writes;
use crate::profile::window_state::WindowWrite;
use crate::store::redis_store::{RedisStore, StoreError, Target, WriteStats};

/// What the worker receives: parts of the open transaction, then its end (with whether the job
/// comes back with the result: follow mode retries a failed one; `--once` lets it go as soon as
/// it is committed, so its memory is not held until the next flush).
enum Part {
    Windows(Vec<(WinId, WindowWrite)>, Grid),
    Commit(Box<Job>, bool),
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
    /// The label stored in every flow.
    pub label: String,
}

/// What comes back of a transaction: its job (`None` when its end never came) and how long
/// its commit took, or why it failed.
type Done = (Option<Box<Job>>, Result<Duration, StoreError>);

/// The worker thread.
pub struct CommitWorker {
    jobs: Option<mpsc::SyncSender<Part>>,
    done: mpsc::Receiver<Done>,
    /// A committed transaction's result is awaited.
    in_flight: bool,
    /// Parts of the next transaction were sent.
    open: bool,
    handle: Option<JoinHandle<WriteStats>>,
}

/// A transaction back from the worker with its result (the time it took, or the error).
pub type Returned = (Box<Job>, Result<Duration, StoreError>);

impl CommitWorker {
    /// Start the thread; it connects to `url` when the first transaction comes.
    pub fn start(target: &Target) -> Result<CommitWorker, StoreError> {
        let target = target.clone();
        let (jobs, incoming) = mpsc::sync_channel::<Part>(1);
        let (results, done) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("redis-commit".into())
            .spawn(move || {
                let mut incoming = incoming.into_iter();
                let mut store: Option<RedisStore> = None;
                let mut stats = WriteStats::default();
                while let Some(first) = incoming.next() {
                    let start = Instant::now();
                    let connected = match store.take() {
                        Some(s) => Ok(s),
                        None => RedisStore::connect(&target),
                    };
                    let (job, r, back) = match connected {
                        Ok(mut s) => {
                            let (job, r, back) = transaction(&mut s, first, &mut incoming);
                            if r.is_ok() {
                                store = Some(s); // kept only while it works
                            } else {
                                add(&mut stats, s.stats);
                            }
                            (job, r, back)
                        }
                        Err(e) => {
                            let (job, back) = rest_of(first, &mut incoming);
                            (job, Err(e), back)
                        }
                    };
                    let job = job.filter(|_| back);
                    if results.send((job, r.map(|()| start.elapsed()))).is_err() {
                        break;
                    }
                }
                if let Some(s) = store {
                    add(&mut stats, s.stats);
                }
                stats
            })
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        Ok(CommitWorker {
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
            Ok((_, r)) => r.map(|_| ()),
            Err(_) => Err(StoreError::Writer("no result".into())),
        }
    }

    /// Send windows of the next transaction ahead of it (it opens after the previous one is
    /// committed); [`CommitWorker::send`] commits it. No read from Redis may come between.
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
        self.put(Part::Commit(Box::new(job), false))?;
        self.in_flight = true;
        Ok(())
    }

    /// Hand a whole transaction over while none is in flight; it comes back (`Err`) when it
    /// cannot be (the thread is gone). Its result comes from [`CommitWorker::result`].
    pub fn hand_over(&mut self, job: Box<Job>) -> Result<(), Box<Job>> {
        let Some(jobs) = self.jobs.as_ref().filter(|_| !self.in_flight && !self.open) else {
            return Err(job);
        };
        match jobs.send(Part::Commit(job, true)) {
            Ok(()) => {
                self.in_flight = true;
                Ok(())
            }
            Err(mpsc::SendError(Part::Commit(job, _))) => Err(job),
            Err(mpsc::SendError(Part::Windows(..))) => Ok(()), // not what was sent
        }
    }

    /// Whether a transaction is with the worker, its result not collected.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// The transaction handed over, with its result: waiting for it up to `wait`, or only if
    /// it is there (`None`). An error when the thread is gone (it panicked): the transaction
    /// went with it, and the caller must not wait for it.
    pub fn result(&mut self, wait: Option<Duration>) -> Result<Option<Returned>, StoreError> {
        if !self.in_flight {
            return Ok(None);
        }
        let got = match wait {
            Some(d) => self
                .done
                .recv_timeout(d)
                .map_err(|e| matches!(e, mpsc::RecvTimeoutError::Disconnected)),
            None => self
                .done
                .try_recv()
                .map_err(|e| matches!(e, mpsc::TryRecvError::Disconnected)),
        };
        let (job, r) = match got {
            Ok(x) => x,
            Err(false) => return Ok(None),
            Err(true) => {
                self.in_flight = false;
                return Err(StoreError::Writer("it stopped".into()));
            }
        };
        self.in_flight = false;
        Ok(job.map(|job| (job, r)))
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

impl Drop for CommitWorker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn add(total: &mut WriteStats, s: WriteStats) {
    total.commands += s.commands;
    total.round_trips += s.round_trips;
}

/// The rest of a transaction that could not be sent, taken to its end: its job, and whether
/// it goes back.
fn rest_of(first: Part, rest: &mut impl Iterator<Item = Part>) -> (Option<Box<Job>>, bool) {
    let mut part = first;
    loop {
        if let Part::Commit(job, back) = part {
            return (Some(job), back);
        }
        match rest.next() {
            Some(p) => part = p,
            None => return (None, false),
        }
    }
}

/// Send one transaction, from its `first` part to its commit. After a failure the rest of its
/// parts are still taken (and dropped), so the next transaction starts at its own first part.
fn transaction(
    store: &mut RedisStore,
    first: Part,
    rest: &mut impl Iterator<Item = Part>,
) -> (Option<Box<Job>>, Result<(), StoreError>, bool) {
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
            Part::Commit(job, back) => {
                let r = tx.and_then(|t| {
                    t.commit(&job.writes, job.grid, &job.label, &job.checkpoints, job.seq)
                });
                return (Some(job), r, back);
            }
        }
        match rest.next() {
            Some(p) => part = p,
            None => {
                let e = StoreError::Writer("a transaction was left unfinished".into());
                return (None, Err(e), false);
            }
        }
    }
}
