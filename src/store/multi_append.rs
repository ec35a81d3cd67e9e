//! Atomic appends to several streams (what KurrentDB calls a multi-stream
//! append): one batch in the log, so all or nothing, with an expected
//! version for each stream written and optional conditions on streams that
//! are not written.

use std::borrow::Cow;

use crate::engine::writer::{AppendRequest, StreamWrite};
use crate::error::Result;
use crate::event::{AppendResult, EventData, EventDataRef, ExpectedVersion, StreamCondition};

use super::Store;

/// An append to several streams at once, for [`Store::append_multi`].
///
/// Every stream written gets its own expected version; streams that are
/// only read by the decision can be checked with [`require`](Self::require).
/// The events are written in the order of the writes, each stream's as one
/// run of consecutive versions, and at consecutive positions: one batch,
/// so after a crash either all of it is in the log or none of it.
///
/// ```
/// use annals::{EventData, ExpectedVersion, MultiStreamAppend, Options, Store};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), Options::default())?;
/// store.append("customer-9", ExpectedVersion::NoStream, &[EventData::new("Registered", vec![])])?;
///
/// let order = [EventData::new("OrderPlaced", b"{}".to_vec())];
/// let stock = [EventData::new("StockReserved", b"{}".to_vec())];
/// let written = store.append_multi(
///     &MultiStreamAppend::new()
///         .write("order-1", ExpectedVersion::NoStream, &order)
///         .write("stock-7", ExpectedVersion::Any, &stock)
///         .require("customer-9", ExpectedVersion::Exact(1))
///         .command_id("place-order-1"),
/// )?;
/// assert_eq!(written.get("order-1").unwrap().last_version, 1);
/// assert_eq!((written.first_position(), written.last_position()), (1, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MultiStreamAppend<'a> {
    writes: Vec<(&'a str, ExpectedVersion, Cow<'a, [EventDataRef<'a>]>)>,
    conditions: Vec<StreamCondition<'a>>,
    command_id: Option<&'a str>,
}

impl<'a> MultiStreamAppend<'a> {
    /// An append that writes nothing yet.
    pub fn new() -> MultiStreamAppend<'a> {
        MultiStreamAppend::default()
    }

    /// Writes `events` to `stream` if its version matches `expected`.
    pub fn write(
        self,
        stream: &'a str,
        expected: ExpectedVersion,
        events: &'a [EventData],
    ) -> MultiStreamAppend<'a> {
        let events = events.iter().map(EventData::as_ref).collect::<Vec<_>>();
        self.push_write(stream, expected, Cow::Owned(events))
    }

    /// [`write`](Self::write) of borrowed events (see [`EventDataRef`]).
    pub fn write_ref(
        self,
        stream: &'a str,
        expected: ExpectedVersion,
        events: &'a [EventDataRef<'a>],
    ) -> MultiStreamAppend<'a> {
        self.push_write(stream, expected, Cow::Borrowed(events))
    }

    fn push_write(
        mut self,
        stream: &'a str,
        expected: ExpectedVersion,
        events: Cow<'a, [EventDataRef<'a>]>,
    ) -> MultiStreamAppend<'a> {
        self.writes.push((stream, expected, events));
        self
    }

    /// Appends only if `stream`, which this append does not write, is at
    /// `expected` (KurrentDB's consistency check): for a decision that
    /// read it.
    pub fn require(mut self, stream: &'a str, expected: ExpectedVersion) -> MultiStreamAppend<'a> {
        self.conditions.push(StreamCondition { stream, expected });
        self
    }

    /// Makes the append idempotent on `command_id`, as
    /// [`Store::append_idempotent`] does for one stream: a repeat writes
    /// nothing and returns what the first one wrote. A repeat must write
    /// the same streams in the same order (`InvalidArgument` otherwise).
    pub fn command_id(mut self, command_id: &'a str) -> MultiStreamAppend<'a> {
        self.command_id = Some(command_id);
        self
    }
}

/// What a [`Store::append_multi`] wrote: one result per stream, in the
/// order of the writes (which is the order of their events in the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiAppendResult {
    /// Each stream written and what was written to it.
    pub streams: Vec<StreamAppendResult>,
}

/// One stream's part of a [`MultiAppendResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppendResult {
    /// The stream written.
    pub stream: String,
    /// Its versions and positions.
    pub result: AppendResult,
}

impl MultiAppendResult {
    /// What was written to `stream`, if it was written.
    pub fn get(&self, stream: &str) -> Option<&AppendResult> {
        self.streams
            .iter()
            .find(|written| written.stream == stream)
            .map(|written| &written.result)
    }

    /// The position of the batch's first event.
    pub fn first_position(&self) -> u64 {
        self.streams[0].result.first_position
    }

    /// The position of the batch's last event.
    pub fn last_position(&self) -> u64 {
        self.streams[self.streams.len() - 1].result.last_position
    }
}

impl Store {
    /// Appends to several streams as one atomic batch: every stream's
    /// expected version, and every condition of
    /// [`MultiStreamAppend::require`], must match, or nothing is written.
    /// Under [`crate::Durability::Always`] it returns once the batch is
    /// durable.
    ///
    /// A store written by an older build goes on in a new segment of
    /// format version 4 (the first that holds such a batch) before the
    /// first one (`docs/format.md`).
    ///
    /// # Errors
    /// - [`crate::Error::WrongExpectedVersion`] for the first stream, in
    ///   the order of the writes and then of the conditions, whose version
    ///   does not match.
    /// - [`crate::Error::InvalidArgument`] when nothing is written, a write
    ///   has no events, a stream is named twice, or the command id was
    ///   used by an append to other streams.
    /// - [`crate::Error::LimitExceeded`] for more than
    ///   [`MAX_STREAMS_PER_BATCH`](crate::format::scan::MAX_STREAMS_PER_BATCH)
    ///   (1,000) streams, or any limit of [`Store::append`] over the whole
    ///   batch.
    /// - Otherwise as [`Store::append`].
    pub fn append_multi(&self, request: &MultiStreamAppend<'_>) -> Result<MultiAppendResult> {
        let writes: Vec<StreamWrite<'_>> = request
            .writes
            .iter()
            .map(|(stream, expected, events)| StreamWrite {
                stream,
                expected: *expected,
                events,
            })
            .collect();
        let results = self.append_to_streams(&AppendRequest {
            writes: &writes,
            conditions: &request.conditions,
            command_id: request.command_id,
            repeat_names_any_stream: false,
        })?;
        Ok(MultiAppendResult {
            streams: writes
                .iter()
                .zip(results)
                .map(|(write, result)| StreamAppendResult {
                    stream: write.stream.to_string(),
                    result,
                })
                .collect(),
        })
    }
}
