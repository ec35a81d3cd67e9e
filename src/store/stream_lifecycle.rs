//! Truncating and deleting streams (KurrentDB's truncate-before and hard
//! delete): each is a metadata event appended to the stream's metadata
//! stream `$$<stream>`, so it is in the log, under the hash chain, for an
//! auditor to see. The rules for what the metadata does to reads and
//! appends are in the index (`Index::live_metadata`); this file writes it.

use crate::codec::{Codec, MessagePack};
use crate::engine::writer::{AppendRequest, StreamWrite};
use crate::error::{Error, Result};
use crate::event::{AppendResult, EventDataRef, ExpectedVersion};
use crate::format::stream_metadata::{self, StreamMetadata};
use crate::index::MetadataState;
use crate::options::Durability as DurabilityMode;
use crate::system_streams::{METADATA_EVENT_TYPE, is_system_stream, metadata_stream_of};

use super::{Store, validate};

impl Store {
    /// Truncates `stream` before `before_version`: from now on, reads of
    /// the stream start at that version (`read_stream(stream, 1, n)`
    /// returns events from `before_version` on; backward reads stop
    /// there), while its version, and so expected-version checks and
    /// appends, are unchanged. KurrentDB's `$tb` (truncate before).
    ///
    /// The truncation is a metadata event appended to the stream's
    /// metadata stream (`$$<stream>`, [`crate::system_streams`]), so it is
    /// in the log and under the hash chain. The truncated events stay in
    /// the log: [`Store::read_all`], [`Store::scan_all`] and all-stream
    /// subscriptions still return them (and the metadata event), until
    /// retention retires the segments holding them. A truncation is never
    /// undone: a later one can only move the point forward.
    /// `before_version` may be `version + 1`, which hides every event so
    /// far (a "soft" reset of a stream that goes on being appended to).
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// let events: Vec<_> = (1..=5u8).map(|i| EventData::new("E", vec![i])).collect();
    /// store.append("cart-1", ExpectedVersion::NoStream, &events)?;
    /// store.truncate_stream("cart-1", 4)?;
    /// let read = store.read_stream("cart-1", 1, 100)?;
    /// assert_eq!(read.iter().map(|e| e.version).collect::<Vec<_>>(), [4, 5]);
    /// assert_eq!(store.stream_version("cart-1"), 5);
    /// # Ok::<(), annals::Error>(())
    /// ```
    ///
    /// # Errors
    /// Nothing is written when:
    /// - [`Error::InvalidArgument`]: the stream does not exist,
    ///   `before_version` is 0, above the stream's version + 1, or below
    ///   the point it is already truncated at;
    /// - [`Error::StreamDeleted`]: the stream was deleted;
    /// - [`Error::ReservedStream`]: `stream` is a system stream;
    /// - [`Error::InvalidStreamMetadata`]: its current metadata is unreadable;
    /// - as [`Store::append`] ([`Error::ReadOnly`], [`Error::Poisoned`], …).
    pub fn truncate_stream(&self, stream: &str, before_version: u64) -> Result<AppendResult> {
        self.write_stream_metadata(stream, |version, current| {
            let current = live(stream, current)?;
            if version == 0 {
                return Err(Error::InvalidArgument(format!(
                    "cannot truncate stream {stream:?}: it does not exist (nothing was written)"
                )));
            }
            if before_version == 0 || before_version > version + 1 {
                return Err(Error::InvalidArgument(format!(
                    "cannot truncate stream {stream:?} before version {before_version}: it has \
                     versions 1 to {version}, so the version must be from 1 to {} (nothing \
                     was written)",
                    version + 1
                )));
            }
            let truncated = current.truncate_before;
            if before_version < truncated {
                return Err(Error::InvalidArgument(format!(
                    "cannot truncate stream {stream:?} before version {before_version}: it is \
                     already truncated before version {truncated}, and a truncation is never \
                     undone (nothing was written)"
                )));
            }
            Ok(StreamMetadata {
                truncate_before: before_version,
                deleted: false,
            })
        })
    }

