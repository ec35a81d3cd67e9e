//! The shipper: follows a store and publishes its events, in log order, to a
//! JetStream stream, exactly once across restarts.
//!
//! Each attempt (a *session*) connects, reads where to resume from the
//! stream's last message, then publishes with a bounded window of
//! unacknowledged messages. Every publish carries its deduplication id
//! (`Nats-Msg-Id`) and the stream's sequence it must follow
//! (`Nats-Expected-Last-Sequence`); every publish but a session's first also
//! names the message it must follow (`Nats-Expected-Last-Msg-Id`), so that
//! a message that fails its check cannot be followed by one that passes.
//! Anything unexpected ends the session; the next one starts again from the
//! stream's state. Nothing is remembered locally.

use std::collections::VecDeque;

use async_nats::HeaderMap;
use async_nats::header::{
    NATS_EXPECTED_LAST_MESSAGE_ID, NATS_EXPECTED_LAST_SEQUENCE, NATS_EXPECTED_STREAM,
};
use async_nats::jetstream::Context;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

use crate::event::RecordedEvent;
use crate::store::Store;

use super::error::ShipError;
use super::message::{headers_of, message_id, subject_of};
use super::options::{IDLE_POLL, ShipOptions};
use super::progress::{Phase, Progress, Reporter};
use super::resume::resume_point;
use super::retry::{Interruption, Retries};
use super::server::{connect, create_stream_if_missing, find_stream};
use super::store_id::store_id;

/// Ships `store` to the JetStream stream named in `options`, calling
/// `report` with the progress on every change of phase and at most once per
/// `options.progress_interval` while shipping.
///
/// The store may be read-only (`Store::open_read_only`, beside a writer in
/// another process: it is refreshed while idle) or the writer's own.
/// Without `options.once` it runs until an error; dropping the future stops
/// it at any point without harm (the next run resumes from the stream).
///
/// # Errors
/// A [`ShipError`]: invalid options, a missing JetStream stream, a stream
/// holding another store's messages, a server out of reach for longer than
/// `options.give_up_after`, an unreadable store.
pub async fn ship(
    store: &Store,
    options: &ShipOptions,
    report: impl FnMut(&Progress),
) -> Result<Progress, ShipError> {
    options.check()?;
    let mut shipper = Shipper {
        store,
        options,
        store_id: String::new(),
        target: None,
        progress: Progress::new(),
        reporter: Reporter::new(report, options.progress_interval),
        contact: false,
        caught_up: false,
    };
    shipper.run().await
}

/// [`ship`] on a runtime of its own, for callers without one.
///
/// # Errors
/// As [`ship`]; [`ShipError::InvalidOptions`] if the runtime cannot start.
pub fn ship_blocking(
    store: &Store,
    options: &ShipOptions,
    report: impl FnMut(&Progress),
) -> Result<Progress, ShipError> {
    super::runtime()?.block_on(ship(store, options, report))
}

struct Shipper<'a, F> {
    store: &'a Store,
    options: &'a ShipOptions,
    store_id: String,
    /// With `once`: the store's length when shipping started.
    target: Option<u64>,
    progress: Progress,
    reporter: Reporter<F>,
    /// Whether the current session reached the server.
    contact: bool,
    /// Whether the current session shipped everything there was.
    caught_up: bool,
}

/// A publish awaiting its acknowledgement.
struct Pending {
    position: u64,
    /// The stream sequence the message must get.
    sequence: u64,
    ack: PublishAckFuture,
}

