//! How cqrs-es records map to annals records, with no I/O: stream ids, event
//! bodies, snapshot bodies and errors. The layout is described in the
//! [module documentation](super).

use cqrs_es::persist::{PersistenceError, SerializedEvent, SerializedSnapshot};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::{Codec, Json};
use crate::error::Error;
use crate::event::{EventData, RecordedEvent};
use crate::snapshot::Snapshot;

/// Separates the aggregate type from the aggregate id in a stream id:
/// `"{aggregate_type}-{aggregate_id}"`. An aggregate type must not contain it,
/// so that a stream id names exactly one aggregate and `"{aggregate_type}-"`
/// is the prefix of exactly that type's streams.
pub const STREAM_ID_SEPARATOR: char = '-';

/// The annals stream holding the events of one aggregate instance.
///
/// ```
/// assert_eq!(annals::cqrs::stream_id("account", "ada-7")?, "account-ada-7");
/// assert!(annals::cqrs::stream_id("bank-account", "7").is_err());
/// # Ok::<(), annals::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `aggregate_type` is empty, contains
/// [`STREAM_ID_SEPARATOR`] or starts with `$` (the prefix of annals'
/// system streams, [`crate::system_streams`]).
pub fn stream_id(aggregate_type: &str, aggregate_id: &str) -> Result<String, Error> {
    Ok(format!("{}{aggregate_id}", stream_prefix(aggregate_type)?))
}

/// The prefix shared by the streams of every instance of `aggregate_type`
/// (and by no other aggregate type's streams).
///
/// # Errors
/// As [`stream_id`].
pub fn stream_prefix(aggregate_type: &str) -> Result<String, Error> {
    // A type starting with '$' would name system streams, which appends
    // refuse; refusing it here, when the framework is built, also keeps
    // every replay of the log by this prefix clear of the store's own
    // metadata events (in `$$<stream>`, which no type's prefix matches).
    if aggregate_type.is_empty()
        || aggregate_type.contains(STREAM_ID_SEPARATOR)
        || crate::system_streams::is_system_stream(aggregate_type)
    {
        return Err(Error::InvalidArgument(format!(
            "the cqrs-es aggregate type {aggregate_type:?} cannot name annals streams: it must be \
             non-empty, must not contain {STREAM_ID_SEPARATOR:?}, which separates the type \
             from the aggregate id in stream ids, and must not start with '$', which annals \
             reserves for its own streams; change `Aggregate::TYPE`"
        )));
    }
    Ok(format!("{aggregate_type}{STREAM_ID_SEPARATOR}"))
}

/// The JSON object stored as an event's annals metadata: what a
/// [`SerializedEvent`] has beyond its stream, version, type and payload.
#[derive(Serialize, Deserialize)]
struct EventMetadata {
    event_version: String,
    metadata: Value,
}

/// The JSON object stored as an annals snapshot's data. The snapshot's
/// annals version is the aggregate's `current_sequence`.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    current_snapshot: usize,
    aggregate: Value,
}

/// The annals event for `event`: its type, the payload as JSON data, and
/// the event version and cqrs-es metadata as JSON metadata.
pub(crate) fn event_data(event: &SerializedEvent) -> Result<EventData, Error> {
    let data = Json::encode(&event.payload)?;
    let metadata = Json::encode(&EventMetadata {
        event_version: event.event_version.clone(),
        metadata: event.metadata.clone(),
    })?;
    let mut data = EventData::new(event.event_type.clone(), data).with_metadata(metadata);
    data.content_type = Some(Json::CONTENT_TYPE.to_string());
    Ok(data)
}

