//! [`AnnalsViewRepository`]: cqrs-es's `ViewRepository` (the storage of a
//! `GenericQuery`'s views) on small files of its own, with optimistic
//! versions, and a checkpoint for resuming replays.

use std::collections::HashMap;
use std::fs::{self, File, TryLockError};
use std::future::Future;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cqrs_es::persist::{PersistenceError, ViewContext, ViewRepository};
use cqrs_es::{Aggregate, View};

use crate::error::Error;
use crate::log::directory::sync_dir;

use super::blocking::run_blocking;
use super::view_record::{MAX_VIEW_FILE_BYTES, ViewRecord, decode_view_record, encode_view_record};

/// The lock file a view directory's owner holds (exclusively) while open.
pub const VIEW_LOCK_FILE_NAME: &str = "views.lock";
/// The file holding the checkpoint, in a view directory.
const CHECKPOINT_FILE_NAME: &str = "checkpoint";
/// The extension of view files (`<32 hex digits>.view`).
const VIEW_EXTENSION: &str = "view";
/// The extension of a file being written, renamed into place once synced.
const TEMP_EXTENSION: &str = "tmp";

/// Views of one type stored in a directory of their own, one small file per
/// view, for cqrs-es's `GenericQuery`: annals' counterpart of postgres-es's
/// `PostgresViewRepository` (where a view type is a table).
///
/// - **Optimistic versions.** A view's version counts its updates: 1 after
///   the first. `update_view` writes only if the view is still at the
///   version it was loaded at (0: it must not exist yet); otherwise it
///   writes nothing and returns `OptimisticLockError`, as postgres-es does.
///   (`GenericQuery` hands such an error to its error handler.)
/// - **Crash safety.** Each update is written to a temporary file, synced,
///   renamed over the view's file, and the directory synced: after a crash
///   a view is at its old version or its new one, never a mix. Every file
///   is checksummed; a damaged one is an error naming it (delete it, or the
///   directory, and replay to rebuild).
/// - **One owner.** Opening takes an exclusive lock on `views.lock` in the
///   directory: a second open (in this process or another) is refused with
///   [`Error::Locked`]. Clone the repository to share it; the lock is
///   released when the last clone is dropped.
/// - **A checkpoint.** [`AnnalsViewRepository::checkpoint`] and
///   [`AnnalsViewRepository::save_checkpoint`] keep the position to resume
///   replays from ([`super::AnnalsEventRepository::replay_from`]).
///
/// Each update costs two syncs (the file and the directory); a replay of
/// many events updates a view per run of one aggregate's events.
///
/// ```
/// use std::sync::Arc;
/// use annals::cqrs::{AnnalsEventRepository, AnnalsViewRepository, annals_cqrs};
/// use annals::{Options, Store};
/// use cqrs_es::persist::GenericQuery;
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
/// #     type Command = i64; type Event = Deposited; type Error = Never; type Services = ();
/// #     async fn handle(&mut self, cents: i64, _: &(), sink: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Never> {
/// #         sink.write(Deposited(cents), self).await;
/// #         Ok(())
/// #     }
/// #     fn apply(&mut self, _: Deposited) {}
/// # }
/// #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
/// struct Balance { cents: i64 }
///
/// impl cqrs_es::View<Account> for Balance {
///     fn update(&mut self, event: &cqrs_es::EventEnvelope<Account>) {
///         self.cents += event.payload.0;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let events = AnnalsEventRepository::open(dir.path().join("events"), Options::default()).await?;
/// // was: PostgresViewRepository::new("balance", pool)
/// let views = Arc::new(AnnalsViewRepository::<Balance, Account>::open(dir.path().join("balance")).await?);
/// let query = GenericQuery::new(Arc::clone(&views));
/// let cqrs = annals_cqrs(events, vec![Box::new(query)], ())?;
/// cqrs.execute("ada", 250).await?;
/// let balance = cqrs_es::persist::ViewRepository::load(&*views, "ada").await?;
/// assert_eq!(balance.map(|b| b.cents), Some(250));
/// # Ok(())
/// # }
/// ```
pub struct AnnalsViewRepository<V, A> {
    files: Arc<ViewFiles>,
    types: PhantomData<fn() -> (V, A)>,
}

