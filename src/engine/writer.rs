//! The single writer: encodes a batch, places it in the active segment (rolling
//! to a new segment when it does not fit), publishes it and indexes it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::event::{AppendResult, EventDataRef, ExpectedVersion, StreamCondition, Uuid};
use crate::format::batch::{encode_commit_frame, encode_event_frame};
use crate::format::body::{CommitBody, EventBody};
use crate::format::footer::{self, SegmentFooter};
use crate::format::header::SegmentHeader;
use crate::format::scan::MAX_EVENTS_PER_BATCH;
use crate::format::sealed_data::SealedFor;
use crate::format::{
    self, CHAIN_LEN, FORMAT_VERSION, MULTI_STREAM_FORMAT_VERSION, SEGMENT_HEADER_LEN,
    SUBJECT_FORMAT_VERSION,
};
use crate::index::CommandRecord;
use crate::log::segment::{Sealed, Segment};
use crate::options::Options;

use super::prefault::Prefaulter;
use super::read_events::with_event_at;
use super::{Engine, State};

/// State owned by the one writer; guarded by the store's writer mutex.
pub(crate) struct Writer {
    /// The segment appends go to.
    active: Arc<Segment>,
    /// Its ordinal in the store's segment list.
    ordinal: usize,
    /// Whether `active` has been sealed (a roll that failed half-way).
    active_sealed: bool,
    /// Offset where the next batch goes in `active`.
    write_offset: usize,
    /// Timestamp of the newest event: new ones are never earlier.
    last_timestamp_ns: u64,
    /// Reused encoding buffer.
    buffer: Vec<u8>,
    /// Offsets of the event frames within `buffer`.
    frame_offsets: Vec<usize>,
    /// Ids of the batch being appended (given or generated), kept so that
    /// encoding again after a roll writes the same ones.
    ids: Vec<Uuid>,
    /// Timestamps of the batch being appended, likewise.
    timestamps: Vec<u64>,
    /// The sealed data of each event of the batch that names a subject
    /// (`None`: stored as given), sealed once so that encoding again after
    /// a roll writes the same bytes.
    sealed: Vec<Option<Vec<u8>>>,
    /// The version of each stream the batch writes, before it, in the
    /// order of the writes.
    actual: Vec<u64>,
    /// Whether a batch was appended since the store was opened: a store
    /// that only read writes nothing at close.
    appended_since_open: bool,
    /// Populates the pages just ahead of `write_offset` on another thread
    /// ([`Writer::start_prefaulting`]); `None`: the writer takes the page
    /// faults itself.
    prefaulter: Option<Prefaulter>,
}

/// One stream's part of an append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamWrite<'a> {
    pub stream: &'a str,
    pub expected: ExpectedVersion,
    pub events: &'a [EventDataRef<'a>],
}

/// What an append asks for, validated: one batch, written in the order of
/// `writes` (one run of events per stream).
pub(crate) struct AppendRequest<'a> {
    /// At least one; no stream twice; more than one only in a segment of
    /// [`MULTI_STREAM_FORMAT_VERSION`] or later.
    pub writes: &'a [StreamWrite<'a>],
    /// Version conditions on streams not written.
    pub conditions: &'a [StreamCondition<'a>],
    pub command_id: Option<&'a str>,
    /// Whether a repeat of a one-stream append may name another stream
    /// and still get the original result: the rule of the one-stream
    /// calls (`Store::append_idempotent`), kept for them; an append to
    /// several streams names the streams of its result, so they must match.
    pub repeat_names_any_stream: bool,
}

