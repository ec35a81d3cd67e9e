//! Catch-up subscriptions: read history, then follow new batches as they are
//! committed, with no gap and no duplicate at the switch.
//!
//! A subscription is a cursor over the log, not a queue: it reads up to
//! [`SUBSCRIPTION_READ_AHEAD`] events at a time from the segments, so a slow
//! subscriber costs the writer nothing and its memory is bounded.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::filter::Filter;

use super::Store;
use crate::engine::Engine;
use crate::engine::read_events::{visit_log, with_event_at};

/// Most events a subscription reads from the log ahead of its consumer.
pub const SUBSCRIPTION_READ_AHEAD: usize = 512;

/// Longest pause between two looks at the files when following a writer in
/// another process (read-only store). Polling starts at 1 ms after each new
/// batch and doubles while idle up to this.
pub const FOLLOW_POLL_MAX: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
enum Target {
    All,
    Stream(String),
}

/// A catch-up subscription: a blocking iterator over the events of the log
/// (or of one stream) that match a filter, first the history, then new ones
/// as they are committed. Created by [`Store::subscribe_all`] or
/// [`Store::subscribe_stream`].
///
/// A subscription ends when its store is closed ([`Store::close`], or the
/// store dropped), even with events left unread: the iterator returns
/// `None`, and [`Subscription::next_timeout`] returns
/// [`crate::Error::Closed`] at once (as a channel's `recv_timeout` tells a
/// disconnected sender from a timeout). It holds no lock: the store can be
/// reopened at once. To go on, subscribe to the reopened store from
/// [`Subscription::checkpoint`].
///
/// ```
/// use std::time::Duration;
/// use annals::{EventData, ExpectedVersion, Filter, Options, Store};
/// let store = Store::in_memory(Options::default())?;
/// store.append("a", ExpectedVersion::Any, &[EventData::new("E", vec![1])])?;
/// let mut subscription = store.subscribe_all(0, Filter::default());
/// assert_eq!(subscription.next_timeout(Duration::from_secs(1))?.unwrap().data, vec![1]);
/// store.append("a", ExpectedVersion::Any, &[EventData::new("E", vec![2])])?;
/// assert_eq!(subscription.next_timeout(Duration::from_secs(1))?.unwrap().data, vec![2]);
/// assert!(subscription.next_timeout(Duration::from_millis(10))?.is_none());
/// # Ok::<(), annals::Error>(())
/// ```
pub struct Subscription {
    engine: Arc<Engine>,
    target: Target,
    filter: Filter,
    buffer: VecDeque<RecordedEvent>,
    /// The next global position (for `All`) or stream version (for
    /// `Stream`) to look at.
    cursor: u64,
    poll: Duration,
}

impl Store {
    /// Subscribes to every event matching `filter` from global position
    /// `from_position` on (0: from the beginning; [`Store::next_position`]:
    /// only new events). As [`Store::read_all`], that is every event in the
    /// log, those of truncated and deleted streams and the metadata events
    /// in system streams included.
    pub fn subscribe_all(&self, from_position: u64, filter: Filter) -> Subscription {
        self.subscription(Target::All, from_position, filter)
    }

    /// Subscribes to the events of `stream` matching `filter` (its event
    /// types; a stream prefix is checked against `stream`), from version
    /// `from_version` on (1: from the first event; a truncated stream from
    /// its truncation point). Once the stream is deleted, the subscription
    /// answers [`crate::Error::StreamDeleted`] (after the events already
    /// read ahead).
    pub fn subscribe_stream(
        &self,
        stream: &str,
        from_version: u64,
        filter: Filter,
    ) -> Subscription {
        self.subscription(
            Target::Stream(stream.to_string()),
            from_version.max(1),
            filter,
        )
    }

    fn subscription(&self, target: Target, cursor: u64, filter: Filter) -> Subscription {
        Subscription {
            engine: Arc::clone(&self.engine),
            target,
            filter,
            buffer: VecDeque::new(),
            cursor,
            poll: Duration::from_millis(1),
        }
    }
}

