//! The public event types: what an append takes and what a read returns.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, MessagePack};
use crate::error::{Error, Result};
use crate::format::body::EventBody;

pub use uuid::Uuid;

/// What the caller expects a stream's version to be before an append.
///
/// Versions start at 1: a stream's version is its number of events, and 0
/// means the stream does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must not exist yet (its version is 0).
    NoStream,
    /// The stream must exist (its version is at least 1).
    StreamExists,
    /// The stream must be exactly at this version (`Exact(0)` is `NoStream`).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at version `actual` satisfies this expectation.
    pub fn matches(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::StreamExists => actual > 0,
            ExpectedVersion::Exact(version) => actual == version,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => write!(f, "any version"),
            ExpectedVersion::NoStream => write!(f, "no stream (version 0)"),
            ExpectedVersion::StreamExists => write!(f, "an existing stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// An event to append.
///
/// ```
/// use annals::EventData;
/// let event = EventData::new("OrderPlaced", b"raw bytes".to_vec())
///     .with_correlation_id("request-7");
/// assert_eq!(event.event_type, "OrderPlaced");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    /// Event id; generated (UUID v7, time-ordered) when `None`.
    pub id: Option<Uuid>,
    /// Event type name, for example `"OrderPlaced"`.
    pub event_type: String,
    /// The payload.
    pub data: Vec<u8>,
    /// Free-form metadata bytes.
    pub metadata: Vec<u8>,
    /// Correlation id: the request or process this event belongs to.
    pub correlation_id: Option<String>,
    /// Causation id: the message that caused this event.
    pub causation_id: Option<String>,
    /// How `data` is encoded (for example `"msgpack"`, `"json"`), if known.
    pub content_type: Option<String>,
    /// The event's timestamp in nanoseconds since the Unix epoch, for
    /// imports that keep the original times; `None` (the normal case) lets
    /// the store assign it. A given timestamp earlier than the previous
    /// event's is refused: timestamps never decrease along the log.
    pub timestamp_ns: Option<u64>,
    /// The data subject (for example a customer's pseudonymous id) whose
    /// key seals `data`, so that [`crate::Store::erase_subject`] can make
    /// it unreadable; `None` (the default) stores `data` as given. The
    /// subject itself, the metadata and every other field are stored in
    /// plain text: use an id that does not identify the person by itself.
    pub subject: Option<String>,
}

/// An event to append whose fields are borrowed: what
/// [`Store::append_ref`](crate::Store::append_ref) takes, so that a caller
/// with the bytes in hand (a decoder's buffer, a network frame, a reused
/// scratch buffer) allocates nothing per event. [`EventData::as_ref`] gives
/// one for an owned event.
///
/// ```
/// use annals::{EventDataRef, ExpectedVersion, Options, Store};
/// let store = Store::in_memory(Options::default())?;
/// let frame = b"{\"amount\": 5}";
/// let events = [EventDataRef::new("Deposited", frame).with_content_type("json")];
/// store.append_ref("account-1", ExpectedVersion::NoStream, &events)?;
/// assert_eq!(store.read_stream("account-1", 1, 1)?[0].data, frame);
/// # Ok::<(), annals::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDataRef<'a> {
    /// Event id; generated (UUID v7, time-ordered) when `None`.
    pub id: Option<Uuid>,
    /// Event type name.
    pub event_type: &'a str,
    /// The payload.
    pub data: &'a [u8],
    /// Free-form metadata bytes.
    pub metadata: &'a [u8],
    /// Correlation id.
    pub correlation_id: Option<&'a str>,
    /// Causation id.
    pub causation_id: Option<&'a str>,
    /// How `data` is encoded, if known.
    pub content_type: Option<&'a str>,
    /// A given timestamp (imports); see [`EventData::timestamp_ns`].
    pub timestamp_ns: Option<u64>,
    /// The data subject whose key seals `data`; see [`EventData::subject`].
    pub subject: Option<&'a str>,
}

