//! Making appended bytes durable: group commit, the periodic syncer, and
//! poisoning after a failed sync.
//!
//! Invariant: `durable` only grows, and every byte of the log before it has
//! been synced. Syncs cover a prefix of the newest segment (older segments
//! were synced whole when they were sealed), so one sync of "everything
//! written so far" serves every appender waiting on any part of it.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

use super::Engine;

/// A point in the log: (segment ordinal, byte offset in that segment).
pub(crate) type LogPoint = (usize, usize);

#[derive(Debug)]
struct Progress {
    /// Everything before this point is durable.
    durable: LogPoint,
    /// Whether some thread is running a sync right now.
    sync_running: bool,
    /// Why the store is poisoned, once a sync has failed.
    poison: Option<String>,
}

/// Engine durability state of a store.
#[derive(Debug)]
pub(crate) struct Durability {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Durability {
    pub fn new(durable: LogPoint) -> Durability {
        Durability {
            progress: Mutex::new(Progress {
                durable,
                sync_running: false,
                poison: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        // A panic while holding this lock leaves plain data behind: keep going.
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The error every write returns once a sync has failed.
    pub fn check_poison(&self) -> Result<()> {
        match &self.lock().poison {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records a sync failure: from now on every write fails.
    pub fn poison(&self, cause: String) {
        let mut progress = self.lock();
        progress.poison.get_or_insert(cause);
        self.changed.notify_all();
    }

    /// The durable point right now.
    pub fn durable(&self) -> LogPoint {
        self.lock().durable
    }

    /// Records that everything before `point` is durable (by a seal or a roll).
    pub fn mark_durable(&self, point: LogPoint) {
        let mut progress = self.lock();
        progress.durable = progress.durable.max(point);
        self.changed.notify_all();
    }

    /// Returns once everything before `target` is durable, syncing if no
    /// other thread is: concurrent callers share one sync (group commit).
    ///
    /// # Errors
    /// [`Error::Poisoned`] if this or an earlier sync failed.
    pub fn sync_through(&self, engine: &Engine, target: LogPoint) -> Result<()> {
        let mut progress = self.lock();
        loop {
            if let Some(cause) = &progress.poison {
                return Err(Error::Poisoned {
                    cause: cause.clone(),
                });
            }
            if progress.durable >= target {
                return Ok(());
            }
            if progress.sync_running {
                progress = self
                    .changed
                    .wait(progress)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            progress.sync_running = true;
            let durable_before = progress.durable;
            drop(progress);
            // Let appenders that are ready to run (often just woken by the
            // previous sync) write their batches first, so this sync covers
            // them too.
            std::thread::yield_now();
            let outcome = engine.sync_written_data(durable_before);
            progress = self.lock();
            progress.sync_running = false;
            match outcome {
                Ok(point) => progress.durable = progress.durable.max(point),
                Err(error) => {
                    progress.poison.get_or_insert(error.to_string());
                }
            }
            self.changed.notify_all();
        }
    }
}

/// The background thread of [`crate::Durability::Periodic`].
pub(crate) struct PeriodicSyncer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl PeriodicSyncer {
    /// Starts a thread that syncs everything written every `interval`. It
    /// holds only a weak reference, so it never keeps a store alive.
    pub fn start(weak_engine: Weak<Engine>, interval: Duration) -> PeriodicSyncer {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("annals-periodic-sync".into())
            .spawn(move || {
                let (stopped, wake) = &*thread_stop;
                loop {
                    // `wait_timeout_while` looks at the flag before waiting:
                    // a stop signalled while this thread was syncing (not
                    // waiting, so the notification found no waiter) must
                    // not wait out another interval.
                    let guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
                    let (guard, _) = wake
                        .wait_timeout_while(guard, interval, |stopped| !*stopped)
                        .unwrap_or_else(|p| p.into_inner());
                    if *guard {
                        return;
                    }
                    drop(guard);
                    let Some(engine) = weak_engine.upgrade() else {
                        return;
                    };
                    // A failure poisons the store; writers report it.
                    let _ = engine.sync_all_written();
                    drop(engine);
                }
            })
            .expect("spawning the periodic sync thread");
        PeriodicSyncer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PeriodicSyncer {
    fn drop(&mut self) {
        self.stop();
    }
}