impl<V, A> Clone for AnnalsViewRepository<V, A> {
    fn clone(&self) -> Self {
        AnnalsViewRepository {
            files: Arc::clone(&self.files),
            types: PhantomData,
        }
    }
}

impl<V: View<A>, A: Aggregate> AnnalsViewRepository<V, A> {
    /// Opens (creating it if needed) the view directory `dir`, on tokio's
    /// blocking pool: takes its lock and removes temporary files an
    /// interrupted update left.
    ///
    /// # Errors
    /// [`Error::Locked`] if the directory is open already (in this process
    /// or another); [`Error::InvalidArgument`] if `dir` is a file or when not
    /// awaited inside a tokio runtime; [`Error::Io`].
    pub fn open(
        dir: impl AsRef<Path>,
    ) -> impl Future<Output = Result<AnnalsViewRepository<V, A>, Error>> + Send + 'static {
        let dir = dir.as_ref().to_path_buf();
        async move {
            let files = run_blocking("opening the view directory", &dir.clone(), move || {
                ViewFiles::open(dir)
            })
            .await?;
            Ok(AnnalsViewRepository {
                files: Arc::new(files),
                types: PhantomData,
            })
        }
    }

    /// A repository whose views live in memory only, for tests of code
    /// that uses one. It behaves as a file repository (versions, limits)
    /// but nothing survives it.
    pub fn in_memory() -> AnnalsViewRepository<V, A> {
        AnnalsViewRepository {
            files: Arc::new(ViewFiles::Memory {
                records: Mutex::default(),
                write: Mutex::default(),
            }),
            types: PhantomData,
        }
    }

    /// The view directory; `None` for an in-memory repository.
    pub fn dir(&self) -> Option<&Path> {
        match &*self.files {
            ViewFiles::Directory { dir, .. } => Some(dir),
            ViewFiles::Memory { .. } => None,
        }
    }

    /// The position saved by [`AnnalsViewRepository::save_checkpoint`]; 0
    /// if none was saved (replay from the beginning).
    ///
    /// # Errors
    /// [`Error::Codec`] naming the file if it is damaged; [`Error::Io`].
    pub async fn checkpoint(&self) -> Result<u64, Error> {
        let files = Arc::clone(&self.files);
        let record = self
            .blocking("reading the checkpoint in", move || {
                files.read(&Key::Checkpoint)
            })
            .await?;
        Ok(record.map_or(0, |(version, _)| version))
    }

    /// Saves `position` as the position to resume replays from, durably
    /// (after the view updates before it, which are durable already).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub async fn save_checkpoint(&self, position: u64) -> Result<(), Error> {
        let files = Arc::clone(&self.files);
        self.blocking("saving the checkpoint in", move || {
            files.write(&Key::Checkpoint, position, &[])
        })
        .await
    }

    async fn blocking<T, F>(&self, action: &'static str, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, Error> + Send + 'static,
    {
        let path = self
            .dir()
            .map_or_else(|| PathBuf::from("(memory)"), Path::to_path_buf);
        run_blocking(action, &path, work).await
    }

    /// The view and its version, if stored.
    async fn load_versioned(&self, view_id: &str) -> Result<Option<(V, i64)>, Error> {
        let files = Arc::clone(&self.files);
        let key = Key::View(view_id.to_string());
        let (record, key) = self
            .blocking("reading a view in", move || {
                let record = files.read(&key)?;
                Ok((record, key))
            })
            .await?;
        let Some((version, payload)) = record else {
            return Ok(None);
        };
        let version = i64::try_from(version).map_err(|_| Error::Codec {
            message: format!(
                "{}: view version {version} is over i64::MAX; delete the file and replay",
                self.files.describe(&key)
            ),
        })?;
        let view = serde_json::from_slice(&payload).map_err(|e| Error::Codec {
            message: format!(
                "{} does not hold a view of this type: {e}; delete it and replay to rebuild it",
                self.files.describe(&key)
            ),
        })?;
        Ok(Some((view, version)))
    }
}

