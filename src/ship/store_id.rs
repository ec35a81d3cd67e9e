//! The id that names a store in shipped messages (`Annals-Store-Id`, and
//! the first half of `Nats-Msg-Id`).
//!
//! The public API has no store id, so it is derived from what never changes
//! in a store once written: its first event (position 0), which the
//! retention manifest keeps once it is retired. SHA-256 over the
//! event's id, timestamp and stream id, the first 16 bytes in hex. Event ids
//! are random UUIDs (v7) and timestamps have nanoseconds, so two stores get
//! the same id only if their first events are copies of each other: a copy
//! made by `annals import` of an export, or by `annals receive`, has the
//! same id as its original (and the same positions when it is complete).

use sha2::Digest;

use crate::event::RecordedEvent;
use crate::store::Store;

/// Bytes of the digest kept (as 32 hex digits).
const STORE_ID_BYTES: usize = 16;

/// The store id derived from a store's first event.
pub fn store_id_of(first_event: &RecordedEvent) -> String {
    id_of(
        &first_event.id,
        first_event.timestamp_ns,
        &first_event.stream,
    )
}

/// The store id of a first event with this id, timestamp and stream.
fn id_of(id: &crate::Uuid, timestamp_ns: u64, stream: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"annals store id v1\0");
    hasher.update(id.as_bytes());
    hasher.update(timestamp_ns.to_le_bytes());
    hasher.update(stream.as_bytes());
    let digest = hasher.finalize();
    digest[..STORE_ID_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The store's id, or `None` while it holds no event. The same once the
/// first event was retired (the retention manifest keeps what it needs).
///
/// # Errors
/// [`crate::Error::Corrupt`] if the first event no longer decodes.
pub fn store_id(store: &Store) -> crate::Result<Option<String>> {
    Ok(store
        .first_event_identity()?
        .map(|(id, timestamp_ns, stream)| id_of(&id, timestamp_ns, &stream)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventData, ExpectedVersion, Options};

    #[test]
    fn the_id_is_stable_and_differs_between_stores() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        assert_eq!(store_id(&store).unwrap(), None);
        let event = [EventData::new("E", vec![1])];
        store.append("s", ExpectedVersion::Any, &event).unwrap();
        let id = store_id(&store).unwrap().unwrap();
        assert_eq!(id.len(), 2 * STORE_ID_BYTES);
        store.append("t", ExpectedVersion::Any, &event).unwrap();
        store.close().unwrap();
        let reopened = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(store_id(&reopened).unwrap(), Some(id.clone()));

        let other = Store::in_memory(Options::default()).unwrap();
        other.append("s", ExpectedVersion::Any, &event).unwrap();
        assert_ne!(store_id(&other).unwrap(), Some(id));
    }
}
