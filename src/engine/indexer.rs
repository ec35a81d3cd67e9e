//! Writing sealed segments' index files, and the checkpoint after each, on
//! a thread of its own: a roll only hands the sealed segment over, so the
//! append that rolled does not wait for two more files to be written and
//! synced. Jobs run in the order segments were sealed, so a checkpoint
//! written after segment *k*'s index file covers segments up to *k*, every
//! one of which has its index file by then.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

use crate::log::segment::Segment;

use super::Engine;

/// The jobs handed over and not done yet, shared by the engine (which
/// hands them over and waits for them) and the thread (which does them).
#[derive(Default)]
pub(crate) struct IndexQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    /// Sealed segments (ordinal, segment) whose index file is to be written.
    jobs: VecDeque<(usize, Arc<Segment>)>,
    /// The thread is doing a job taken off `jobs`.
    busy: bool,
    /// A thread takes jobs; without one, whoever seals does the job.
    running: bool,
}

impl IndexQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands over the sealed segment `ordinal`. `false` when no thread
    /// takes jobs: the caller does the work itself.
    pub fn submit(&self, ordinal: usize, segment: Arc<Segment>) -> bool {
        let mut state = self.lock();
        if !state.running {
            return false;
        }
        state.jobs.push_back((ordinal, segment));
        self.changed.notify_all();
        true
    }

    /// Waits until every job handed over is done.
    pub fn wait_idle(&self) {
        let state = self.lock();
        let _idle = self
            .changed
            .wait_while(state, |s| !s.jobs.is_empty() || s.busy)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// The next job, waiting for one; `None` once stopped and drained.
    fn next(&self) -> Option<(usize, Arc<Segment>)> {
        let mut state = self.lock();
        state.busy = false;
        self.changed.notify_all();
        let mut state = self
            .changed
            .wait_while(state, |s| s.jobs.is_empty() && s.running)
            .unwrap_or_else(|p| p.into_inner());
        let job = state.jobs.pop_front()?;
        state.busy = true;
        Some(job)
    }
}

/// The thread that writes index files, started for a writable store.
pub(crate) struct Indexer {
    queue: Arc<IndexQueue>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    /// Starts the thread on `queue`. It holds only a weak reference to the
    /// engine, so it never keeps a store alive.
    pub fn start(weak_engine: Weak<Engine>, queue: Arc<IndexQueue>) -> Indexer {
        queue.lock().running = true;
        let thread_queue = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("annals-indexer".into())
            .spawn(move || {
                while let Some((ordinal, segment)) = thread_queue.next() {
                    // Gone: nothing to index for (the files are rebuilt
                    // on the next open).
                    let Some(engine) = weak_engine.upgrade() else {
                        continue;
                    };
                    engine.index_sealed_segment(ordinal, &segment);
                    drop(engine);
                }
            })
            .expect("spawning the indexer thread");
        Indexer {
            queue,
            thread: Some(thread),
        }
    }

    /// Does every job handed over, then stops the thread and waits for it.
    pub fn stop(&mut self) {
        {
            let mut state = self.queue.lock();
            state.running = false;
            self.queue.changed.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stop();
    }
}
