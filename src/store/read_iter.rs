//! One read entry point in the shape a KurrentDB user expects: what to read
//! (a stream or the whole log), the direction, where to start and how many,
//! as an iterator of owned events. It reads a page at a time under the
//! store's read lock and releases the lock before handing events out, so
//! the caller's code never runs under a lock and a long read never holds
//! the whole result in memory.

use std::collections::VecDeque;

use crate::error::Result;
use crate::event::RecordedEvent;

use super::Store;

/// Events read per look at the store (one lock acquisition).
pub const READ_PAGE_EVENTS: usize = 256;

/// Which way a read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The first event (forward) of the stream or log.
    Start,
    /// The last event (backward) of the stream or log.
    End,
    /// This stream version (for a stream) or global position (for the log),
    /// included.
    At(u64),
}

/// What [`Store::read`] reads: a stream or the whole log, which way, from
/// where, and at most how many events.
///
/// ```
/// use annals::{EventData, ExpectedVersion, Options, ReadRequest, Store};
/// let store = Store::in_memory(Options::default())?;
/// for i in 0..5u8 {
///     store.append("s", ExpectedVersion::Any, &[EventData::new("E", vec![i])])?;
/// }
/// // The three newest events of the stream, newest first.
/// let newest: Vec<u64> = store
///     .read(ReadRequest::stream("s").backward().max_count(3))
///     .map(|event| event.map(|e| e.version))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(newest, [5, 4, 3]);
/// // The whole log from position 2 on.
/// let from_two = store.read(ReadRequest::all().from(2)).count();
/// assert_eq!(from_two, 3);
/// # Ok::<(), annals::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    stream: Option<String>,
    direction: Direction,
    start: Option<StartAt>,
    max_count: u64,
}

impl ReadRequest {
    /// Reads the whole log by global position; forward from the start,
    /// without a limit, unless told otherwise.
    pub fn all() -> ReadRequest {
        ReadRequest {
            stream: None,
            direction: Direction::Forward,
            start: None,
            max_count: u64::MAX,
        }
    }

    /// Reads one stream by version; forward from the start, without a
    /// limit, unless told otherwise. A missing stream reads as empty.
    pub fn stream(stream: impl Into<String>) -> ReadRequest {
        ReadRequest {
            stream: Some(stream.into()),
            ..ReadRequest::all()
        }
    }

    /// Oldest first (the default); starts at the start unless told otherwise.
    pub fn forward(mut self) -> ReadRequest {
        self.direction = Direction::Forward;
        self
    }

    /// Newest first; starts at the end unless told otherwise.
    pub fn backward(mut self) -> ReadRequest {
        self.direction = Direction::Backward;
        self
    }

    /// Starts at `start`.
    pub fn start_at(mut self, start: StartAt) -> ReadRequest {
        self.start = Some(start);
        self
    }

    /// Starts at this stream version or global position (included).
    pub fn from(self, version_or_position: u64) -> ReadRequest {
        self.start_at(StartAt::At(version_or_position))
    }

    /// Reads at most `max_count` events.
    pub fn max_count(mut self, max_count: u64) -> ReadRequest {
        self.max_count = max_count;
        self
    }

    /// The direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }
}

impl Store {
    /// Reads events as `request` says, lazily: an iterator of owned events
    /// that fetches a page of [`READ_PAGE_EVENTS`] at a time, taking the
    /// store's read lock only while it fetches. A forward read ends at the
    /// end of the log as its last page saw it: events appended while it
    /// runs are included until then.
    ///
    /// The `Vec` calls (`read_stream`, `read_all` and their `_backward`
    /// forms) stay as the simplest way to read one page.
    ///
    /// # Errors
    /// Each item is an error, and the iterator ends after it, if a record no
    /// longer decodes ([`crate::Error::Corrupt`]).
    pub fn read(&self, request: ReadRequest) -> Read<'_> {
        let start = request.start.unwrap_or(match request.direction {
            Direction::Forward => StartAt::Start,
            Direction::Backward => StartAt::End,
        });
        let next = match (start, &request.stream) {
            (StartAt::Start, Some(_)) => Some(1),
            (StartAt::Start, None) => Some(0),
            (StartAt::End, _) => Some(u64::MAX),
            (StartAt::At(at), _) => Some(at),
        };
        Read {
            store: self,
            stream: request.stream,
            direction: request.direction,
            next,
            remaining: request.max_count,
            page: VecDeque::new(),
        }
    }
}

/// The iterator [`Store::read`] returns.
pub struct Read<'s> {
    store: &'s Store,
    stream: Option<String>,
    direction: Direction,
    /// The version or position the next page starts at; `None` once the
    /// read has reached the end (or an error).
    next: Option<u64>,
    /// Events still to hand out.
    remaining: u64,
    page: VecDeque<RecordedEvent>,
}

impl Read<'_> {
    /// Fetches the next page into `page`; `next` becomes `None` at the end.
    fn fetch(&mut self) -> Result<()> {
        let Some(next) = self.next else {
            return Ok(());
        };
        let count = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(READ_PAGE_EVENTS);
        let store = self.store;
        let events = match (&self.stream, self.direction) {
            (Some(stream), Direction::Forward) => store.read_stream(stream, next, count)?,
            (Some(stream), Direction::Backward) => {
                store.read_stream_backward(stream, next, count)?
            }
            (None, Direction::Forward) => store.read_all(next, count)?,
            (None, Direction::Backward) => store.read_all_backward(next, count)?,
        };
        let key = |event: &RecordedEvent| match self.stream {
            Some(_) => event.version,
            None => event.position,
        };
        self.next = match (events.last(), self.direction) {
            _ if events.len() < count => None,
            (None, _) => None,
            (Some(last), Direction::Forward) => key(last).checked_add(1),
            // Versions start at 1, positions at 0.
            (Some(last), Direction::Backward) => key(last)
                .checked_sub(1)
                .filter(|&n| self.stream.is_none() || n > 0),
        };
        self.page.extend(events);
        Ok(())
    }
}

impl Iterator for Read<'_> {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        if self.page.is_empty()
            && let Err(error) = self.fetch()
        {
            self.next = None;
            self.remaining = 0;
            return Some(Err(error));
        }
        let event = self.page.pop_front()?;
        self.remaining -= 1;
        Some(Ok(event))
    }
}