impl Subscription {
    /// The next matching event, waiting up to `timeout` for one to be
    /// committed; `None` if none came.
    ///
    /// # Errors
    /// [`crate::Error::Closed`] once the store is closed (the subscription
    /// has ended); [`crate::Error::Corrupt`] if a record no longer decodes,
    /// or a newly sealed segment fails its checks (when following another
    /// process).
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<RecordedEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.engine.is_closed() {
                return Err(Error::Closed {
                    dir: self.engine.dir.clone(),
                });
            }
            if let Some(event) = self.buffer.pop_front() {
                return Ok(Some(event));
            }
            let known = self.fill()?;
            if !self.buffer.is_empty() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if self.engine.is_read_only() {
                // Another process writes: look at the files again soon.
                std::thread::sleep(self.poll.min(deadline - now));
                self.poll = if self.engine.follow()? > 0 {
                    Duration::from_millis(1)
                } else {
                    (self.poll * 2).min(FOLLOW_POLL_MAX)
                };
            } else {
                self.engine.commits.wait_beyond(known, deadline);
            }
        }
    }

    /// Where the subscription stands: the next global position (for
    /// [`Store::subscribe_all`]) or stream version (for
    /// [`Store::subscribe_stream`]) it will look at. Store it as a checkpoint
    /// and subscribe from it to resume.
    pub fn checkpoint(&self) -> u64 {
        match self.buffer.front() {
            Some(event) => match self.target {
                Target::All => event.position,
                Target::Stream(_) => event.version,
            },
            None => self.cursor,
        }
    }

    /// Reads the next events from the log into the buffer. Returns the log's
    /// length (next position) at the time of reading.
    fn fill(&mut self) -> Result<u64> {
        let state = self.engine.read_state();
        let known = state.index.next_position();
        match &self.target {
            Target::All => {
                let (filter, buffer, cursor) = (&self.filter, &mut self.buffer, &mut self.cursor);
                let mut looked_at = 0;
                let mut failed = None;
                let subjects = &self.engine.subjects;
                visit_log(&state, *cursor, |event| {
                    if filter.matches(event.stream, event.event_type) {
                        match subjects.payload(event) {
                            Ok(payload) => {
                                buffer.push_back(RecordedEvent::from_body(event, &payload));
                            }
                            // The cursor stays at this event: it is read
                            // again by the next call.
                            Err(error) => return super::read::stop(&mut failed, error),
                        }
                    }
                    *cursor = event.position + 1;
                    looked_at += 1;
                    // Bound the work of one call as well as the buffer.
                    if buffer.len() >= SUBSCRIPTION_READ_AHEAD
                        || looked_at >= 16 * SUBSCRIPTION_READ_AHEAD
                    {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })?;
                if let Some(error) = failed {
                    return Err(error);
                }
            }
            Target::Stream(stream) => {
                if self
                    .filter
                    .stream_prefix
                    .as_deref()
                    .is_some_and(|p| !stream.starts_with(p))
                {
                    return Ok(known);
                }
                // Checked on each fill, so a deletion ends a live
                // subscription; a truncation moves it forward.
                self.cursor = self.cursor.max(state.index.first_readable_version(stream)?);
                let locations = state.index.stream_locations(
                    stream,
                    self.cursor,
                    self.cursor.saturating_add(SUBSCRIPTION_READ_AHEAD as u64),
                )?;
                for location in locations {
                    let event = with_event_at(&state, location, |body| {
                        if !self.filter.matches(body.stream, body.event_type) {
                            return Ok(None);
                        }
                        let payload = self.engine.subjects.payload(body)?;
                        Ok::<_, crate::Error>(Some(RecordedEvent::from_body(body, &payload)))
                    })??;
                    self.cursor += 1;
                    self.buffer.extend(event);
                }
            }
        }
        Ok(known)
    }
}

impl Iterator for Subscription {
    type Item = Result<RecordedEvent>;

    /// Blocks until the next matching event is committed; `None` once the
    /// store is closed.
    fn next(&mut self) -> Option<Result<RecordedEvent>> {
        loop {
            match self.next_timeout(Duration::from_secs(3600)) {
                Ok(Some(event)) => return Some(Ok(event)),
                Ok(None) => continue,
                Err(Error::Closed { .. }) => return None,
                Err(error) => return Some(Err(error)),
            }
        }
    }
}
