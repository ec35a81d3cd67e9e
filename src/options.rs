//! Settings a store is opened with.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::{self, scan::MAX_EVENTS_PER_BATCH};
use crate::hooks::Hooks;
use crate::keys::{SharedKeys, SubjectKeys};

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
    /// Longest stream id, in bytes of UTF-8. Default 512; at most
    /// [`Limits::MAX_STREAM_ID_BYTES`].
    pub max_stream_id_bytes: usize,
    /// Longest event type name, in bytes of UTF-8. Default 256; at most
    /// [`Limits::MAX_EVENT_TYPE_BYTES`].
    pub max_event_type_bytes: usize,
    /// Largest encoded event record (data, metadata, ids and names), in bytes.
    /// Default 4 MiB; at most [`Limits::MAX_EVENT_BYTES`]. An event must also
    /// fit in an empty segment.
    pub max_event_bytes: usize,
    /// Most events in one append. Default 10,000; at most 100,000.
    pub max_batch_events: usize,
    /// Largest snapshot payload a writer saves, in bytes. Default 64 MiB; at
    /// most [`Limits::MAX_SNAPSHOT_BYTES`].
    pub max_snapshot_bytes: usize,
}

impl Limits {
    /// The largest [`Limits::max_event_bytes`]: an event record must fit in
    /// the data area of the largest segment (2 GiB, the most
    /// [`Options::segment_size_bytes`] allows). This also keeps every length in
    /// a record (a frame's u32 body length, MessagePack string lengths) far
    /// from overflow.
    pub const MAX_EVENT_BYTES: usize =
        format::MAX_SEGMENT_SIZE_BYTES as usize - format::SEGMENT_HEADER_LEN - format::FOOTER_LEN;

    /// The largest [`Limits::max_stream_id_bytes`]: a stream id is part of
    /// every event record of its stream.
    pub const MAX_STREAM_ID_BYTES: usize = Limits::MAX_EVENT_BYTES;

    /// The largest [`Limits::max_event_type_bytes`]: an event type is part of
    /// its event record.
    pub const MAX_EVENT_TYPE_BYTES: usize = Limits::MAX_EVENT_BYTES;

    /// The largest [`Limits::max_snapshot_bytes`]: the most payload a
    /// snapshot file can hold (its body length is a u32). The stream id and
    /// content type must fit beside it; a snapshot that does not is refused
    /// with [`Error::LimitExceeded`].
    pub const MAX_SNAPSHOT_BYTES: usize = (format::snapshot::MAX_SNAPSHOT_BODY_LEN
        - format::snapshot::SNAPSHOT_BODY_OVERHEAD_BYTES)
        as usize;
}

const _: () = assert!(Limits::MAX_EVENT_BYTES < u32::MAX as usize);

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
    /// Open by reading and checking every segment and rebuilding the whole
    /// index from the log, ignoring the index checkpoint and the segments'
    /// index files (which a writer then writes anew). Default `false`: open
    /// loads the checkpoint and reads only the log after it (see
    /// `docs/design.md`). Not recorded in the store.
    pub rebuild_index: bool,
    /// Where the data subjects' keys are kept ([`crate::keys`]): `None`
    /// (the default) is the store's key file (`annals.keys`), or memory for
    /// [`crate::Store::in_memory`]. Not recorded in the store: every writer
    /// of a store must be given the same keys. A read-only open always uses
    /// the key file.
    pub subject_keys: Option<SharedKeys>,
    /// Fault-injection hooks for tests; none by default. Public only with
    /// the feature `internals` (not a stable API).
    #[cfg(feature = "internals")]
    pub hooks: Hooks,
    /// Fault-injection hooks for this crate's tests; always none here.
    #[cfg(not(feature = "internals"))]
    pub(crate) hooks: Hooks,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size_bytes: 64 << 20,
            durability: Durability::Always,
            limits: Limits::default(),
            rebuild_index: false,
            subject_keys: None,
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

    /// Sets whether open rebuilds the whole index from the log
    /// ([`Options::rebuild_index`]).
    pub fn rebuild_index(mut self, rebuild: bool) -> Self {
        self.rebuild_index = rebuild;
        self
    }

    /// Keeps the subjects' keys in `keys` instead of the store's key file
    /// ([`Options::subject_keys`]).
    pub fn subject_keys(mut self, keys: std::sync::Arc<dyn SubjectKeys>) -> Self {
        self.subject_keys = Some(SharedKeys(keys));
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
        for (name, value, max, cap) in [
            (
                "max_event_bytes",
                limits.max_event_bytes,
                Limits::MAX_EVENT_BYTES,
                "Limits::MAX_EVENT_BYTES, the data area of the largest segment",
            ),
            (
                "max_stream_id_bytes",
                limits.max_stream_id_bytes,
                Limits::MAX_STREAM_ID_BYTES,
                "Limits::MAX_STREAM_ID_BYTES",
            ),
            (
                "max_event_type_bytes",
                limits.max_event_type_bytes,
                Limits::MAX_EVENT_TYPE_BYTES,
                "Limits::MAX_EVENT_TYPE_BYTES",
            ),
            (
                "max_snapshot_bytes",
                limits.max_snapshot_bytes,
                Limits::MAX_SNAPSHOT_BYTES,
                "Limits::MAX_SNAPSHOT_BYTES, what a snapshot file can hold",
            ),
        ] {
            if value > max {
                return Err(Error::InvalidArgument(format!(
                    "limits.{name} is {value}; it can be at most {max} ({cap})"
                )));
            }
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
