//! The receiver: rebuilds an annals store from a JetStream stream that
//! `ship` filled, on another machine.
//!
//! The store's own length says where to resume: its event at position `k`
//! came from the stream's message at sequence `k + 1` (a shipped stream
//! starts at sequence 1 and has no gaps, since every message is shipped
//! exactly once). On start the receiver checks that pairing on the last
//! event it holds, then appends each following message as one event, with
//! its original id, type, timestamp, ids, metadata and data, at the version
//! it had (`ExpectedVersion::Exact(version - 1)`). Nothing is remembered
//! locally but the store itself, so any crash is followed by a clean resume.

use futures_util::StreamExt;

use async_nats::jetstream::stream;

use crate::error::Error;
use crate::event::{EventData, ExpectedVersion, RecordedEvent};
use crate::store::Store;

use super::error::ShipError;
use super::message::{HEADER_STORE_ID, event_of};
use super::options::{IDLE_POLL, ReceiveOptions};
use super::progress::{Phase, ReceiveProgress, Reporter};
use super::retry::{Interruption, Retries};
use super::server::{connect, find_stream, header, message_at};

/// Messages read (and appended) between two flushes of the store.
pub const RECEIVE_CHUNK: u64 = 1024;
/// Message reads in flight at once.
pub const RECEIVE_CONCURRENCY: usize = 64;

