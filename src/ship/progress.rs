//! What a shipper reports while it runs: where it stands, how far behind the
//! writer, and what it is doing. Serializable, so that a command can print
//! it as JSON.

use std::time::{Duration, Instant};

use serde::Serialize;

/// What the shipper (or receiver) is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    /// The store holds no event yet (its id is derived from the first one).
    WaitingForEvents,
    /// Connected; where to resume was read from the JetStream stream.
    Resumed,
    /// Publishing (or receiving).
    Running,
    /// Everything there was is shipped (or received); following.
    CaughtUp,
    /// The last attempt failed; the next starts after `pause_ms`.
    Retrying {
        /// The number of the failed attempt since the server was last reached.
        attempt: u32,
        /// Milliseconds until the next attempt.
        pause_ms: u64,
        /// What failed.
        reason: String,
    },
    /// Finished (`once`): everything there was when it started is shipped.
    Done,
}

/// Where a shipper stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// What it is doing.
    #[serde(flatten)]
    pub phase: Phase,
    /// Events acknowledged by JetStream in this run (duplicates included).
    pub shipped: u64,
    /// Position of the last event known to be in the JetStream stream.
    pub last_shipped_position: Option<u64>,
    /// Every event before this position is shipped or filtered out.
    pub shipped_through: u64,
    /// The store's next position (its number of events) as last read.
    pub writer_position: u64,
    /// Positions behind the writer: `writer_position - shipped_through`.
    pub lag: u64,
    /// The JetStream stream's last sequence as last known.
    pub stream_sequence: u64,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        Progress {
            phase: Phase::WaitingForEvents,
            shipped: 0,
            last_shipped_position: None,
            shipped_through: 0,
            writer_position: 0,
            lag: 0,
            stream_sequence: 0,
        }
    }

    /// Updates the positions (and the lag they imply).
    pub(crate) fn at(&mut self, shipped_through: u64, writer_position: u64) {
        self.shipped_through = shipped_through;
        self.writer_position = writer_position;
        self.lag = writer_position.saturating_sub(shipped_through);
    }
}

/// Where a receiver stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiveProgress {
    /// What it is doing.
    #[serde(flatten)]
    pub phase: Phase,
    /// Events appended to the store in this run.
    pub received: u64,
    /// The store's next position (its number of events).
    pub store_position: u64,
    /// The JetStream stream's last sequence as last known.
    pub stream_sequence: u64,
    /// Messages of the stream not yet in the store.
    pub lag: u64,
}

/// Calls a report function on every change of phase, and while running at
/// most once per interval.
pub(crate) struct Reporter<F> {
    report: F,
    interval: Duration,
    last: Option<Instant>,
    last_phase: Option<Phase>,
}

impl<F> Reporter<F> {
    pub(crate) fn new(report: F, interval: Duration) -> Reporter<F> {
        Reporter {
            report,
            interval,
            last: None,
            last_phase: None,
        }
    }

    /// Reports `progress` if its phase changed, or if `force`, or if the
    /// interval passed since the last report. Running and caught up count
    /// as one phase here: beside a busy writer a shipper goes from one to
    /// the other at every batch, which is no news.
    pub(crate) fn report<P>(&mut self, progress: &P, phase: &Phase, force: bool)
    where
        F: FnMut(&P),
    {
        let now = Instant::now();
        let live = |phase: &Phase| matches!(phase, Phase::Running | Phase::CaughtUp);
        let changed = match &self.last_phase {
            Some(last) => last != phase && !(live(last) && live(phase)),
            None => true,
        };
        let due = self.last.is_none_or(|last| now - last >= self.interval);
        if changed || force || due {
            (self.report)(progress);
            self.last = Some(now);
            self.last_phase = Some(phase.clone());
        }
    }
}