impl<'a> EventDataRef<'a> {
    /// An event of type `event_type` with `data` as its payload.
    pub fn new(event_type: &'a str, data: &'a [u8]) -> EventDataRef<'a> {
        EventDataRef {
            id: None,
            event_type,
            data,
            metadata: &[],
            correlation_id: None,
            causation_id: None,
            content_type: None,
            timestamp_ns: None,
            subject: None,
        }
    }

    /// Sets the event id.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Names the data subject whose key seals the data; see
    /// [`EventData::subject`].
    pub fn with_subject(mut self, subject: &'a str) -> Self {
        self.subject = Some(subject);
        self
    }

    /// Sets the metadata bytes.
    pub fn with_metadata(mut self, metadata: &'a [u8]) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: &'a str) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: &'a str) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: &'a str) -> Self {
        self.content_type = Some(content_type);
        self
    }

    /// Keeps `timestamp_ns` as the event's timestamp (imports).
    pub fn with_timestamp_ns(mut self, timestamp_ns: u64) -> Self {
        self.timestamp_ns = Some(timestamp_ns);
        self
    }
}

impl<'a> From<&'a EventData> for EventDataRef<'a> {
    fn from(event: &'a EventData) -> EventDataRef<'a> {
        event.as_ref()
    }
}

impl EventData {
    /// The event, borrowed (for [`crate::Store::append_ref`]).
    pub fn as_ref(&self) -> EventDataRef<'_> {
        EventDataRef {
            id: self.id,
            event_type: &self.event_type,
            data: &self.data,
            metadata: &self.metadata,
            correlation_id: self.correlation_id.as_deref(),
            causation_id: self.causation_id.as_deref(),
            content_type: self.content_type.as_deref(),
            timestamp_ns: self.timestamp_ns,
            subject: self.subject.as_deref(),
        }
    }

    /// An event with raw bytes as data.
    pub fn new(event_type: impl Into<String>, data: impl Into<Vec<u8>>) -> EventData {
        EventData {
            id: None,
            event_type: event_type.into(),
            data: data.into(),
            metadata: Vec::new(),
            correlation_id: None,
            causation_id: None,
            content_type: None,
            timestamp_ns: None,
            subject: None,
        }
    }

    /// An event whose data is `value` encoded as MessagePack (content type
    /// `"msgpack"`).
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct Deposited { amount: u64 }
    /// let event = annals::EventData::from_serde("Deposited", &Deposited { amount: 5 }).unwrap();
    /// assert_eq!(event.content_type.as_deref(), Some("msgpack"));
    /// ```
    ///
    /// # Errors
    /// [`Error::Codec`] when the value cannot be serialized.
    pub fn from_serde<T: Serialize + ?Sized>(
        event_type: impl Into<String>,
        value: &T,
    ) -> Result<EventData> {
        EventData::encode_with::<MessagePack, T>(event_type, value)
    }

    /// An event whose data is `value` encoded with codec `C`, whose content
    /// type is recorded with the event.
    ///
    /// # Errors
    /// [`Error::Codec`] when the value cannot be encoded.
    pub fn encode_with<C: Codec, T: Serialize + ?Sized>(
        event_type: impl Into<String>,
        value: &T,
    ) -> Result<EventData> {
        let mut event = EventData::new(event_type, C::encode(value)?);
        event.content_type = Some(C::CONTENT_TYPE.to_string());
        Ok(event)
    }

    /// Sets the event id.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Names the data subject whose key seals the data, so that
    /// [`crate::Store::erase_subject`] can make it unreadable; see
    /// [`EventData::subject`].
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// let event = EventData::new("AddressChanged", b"10 Main St".to_vec()).with_subject("customer-7f3a");
    /// store.append("customer-7f3a", ExpectedVersion::Any, &[event])?;
    /// assert_eq!(store.read_stream("customer-7f3a", 1, 1)?[0].data, b"10 Main St");
    /// store.erase_subject("customer-7f3a", "GDPR request 2026-114")?;
    /// let erased = &store.read_stream("customer-7f3a", 1, 1)?[0];
    /// assert!(erased.erased && erased.data.is_empty());
    /// # Ok::<(), annals::Error>(())
    /// ```
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Keeps `timestamp_ns` as the event's timestamp instead of the store's
    /// clock (for imports); see [`EventData::timestamp_ns`].
    pub fn with_timestamp_ns(mut self, timestamp_ns: u64) -> Self {
        self.timestamp_ns = Some(timestamp_ns);
        self
    }

    /// Sets the metadata bytes.
    pub fn with_metadata(mut self, metadata: impl Into<Vec<u8>>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }
}