impl<'a> AppendRequest<'a> {
    /// An append of `write` alone (the one-stream calls).
    pub fn one(write: &'a StreamWrite<'a>, command_id: Option<&'a str>) -> AppendRequest<'a> {
        AppendRequest {
            writes: std::slice::from_ref(write),
            conditions: &[],
            command_id,
            repeat_names_any_stream: true,
        }
    }

    /// Every event of the batch with its stream, in log order.
    pub fn events(&self) -> impl Iterator<Item = (&'a str, &'a EventDataRef<'a>)> + use<'a> {
        self.writes
            .iter()
            .flat_map(|write| write.events.iter().map(move |event| (write.stream, event)))
    }

    /// Events in the batch.
    pub fn event_count(&self) -> usize {
        self.writes.iter().map(|write| write.events.len()).sum()
    }
}

/// What an append did, for the caller to make durable.
pub(crate) struct Appended {
    /// One per stream written, in the order of the writes.
    pub results: Vec<AppendResult>,
    /// The log point right after the batch; `None` when nothing was written
    /// (an idempotent repeat).
    pub end: Option<(usize, usize)>,
}

impl Writer {
    pub fn new(
        active: Arc<Segment>,
        ordinal: usize,
        active_sealed: bool,
        write_offset: usize,
        last_timestamp_ns: u64,
    ) -> Writer {
        Writer {
            active,
            ordinal,
            active_sealed,
            write_offset,
            last_timestamp_ns,
            buffer: Vec::with_capacity(64 * 1024),
            frame_offsets: Vec::new(),
            ids: Vec::new(),
            timestamps: Vec::new(),
            sealed: Vec::new(),
            actual: Vec::new(),
            appended_since_open: false,
            prefaulter: None,
        }
    }

    /// Starts populating the active segment's pages ahead of the writes
    /// on a background thread (`engine::prefault`). For stores that do not
    /// sync after every batch: one that does would write the populated
    /// zero pages ahead with each sync. Without a thread (it could not be
    /// spawned), appends go on as before.
    pub fn start_prefaulting(&mut self) {
        self.prefaulter = Prefaulter::start().ok();
        self.prefault_ahead();
    }

    fn prefault_ahead(&mut self) {
        if let Some(prefaulter) = &mut self.prefaulter
            && !self.active_sealed
        {
            prefaulter.ahead(&self.active, self.write_offset);
        }
    }

    /// Appends one batch. Caller holds the writer mutex and has validated the
    /// request's sizes; `fields_bytes` is what `validate` summed over the
    /// batch's fields (a lower bound of its encoded size).
    pub fn append(
        &mut self,
        engine: &Engine,
        request: &AppendRequest<'_>,
        fields_bytes: u64,
    ) -> Result<Appended> {
        engine.durability.check_poison()?;
        let (first_position, chain_head) = {
            let state = engine.read_state();
            if let Some(id) = request.command_id
                && let Some(record) = state.index.command(id)?
            {
                return Ok(Appended {
                    results: command_results(&state, id, &record, request)?,
                    end: None,
                });
            }
            self.actual.clear();
            for write in request.writes {
                // Checked under the writer mutex, as the tombstone is written
                // under it: no append slips in after a deletion.
                state.index.live_metadata(write.stream)?;
                let actual = state.index.stream_version(write.stream);
                if !write.expected.matches(actual) {
                    if let [_] = request.writes
                        && let Some(result) = repeated_append(&state, write, actual)?
                    {
                        return Ok(Appended {
                            results: vec![result],
                            end: None,
                        });
                    }
                    return Err(Error::WrongExpectedVersion {
                        stream: write.stream.to_string(),
                        expected: write.expected,
                        actual,
                    });
                }
                self.actual.push(actual);
            }
            for condition in request.conditions {
                let actual = state.index.stream_version(condition.stream);
                if !condition.expected.matches(actual) {
                    return Err(Error::WrongExpectedVersion {
                        stream: condition.stream.to_string(),
                        expected: condition.expected,
                        actual,
                    });
                }
            }
            (state.index.next_position(), state.index.chain_head())
        };
        self.assign_ids_and_timestamps(request)?;
        self.seal_subjects_data(engine, request)?;

        // An event with a subject, or a batch of several streams, needs a
        // segment of a format version that can hold it (a store written by
        // an older build continues its older segment for what that version
        // holds).
        let mut needed_version = 0;
        if self.sealed.iter().any(Option::is_some) {
            needed_version = SUBJECT_FORMAT_VERSION;
        }
        if request.writes.len() > 1 {
            needed_version = needed_version.max(MULTI_STREAM_FORMAT_VERSION);
        }
        let needs_newer_segment = self.active.header.format_version < needed_version;
        if needs_newer_segment && !self.active_sealed {
            let segment_events = engine.read_state().index.segments[self.ordinal].event_count;
            if segment_events == 0 {
                // Only a segment with events is sealed (its footer counts at
                // least one); an older build left this one empty.
                return Err(Error::InvalidArgument(format!(
                    "the active segment {} is of format version {} and holds no events, so \
                     it cannot be sealed to start a version-{needed_version} segment for \
                     this batch (an event with a subject, or several streams): append one \
                     plain event to one stream first",
                    self.active.path.display(),
                    self.active.header.format_version
                )));
            }
        }
        if self.active_sealed || needs_newer_segment {
            self.roll(engine, first_position, &chain_head)?;
        }
        // Refuse a batch that clearly fits nowhere before encoding it: its
        // fields' lengths are a lower bound of its encoded size.
        let largest_room = (self.active.data_end() - self.write_offset)
            .max(format::data_capacity(engine.options.segment_size_bytes) as usize);
        if fields_bytes > largest_room as u64 {
            return Err(Error::LimitExceeded {
                limit: "batch size in bytes, at least (must fit one segment; see Options::segment_size_bytes)",
                actual: fields_bytes,
                max: largest_room as u64,
            });
        }
        let mut chain = self.encode(engine, request, first_position, &chain_head)?;
        if self.write_offset + self.buffer.len() > self.active.data_end() {
            // A batch never spans segments: it goes to the next one, which
            // must hold it. Decide before sealing anything. The next segment
            // has the size of the options, which can be smaller than this
            // one's (a store reopened with smaller segments). And only a
            // segment with events is sealed: a batch that does not fit an
            // empty segment stays refused.
            let segment_events = engine.read_state().index.segments[self.ordinal].event_count;
            let max = if segment_events == 0 {
                self.active.data_end() - self.write_offset
            } else {
                format::data_capacity(engine.options.segment_size_bytes) as usize
            };
            if self.buffer.len() > max {
                return Err(Error::LimitExceeded {
                    limit: "batch size in bytes (must fit one segment; see Options::segment_size_bytes)",
                    actual: self.buffer.len() as u64,
                    max: max as u64,
                });
            }
            self.roll(engine, first_position, &chain_head)?;
            // The salt and synced offset changed: encode again. The batch
            // still fits: only the commit record's `synced_offset` changes
            // size, and it becomes the header length, the smallest.
            chain = self.encode(engine, request, first_position, &chain_head)?;
        }

        let (offset, end) = self.publish_buffer();
        self.appended_since_open = true;
        self.prefault_ahead();
        let timestamp_ns = *self.timestamps.last().expect("a batch has events");
        self.last_timestamp_ns = timestamp_ns;

        let event_count = request.event_count() as u64;
        let mut results = Vec::with_capacity(request.writes.len());
        {
            let mut state = engine.write_state();
            let mut batch_index = 0;
            for (write, &actual) in request.writes.iter().zip(&self.actual) {
                let count = write.events.len();
                let run = batch_index..batch_index + count;
                let run_position = first_position + batch_index as u64;
                state.index.add_batch(
                    write.stream,
                    actual + 1,
                    run_position,
                    self.frame_offsets[run.clone()]
                        .iter()
                        .zip(write.events)
                        .zip(&self.timestamps[run])
                        .map(|((frame_offset, event), &timestamp_ns)| {
                            (
                                u32::try_from(offset + frame_offset)
                                    .expect("segment offsets fit u32"),
                                event.correlation_id,
                                timestamp_ns,
                            )
                        }),
                );
                results.push(AppendResult {
                    first_version: actual + 1,
                    last_version: actual + count as u64,
                    first_position: run_position,
                    last_position: run_position + count as u64 - 1,
                });
                batch_index += count;
            }
            // Only an idempotent append allocates a command record. It
            // names the batch's first stream and counts all its events
            // (`command_results` reads the batch for the rest).
            let command = request.command_id.map(|id| {
                let record = CommandRecord {
                    stream: request.writes[0].stream.into(),
                    first_version: self.actual[0] + 1,
                    first_position,
                    event_count,
                };
                (id, record)
            });
            state.index.end_batch(end, chain, command);
            // A metadata event takes effect with its batch, under the same
            // lock: no reader sees one without the other.
            super::stream_metadata::learn(&mut state);
        }
        engine.commits.committed(first_position + event_count);
        Ok(Appended {
            results,
            end: Some((self.ordinal, end)),
        })
    }

    /// Fills `ids` and `timestamps` for the request: given ids or new UUID
    /// v7s; given timestamps (imports) or the clock, never earlier than the
    /// previous event's.
    fn assign_ids_and_timestamps(&mut self, request: &AppendRequest<'_>) -> Result<()> {
        self.ids.clear();
        self.timestamps.clear();
        let now = now_ns();
        let mut previous = self.last_timestamp_ns;
        for (i, (stream, event)) in request.events().enumerate() {
            self.ids.push(event.id.unwrap_or_else(Uuid::now_v7));
            let timestamp = match event.timestamp_ns {
                Some(given) if given < previous => {
                    return Err(Error::InvalidArgument(format!(
                        "event {i} of the batch (stream {stream:?}) gives timestamp {given} ns, \
                         earlier than the previous event's {previous} ns: timestamps never decrease"
                    )));
                }
                Some(given) => given,
                None => now.max(previous),
            };
            self.timestamps.push(timestamp);
            previous = timestamp;
        }
        Ok(())
    }

    /// Fills `sealed`: the data of each event that names a subject, sealed
    /// with that subject's key (created, durably, if it has none). Needs the
    /// batch's ids (the sealed data is bound to its event).
    fn seal_subjects_data(&mut self, engine: &Engine, request: &AppendRequest<'_>) -> Result<()> {
        self.sealed.clear();
        for ((stream, event), id) in request.events().zip(&self.ids) {
            let sealed = match event.subject {
                None => None,
                Some(subject) => {
                    let mut out = Vec::new();
                    let sealed_for = SealedFor {
                        id: *id.as_bytes(),
                        stream,
                        subject,
                    };
                    engine.subjects.seal(&mut out, &sealed_for, event.data)?;
                    Some(out)
                }
            };
            self.sealed.push(sealed);
        }
        Ok(())
    }

    /// Encodes the batch into `buffer`; returns the chain value after it.
    fn encode(
        &mut self,
        engine: &Engine,
        request: &AppendRequest<'_>,
        first_position: u64,
        chain_head: &[u8; CHAIN_LEN],
    ) -> Result<[u8; CHAIN_LEN]> {
        let salt = self.active.header.salt;
        let format_version = self.active.header.format_version;
        let max_event_bytes = engine.options.limits.max_event_bytes;
        self.buffer.clear();
        self.frame_offsets.clear();
        let versions = request
            .writes
            .iter()
            .zip(&self.actual)
            .flat_map(|(write, &actual)| (actual + 1..).take(write.events.len()));
        for (i, ((stream, event), version)) in request.events().zip(versions).enumerate() {
            let body = EventBody {
                stream,
                version,
                position: first_position + i as u64,
                id: *self.ids[i].as_bytes(),
                event_type: event.event_type,
                timestamp_ns: self.timestamps[i],
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                content_type: event.content_type,
                metadata: event.metadata,
                data: self.sealed[i].as_deref().unwrap_or(event.data),
                subject: event.subject,
            };
            let frame_start = encode_event_frame(&mut self.buffer, salt, format_version, &body);
            let frame_len = self.buffer.len() - frame_start;
            if frame_len > max_event_bytes {
                return Err(Error::LimitExceeded {
                    limit: "Limits::max_event_bytes (encoded event record)",
                    actual: frame_len as u64,
                    max: max_event_bytes as u64,
                });
            }
            self.frame_offsets.push(frame_start);
        }
        let (durable_segment, durable_offset) = engine.durability.durable();
        let synced_offset = if durable_segment == self.ordinal {
            durable_offset.min(self.write_offset)
        } else {
            SEGMENT_HEADER_LEN
        };
        let commit = CommitBody {
            chain: [0u8; CHAIN_LEN],
            first_position,
            event_count: request.event_count() as u64,
            synced_offset: synced_offset as u64,
            command_id: request.command_id,
        };
        Ok(encode_commit_frame(
            &mut self.buffer,
            salt,
            0,
            chain_head,
            &commit,
        ))
    }

    /// What closing does to the log: a sync marker, then the durable mark
    /// made durable, so that after a clean close both vouch for every byte.
    /// Does nothing if nothing was appended since the store was opened
    /// (closing a store that was only read writes nothing: open already
    /// synced the mark) or the active segment is sealed.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier failed sync; a failure of these
    /// syncs poisons the store.
    pub fn close(&mut self, engine: &Engine) -> Result<()> {
        engine.durability.check_poison()?;
        if !self.appended_since_open || self.active_sealed {
            return Ok(());
        }
        self.write_sync_marker(engine)?;
        // The mark written after the last sync reaches the disk now.
        let end = self.write_offset;
        if let Err(error) = self.active.sync_data_and_mark(end, end) {
            let error = Error::io("syncing the durable mark of", &self.active.path, error);
            engine.durability.poison(error.to_string());
            return Err(error);
        }
        // The next open loads this and reads nothing of the log.
        engine.index_queue.wait_idle();
        engine.write_checkpoint(None, true);
        Ok(())
    }

    /// Appends a sync marker (a commit record with no events) whose
    /// `synced_offset` vouches for every byte before it, then syncs it, so
    /// that after a clean close any damage to this segment is reported as
    /// corruption rather than discarded as a torn tail. Does nothing if not
    /// everything is durable yet, the segment is full, or it holds no events
    /// (nothing to vouch for; and a segment of markers alone could not be
    /// sealed when the next batch does not fit beside them).
    fn write_sync_marker(&mut self, engine: &Engine) -> Result<()> {
        if engine.durability.durable() != (self.ordinal, self.write_offset) {
            return Ok(());
        }
        let (next_position, chain_head, segment_events) = {
            let state = engine.read_state();
            (
                state.index.next_position(),
                state.index.chain_head(),
                state.index.segments[self.ordinal].event_count,
            )
        };
        if segment_events == 0 {
            return Ok(());
        }
        let commit = CommitBody {
            chain: [0u8; CHAIN_LEN],
            first_position: next_position,
            event_count: 0,
            synced_offset: self.write_offset as u64,
            command_id: None,
        };
        self.buffer.clear();
        let salt = self.active.header.salt;
        let chain = encode_commit_frame(&mut self.buffer, salt, 0, &chain_head, &commit);
        if self.write_offset + self.buffer.len() > self.active.data_end() {
            return Ok(());
        }
        let (_, end) = self.publish_buffer();
        engine.write_state().index.end_batch(end, chain, None);
        engine.durability.sync_through(engine, (self.ordinal, end))
    }

    /// Copies the encoded batch in `buffer` to the active segment at
    /// `write_offset`, its first header word last (a release store, so a
    /// reader that sees that word sees the whole batch), and moves
    /// `write_offset` past it. Returns the batch's start and end offsets.
    fn publish_buffer(&mut self) -> (usize, usize) {
        let offset = self.write_offset;
        let end = offset + self.buffer.len();
        assert!(
            end <= self.active.data_end(),
            "the caller checked that the batch fits"
        );
        // SAFETY: `offset..end` lies beyond every published byte of the
        // active segment (write_offset only grows, and only past published
        // batches), and readers only borrow published bytes.
        unsafe { self.active.write(offset + 8, &self.buffer[8..]) };
        let mut first_word = [0u8; 8];
        first_word.copy_from_slice(&self.buffer[..8]);
        self.active.publish_word(offset, first_word);
        self.write_offset = end;
        (offset, end)
    }

    /// Seals the active segment (unless already sealed) and creates the next.
    ///
    /// # Errors
    /// A failed sync poisons the store. A sealed segment that could not be
    /// made read-only is reported to the caller without poisoning, and the
    /// next call goes on from the sealed segment (see [`Segment::seal`]).
    fn roll(
        &mut self,
        engine: &Engine,
        next_position: u64,
        chain_head: &[u8; CHAIN_LEN],
    ) -> Result<()> {
        if !self.active_sealed {
            let footer = {
                let state = engine.read_state();
                let stats = &state.index.segments[self.ordinal];
                assert!(
                    stats.event_count > 0,
                    "only a segment with events is sealed"
                );
                let last_position = stats
                    .end_position()
                    .checked_sub(1)
                    .expect("a segment with events has a last position");
                let data = &self.active.bytes(stats.end_offset)[SEGMENT_HEADER_LEN..];
                SegmentFooter {
                    event_count: stats.event_count,
                    batch_count: stats.batch_count,
                    last_position,
                    data_len: data.len() as u64,
                    contents_crc: footer::contents_crc(self.active.header.salt, data),
                    chain_end: *chain_head,
                    sealed_unix_ns: now_ns(),
                }
            };
            match self.active.seal(&footer) {
                Ok(Sealed::ReadOnly) => self.active_sealed = true,
                Ok(Sealed::StillWritable(error)) => {
                    // Sealed and durable; only the read-only permission is
                    // missing, and no sync failed: no poison. The append
                    // that rolled reports it (nothing of that batch is
                    // written yet); the next append creates the next segment.
                    self.active_sealed = true;
                    return Err(error);
                }
                Err(error) => {
                    // A sync failed: what is durable is unknown.
                    engine.durability.poison(error.to_string());
                    return Err(error);
                }
            }
        }
        let header = new_header(&engine.options, next_position, chain_head)?;
        let segment = Arc::new(engine.create_segment(&header)?);
        let ordinal = {
            let mut state = engine.write_state();
            state.segments.push(Arc::clone(&segment));
            state.index.start_segment(next_position, *chain_head);
            state.segments.len() - 1
        };
        let sealed = std::mem::replace(&mut self.active, segment);
        self.ordinal = ordinal;
        self.active_sealed = false;
        self.write_offset = SEGMENT_HEADER_LEN;
        self.prefault_ahead();
        // The old segment was synced whole, the new header before its rename.
        engine
            .durability
            .mark_durable((ordinal, SEGMENT_HEADER_LEN));
        // Off the append path when the indexer thread runs.
        if !engine.index_queue.submit(ordinal - 1, Arc::clone(&sealed)) {
            engine.index_sealed_segment(ordinal - 1, &sealed);
        }
        Ok(())
    }
}

/// EventStoreDB's idempotency rule: an append at `Exact(n)` (or `NoStream`,
/// that is `Exact(0)`) whose events all carry ids equal to the ids of the
/// stream's events `n+1..` was already written: return what it wrote.
fn repeated_append(
    state: &State,
    request: &StreamWrite<'_>,
    actual: u64,
) -> Result<Option<AppendResult>> {
    let expected = match request.expected {
        ExpectedVersion::Exact(version) => version,
        ExpectedVersion::NoStream => 0,
        ExpectedVersion::Any | ExpectedVersion::StreamExists => return Ok(None),
    };
    let count = request.events.len() as u64;
    if expected.checked_add(count).is_none_or(|end| end > actual) {
        return Ok(None);
    }
    let locations =
        state
            .index
            .stream_locations(request.stream, expected + 1, expected + count + 1)?;
    if locations.len() as u64 != count {
        // Some of those versions were retired: a retry cannot be told from
        // a conflict, so it is one.
        return Ok(None);
    }
    let mut positions = Vec::with_capacity(request.events.len());
    for (event, &location) in request.events.iter().zip(&locations) {
        let Some(id) = event.id else { return Ok(None) };
        let (stored_id, position) =
            with_event_at(state, location, |body| (body.id, body.position))?;
        if stored_id != *id.as_bytes() {
            return Ok(None);
        }
        positions.push(position);
    }
    Ok(Some(AppendResult {
        first_version: expected + 1,
        last_version: expected + count,
        first_position: positions[0],
        last_position: positions[positions.len() - 1],
    }))
}

/// What the append with `command_id` wrote (`record`), for a repeat of it:
/// one result per stream, read from its batch in the log.
///
/// # Errors
/// [`Error::InvalidArgument`] when `request` names other streams than the
/// recorded append wrote (a command id names one append: reusing it for
/// another must not pass as a repeat), except under the one-stream calls'
/// rule ([`AppendRequest::repeat_names_any_stream`]);
/// [`Error::Corrupt`] when the batch no longer reads.
fn command_results(
    state: &State,
    command_id: &str,
    record: &CommandRecord,
    request: &AppendRequest<'_>,
) -> Result<Vec<AppendResult>> {
    let mut streams: Vec<(Box<str>, AppendResult)> = Vec::new();
    let locations = state.index.stream_locations(
        &record.stream,
        record.first_version,
        record.first_version + 1,
    )?;
    let first = locations.first().copied().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "command id {command_id:?} names an append whose events were retired"
        ))
    })?;
    // From an index file: validated there against the segment, but a
    // count past any batch's would read past it, so it is checked again.
    let count = u32::try_from(record.event_count)
        .ok()
        .filter(|&count| count >= 1 && count as usize <= MAX_EVENTS_PER_BATCH)
        .ok_or_else(|| {
            Error::found(
                &state.segments[first.segment()].path,
                first.offset() as u64,
                Some(record.first_position),
                crate::log::finding::FindingKind::ChangedAfterOpen {
                    detail: format!(
                        "the index records {} events for command id {command_id:?}",
                        record.event_count
                    ),
                },
            )
        })?;
    let run = crate::index::Run { first, count };
    super::read_events::visit_run(state, &run, |event| match streams.last_mut() {
        Some((stream, result)) if **stream == *event.stream => {
            result.last_version = event.version;
            result.last_position = event.position;
        }
        _ => streams.push((
            event.stream.into(),
            AppendResult {
                first_version: event.version,
                last_version: event.version,
                first_position: event.position,
                last_position: event.position,
            },
        )),
    })?;
    let same_streams = streams.len() == request.writes.len()
        && streams
            .iter()
            .zip(request.writes)
            .all(|((stream, _), write)| **stream == *write.stream);
    // A repeat of a one-stream append by a one-stream call keeps the rule
    // it always had: the original result, whatever stream the repeat
    // names (the command id alone names the append). One result cannot
    // stand for several, and a result that names its streams must name
    // the recorded ones.
    let any_stream = request.repeat_names_any_stream && streams.len() == 1;
    if !same_streams && !any_stream {
        let names = |names: Vec<&str>| format!("{names:?}");
        return Err(Error::InvalidArgument(format!(
            "command id {command_id:?} was used by an append to {}, not to {}",
            names(streams.iter().map(|(stream, _)| &**stream).collect()),
            names(request.writes.iter().map(|write| write.stream).collect()),
        )));
    }
    Ok(streams.into_iter().map(|(_, result)| result).collect())
}