/// Appends to `store` (opened for writing) every message of the JetStream
/// stream named in `options` that it does not hold yet, in order, then
/// follows the stream (or, with `options.once`, stops once it holds what
/// the stream held at the start). The store is flushed after every chunk of
/// [`RECEIVE_CHUNK`] messages and when it stops.
///
/// # Errors
/// A [`ShipError`]: invalid options, a missing stream, a stream that was
/// not filled by `ship` from one store or lost messages, a store that was
/// not received from this stream, a server out of reach for too long.
pub async fn receive(
    store: &Store,
    options: &ReceiveOptions,
    report: impl FnMut(&ReceiveProgress),
) -> Result<ReceiveProgress, ShipError> {
    options.check()?;
    let mut receiver = Receiver {
        store,
        options,
        source_store_id: None,
        target: None,
        progress: ReceiveProgress {
            phase: Phase::Running,
            received: 0,
            store_position: store.next_position(),
            stream_sequence: 0,
            lag: 0,
        },
        reporter: Reporter::new(report, options.progress_interval),
        contact: false,
    };
    let mut retries = Retries::new(options.give_up_after);
    loop {
        receiver.contact = false;
        let received = receiver.progress.received;
        let outcome = receiver.session().await;
        store.flush()?;
        match outcome {
            Ok(()) => {
                receiver.set_phase(Phase::Done);
                return Ok(receiver.progress);
            }
            Err(Interruption::Fatal(error)) => return Err(error),
            Err(Interruption::Retry { reason, contact }) => {
                let contact = contact || receiver.contact;
                if contact {
                    let progress = receiver.progress.received > received
                        || receiver.progress.phase == Phase::CaughtUp;
                    retries.session_ended(&options.stream, progress, &reason)?;
                }
                let (pause, attempt) = retries.failed(&options.url, reason.clone(), contact)?;
                receiver.set_phase(Phase::Retrying {
                    attempt,
                    pause_ms: u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                    reason,
                });
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// [`receive`] on a runtime of its own, for callers without one.
///
/// # Errors
/// As [`receive`].
pub fn receive_blocking(
    store: &Store,
    options: &ReceiveOptions,
    report: impl FnMut(&ReceiveProgress),
) -> Result<ReceiveProgress, ShipError> {
    super::runtime()?.block_on(receive(store, options, report))
}

struct Receiver<'a, F> {
    store: &'a Store,
    options: &'a ReceiveOptions,
    /// The store id every message must carry: the shipping store's.
    source_store_id: Option<String>,
    /// With `once`: the stream's last sequence at the start.
    target: Option<u64>,
    progress: ReceiveProgress,
    reporter: Reporter<F>,
    contact: bool,
}

impl<F: FnMut(&ReceiveProgress)> Receiver<'_, F> {
    fn set_phase(&mut self, phase: Phase) {
        self.progress.phase = phase;
        self.reporter
            .report(&self.progress, &self.progress.phase, false);
    }

    fn foreign(&self, sequence: u64, why: String) -> Interruption {
        Interruption::Fatal(ShipError::ForeignStream {
            stream: self.options.stream.clone(),
            sequence,
            why,
        })
    }

    async fn session(&mut self) -> Result<(), Interruption> {
        let (url, name) = (&self.options.url, &self.options.stream);
        let context = connect(url, self.options.request_timeout).await?;
        let mut stream = find_stream(&context, url, name).await?;
        self.contact = true;
        self.check_resume_point(&stream).await?;
        loop {
            let state = stream
                .info()
                .await
                .map_err(|error| Interruption::Retry {
                    reason: format!("reading the state of JetStream stream {name:?}: {error}"),
                    contact: true,
                })?
                .state
                .clone();
            let last = state.last_sequence;
            let target = *self.target.get_or_insert(last);
            let next = self.store.next_position() + 1;
            if state.messages > 0 && state.first_sequence > next {
                return Err(self.foreign(
                    state.first_sequence,
                    format!(
                        "the stream now starts at message {} but this store needs message {next}: \
                         messages were removed (limits, purge), so a complete copy cannot be \
                         rebuilt from it",
                        state.first_sequence
                    ),
                ));
            }
            let end = if self.options.once { target } else { last };
            self.progress.stream_sequence = last;
            self.progress.lag = last.saturating_sub(next - 1);
            if next > end {
                if self.options.once {
                    return Ok(());
                }
                self.set_phase(Phase::CaughtUp);
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
            let chunk_end = end.min(next + RECEIVE_CHUNK - 1);
            self.receive_chunk(&stream, next, chunk_end).await?;
            self.store.flush()?;
        }
    }

    /// Checks that the store's last event is the message the pairing says
    /// (position `k`, sequence `k + 1`), and learns the source store's id.
    async fn check_resume_point(&mut self, stream: &stream::Stream) -> Result<(), Interruption> {
        let Some(last_position) = self.store.next_position().checked_sub(1) else {
            return Ok(());
        };
        let sequence = last_position + 1;
        let Some(last) = self.store.read_all(last_position, 1)?.into_iter().next() else {
            return Ok(());
        };
        let name = &self.options.stream;
        let Some(message) = message_at(stream, name, sequence).await? else {
            return Err(self.foreign(
                sequence,
                format!(
                    "this store holds {sequence} events but the stream has no message {sequence}: \
                     the store was not received from this stream"
                ),
            ));
        };
        let shipped = event_of(|h| header(&message, h), &message.payload)
            .map_err(|error| self.foreign(sequence, format!("not shipped by annals: {error}")))?;
        if shipped.id != last.id || shipped.stream != last.stream || shipped.version != last.version
        {
            return Err(self.foreign(
                sequence,
                format!(
                    "it holds event {} (version {} of {:?}) but this store's event at position \
                     {last_position} is {} (version {} of {:?}): the store was not received from \
                     this stream",
                    shipped.id, shipped.version, shipped.stream, last.id, last.version, last.stream
                ),
            ));
        }
        self.source_store_id = header(&message, HEADER_STORE_ID).map(str::to_string);
        Ok(())
    }

    /// Reads messages `first..=last` (several requests in flight) and
    /// appends them in order.
    async fn receive_chunk(
        &mut self,
        stream: &stream::Stream,
        first: u64,
        last: u64,
    ) -> Result<(), Interruption> {
        let name = self.options.stream.clone();
        let mut messages = futures_util::stream::iter(first..=last)
            .map(|sequence| {
                let name = name.clone();
                async move { (sequence, message_at(stream, &name, sequence).await) }
            })
            .buffered(RECEIVE_CONCURRENCY);
        while let Some((sequence, message)) = messages.next().await {
            let Some(message) = message? else {
                return Err(self.foreign(
                    sequence,
                    "the message is missing (deleted): a complete copy cannot be rebuilt".into(),
                ));
            };
            let event = event_of(|h| header(&message, h), &message.payload).map_err(|error| {
                self.foreign(sequence, format!("not shipped by annals: {error}"))
            })?;
            let store_id = header(&message, HEADER_STORE_ID).unwrap_or_default();
            match &self.source_store_id {
                None => self.source_store_id = Some(store_id.to_string()),
                Some(expected) if expected != store_id => {
                    return Err(self.foreign(
                        sequence,
                        format!(
                            "the message comes from store {store_id}, the ones before it from \
                             store {expected}"
                        ),
                    ));
                }
                Some(_) => {}
            }
            self.append(sequence, event)?;
            self.progress.received += 1;
            self.progress.store_position = self.store.next_position();
            self.progress.lag = self.progress.stream_sequence.saturating_sub(sequence);
            self.progress.phase = Phase::Running;
            self.reporter
                .report(&self.progress, &self.progress.phase, false);
        }
        Ok(())
    }

    /// Appends one shipped event at its version, and checks that it became
    /// the store's next event (not a repeat of one already there).
    fn append(&self, sequence: u64, event: RecordedEvent) -> Result<(), Interruption> {
        let position = self.store.next_position();
        let Some(previous_version) = event.version.checked_sub(1) else {
            return Err(self.foreign(sequence, "it claims version 0".into()));
        };
        let stream = event.stream.clone();
        let mut data = EventData::new(event.event_type, event.data)
            .with_id(event.id)
            .with_timestamp_ns(event.timestamp_ns)
            .with_metadata(event.metadata);
        data.correlation_id = event.correlation_id;
        data.causation_id = event.causation_id;
        data.content_type = event.content_type;
        let written = match self
            .store
            // System streams too: the copy's truncations and deletions
            // are the original's metadata events.
            .append_replicated(&stream, ExpectedVersion::Exact(previous_version), &[data])
        {
            Ok(written) => written,
            Err(Error::WrongExpectedVersion { actual, .. }) => {
                return Err(self.foreign(
                    sequence,
                    format!(
                        "it holds version {} of stream {stream:?}, but this store has that stream \
                         at version {actual}: a copy needs every event of each stream it holds \
                         (ship without an event type filter) and no other writer",
                        event.version
                    ),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        if written.first_position != position {
            return Err(self.foreign(
                sequence,
                format!(
                    "it repeats the event at position {} of this store: the stream holds a \
                     duplicate",
                    written.first_position
                ),
            ));
        }
        Ok(())
    }
}