/// The cqrs-es event an annals event of an aggregate stream holds.
///
/// An erased event holds none: cqrs-es has no way to say "this event's
/// payload is gone", and replaying an aggregate without it would build a
/// wrong state, so loading such an aggregate (or a view replay reaching
/// the event) fails with [`Error::Erased`] (`docs/cqrs-es.md`).
pub(crate) fn serialized_event(event: &RecordedEvent) -> Result<SerializedEvent, Error> {
    if let (true, Some(subject)) = (event.erased, &event.subject) {
        return Err(Error::Erased {
            subject: subject.clone(),
            position: event.position,
        });
    }
    let codec_error = |what: &str, cause: String| Error::Codec {
        message: format!(
            "event {} of stream {:?} (position {}) is not a cqrs-es event: {what}: {cause}",
            event.version, event.stream, event.position
        ),
    };
    let Some((aggregate_type, aggregate_id)) = event.stream.split_once(STREAM_ID_SEPARATOR) else {
        return Err(codec_error(
            "stream id",
            format!("no {STREAM_ID_SEPARATOR:?} between aggregate type and id"),
        ));
    };
    if event.content_type.as_deref() != Some(Json::CONTENT_TYPE) {
        return Err(codec_error(
            "content type",
            format!("{:?} instead of \"json\"", event.content_type),
        ));
    }
    let payload: Value =
        Json::decode(&event.data).map_err(|e| codec_error("payload", e.to_string()))?;
    let EventMetadata {
        event_version,
        metadata,
    } = Json::decode(&event.metadata).map_err(|e| codec_error("metadata", e.to_string()))?;
    let sequence = usize::try_from(event.version)
        .map_err(|_| codec_error("version", "does not fit in usize".into()))?;
    Ok(SerializedEvent {
        aggregate_id: aggregate_id.to_string(),
        sequence,
        aggregate_type: aggregate_type.to_string(),
        event_type: event.event_type.clone(),
        event_version,
        payload,
        metadata,
    })
}

/// The data of the annals snapshot that stores `aggregate` as snapshot
/// number `current_snapshot`.
pub(crate) fn snapshot_data(current_snapshot: usize, aggregate: Value) -> Result<Vec<u8>, Error> {
    Json::encode(&SnapshotBody {
        current_snapshot,
        aggregate,
    })
}

/// The cqrs-es snapshot an annals snapshot holds.
pub(crate) fn serialized_snapshot(
    aggregate_id: &str,
    snapshot: &Snapshot,
) -> Result<SerializedSnapshot, Error> {
    let codec_error = |cause: String| Error::Codec {
        message: format!(
            "the snapshot of stream {:?} at version {} is not a cqrs-es snapshot: {cause}",
            snapshot.stream, snapshot.version
        ),
    };
    if snapshot.content_type.as_deref() != Some(Json::CONTENT_TYPE) {
        return Err(codec_error(format!(
            "content type {:?} instead of \"json\"",
            snapshot.content_type
        )));
    }
    let SnapshotBody {
        current_snapshot,
        aggregate,
    } = Json::decode(&snapshot.data).map_err(|e| codec_error(e.to_string()))?;
    let current_sequence = usize::try_from(snapshot.version)
        .map_err(|_| codec_error("version does not fit in usize".into()))?;
    Ok(SerializedSnapshot {
        aggregate_id: aggregate_id.to_string(),
        aggregate,
        current_sequence,
        current_snapshot,
    })
}

/// The cqrs-es error for an annals error: a wrong expected version is an
/// optimistic lock conflict (cqrs-es reports `AggregateConflict`), a codec
/// error a deserialization error, anything else an unknown error carrying
/// annals' message.
pub(crate) fn persistence_error(error: Error) -> PersistenceError {
    PersistenceError::from(error)
}

