//! The public decoder from annals events to cqrs-es events: for code that
//! reads annals itself (a subscription, `read_all`, an export) and feeds
//! cqrs-es queries, without re-implementing the adapter's layout.
//!
//! Every `EventEnvelope` annals hands to a query carries the event's global
//! position in its metadata, under [`POSITION_METADATA_KEY`]: envelopes
//! decoded here, replayed by [`super::AnnalsEventRepository`] and
//! dispatched by the frameworks this module's constructors build.
//! [`event_position`] reads it back.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, EventEnvelope};
use serde_json::Value;

use crate::error::Error;
use crate::event::RecordedEvent;

use super::mapping::{self, stream_prefix};

/// The metadata key under which annals gives queries an event's global
/// position, as a decimal string (cqrs-es metadata values are strings):
/// `"annals.position"`. annals sets it on every envelope it hands out,
/// replacing a value of that key stored with the event.
pub const POSITION_METADATA_KEY: &str = "annals.position";

/// The global position annals recorded in `event`'s metadata (see
/// [`POSITION_METADATA_KEY`]); `None` if there is none, as in envelopes
/// cqrs-es builds itself or other event stores hand out.
///
/// A query that stores, with its view, the position of the last event it
/// applied can resume a replay from there and ignore events it has seen:
///
/// ```
/// use annals::cqrs::event_position;
/// # #[derive(Default, serde::Serialize, serde::Deserialize)] struct Account;
/// # #[derive(Debug)] struct Never;
/// # impl std::fmt::Display for Never { fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { Ok(()) } }
/// # impl std::error::Error for Never {}
/// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)] struct Deposited(i64);
/// # impl cqrs_es::DomainEvent for Deposited {
/// #     fn event_type(&self) -> String { "Deposited".into() }
/// #     fn event_version(&self) -> String { "1.0".into() }
/// # }
/// # impl cqrs_es::Aggregate for Account {
/// #     const TYPE: &'static str = "account";
/// #     type Command = (); type Event = Deposited; type Error = Never; type Services = ();
/// #     async fn handle(&mut self, _: (), _: &(), _: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Never> { Ok(()) }
/// #     fn apply(&mut self, _: Deposited) {}
/// # }
/// #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
/// struct Balance {
///     cents: i64,
///     /// The position of the last event applied.
///     position: Option<u64>,
/// }
///
/// impl cqrs_es::View<Account> for Balance {
///     fn update(&mut self, event: &cqrs_es::EventEnvelope<Account>) {
///         let position = event_position(event);
///         if position.is_some() && position <= self.position {
///             return; // applied already
///         }
///         self.cents += event.payload.0;
///         self.position = position.or(self.position);
///     }
/// }
/// ```
pub fn event_position<A: Aggregate>(event: &EventEnvelope<A>) -> Option<u64> {
    event
        .metadata
        .get(POSITION_METADATA_KEY)
        .and_then(|position| position.parse().ok())
}

/// The cqrs-es event stored in an annals event, exactly as it was
/// persisted (no position added; see [`event_envelope`] for that).
///
/// ```
/// use annals::cqrs::{AnnalsEventRepository, serialized_event};
/// use annals::{Options, Store};
/// use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
/// # #[derive(Default, serde::Serialize, serde::Deserialize)] struct Account;
/// # #[derive(Debug)] struct Never;
/// # impl std::fmt::Display for Never { fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { Ok(()) } }
/// # impl std::error::Error for Never {}
/// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)] struct Opened;
/// # impl cqrs_es::DomainEvent for Opened {
/// #     fn event_type(&self) -> String { "Opened".into() }
/// #     fn event_version(&self) -> String { "1.0".into() }
/// # }
/// # impl cqrs_es::Aggregate for Account {
/// #     const TYPE: &'static str = "account";
/// #     type Command = (); type Event = Opened; type Error = Never; type Services = ();
/// #     async fn handle(&mut self, _: (), _: &(), _: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Never> { Ok(()) }
/// #     fn apply(&mut self, _: Opened) {}
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let repository = AnnalsEventRepository::new(Store::in_memory(Options::default())?);
/// let event = SerializedEvent::new(
///     "ada".into(), 1, "account".into(), "Opened".into(), "1.0".into(),
///     serde_json::json!({"Opened": null}), serde_json::json!({"user": "ada"}),
/// );
/// repository.persist::<Account>(&[event.clone()], None).await?;
/// let stored = &repository.store().read_stream("account-ada", 1, 1)?[0];
/// assert_eq!(serialized_event(stored)?, event);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Codec`], naming the stream, version and position, when the
/// event was not written by this adapter: its stream id has no `-`, its
/// content type is not `"json"`, or its data or metadata do not decode.
pub fn serialized_event(event: &RecordedEvent) -> Result<SerializedEvent, Error> {
    mapping::serialized_event(event)
}

