//! Snapshots: the state of a stream at a version, saved so that loading an
//! aggregate reads only the events after it.
//!
//! Each stream has at most one snapshot, the one with the highest version, in
//! `snapshots/<first 16 bytes of SHA-256(stream id), hex>.snap` (format in
//! `format::snapshot`). A snapshot is written to a temporary file, synced,
//! renamed over the old one and the directory synced, so a crash leaves
//! either the old snapshot or the new one, never a mix. Snapshots are caches:
//! deleting the `snapshots/` directory loses nothing but time.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::format::snapshot::{
    MAX_SNAPSHOT_BODY_LEN, SNAPSHOT_HEADER_LEN, SnapshotRecord, decode_snapshot, encode_snapshot,
};
use crate::log::finding::FindingKind;

/// Name of the directory holding snapshot files, inside the store directory.
pub const SNAPSHOT_DIR_NAME: &str = "snapshots";

const TEMP_SUFFIX: &str = ".tmp";

/// A snapshot loaded from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream it summarizes.
    pub stream: String,
    /// The stream version it reflects: read the stream from `version + 1` on.
    pub version: u64,
    /// How `data` is encoded, if recorded.
    pub content_type: Option<String>,
    /// When it was saved, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// The snapshot payload.
    pub data: Vec<u8>,
}

impl Snapshot {
    /// Decodes `data` according to its content type (MessagePack by default).
    ///
    /// # Errors
    /// [`Error::Codec`] when the data is not a valid encoding of `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        crate::codec::decode_by_content_type(self.content_type.as_deref(), &self.data).map_err(
            |e| {
                crate::codec::locate(e, || {
                    format!(
                        "snapshot of stream {:?} at version {}",
                        self.stream, self.version
                    )
                })
            },
        )
    }

    fn from_record(record: &SnapshotRecord<'_>) -> Snapshot {
        Snapshot {
            stream: record.stream.to_string(),
            version: record.version,
            content_type: record.content_type.map(str::to_string),
            created_unix_ns: record.created_unix_ns,
            data: record.data.to_vec(),
        }
    }
}

/// Where a store keeps its snapshots.
pub(crate) enum SnapshotStore {
    /// Files in `<store>/snapshots/`; `save_lock` serializes saves.
    Directory { dir: PathBuf, save_lock: Mutex<()> },
    /// Encoded snapshot files in memory, for [`crate::Store::in_memory`].
    Memory(Mutex<HashMap<String, Vec<u8>>>),
}

impl SnapshotStore {
    /// The snapshot store of the store directory `store_dir`. A writer
    /// (`writable`) removes temporary files left by an interrupted save.
    pub fn open(store_dir: &Path, writable: bool) -> Result<SnapshotStore> {
        let dir = store_dir.join(SNAPSHOT_DIR_NAME);
        if writable && dir.is_dir() {
            for entry in fs::read_dir(&dir).map_err(|e| Error::io("listing snapshots", &dir, e))? {
                let path = entry
                    .map_err(|e| Error::io("listing snapshots", &dir, e))?
                    .path();
                if path.extension().is_some_and(|x| x == &TEMP_SUFFIX[1..]) {
                    fs::remove_file(&path)
                        .map_err(|e| Error::io("removing interrupted snapshot", &path, e))?;
                }
            }
        }
        Ok(SnapshotStore::Directory {
            dir,
            save_lock: Mutex::new(()),
        })
    }

    /// Saves a snapshot unless one with a higher version is stored; returns
    /// whether it was stored. The caller has validated the version and the
    /// payload's size; a snapshot too large for its file is
    /// [`Error::LimitExceeded`], found before encoding.
    pub fn save(&self, record: &SnapshotRecord<'_>) -> Result<bool> {
        let bytes = encode_snapshot(record).map_err(|e| Error::LimitExceeded {
            limit: "snapshot file body (stream id, content type and data; \
                    format::snapshot::MAX_SNAPSHOT_BODY_LEN)",
            actual: e.body_len_bound,
            max: MAX_SNAPSHOT_BODY_LEN,
        })?;
        match self {
            SnapshotStore::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(existing) = map.get(record.stream)
                    && decode_snapshot(existing).is_ok_and(|e| e.version > record.version)
                {
                    return Ok(false);
                }
                map.insert(record.stream.to_string(), bytes);
                Ok(true)
            }
            SnapshotStore::Directory { dir, save_lock } => {
                let _guard = save_lock.lock().unwrap_or_else(|p| p.into_inner());
                if let Ok(Some(existing)) = self.load(record.stream)
                    && existing.version > record.version
                {
                    return Ok(false);
                }
                let created = !dir.is_dir();
                fs::create_dir_all(dir)
                    .map_err(|e| Error::io("creating snapshot directory", dir, e))?;
                if created {
                    crate::log::directory::sync_dir(dir.parent().unwrap_or(dir))?;
                }
                let path = file_path(dir, record.stream);
                let temp = path.with_extension(&TEMP_SUFFIX[1..]);
                let write = || -> std::io::Result<()> {
                    let file = fs::File::create(&temp)?;
                    std::io::Write::write_all(&mut &file, &bytes)?;
                    file.sync_all()
                };
                write().map_err(|e| Error::io("writing snapshot", &temp, e))?;
                fs::rename(&temp, &path).map_err(|e| Error::io("renaming snapshot", &path, e))?;
                crate::log::directory::sync_dir(dir)?;
                Ok(true)
            }
        }
    }

    /// Loads the snapshot of `stream`, if any. Any snapshot the format can
    /// hold is accepted, whatever the limits of this store: a writer with
    /// larger `Limits::max_snapshot_bytes` may have saved it, and a
    /// read-only store has only the default limits.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file when it does not decode (delete it
    /// to rebuild the state from the events).
    pub fn load(&self, stream: &str) -> Result<Option<Snapshot>> {
        let (bytes, path) = match self {
            SnapshotStore::Memory(map) => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                match map.get(stream) {
                    Some(bytes) => (bytes.clone(), PathBuf::from("(memory)")),
                    None => return Ok(None),
                }
            }
            SnapshotStore::Directory { dir, .. } => {
                let path = file_path(dir, stream);
                let len = match fs::metadata(&path) {
                    Ok(metadata) => metadata.len(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(Error::io("reading snapshot", &path, e)),
                };
                // Checked before reading: never allocate more than the
                // format's own cap because a file says so.
                let max = SNAPSHOT_HEADER_LEN as u64 + MAX_SNAPSHOT_BODY_LEN;
                if len > max {
                    return Err(Error::found(
                        &path,
                        0,
                        None,
                        FindingKind::InvalidSnapshot {
                            detail: format!("the file is {len} bytes, over the limit of {max}"),
                        },
                    ));
                }
                (
                    fs::read(&path).map_err(|e| Error::io("reading snapshot", &path, e))?,
                    path,
                )
            }
        };
        let record = decode_snapshot(&bytes).map_err(|e| {
            Error::found(
                &path,
                0,
                None,
                FindingKind::InvalidSnapshot {
                    detail: e.to_string(),
                },
            )
        })?;
        if record.stream != stream {
            // A hash collision of file names: this stream has no snapshot.
            return Ok(None);
        }
        Ok(Some(Snapshot::from_record(&record)))
    }
}

/// The file holding `stream`'s snapshot.
fn file_path(dir: &Path, stream: &str) -> PathBuf {
    let hash = <sha2::Sha256 as sha2::Digest>::digest(stream.as_bytes());
    let name: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.snap"))
}
