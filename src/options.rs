//! Settings a store is opened with.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::{self, scan::MAX_EVENTS_PER_BATCH};
use crate::hooks::Hooks;

/// When appended bytes reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Left in the operating system's page cache: survives a crash of the
    /// process, not a power loss or a kernel crash.
    None,
    /// A background thread syncs every `interval_ms`: a power loss loses at
    /// most about that much acknowledged data.
    Periodic {
        /// Milliseconds between syncs.
        interval_ms: u64,
    },
    /// `append` returns only after its bytes are durable. Concurrent
    /// appenders share one sync (group commit).
    Always,
}

/// Named limits, each with a documented default. Exceeding one is an
/// [`Error::LimitExceeded`] naming it, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest stream id, in bytes of UTF-8. Default 512.
    pub max_stream_id_bytes: usize,
    /// Longest event type name, in bytes of UTF-8. Default 256.
    pub max_event_type_bytes: usize,
    /// Largest encoded event record (data, metadata, ids and names), in bytes.
    /// Default 4 MiB. An event must also fit in an empty segment.
    pub max_event_bytes: usize,
    /// Most events in one append. Default 10,000; at most 100,000.
    pub max_batch_events: usize,
    /// Largest snapshot payload, in bytes. Default 64 MiB.
    pub max_snapshot_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stream_id_bytes: 512,
            max_event_type_bytes: 256,
            max_event_bytes: 4 << 20,
            max_batch_events: 10_000,
            max_snapshot_bytes: 64 << 20,
        }
    }
}

/// How a store is opened.
///
/// ```
/// use annals::{Durability, Options};
/// let options = Options::default()
///     .segment_size_bytes(16 << 20)
///     .durability(Durability::Always);
/// assert_eq!(options.segment_size_bytes, 16 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Size of each segment file, preallocated in full. Default 64 MiB; a
    /// multiple of 4096 between 64 KiB and 2 GiB. A batch never spans
    /// segments, so the largest batch is a little under this size.
    pub segment_size_bytes: u64,
    /// When appends become durable. Default [`Durability::Always`].
    pub durability: Durability,
    /// Size limits on appends.
    pub limits: Limits,
    /// Fault-injection hooks for tests; none by default.
    pub hooks: Hooks,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size_bytes: 64 << 20,
            durability: Durability::Always,
            limits: Limits::default(),
            hooks: Hooks::default(),
        }
    }
}

impl Options {
    /// Sets the segment size in bytes.
    pub fn segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Sets the durability mode.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let size = self.segment_size_bytes;
        if !(format::MIN_SEGMENT_SIZE_BYTES..=format::MAX_SEGMENT_SIZE_BYTES).contains(&size)
            || !size.is_multiple_of(4096)
        {
            return Err(Error::InvalidArgument(format!(
                "segment_size_bytes is {size}; it must be a multiple of 4096 between {} and {}",
                format::MIN_SEGMENT_SIZE_BYTES,
                format::MAX_SEGMENT_SIZE_BYTES
            )));
        }
        if let Durability::Periodic { interval_ms } = self.durability
            && interval_ms == 0
        {
            return Err(Error::InvalidArgument(
                "Durability::Periodic needs interval_ms > 0".into(),
            ));
        }
        let limits = &self.limits;
        if limits.max_batch_events == 0 || limits.max_batch_events > MAX_EVENTS_PER_BATCH {
            return Err(Error::InvalidArgument(format!(
                "limits.max_batch_events is {}; it must be between 1 and {MAX_EVENTS_PER_BATCH}",
                limits.max_batch_events
            )));
        }
        if limits.max_event_bytes == 0
            || limits.max_stream_id_bytes == 0
            || limits.max_event_type_bytes == 0
        {
            return Err(Error::InvalidArgument(
                "every size limit must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn periodic_interval(&self) -> Option<Duration> {
        match self.durability {
            Durability::Periodic { interval_ms } => Some(Duration::from_millis(interval_ms)),
            _ => None,
        }
    }
}