impl<V: View<A>, A: Aggregate> ViewRepository<V, A> for AnnalsViewRepository<V, A> {
    /// The view, if stored.
    async fn load(&self, view_id: &str) -> Result<Option<V>, PersistenceError> {
        Ok(self.load_versioned(view_id).await?.map(|(view, _)| view))
    }

    /// The view and its version, if stored.
    async fn load_with_context(
        &self,
        view_id: &str,
    ) -> Result<Option<(V, ViewContext)>, PersistenceError> {
        Ok(self
            .load_versioned(view_id)
            .await?
            .map(|(view, version)| (view, ViewContext::new(view_id.to_string(), version))))
    }

    /// Stores the view at `context.version + 1` if it is still at
    /// `context.version` (0: not stored yet); otherwise writes nothing and
    /// returns `OptimisticLockError`.
    async fn update_view(&self, view: V, context: ViewContext) -> Result<(), PersistenceError> {
        let expected = u64::try_from(context.version).map_err(|_| {
            Error::InvalidArgument(format!(
                "view {:?}: a negative version ({}) in its context",
                context.view_instance_id, context.version
            ))
        })?;
        let next = i64::try_from(expected)
            .ok()
            .and_then(|version| version.checked_add(1))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "view {:?} is at the largest version",
                    context.view_instance_id
                ))
            })?;
        let payload = serde_json::to_vec(&view)?;
        let files = Arc::clone(&self.files);
        let key = Key::View(context.view_instance_id);
        let written = self
            .blocking("writing a view in", move || {
                files.write_if_at(&key, expected, next as u64, &payload)
            })
            .await?;
        if written {
            Ok(())
        } else {
            Err(PersistenceError::OptimisticLockError)
        }
    }
}

/// What a record is: a view, or the checkpoint.
enum Key {
    View(String),
    Checkpoint,
}

impl Key {
    /// The id stored in the record (the checkpoint's is empty: its file
    /// name, not a hash, tells it from views).
    fn id(&self) -> &str {
        match self {
            Key::View(id) => id,
            Key::Checkpoint => "",
        }
    }

    fn file_name(&self) -> String {
        match self {
            Key::View(id) => {
                let hash = <sha2::Sha256 as sha2::Digest>::digest(id.as_bytes());
                let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
                format!("{hex}.{VIEW_EXTENSION}")
            }
            Key::Checkpoint => CHECKPOINT_FILE_NAME.to_string(),
        }
    }
}

/// Where the records live.
enum ViewFiles {
    /// One file per record in `dir`. `_lock` holds the directory's lock
    /// for as long as the repository lives; `write` serializes the
    /// check-and-write of updates.
    Directory {
        dir: PathBuf,
        _lock: File,
        write: Mutex<()>,
    },
    /// Records in memory (encoded, as files would be), by file name;
    /// `write` as for a directory.
    Memory {
        records: Mutex<HashMap<String, Vec<u8>>>,
        write: Mutex<()>,
    },
}

impl ViewFiles {
    fn open(dir: PathBuf) -> Result<ViewFiles, Error> {
        match fs::metadata(&dir) {
            Ok(metadata) if !metadata.is_dir() => {
                return Err(Error::InvalidArgument(format!(
                    "{} is a file, not a view directory",
                    dir.display()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir)
                    .map_err(|e| Error::io("creating the view directory", &dir, e))?;
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    sync_dir(parent)?;
                }
            }
            Err(e) => return Err(Error::io("opening the view directory", &dir, e)),
        }
        let lock_path = dir.join(VIEW_LOCK_FILE_NAME);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("opening the view lock file", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::Locked { dir }),
            Err(TryLockError::Error(e)) => {
                return Err(Error::io("locking the view directory", &lock_path, e));
            }
        }
        // Temporary files of updates a crash interrupted: their renames
        // never happened, so the views they were for are at their old
        // version.
        for entry in fs::read_dir(&dir).map_err(|e| Error::io("listing views", &dir, e))? {
            let path = entry
                .map_err(|e| Error::io("listing views", &dir, e))?
                .path();
            if path.extension().is_some_and(|x| x == TEMP_EXTENSION) {
                fs::remove_file(&path)
                    .map_err(|e| Error::io("removing an interrupted view update", &path, e))?;
            }
        }
        Ok(ViewFiles::Directory {
            dir,
            _lock: lock,
            write: Mutex::new(()),
        })
    }