/// An event read back from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stream it belongs to.
    pub stream: String,
    /// Its version in the stream, from 1.
    pub version: u64,
    /// Its global position in the log, from 0; stable across reopen.
    pub position: u64,
    /// Its id.
    pub id: Uuid,
    /// Its type name.
    pub event_type: String,
    /// When the store appended it, in nanoseconds since the Unix epoch;
    /// never earlier than the previous event's.
    pub timestamp_ns: u64,
    /// Correlation id, if any.
    pub correlation_id: Option<String>,
    /// Causation id, if any.
    pub causation_id: Option<String>,
    /// How `data` is encoded, if recorded.
    pub content_type: Option<String>,
    /// Metadata bytes.
    pub metadata: Vec<u8>,
    /// The payload, opened with its subject's key when it has a subject;
    /// empty when `erased`.
    pub data: Vec<u8>,
    /// The data subject whose key sealed the data, if any.
    pub subject: Option<String>,
    /// Whether the data was erased ([`crate::Store::erase_subject`]): then
    /// `data` is empty and [`RecordedEvent::decode`] says
    /// [`Error::Erased`]. Every other field is as it was appended.
    pub erased: bool,
}

impl RecordedEvent {
    /// Decodes `data` into `T` with the built-in codec its content type
    /// names (MessagePack when none is recorded).
    ///
    /// # Errors
    /// [`Error::Erased`] when the data was erased; [`Error::Codec`] when the
    /// data is not a valid encoding of `T`, or the content type has no
    /// built-in codec (use [`RecordedEvent::decode_with`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        self.check_not_erased()?;
        crate::codec::decode_by_content_type(self.content_type.as_deref(), &self.data)
            .map_err(|e| self.locate(e))
    }

    /// Decodes `data` into `T` with codec `C`, whatever the content type says.
    ///
    /// # Errors
    /// [`Error::Erased`] when the data was erased; [`Error::Codec`] when the
    /// data is not a valid encoding of `T`.
    pub fn decode_with<C: Codec, T: DeserializeOwned>(&self) -> Result<T> {
        self.check_not_erased()?;
        C::decode(&self.data).map_err(|e| self.locate(e))
    }

    /// [`Error::Erased`] for an erased event: its empty data must never
    /// decode as a value (an empty MessagePack or JSON document fails anyway,
    /// but a codec of raw bytes would accept it).
    fn check_not_erased(&self) -> Result<()> {
        match (&self.subject, self.erased) {
            (Some(subject), true) => Err(Error::Erased {
                subject: subject.clone(),
                position: self.position,
            }),
            _ => Ok(()),
        }
    }

    /// Adds the stream and version to a codec error.
    fn locate(&self, error: Error) -> Error {
        event_location(error, &self.stream, self.version, self.position)
    }

    /// The event of `body`, whose data is `payload` (opened, or erased).
    pub(crate) fn from_body(body: &EventBody<'_>, payload: &Payload<'_>) -> RecordedEvent {
        RecordedEvent {
            stream: body.stream.to_string(),
            version: body.version,
            position: body.position,
            id: Uuid::from_bytes(body.id),
            event_type: body.event_type.to_string(),
            timestamp_ns: body.timestamp_ns,
            correlation_id: body.correlation_id.map(str::to_string),
            causation_id: body.causation_id.map(str::to_string),
            content_type: body.content_type.map(str::to_string),
            metadata: body.metadata.to_vec(),
            data: payload.data().to_vec(),
            subject: body.subject.map(str::to_string),
            erased: payload.is_erased(),
        }
    }
}