/// An annals error as cqrs-es's persistence error, so that `?` works in
/// code returning cqrs-es errors (a `ViewRepository`, a `Query`'s helpers;
/// cqrs-es turns a `PersistenceError` into an `AggregateError` in turn): a
/// wrong expected version is `OptimisticLockError` (which cqrs-es reports as
/// `AggregateConflict`), a codec error a `DeserializationError`, anything
/// else an `UnknownError` holding the annals error (downcast it to match on
/// its kind).
///
/// ```
/// use cqrs_es::persist::PersistenceError;
/// let conflict = annals::Error::WrongExpectedVersion {
///     stream: "account-1".into(),
///     expected: annals::ExpectedVersion::Exact(1),
///     actual: 2,
/// };
/// assert!(matches!(PersistenceError::from(conflict), PersistenceError::OptimisticLockError));
/// ```
impl From<Error> for PersistenceError {
    fn from(error: Error) -> Self {
        match error {
            Error::WrongExpectedVersion { .. } => PersistenceError::OptimisticLockError,
            Error::Codec { .. } => PersistenceError::DeserializationError(Box::new(error)),
            other => PersistenceError::UnknownError(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorded(stream: &str, version: u64, data: &EventData) -> RecordedEvent {
        RecordedEvent {
            stream: stream.to_string(),
            version,
            position: 41,
            id: crate::Uuid::nil(),
            event_type: data.event_type.clone(),
            timestamp_ns: 1,
            correlation_id: None,
            causation_id: None,
            content_type: data.content_type.clone(),
            metadata: data.metadata.clone(),
            data: data.data.clone(),
            subject: None,
            erased: false,
        }
    }

    #[test]
    fn stream_ids_name_one_aggregate() {
        assert_eq!(stream_id("account", "").unwrap(), "account-");
        assert_eq!(stream_id("account", "a-b").unwrap(), "account-a-b");
        assert!(stream_id("", "a").is_err());
        let message = stream_id("bank-account", "a").unwrap_err().to_string();
        assert!(message.contains("\"bank-account\""), "{message}");
    }

    #[test]
    fn an_event_round_trips_exactly() {
        let event = SerializedEvent {
            aggregate_id: "ada-1".into(),
            sequence: 3,
            aggregate_type: "account".into(),
            event_type: "Deposited".into(),
            event_version: "2.1".into(),
            payload: json!({"Deposited": {"amount": 12.5, "note": null, "tags": [1, -2]}}),
            metadata: json!({"user": "ada", "time": "2025-01-01T00:00:00Z"}),
        };
        let data = event_data(&event).unwrap();
        assert_eq!(data.event_type, "Deposited");
        let read = serialized_event(&recorded("account-ada-1", 3, &data)).unwrap();
        assert_eq!(read, event);
    }

    #[test]
    fn a_foreign_event_is_a_deserialization_error() {
        let foreign = EventData::new("Deposited", b"\x81\xa1a\x01".to_vec());
        let error = serialized_event(&recorded("account-1", 1, &foreign)).unwrap_err();
        assert!(error.to_string().contains("content type"), "{error}");
        assert!(matches!(
            persistence_error(error),
            PersistenceError::DeserializationError(_)
        ));
    }

    #[test]
    fn a_snapshot_round_trips_exactly() {
        let aggregate = json!({"balance": 7, "owner": "ada", "nested": {"x": [true, 1.25]}});
        let snapshot = Snapshot {
            stream: "account-1".into(),
            version: 9,
            content_type: Some("json".into()),
            created_unix_ns: 0,
            data: snapshot_data(4, aggregate.clone()).unwrap(),
        };
        let read = serialized_snapshot("1", &snapshot).unwrap();
        assert_eq!(
            read,
            SerializedSnapshot {
                aggregate_id: "1".into(),
                aggregate,
                current_sequence: 9,
                current_snapshot: 4,
            }
        );
    }

    #[test]
    fn a_conflict_is_an_optimistic_lock_error() {
        let conflict = Error::WrongExpectedVersion {
            stream: "account-1".into(),
            expected: crate::ExpectedVersion::Exact(1),
            actual: 2,
        };
        assert!(matches!(
            persistence_error(conflict),
            PersistenceError::OptimisticLockError
        ));
        assert!(matches!(
            persistence_error(Error::InvalidArgument("x".into())),
            PersistenceError::UnknownError(_)
        ));
    }
}
