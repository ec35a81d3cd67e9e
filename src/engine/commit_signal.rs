//! Wakes subscribers of this process when the writer commits a batch.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// Wakes subscribers of this process when a batch is committed.
#[derive(Debug, Default)]
pub(crate) struct CommitSignal {
    state: Mutex<CommitState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct CommitState {
    /// The log's length as of the last commit signalled.
    next_position: u64,
    /// Subscribers waiting on `changed`. The writer skips the wake-up (a
    /// system call) when there are none, which is the common case.
    waiting: usize,
    /// The store was closed: no commit will come.
    closed: bool,
}

impl CommitSignal {
    /// Called by the writer after a batch is indexed.
    pub fn committed(&self, next_position: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.next_position = next_position;
        if state.waiting > 0 {
            self.changed.notify_all();
        }
    }

    /// Records that the store was closed, and wakes every waiter.
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.closed = true;
        self.changed.notify_all();
    }

    /// Whether the store was closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).closed
    }

    /// Waits until the log holds more than `known` events, the store is
    /// closed, or `deadline`.
    pub fn wait_beyond(&self, known: u64, deadline: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.next_position <= known && !state.closed {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            // Counted under the same lock as `committed` reads it: no
            // wake-up is lost between the check above and the wait.
            state.waiting += 1;
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            state.waiting -= 1;
        }
    }
}