/// A borrowed view of one stored event, as [`crate::Store::scan_all`] and
/// [`crate::Store::scan_stream`] hand it out: its fields point into the
/// mapped segment file (the data of an event with a subject into its opened
/// copy), so it lives only as long as the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView<'a> {
    /// The stream it belongs to.
    pub stream: &'a str,
    /// Its version in the stream, from 1.
    pub version: u64,
    /// Its global position, from 0.
    pub position: u64,
    /// Its id (see [`EventView::event_id`]).
    pub id: [u8; 16],
    /// Its type name.
    pub event_type: &'a str,
    /// When the store appended it, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Correlation id, if any.
    pub correlation_id: Option<&'a str>,
    /// Causation id, if any.
    pub causation_id: Option<&'a str>,
    /// How `data` is encoded, if recorded.
    pub content_type: Option<&'a str>,
    /// Metadata bytes.
    pub metadata: &'a [u8],
    /// The payload (opened with its subject's key); empty when `erased`.
    pub data: &'a [u8],
    /// The data subject whose key sealed the data, if any.
    pub subject: Option<&'a str>,
    /// Whether the data was erased; see [`RecordedEvent::erased`].
    pub erased: bool,
}

impl<'a> EventView<'a> {
    /// The view of `body` whose data is `payload`.
    pub(crate) fn new(body: &EventBody<'a>, payload: &'a Payload<'a>) -> EventView<'a> {
        EventView {
            stream: body.stream,
            version: body.version,
            position: body.position,
            id: body.id,
            event_type: body.event_type,
            timestamp_ns: body.timestamp_ns,
            correlation_id: body.correlation_id,
            causation_id: body.causation_id,
            content_type: body.content_type,
            metadata: body.metadata,
            data: payload.data(),
            subject: body.subject,
            erased: payload.is_erased(),
        }
    }

    /// The event id as a UUID.
    pub fn event_id(&self) -> Uuid {
        Uuid::from_bytes(self.id)
    }

    /// Decodes `data` into `T` with the built-in codec its content type
    /// names (MessagePack when none is recorded).
    ///
    /// # Errors
    /// [`Error::Erased`] when the data was erased; [`Error::Codec`] when the
    /// data is not a valid encoding of `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        if let (Some(subject), true) = (self.subject, self.erased) {
            return Err(Error::Erased {
                subject: subject.to_string(),
                position: self.position,
            });
        }
        crate::codec::decode_by_content_type(self.content_type, self.data)
            .map_err(|e| event_location(e, self.stream, self.version, self.position))
    }

    /// An owned copy of the event.
    pub fn to_recorded(&self) -> RecordedEvent {
        RecordedEvent {
            stream: self.stream.to_string(),
            version: self.version,
            position: self.position,
            id: Uuid::from_bytes(self.id),
            event_type: self.event_type.to_string(),
            timestamp_ns: self.timestamp_ns,
            correlation_id: self.correlation_id.map(str::to_string),
            causation_id: self.causation_id.map(str::to_string),
            content_type: self.content_type.map(str::to_string),
            metadata: self.metadata.to_vec(),
            data: self.data.to_vec(),
            subject: self.subject.map(str::to_string),
            erased: self.erased,
        }
    }
}

/// An event's data as a reader gets it: as stored (no subject), opened with
/// its subject's key, or erased. Never the sealed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload<'a> {
    /// No subject: the stored bytes are the data.
    Plain(&'a [u8]),
    /// Opened with the subject's key.
    Opened(Vec<u8>),
    /// The subject was erased.
    Erased,
}

impl Payload<'_> {
    pub(crate) fn data(&self) -> &[u8] {
        match self {
            Payload::Plain(data) => data,
            Payload::Opened(data) => data,
            Payload::Erased => &[],
        }
    }

    pub(crate) fn is_erased(&self) -> bool {
        matches!(self, Payload::Erased)
    }
}

/// Names the event in a codec error.
fn event_location(error: Error, stream: &str, version: u64, position: u64) -> Error {
    crate::codec::locate(error, || {
        format!("event {version} of stream {stream:?} (position {position})")
    })
}

/// A condition on a stream that an append does not write: the append
/// happens only if the stream's version matches `expected`
/// ([`crate::MultiStreamAppend::require`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCondition<'a> {
    /// The stream checked.
    pub stream: &'a str,
    /// What its version must be.
    pub expected: ExpectedVersion,
}

/// What a successful append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Version of the first event appended.
    pub first_version: u64,
    /// Version of the last event appended: the stream's new version.
    pub last_version: u64,
    /// Global position of the first event appended.
    pub first_position: u64,
    /// Global position of the last event appended.
    pub last_position: u64,
}
