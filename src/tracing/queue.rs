//! The non-blocking writer: calling threads hand records to a bounded queue;
//! one background thread drains it and appends each drain as one batch
//! (`Store::append_ref` for one stream, `Store::append_multi` for several).
//!
//! Invariants:
//! - Records of one stream are appended in the order they were queued
//!   (one consumer, a FIFO queue); records of different streams in one drain
//!   are grouped by stream, so their positions follow the groups.
//! - A flush request is queued behind every record queued before it
//!   (happens-before), and the worker acknowledges it only after appending
//!   those records and syncing the store: so a flush that returns lost
//!   nothing queued before it.
//! - Every record leaves the queue counted exactly once: `written` or
//!   `failed` (by the worker), or `dropped` (by a caller, when the queue
//!   was full under [`WhenFull::Drop`] or the worker had stopped).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::event::{EventDataRef, ExpectedVersion};
use crate::store::{MultiStreamAppend, Store};

/// Most events one drain appends as one batch (also never more than the
/// store's `Limits::max_batch_events`). A drain this size already spreads
/// the append's fixed cost over thousands of events; a larger one would
/// hold the writer lock longer.
pub const MAX_DRAIN_EVENTS: usize = 4096;
/// Most bytes of events one drain appends as one batch (an overestimate
/// of each record's size in the log); also at most a quarter of a segment,
/// since a batch never spans segments and must fit in an empty one.
pub const MAX_DRAIN_BYTES: usize = 1 << 20;
/// A generous estimate of what an event record holds besides its data,
/// stream, type and ids (frame, event id, version, position, timestamp,
/// field markers): with a drain limited to a quarter of a segment, the
/// estimate may be off by a factor of four before a batch stops fitting.
const EVENT_OVERHEAD_BYTES: usize = 96;
/// Most streams written by one batch. The store takes up to 1,000
/// (`MAX_STREAMS_PER_BATCH`); a drain touching more is split.
pub const MAX_DRAIN_STREAMS: usize = 256;

/// A stream name: borrowed for the program's life (a target), or shared
/// (a field value, a configured name), so that a record copies no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StreamName {
    Static(&'static str),
    Shared(Arc<str>),
}

impl StreamName {
    pub fn as_str(&self) -> &str {
        match self {
            StreamName::Static(name) => name,
            StreamName::Shared(name) => name,
        }
    }
}

/// One log event on its way to the store: what the calling thread built.
#[derive(Debug)]
pub(super) struct Record {
    pub stream: StreamName,
    pub event_type: Cow<'static, str>,
    /// The MessagePack fields; the map starts at `data_start`.
    pub data: Vec<u8>,
    pub data_start: usize,
    pub correlation_id: Option<Arc<str>>,
    pub causation_id: Option<Arc<str>>,
}

impl Record {
    /// About how many bytes the record takes in the log (an overestimate).
    fn estimated_log_bytes(&self) -> usize {
        let id_len = |id: &Option<Arc<str>>| id.as_deref().map_or(0, str::len);
        EVENT_OVERHEAD_BYTES
            + self.data.len()
            + self.stream.as_str().len()
            + self.event_type.len()
            + id_len(&self.correlation_id)
            + id_len(&self.causation_id)
    }
}

enum Message {
    Record(Record),
    Flush(u64),
}

/// What a logging call does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Wait for room: nothing is lost, and a service that logs faster than
    /// the disk takes slows down to the disk's pace. The default.
    #[default]
    Block,
    /// Drop the event and count it ([`Stats::dropped`]): the calling thread
    /// never waits (tracing-appender's `lossy` mode).
    Drop,
}

/// The writer's counters, read with
/// [`FlushGuard::stats`](super::FlushGuard::stats) or
/// [`AnnalsLayer::stats`](super::AnnalsLayer::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events appended to the store.
    pub written: u64,
    /// Events dropped because the queue was full ([`WhenFull::Drop`]) or
    /// the writer had stopped.
    pub dropped: u64,
    /// Events the store refused (see [`Stats::last_error`]).
    pub failed: u64,
    /// Batches appended.
    pub batches: u64,
    /// The last error of an append or a sync, as text, if there was one.
    pub last_error: Option<String>,
}

/// Why a flush did not make everything queued before it durable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The background writer has stopped (the store was dropped with it,
    /// or the thread could not be started): nothing more is written.
    WriterStopped,
    /// Events queued before the flush were refused by the store (counted
    /// in [`Stats::failed`]), or the sync failed; `message` is the store's
    /// error.
    Store {
        /// The store's error, as text.
        message: String,
    },
}