    /// Names the record of `key` in messages.
    fn describe(&self, key: &Key) -> String {
        match (self, key) {
            (ViewFiles::Directory { dir, .. }, _) => {
                format!("the view file {}", dir.join(key.file_name()).display())
            }
            (ViewFiles::Memory { .. }, Key::View(id)) => format!("the in-memory view {id:?}"),
            (ViewFiles::Memory { .. }, Key::Checkpoint) => "the in-memory checkpoint".into(),
        }
    }

    /// The version and payload of `key`'s record, if stored.
    fn read(&self, key: &Key) -> Result<Option<(u64, Vec<u8>)>, Error> {
        let bytes = match self {
            ViewFiles::Memory { records, .. } => {
                let records = records.lock().unwrap_or_else(|p| p.into_inner());
                match records.get(&key.file_name()) {
                    Some(bytes) => bytes.clone(),
                    None => return Ok(None),
                }
            }
            ViewFiles::Directory { dir, .. } => {
                let path = dir.join(key.file_name());
                let len = match fs::metadata(&path) {
                    Ok(metadata) => metadata.len(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(Error::io("reading a view", &path, e)),
                };
                // Checked before reading: never allocate what a file
                // claims beyond what a record can be.
                if len > MAX_VIEW_FILE_BYTES {
                    return Err(Error::Codec {
                        message: format!(
                            "{} is {len} bytes, over the largest view record \
                             ({MAX_VIEW_FILE_BYTES}); delete it and replay to rebuild it",
                            self.describe(key)
                        ),
                    });
                }
                match fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(Error::io("reading a view", &path, e)),
                }
            }
        };
        let record = decode_view_record(&bytes).map_err(|cause| Error::Codec {
            message: format!(
                "{} is damaged: {cause}; delete it and replay to rebuild it",
                self.describe(key)
            ),
        })?;
        if record.id != key.id() {
            // Another view id with the same file name hash: this one is
            // not stored.
            return Ok(None);
        }
        Ok(Some((record.version, record.payload.to_vec())))
    }

    /// Writes `key`'s record at `version` if it is stored at `expected` (0:
    /// not stored); returns whether it wrote.
    fn write_if_at(
        &self,
        key: &Key,
        expected: u64,
        version: u64,
        payload: &[u8],
    ) -> Result<bool, Error> {
        let _serialized = self.write_guard();
        let stored = self.read(key)?.map_or(0, |(version, _)| version);
        if stored != expected {
            return Ok(false);
        }
        self.write_unguarded(key, version, payload)?;
        Ok(true)
    }

    /// Writes `key`'s record at `version`, whatever is stored.
    fn write(&self, key: &Key, version: u64, payload: &[u8]) -> Result<(), Error> {
        let _serialized = self.write_guard();
        self.write_unguarded(key, version, payload)
    }

    fn write_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        let (ViewFiles::Directory { write, .. } | ViewFiles::Memory { write, .. }) = self;
        write.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a record; the caller holds the write guard.
    fn write_unguarded(&self, key: &Key, version: u64, payload: &[u8]) -> Result<(), Error> {
        let bytes = encode_view_record(&ViewRecord {
            id: key.id(),
            version,
            payload,
        })
        .map_err(|too_large| Error::LimitExceeded {
            limit: too_large.limit,
            actual: too_large.actual as u64,
            max: too_large.max as u64,
        })?;
        match self {
            ViewFiles::Memory { records, .. } => {
                let mut records = records.lock().unwrap_or_else(|p| p.into_inner());
                records.insert(key.file_name(), bytes);
                Ok(())
            }
            ViewFiles::Directory { dir, .. } => {
                let path = dir.join(key.file_name());
                let temp = path.with_extension(TEMP_EXTENSION);
                let write = || -> std::io::Result<()> {
                    let file = File::create(&temp)?;
                    std::io::Write::write_all(&mut &file, &bytes)?;
                    file.sync_all()
                };
                write().map_err(|e| Error::io("writing a view", &temp, e))?;
                fs::rename(&temp, &path).map_err(|e| Error::io("renaming a view", &path, e))?;
                sync_dir(dir)
            }
        }
    }
}