    /// Deletes `stream` for good, if its version matches `expected`: from
    /// now on, reading it ([`Store::read_stream`], backward, [`Store::scan_stream`],
    /// [`Store::read`] of the stream, [`Store::subscribe_stream`]) and
    /// appending to it answer [`Error::StreamDeleted`]. KurrentDB's hard
    /// delete: the stream cannot be created again, under any expected
    /// version; to hide a stream's past and keep using it, truncate it
    /// ([`Store::truncate_stream`] before `version + 1`) instead.
    /// [`Store::stream_version`] still answers the version it had.
    ///
    /// The deletion is a tombstone: a metadata event with `deleted: true`
    /// appended to the stream's metadata stream (`$$<stream>`), in the log
    /// and under the hash chain. The stream's events stay in the log:
    /// [`Store::read_all`], [`Store::scan_all`] and all-stream
    /// subscriptions still return them (and the tombstone) until retention
    /// retires the segments holding them.
    ///
    /// ```
    /// use annals::{Error, EventData, ExpectedVersion, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// store.append("cart-1", ExpectedVersion::NoStream, &[EventData::new("E", vec![1])])?;
    /// store.delete_stream("cart-1", ExpectedVersion::Exact(1))?;
    /// assert!(matches!(store.read_stream("cart-1", 1, 10), Err(Error::StreamDeleted { .. })));
    /// let again = store.append("cart-1", ExpectedVersion::Any, &[EventData::new("E", vec![2])]);
    /// assert!(matches!(again, Err(Error::StreamDeleted { .. })));
    /// assert_eq!(store.stream_version("cart-1"), 1);
    /// # Ok::<(), annals::Error>(())
    /// ```
    ///
    /// # Errors
    /// Nothing is written when:
    /// - [`Error::WrongExpectedVersion`]: the stream's version is not `expected`;
    /// - [`Error::InvalidArgument`]: the stream does not exist (deleting a
    ///   name never used would only reserve it);
    /// - [`Error::StreamDeleted`]: it was deleted already;
    /// - [`Error::ReservedStream`]: `stream` is a system stream;
    /// - as [`Store::append`] ([`Error::ReadOnly`], [`Error::Poisoned`], …).
    ///
    /// Unreadable metadata ([`Error::InvalidStreamMetadata`]) does not stop
    /// a deletion: a tombstone hides more than any metadata can.
    pub fn delete_stream(&self, stream: &str, expected: ExpectedVersion) -> Result<AppendResult> {
        self.write_stream_metadata(stream, |version, current| {
            let truncate_before = match current {
                Some(MetadataState::Invalid { .. }) => 0,
                current => live(stream, current)?.truncate_before,
            };
            if !expected.matches(version) {
                return Err(Error::WrongExpectedVersion {
                    stream: stream.to_string(),
                    expected,
                    actual: version,
                });
            }
            if version == 0 {
                return Err(Error::InvalidArgument(format!(
                    "cannot delete stream {stream:?}: it does not exist (nothing was written)"
                )));
            }
            Ok(StreamMetadata {
                truncate_before,
                deleted: true,
            })
        })
    }

    /// Appends the metadata `change` returns to `stream`'s metadata stream.
    /// `change` sees the stream's version and current metadata under the
    /// writer mutex, the same mutex appends check deletion under, so the
    /// check and the write are one step: no append or other metadata
    /// change comes between them.
    fn write_stream_metadata(
        &self,
        stream: &str,
        change: impl FnOnce(u64, Option<&MetadataState>) -> Result<StreamMetadata>,
    ) -> Result<AppendResult> {
        if is_system_stream(stream) {
            return Err(Error::ReservedStream {
                stream: stream.to_string(),
            });
        }
        let engine = &*self.engine;
        let Some(writer) = &engine.writer else {
            return Err(Error::ReadOnly {
                dir: engine.dir.clone(),
            });
        };
        let metadata_stream = metadata_stream_of(stream);
        let appended = {
            let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
            let metadata = {
                let state = engine.read_state();
                change(
                    state.index.stream_version(stream),
                    state.index.metadata(stream),
                )?
            };
            let data = stream_metadata::encode(&metadata);
            let events = [EventDataRef {
                content_type: Some(MessagePack::CONTENT_TYPE),
                ..EventDataRef::new(METADATA_EVENT_TYPE, &data)
            }];
            let write = StreamWrite {
                stream: &metadata_stream,
                // The mutex held since `change` looked makes this exact.
                expected: ExpectedVersion::Any,
                events: &events,
            };
            let request = AppendRequest::one(&write, None);
            let fields_bytes = validate(&engine.options, &request)?;
            writer.append(engine, &request, fields_bytes)?
        };
        if let (Some(end), DurabilityMode::Always) = (appended.end, engine.options.durability) {
            engine.durability.sync_through(engine, end)?;
        }
        Ok(appended.results[0])
    }
}