impl<F: FnMut(&Progress)> Shipper<'_, F> {
    async fn run(&mut self) -> Result<Progress, ShipError> {
        let Some(store_id) = self.wait_for_first_event().await? else {
            return Ok(self.finish());
        };
        self.store_id = store_id;
        if self.options.once {
            self.target = Some(self.store.next_position());
        }
        let mut retries = Retries::new(self.options.give_up_after);
        loop {
            self.contact = false;
            self.caught_up = false;
            let shipped = self.progress.shipped;
            match self.session().await {
                Ok(()) => return Ok(self.finish()),
                Err(Interruption::Fatal(error)) => return Err(error),
                Err(Interruption::Retry { reason, contact }) => {
                    let contact = contact || self.contact;
                    if contact {
                        // Caught up counts as progress: there was nothing to ship.
                        let progress = self.progress.shipped > shipped || self.caught_up;
                        retries.session_ended(&self.options.stream, progress, &reason)?;
                    }
                    let (pause, attempt) =
                        retries.failed(&self.options.url, reason.clone(), contact)?;
                    self.set_phase(Phase::Retrying {
                        attempt,
                        pause_ms: u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                        reason,
                    });
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    fn finish(&mut self) -> Progress {
        self.set_phase(Phase::Done);
        self.progress.clone()
    }

    fn set_phase(&mut self, phase: Phase) {
        self.progress.phase = phase;
        self.reporter
            .report(&self.progress, &self.progress.phase, false);
    }

    /// The store id, once the store has a first event; `None` if it has
    /// none and `once` is set.
    async fn wait_for_first_event(&mut self) -> Result<Option<String>, ShipError> {
        loop {
            self.store.refresh()?;
            if let Some(id) = store_id(self.store)? {
                return Ok(Some(id));
            }
            if self.options.once {
                return Ok(None);
            }
            self.set_phase(Phase::WaitingForEvents);
            tokio::time::sleep(IDLE_POLL).await;
        }
    }

    async fn session(&mut self) -> Result<(), Interruption> {
        let (url, name) = (&self.options.url, &self.options.stream);
        let context = connect(url, self.options.request_timeout).await?;
        if let Some(replicas) = self.options.create_stream_replicas {
            create_stream_if_missing(&context, name, &self.options.subject_prefix, replicas)
                .await?;
        }
        let mut stream = find_stream(&context, url, name).await?;
        self.contact = true;
        let resume = resume_point(&mut stream, name, &self.store_id).await?;
        self.store.refresh()?;
        let next = match resume.last_position {
            Some(position) => {
                self.check_store_holds(position, resume.last_sequence)?;
                position + 1
            }
            None => self.options.from_position,
        };
        let log_start = self.store.log_start_position();
        if next < log_start {
            return Err(Interruption::Fatal(ShipError::Retired {
                from: next,
                log_start,
            }));
        }
        self.progress.last_shipped_position = resume.last_position;
        self.progress.stream_sequence = resume.last_sequence;
        self.progress.at(next, self.store.next_position());
        self.set_phase(Phase::Resumed);
        self.publish_from(&context, next, resume.last_sequence)
            .await
    }

    /// Checks that the store still holds the event the stream's last
    /// message says was shipped from it.
    fn check_store_holds(&self, position: u64, sequence: u64) -> Result<(), Interruption> {
        if self.store.next_position() > position {
            return Ok(());
        }
        Err(Interruption::Fatal(ShipError::ForeignStream {
            stream: self.options.stream.clone(),
            sequence,
            why: format!(
                "it holds the event at position {position} of this store, which ends at position \
                 {} now: the store lost events after they were shipped (cut by a repair, or \
                 restored from an older copy)",
                self.store.next_position()
            ),
        }))
    }

    /// Publishes from position `next` on, the first publish expecting the
    /// stream's last sequence to be `last_sequence`.
    async fn publish_from(
        &mut self,
        context: &Context,
        next: u64,
        last_sequence: u64,
    ) -> Result<(), Interruption> {
        let window = self.options.max_in_flight;
        let mut read_from = next;
        let mut buffer: VecDeque<RecordedEvent> = VecDeque::new();
        let mut in_flight: VecDeque<Pending> = VecDeque::new();
        let mut expected_sequence = last_sequence;
        // Only a message published in this session is known to be the
        // server's last message id (the server forgets it on restart).
        let mut previous_id: Option<String> = None;
        loop {
            if buffer.is_empty() && read_from < self.end() {
                read_from = self.read_page(read_from, window, &mut buffer)?;
            }
            while in_flight.len() < window
                && let Some(event) = buffer.pop_front()
            {
                let id = message_id(&self.store_id, event.position);
                let ack = self
                    .publish(context, &event, expected_sequence, previous_id.as_deref())
                    .await?;
                expected_sequence += 1;
                in_flight.push_back(Pending {
                    position: event.position,
                    sequence: expected_sequence,
                    ack,
                });
                previous_id = Some(id);
            }
            if let Some(pending) = in_flight.pop_front() {
                let sequence = self.acknowledged(pending).await?;
                self.progress.shipped += 1;
                self.progress.stream_sequence = sequence;
                let through = in_flight
                    .front()
                    .map(|p| p.position)
                    .or(buffer.front().map(|e| e.position))
                    .unwrap_or(read_from);
                self.progress.at(through, self.store.next_position());
                self.progress.phase = Phase::Running;
                self.reporter
                    .report(&self.progress, &self.progress.phase, false);
                continue;
            }
            if !buffer.is_empty() || read_from < self.end() {
                continue;
            }
            self.progress.at(read_from, self.store.next_position());
            if self.target.is_some() {
                return Ok(());
            }
            self.set_phase(Phase::CaughtUp);
            self.caught_up = true;
            // Idle, nothing tells of a lost server: look at the connection,
            // so that an outage is reported (and bounded) while idle too.
            if context.client().connection_state() == async_nats::connection::State::Disconnected {
                return Err(Interruption::Retry {
                    reason: format!("lost the connection to {}", self.options.url),
                    contact: false,
                });
            }
            tokio::time::sleep(IDLE_POLL).await;
            self.store.refresh()?;
        }
    }

    /// Where reading stops: the store's end, or with `once` its end when
    /// shipping started.
    fn end(&self) -> u64 {
        let end = self.store.next_position();
        self.target.map_or(end, |target| target.min(end))
    }

    /// Reads up to `window` matching events from `from` into `buffer`;
    /// returns the position to read from next.
    fn read_page(
        &self,
        from: u64,
        window: usize,
        buffer: &mut VecDeque<RecordedEvent>,
    ) -> Result<u64, Interruption> {
        let end = self.end();
        let page = self
            .store
            .read_all_filtered(from, window, &self.options.filter)?;
        let full = page.len() == window;
        let mut next = from;
        for event in page {
            if event.position >= end {
                return Ok(end);
            }
            if let Some(subject) = event.subject {
                return Err(Interruption::Fatal(ShipError::EventHasSubject {
                    position: event.position,
                    stream: event.stream,
                    subject,
                }));
            }
            next = event.position + 1;
            buffer.push_back(event);
        }
        // A page that is not full read the log to its end, which was at
        // least `end`: nothing before `end` is left out.
        Ok(if full { next } else { next.max(end) })
    }

    async fn publish(
        &self,
        context: &Context,
        event: &RecordedEvent,
        expected_sequence: u64,
        previous_id: Option<&str>,
    ) -> Result<PublishAckFuture, Interruption> {
        let subject = subject_of(&self.options.subject_prefix, &event.stream);
        let mut headers = HeaderMap::new();
        for (name, value) in headers_of(&self.store_id, event) {
            headers.insert(name, value);
        }
        headers.insert(NATS_EXPECTED_STREAM, self.options.stream.as_str());
        headers.insert(NATS_EXPECTED_LAST_SEQUENCE, expected_sequence.to_string());
        if let Some(previous) = previous_id {
            headers.insert(NATS_EXPECTED_LAST_MESSAGE_ID, previous);
        }
        let message = PublishMessage::build()
            .headers(headers)
            .payload(Bytes::copy_from_slice(&event.data));
        context
            .send_publish(subject, message)
            .await
            .map_err(|error| match error.kind() {
                PublishErrorKind::MaxPayloadExceeded => {
                    Interruption::Fatal(ShipError::EventTooLarge {
                        position: event.position,
                        detail: error.to_string(),
                    })
                }
                _ => Interruption::Retry {
                    reason: format!("publishing position {}: {error}", event.position),
                    contact: false,
                },
            })
    }

    /// Waits for a publish's acknowledgement and checks that the message
    /// got the sequence it was meant to; returns that sequence.
    async fn acknowledged(&self, pending: Pending) -> Result<u64, Interruption> {
        let name = &self.options.stream;
        let position = pending.position;
        let ack = pending.ack.await.map_err(|error| {
            let subject = || {
                self.store
                    .read_all(position, 1)
                    .ok()
                    .and_then(|events| events.into_iter().next())
                    .map(|event| subject_of(&self.options.subject_prefix, &event.stream))
                    .unwrap_or_default()
            };
            match error.kind() {
                PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId => {
                    Interruption::Retry {
                        reason: format!(
                            "JetStream stream {name:?} changed under the shipper at position \
                             {position} ({error}); resuming from its last message"
                        ),
                        contact: true,
                    }
                }
                PublishErrorKind::StreamNotFound => {
                    Interruption::Fatal(ShipError::SubjectNotInStream {
                        subject: subject(),
                        stream: name.clone(),
                        detail: "no JetStream stream took the message".into(),
                    })
                }
                PublishErrorKind::Other if jetstream_error(&error).is_some() => {
                    let js = jetstream_error(&error);
                    let detail = js.map(ToString::to_string).unwrap_or_default();
                    if js.is_some_and(|js| js.error_code() == ErrorCode::STREAM_NOT_MATCH) {
                        Interruption::Fatal(ShipError::SubjectNotInStream {
                            subject: subject(),
                            stream: name.clone(),
                            detail,
                        })
                    } else {
                        Interruption::Fatal(ShipError::JetStream {
                            action: format!("publishing the event at position {position}"),
                            stream: name.clone(),
                            detail,
                        })
                    }
                }
                _ => Interruption::Retry {
                    reason: format!(
                        "waiting for the acknowledgement of position {position}: {error}"
                    ),
                    contact: false,
                },
            }
        })?;
        if ack.stream != *name || ack.sequence != pending.sequence {
            return Err(Interruption::Retry {
                reason: format!(
                    "position {position} was stored as message {} of stream {:?}, not as {} of \
                     {name:?}{}; resuming from the stream's last message",
                    ack.sequence,
                    ack.stream,
                    pending.sequence,
                    if ack.duplicate { " (a duplicate)" } else { "" }
                ),
                contact: true,
            });
        }
        Ok(ack.sequence)
    }
}

/// The JetStream API error inside a publish error, if the server sent one.
fn jetstream_error(
    error: &async_nats::jetstream::context::PublishError,
) -> Option<&async_nats::jetstream::Error> {
    std::error::Error::source(error)?.downcast_ref()
}