impl std::fmt::Display for FlushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushError::WriterStopped => write!(
                f,
                "the annals log writer has stopped: events logged since were dropped"
            ),
            FlushError::Store { message } => write!(f, "annals log writer: {message}"),
        }
    }
}

impl std::error::Error for FlushError {}

/// State shared by the callers and the worker.
#[derive(Default)]
struct Shared {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
    flushes: Mutex<FlushState>,
    flushed: Condvar,
}

#[derive(Default)]
struct FlushState {
    /// The last flush ticket handed out.
    requested: u64,
    /// The last flush ticket the worker finished.
    done: u64,
    /// The outcome of that flush: the first store error since the flush
    /// before it, if any.
    outcome: Option<String>,
    /// A store error seen since the last flush finished.
    pending_error: Option<String>,
    /// The last error ever seen, for [`Stats::last_error`].
    last_error: Option<String>,
    /// The worker has exited (or never started).
    stopped: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, FlushState> {
        self.flushes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note_error(&self, message: String) {
        let mut state = self.state();
        state.pending_error.get_or_insert_with(|| message.clone());
        state.last_error = Some(message);
    }
}

/// The sending side and the worker thread. The last owner's drop closes
/// the queue and joins the worker, which appends what is left and syncs.
pub(super) struct Writer {
    sender: SyncSender<Message>,
    when_full: WhenFull,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the worker thread for `store`, with a queue of `capacity`
    /// records.
    pub fn start(store: Arc<Store>, capacity: usize, when_full: WhenFull) -> Writer {
        let (sender, receiver) = sync_channel(capacity);
        let shared = Arc::new(Shared::default());
        let limits = &store.options().limits;
        let max_events = MAX_DRAIN_EVENTS.min(limits.max_batch_events);
        let segment_quarter =
            usize::try_from(store.options().segment_size_bytes / 4).unwrap_or(usize::MAX);
        let worker = Worker {
            store,
            receiver,
            shared: Arc::clone(&shared),
            max_events,
            max_bytes: MAX_DRAIN_BYTES.min(segment_quarter),
        };
        let spawned = std::thread::Builder::new()
            .name("annals-log-writer".into())
            .spawn(move || worker.run());
        let worker = match spawned {
            Ok(handle) => Some(handle),
            Err(error) => {
                let mut state = shared.state();
                state.stopped = true;
                state.last_error = Some(format!("cannot start the writer thread: {error}"));
                None
            }
        };
        Writer {
            sender,
            when_full,
            shared,
            worker,
        }
    }