/// Bytes of an event's id and variable-length fields (and of its stream
/// id): a lower bound of its encoded record, computed without encoding.
pub(crate) fn event_fields_bytes(stream: &str, event: &EventDataRef<'_>) -> u64 {
    [
        Uuid::nil().as_bytes().len(),
        stream.len(),
        event.event_type.len(),
        event.correlation_id.map_or(0, str::len),
        event.causation_id.map_or(0, str::len),
        event.content_type.map_or(0, str::len),
        event.metadata.len(),
        event.data.len(),
        event.subject.map_or(0, |subject| {
            subject.len() + crate::format::sealed_data::SEALED_OVERHEAD_BYTES
        }),
    ]
    .iter()
    .fold(0, |sum, &len| sum.saturating_add(len as u64))
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A fresh header for a segment starting at `base_position`.
pub(crate) fn new_header(
    options: &Options,
    base_position: u64,
    chain_start: &[u8; CHAIN_LEN],
) -> Result<SegmentHeader> {
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).map_err(|e| Error::Io {
        action: "drawing the random salt of new segment",
        path: format::segment_file_name(base_position).into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(SegmentHeader {
        format_version: FORMAT_VERSION,
        base_position,
        salt: u64::from_le_bytes(salt),
        created_unix_ns: now_ns(),
        segment_size_bytes: options.segment_size_bytes,
        chain_start: *chain_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::chain::GENESIS;

    /// Caught: `roll` computed the footer's `last_position` as
    /// `end_position() - 1` before asserting that the segment has events, so
    /// rolling an empty first segment panicked with an arithmetic overflow
    /// (or, without overflow checks, built a footer for position `u64::MAX`)
    /// instead of stating the broken invariant.
    #[test]
    #[should_panic(expected = "only a segment with events is sealed")]
    fn rolling_an_empty_segment_trips_the_invariant_not_an_overflow() {
        let engine = Engine::in_memory(Options::default()).unwrap();
        let mut writer = engine.writer.as_ref().unwrap().lock().unwrap();
        let _ = writer.roll(&engine, 0, &GENESIS);
    }
}
