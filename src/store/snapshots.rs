//! Saving and loading snapshots through the store.

use serde::Serialize;

use crate::codec::{Codec, MessagePack};
use crate::error::{Error, Result};
use crate::format::snapshot::SnapshotRecord;
use crate::snapshot::Snapshot;

use super::Store;

impl Store {
    /// Saves `data` as the snapshot of `stream` at `version`, unless a
    /// snapshot with a higher version is already stored; returns whether it
    /// was stored. Crash-safe: after a crash the previous snapshot or this one
    /// is there, never a mix. The log is made durable first, so a snapshot
    /// never survives a power loss that the events it covers do not.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    /// let store = Store::in_memory(Options::default())?;
    /// store.append("cart-1", ExpectedVersion::NoStream, &[EventData::new("Added", vec![1]), EventData::new("Added", vec![2])])?;
    /// store.save_snapshot_serde("cart-1", 2, &vec![1u8, 2])?;
    /// let snapshot = store.load_snapshot("cart-1")?.expect("saved above");
    /// assert_eq!((snapshot.version, snapshot.decode::<Vec<u8>>()?), (2, vec![1, 2]));
    /// let newer = store.read_stream("cart-1", snapshot.version + 1, usize::MAX)?;
    /// assert!(newer.is_empty());
    /// # Ok::<(), annals::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a version of 0 or above the stream's
    /// version; [`Error::LimitExceeded`] over `Limits::max_snapshot_bytes`,
    /// or when the stream id, content type and data together do not fit a
    /// snapshot file; [`Error::StreamDeleted`] for a deleted stream;
    /// [`Error::ReadOnly`]; [`Error::Io`].
    pub fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        data: &[u8],
        content_type: Option<&str>,
    ) -> Result<bool> {
        let engine = &*self.engine;
        if engine.is_read_only() {
            return Err(Error::ReadOnly {
                dir: engine.dir.clone(),
            });
        }
        // A deleted stream has no state to save (and unusable metadata
        // must not be read past).
        self.engine.read_state().index.live_metadata(stream)?;
        let actual = self.stream_version(stream);
        if version == 0 || version > actual {
            return Err(Error::InvalidArgument(format!(
                "a snapshot of stream {stream:?} at version {version}, but the stream is at version {actual}"
            )));
        }
        let max = engine.options.limits.max_snapshot_bytes;
        if data.len() > max {
            return Err(Error::LimitExceeded {
                limit: "Limits::max_snapshot_bytes",
                actual: data.len() as u64,
                max: max as u64,
            });
        }
        self.flush()?;
        let record = SnapshotRecord {
            stream,
            version,
            content_type,
            created_unix_ns: crate::engine::writer::now_ns(),
            data,
        };
        engine.snapshots.save(&record)
    }

    /// Saves `state` encoded as MessagePack as the snapshot of `stream` at
    /// `version`; see [`Store::save_snapshot`].
    ///
    /// # Errors
    /// As [`Store::save_snapshot`], and [`Error::Codec`].
    pub fn save_snapshot_serde<T: Serialize + ?Sized>(
        &self,
        stream: &str,
        version: u64,
        state: &T,
    ) -> Result<bool> {
        let data = MessagePack::encode(state)?;
        self.save_snapshot(stream, version, &data, Some(MessagePack::CONTENT_TYPE))
    }

    /// Loads the newest snapshot of `stream`, if any. Read the stream from
    /// `snapshot.version + 1` to bring it up to date. A snapshot for a
    /// version the stream does not have (the log was restored from an older
    /// copy than the snapshots) is not returned: it would describe events
    /// that do not exist.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the snapshot file when it is damaged
    /// (deleting it is safe: the state can be rebuilt from the events);
    /// [`Error::StreamDeleted`] for a deleted stream;
    /// [`Error::InvalidStreamMetadata`] when its metadata is unusable.
    pub fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>> {
        // A deleted stream's state is gone with it, snapshot included.
        self.engine.read_state().index.live_metadata(stream)?;
        let snapshot = self.engine.snapshots.load(stream)?;
        Ok(snapshot.filter(|s| s.version <= self.stream_version(stream)))
    }
}