    /// Hands `record` to the worker, or drops and counts it.
    pub fn send(&self, record: Record) {
        let sent = match self.when_full {
            WhenFull::Block => self.sender.send(Message::Record(record)).is_ok(),
            WhenFull::Drop => match self.sender.try_send(Message::Record(record)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
        };
        if !sent {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until everything queued before this call is appended and
    /// synced.
    pub fn flush(&self) -> Result<(), FlushError> {
        let ticket = {
            let mut state = self.shared.state();
            if state.stopped {
                return Err(FlushError::WriterStopped);
            }
            state.requested += 1;
            state.requested
        };
        // A flush request always waits for room, whatever `when_full` says.
        if self.sender.send(Message::Flush(ticket)).is_err() {
            return Err(FlushError::WriterStopped);
        }
        let mut state = self.shared.state();
        while state.done < ticket && !state.stopped {
            state = self
                .shared
                .flushed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        if state.done < ticket {
            return Err(FlushError::WriterStopped);
        }
        match &state.outcome {
            Some(message) => Err(FlushError::Store {
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    pub fn stats(&self) -> Stats {
        let shared = &self.shared;
        Stats {
            written: shared.written.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
            failed: shared.failed.load(Ordering::Relaxed),
            batches: shared.batches.load(Ordering::Relaxed),
            last_error: shared.state().last_error.clone(),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue (the only sender goes) tells the worker to
        // append what is left, sync, and exit.
        let (closed, _) = sync_channel(0);
        drop(std::mem::replace(&mut self.sender, closed));
        if let Some(worker) = self.worker.take() {
            // A panic in the worker was already reported by the panic hook.
            let _ = worker.join();
        }
    }
}

/// The background thread's side.
struct Worker {
    store: Arc<Store>,
    receiver: Receiver<Message>,
    shared: Arc<Shared>,
    max_events: usize,
    max_bytes: usize,
}

/// Marks the writer stopped when the worker exits, even by a panic, so
/// that no flush waits for it forever.
struct StopOnExit(Arc<Shared>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.state().stopped = true;
        self.0.flushed.notify_all();
    }
}

impl Worker {
    fn run(self) {
        let _stop = StopOnExit(Arc::clone(&self.shared));
        let mut drained: Vec<Record> = Vec::new();
        // A record that did not fit in the previous drain: the next one's first.
        let mut carried: Option<Message> = None;
        loop {
            let first = match carried.take() {
                Some(message) => message,
                None => match self.receiver.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                },
            };
            let mut flush = None;
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Record(record) => {
                        let size = record.estimated_log_bytes();
                        if !drained.is_empty() && bytes + size > self.max_bytes {
                            carried = Some(Message::Record(record));
                            break;
                        }
                        bytes += size;
                        drained.push(record);
                    }
                    // Records queued after the request wait for the next drain.
                    Message::Flush(ticket) => {
                        flush = Some(ticket);
                        break;
                    }
                }
                if drained.len() < self.max_events {
                    next = self.receiver.try_recv().ok();
                }
            }
            self.append(&mut drained);
            if let Some(ticket) = flush {
                self.sync(ticket);
            }
        }
        // The queue is closed and empty: make what was written durable.
        if let Err(error) = self.store.flush() {
            self.shared.note_error(error.to_string());
        }
    }

    /// Appends `drained` (then empties it): one batch per chunk of
    /// [`MAX_DRAIN_STREAMS`] streams, and when a batch is refused, each of
    /// its streams alone, so that one bad stream costs only its own events.
    fn append(&self, drained: &mut Vec<Record>) {
        if drained.is_empty() {
            return;
        }
        let mut groups: Vec<(&str, Vec<EventDataRef<'_>>)> = Vec::new();
        let mut group_of: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
        for record in drained.iter() {
            let event = EventDataRef {
                correlation_id: record.correlation_id.as_deref(),
                causation_id: record.causation_id.as_deref(),
                content_type: Some(
                    <crate::codec::MessagePack as crate::codec::Codec>::CONTENT_TYPE,
                ),
                ..EventDataRef::new(&record.event_type, &record.data[record.data_start..])
            };
            let stream = record.stream.as_str();
            let index = *group_of.entry(stream).or_insert_with(|| {
                groups.push((stream, Vec::new()));
                groups.len() - 1
            });
            groups[index].1.push(event);
        }
        for chunk in groups.chunks(MAX_DRAIN_STREAMS) {
            let appended = match chunk {
                [(stream, events)] => self
                    .store
                    .append_ref(stream, ExpectedVersion::Any, events)
                    .map(drop),
                _ => {
                    let request =
                        chunk
                            .iter()
                            .fold(MultiStreamAppend::new(), |request, (stream, events)| {
                                request.write_ref(stream, ExpectedVersion::Any, events)
                            });
                    self.store.append_multi(&request).map(drop)
                }
            };
            match appended {
                Ok(()) => self.count_written(chunk.iter().map(|(_, events)| events.len()).sum()),
                Err(_) if chunk.len() > 1 => {
                    for (stream, events) in chunk {
                        match self.store.append_ref(stream, ExpectedVersion::Any, events) {
                            Ok(_) => self.count_written(events.len()),
                            Err(error) => self.count_failed(events.len(), stream, &error),
                        }
                    }
                }
                Err(error) => self.count_failed(chunk[0].1.len(), chunk[0].0, &error),
            }
        }
        drop(groups);
        drained.clear();
    }

    fn count_written(&self, events: usize) {
        self.shared
            .written
            .fetch_add(events as u64, Ordering::Relaxed);
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
    }

    fn count_failed(&self, events: usize, stream: &str, error: &crate::Error) {
        self.shared
            .failed
            .fetch_add(events as u64, Ordering::Relaxed);
        self.shared.note_error(format!(
            "{events} log events to stream {stream:?} were not written: {error}"
        ));
    }

    /// Syncs the store and finishes flush `ticket` with the first error
    /// since the previous flush, if any.
    fn sync(&self, ticket: u64) {
        if let Err(error) = self.store.flush() {
            self.shared.note_error(error.to_string());
        }
        let mut state = self.shared.state();
        state.done = ticket;
        state.outcome = state.pending_error.take();
        drop(state);
        self.shared.flushed.notify_all();
    }
}