/// Decodes an annals event into the `EventEnvelope` cqrs-es would hand a
/// query of aggregate `A`: the stored event, brought up to date by
/// `upcasters` (in order, as cqrs-es applies them), with its global
/// position in the metadata under [`POSITION_METADATA_KEY`].
///
/// Use it to feed a `cqrs_es::Query` from annals' own reads, for example a
/// subscription that follows the log live:
///
/// ```
/// use std::time::Duration;
/// use annals::cqrs::{AnnalsEventRepository, event_envelope, event_position, stream_prefix};
/// use annals::{Filter, Options, Store};
/// use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
/// # #[derive(Default, serde::Serialize, serde::Deserialize)] struct Account;
/// # #[derive(Debug)] struct Never;
/// # impl std::fmt::Display for Never { fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { Ok(()) } }
/// # impl std::error::Error for Never {}
/// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)] enum Event { Opened }
/// # impl cqrs_es::DomainEvent for Event {
/// #     fn event_type(&self) -> String { "Opened".into() }
/// #     fn event_version(&self) -> String { "1.0".into() }
/// # }
/// # impl cqrs_es::Aggregate for Account {
/// #     const TYPE: &'static str = "account";
/// #     type Command = (); type Event = Event; type Error = Never; type Services = ();
/// #     async fn handle(&mut self, _: (), _: &(), _: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Never> { Ok(()) }
/// #     fn apply(&mut self, _: Event) {}
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let repository = AnnalsEventRepository::new(Store::in_memory(Options::default())?);
/// # let opened = SerializedEvent::new("ada".into(), 1, "account".into(), "Opened".into(),
/// #     "1.0".into(), serde_json::json!("Opened"), serde_json::json!({}));
/// # repository.persist::<Account>(&[opened], None).await?;
/// let filter = Filter::default().stream_prefix(stream_prefix("account")?);
/// let mut subscription = repository.store().subscribe_all(0, filter);
/// // (a blocking iterator: in an async program, run it on a thread of its own)
/// let event = subscription.next_timeout(Duration::from_secs(1))?.expect("one event");
/// let envelope = event_envelope::<Account>(&event, &[])?;
/// assert_eq!((envelope.aggregate_id.as_str(), envelope.sequence), ("ada", 1));
/// assert_eq!(envelope.payload, Event::Opened);
/// assert_eq!(event_position(&envelope), Some(event.position));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Codec`], naming the stream, version and position: as
/// [`serialized_event`]; an event of another aggregate type than `A`; an
/// (upcast) payload that does not deserialize as `A::Event`, or metadata
/// that is not an object of strings.
pub fn event_envelope<A: Aggregate>(
    event: &RecordedEvent,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<EventEnvelope<A>, Error> {
    let located = |cause: String| Error::Codec {
        message: format!(
            "event {} of stream {:?} (position {}) is not an event of the cqrs-es aggregate \
             type {:?}: {cause}",
            event.version,
            event.stream,
            event.position,
            A::TYPE
        ),
    };
    let prefix = stream_prefix(A::TYPE)?;
    if !event.stream.starts_with(&prefix) {
        return Err(located(format!(
            "its stream does not start with {prefix:?}"
        )));
    }
    let serialized = upcast(serialized_with_position(event)?, upcasters);
    EventEnvelope::try_from(serialized).map_err(|e| located(e.to_string()))
}

/// The stored cqrs-es event with its global position added to its
/// metadata (see [`POSITION_METADATA_KEY`]): what replays hand to cqrs-es.
/// Metadata that is not a JSON object is left as it is (cqrs-es refuses it
/// anyway), except `null`, which becomes an object holding the position.
pub(crate) fn serialized_with_position(event: &RecordedEvent) -> Result<SerializedEvent, Error> {
    let mut serialized = mapping::serialized_event(event)?;
    let position = Value::String(event.position.to_string());
    match &mut serialized.metadata {
        Value::Object(metadata) => {
            metadata.insert(POSITION_METADATA_KEY.to_string(), position);
        }
        metadata @ Value::Null => {
            *metadata = serde_json::json!({ POSITION_METADATA_KEY: position });
        }
        _ => {}
    }
    Ok(serialized)
}

/// Applies the upcasters that apply, in order, as cqrs-es does on load and
/// replay (its own `SerializedEvent::upcast` is private).
fn upcast(event: SerializedEvent, upcasters: &[Box<dyn EventUpcaster>]) -> SerializedEvent {
    upcasters.iter().fold(event, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, Json};
    use crate::event::EventData;
    use serde_json::json;

    fn recorded(metadata: Value) -> RecordedEvent {
        let data = EventData::new("Opened", Json::encode(&json!("Opened")).unwrap());
        let metadata =
            Json::encode(&json!({"event_version": "1.0", "metadata": metadata})).unwrap();
        RecordedEvent {
            stream: "account-ada".into(),
            version: 1,
            position: 41,
            id: crate::Uuid::nil(),
            event_type: data.event_type,
            timestamp_ns: 1,
            correlation_id: None,
            causation_id: None,
            content_type: Some("json".into()),
            metadata,
            data: data.data,
            subject: None,
            erased: false,
        }
    }

    #[test]
    fn the_position_joins_the_metadata_as_a_string() {
        let stored = json!({"user": "ada", POSITION_METADATA_KEY: "7"});
        let read = serialized_with_position(&recorded(stored)).unwrap();
        assert_eq!(
            read.metadata,
            json!({"user": "ada", POSITION_METADATA_KEY: "41"})
        );
        let read = serialized_with_position(&recorded(Value::Null)).unwrap();
        assert_eq!(read.metadata, json!({ POSITION_METADATA_KEY: "41" }));
        // Not an object: left as it is (cqrs-es refuses it when decoding).
        let read = serialized_with_position(&recorded(json!([1]))).unwrap();
        assert_eq!(read.metadata, json!([1]));
    }
}