/// The current metadata of `stream` for a change to build on (the default
/// when it has none).
///
/// # Errors
/// As [`MetadataState::live`].
fn live(stream: &str, current: Option<&MetadataState>) -> Result<StreamMetadata> {
    current.map_or(Ok(StreamMetadata::default()), |state| state.live(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventData;
    use crate::options::Options;

    /// Appends to a system stream as only the store itself can, through
    /// the engine (the public calls refuse `$` names).
    fn append_as_the_store(store: &Store, stream: &str, event_type: &str, data: &[u8]) {
        let engine = &*store.engine;
        let events = [EventDataRef::new(event_type, data)];
        let write = StreamWrite {
            stream,
            expected: ExpectedVersion::Any,
            events: &events,
        };
        let request = AppendRequest::one(&write, None);
        let fields_bytes = validate(&engine.options, &request).unwrap();
        let mut writer = engine.writer.as_ref().unwrap().lock().unwrap();
        writer.append(engine, &request, fields_bytes).unwrap();
    }

    fn one() -> [EventData; 1] {
        [EventData::new("E", vec![1])]
    }

    /// The documented rule for metadata that does not decode: the stream
    /// fails closed (reads, appends and truncation are refused with a
    /// typed error naming the metadata event), never a panic, and a
    /// deletion still works over it.
    #[test]
    fn unreadable_metadata_fails_closed_and_can_still_be_deleted() {
        let store = Store::in_memory(Options::default()).unwrap();
        store.append("cart", ExpectedVersion::Any, &one()).unwrap();
        store.truncate_stream("cart", 2).unwrap();
        append_as_the_store(&store, "$$cart", METADATA_EVENT_TYPE, &[0xC1, 0xFF]);
        let invalid = |result: Result<(), Error>| match result {
            Err(Error::InvalidStreamMetadata {
                stream,
                metadata_version,
                ..
            }) => assert_eq!((stream.as_str(), metadata_version), ("cart", 2)),
            other => panic!("expected InvalidStreamMetadata, got {other:?}"),
        };
        invalid(store.read_stream("cart", 1, 10).map(drop));
        invalid(store.read_stream_backward("cart", 9, 10).map(drop));
        invalid(store.append("cart", ExpectedVersion::Any, &one()).map(drop));
        invalid(store.truncate_stream("cart", 2).map(drop));
        let message = store.read_stream("cart", 1, 10).unwrap_err().to_string();
        assert!(message.contains("\"$$cart\""), "{message}");
        store.delete_stream("cart", ExpectedVersion::Any).unwrap();
        assert!(matches!(
            store.read_stream("cart", 1, 10),
            Err(Error::StreamDeleted { .. })
        ));
    }

    /// Only `$metadata` events count: another type in a metadata stream
    /// (a store written before `$` was reserved) is skipped, and the newest
    /// metadata event before it rules.
    #[test]
    fn other_event_types_in_a_metadata_stream_are_skipped() {
        let store = Store::in_memory(Options::default()).unwrap();
        let events: Vec<EventData> = (0..3).map(|i| EventData::new("E", vec![i])).collect();
        store.append("cart", ExpectedVersion::Any, &events).unwrap();
        store.truncate_stream("cart", 3).unwrap();
        append_as_the_store(&store, "$$cart", "SomethingElse", b"not metadata");
        let read = store.read_stream("cart", 1, 10).unwrap();
        assert_eq!(read.iter().map(|e| e.version).collect::<Vec<_>>(), [3]);
        // A metadata stream with no metadata event leaves its stream alone.
        store.append("plain", ExpectedVersion::Any, &one()).unwrap();
        append_as_the_store(&store, "$$plain", "SomethingElse", b"");
        assert_eq!(store.read_stream("plain", 1, 10).unwrap().len(), 1);
    }
}
