//! The data subjects' keys: what seals the data of events that name a
//! subject, and what [`crate::Store::erase_subject`] destroys
//! (crypto-shredding; `docs/compliance.md`, "Erasure").
//!
//! A store keeps its keys in its key file ([`FileKeys`], `annals.keys`,
//! `docs/format.md`), an in-memory store in memory ([`MemoryKeys`]); an
//! application can keep them elsewhere (a key management service, an HSM)
//! by implementing [`SubjectKeys`] and passing it in
//! [`crate::Options::subject_keys`].

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
pub use crate::format::key_file::MAX_SUBJECT_BYTES;
use crate::format::key_file::{self, KEY_FILE_NAME};
use crate::format::sealed_data::KEY_LEN;
use crate::hooks::Hooks;
use crate::log::derived_file::write_atomically;

/// A data subject's key: 32 random bytes (an XChaCha20-Poly1305 key).
pub type SubjectKey = [u8; KEY_LEN];

/// Where a store keeps its subjects' keys. Implementations must be durable
/// where they claim to be: the store writes data sealed with a key right
/// after [`SubjectKeys::get_or_create`] returns it, so a key it returned
/// must never be lost (short of [`SubjectKeys::destroy`]); and a destroyed
/// key must be gone for good, including from the implementation's own
/// backups, or erasure means nothing.
pub trait SubjectKeys: Send + Sync {
    /// `subject`'s key, created if it has none. A created key is durable
    /// before this returns.
    ///
    /// # Errors
    /// When the key cannot be stored or read.
    fn get_or_create(&self, subject: &str) -> Result<SubjectKey>;

    /// `subject`'s key, if it has one.
    ///
    /// # Errors
    /// When the keys cannot be read.
    fn get(&self, subject: &str) -> Result<Option<SubjectKey>>;

    /// Destroys `subject`'s key durably; returns whether it had one.
    ///
    /// # Errors
    /// When the key cannot be removed durably (it may then still exist).
    fn destroy(&self, subject: &str) -> Result<bool>;
}

/// An application-supplied [`SubjectKeys`], as [`crate::Options`] holds it.
/// Two are equal when they hold the same object.
#[derive(Clone)]
pub struct SharedKeys(pub Arc<dyn SubjectKeys>);

impl PartialEq for SharedKeys {
    fn eq(&self, other: &SharedKeys) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedKeys {}

impl fmt::Debug for SharedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKeys(application-supplied)")
    }
}

/// Keys in memory only: [`crate::Store::in_memory`]'s, and a model for tests.
#[derive(Default)]
pub struct MemoryKeys {
    keys: Mutex<HashMap<String, SubjectKey>>,
}

impl MemoryKeys {
    fn keys(&self) -> MutexGuard<'_, HashMap<String, SubjectKey>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SubjectKeys for MemoryKeys {
    fn get_or_create(&self, subject: &str) -> Result<SubjectKey> {
        let mut keys = self.keys();
        if let Some(key) = keys.get(subject) {
            return Ok(*key);
        }
        let key = new_key(Path::new("(memory)"))?;
        keys.insert(subject.to_string(), key);
        Ok(key)
    }

    fn get(&self, subject: &str) -> Result<Option<SubjectKey>> {
        Ok(self.keys().get(subject).copied())
    }

    fn destroy(&self, subject: &str) -> Result<bool> {
        Ok(self.keys().remove(subject).is_some())
    }
}

/// The key file of a store directory (`annals.keys`; `docs/format.md`).
///
/// A writer appends each new key and syncs it before handing it out;
/// destroying a key writes the file anew without it (a temporary file,
/// synced, renamed over the old one, the directory synced), so no copy of
/// the key stays in the file. The file is created with the first key: a
/// store whose events name no subject has none. A reader (read-only open)
/// reads it again when asked for a key it does not know, as a writer in
/// another process may have added it since.
pub struct FileKeys {
    dir: PathBuf,
    path: PathBuf,
    writable: bool,
    hooks: Hooks,
    state: Mutex<FileState>,
}

struct FileState {
    keys: HashMap<String, SubjectKey>,
    /// Bytes of the valid file (0: no file yet); where the next record goes.
    len: u64,
    /// Set when a failed write may have left bytes the file cannot be
    /// trusted beyond: every later change is refused until reopened.
    failed: Option<String>,
}

impl FileKeys {
    /// Opens the key file of the store in `dir`. A writable opener cuts a
    /// torn last record (a crash during an append whose key was never
    /// handed out) and removes a temporary file left by an interrupted
    /// rewrite.
    ///
    /// # Errors
    /// [`Error::KeyFile`] when the file is damaged; [`Error::Io`] when it
    /// cannot be read or repaired.
    pub fn open(dir: &Path, writable: bool, hooks: Hooks) -> Result<FileKeys> {
        let path = dir.join(KEY_FILE_NAME);
        let files = FileKeys {
            dir: dir.to_path_buf(),
            path,
            writable,
            hooks,
            state: Mutex::new(FileState {
                keys: HashMap::new(),
                len: 0,
                failed: None,
            }),
        };
        {
            let mut state = files.state();
            files.load(&mut state)?;
        }
        Ok(files)
    }

    fn state(&self) -> MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the file into `state` (a writer: cutting a torn last record).
    fn load(&self, state: &mut FileState) -> Result<()> {
        let mut bytes = Vec::new();
        match File::open(&self.path) {
            Ok(mut file) => file
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io("reading the key file", &self.path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                state.keys.clear();
                state.len = 0;
                return Ok(());
            }
            Err(e) => return Err(Error::io("opening the key file", &self.path, e)),
        };
        let decoded = key_file::decode(&bytes).map_err(|e| Error::KeyFile {
            path: self.path.clone(),
            offset: e.offset as u64,
            detail: e.problem,
        })?;
        if decoded.torn.is_some() && self.writable {
            // The torn record's key was never handed out (the append that
            // wrote it did not return): cut it, so that the next record
            // follows the valid ones.
            let file = OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|file| {
                    file.set_len(decoded.valid_len as u64)?;
                    file.sync_all()
                });
            file.map_err(|e| Error::io("cutting a torn record from the key file", &self.path, e))?;
        }
        state.keys = decoded.keys.into_iter().collect();
        state.len = decoded.valid_len as u64;
        Ok(())
    }

    fn check_writable(&self, state: &FileState) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        if let Some(cause) = &state.failed {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        Ok(())
    }

    /// Appends `subject`'s record and syncs it; creates the file first if
    /// there is none.
    fn append(&self, state: &mut FileState, subject: &str, key: &SubjectKey) -> Result<()> {
        if state.len == 0 {
            write_atomically(
                &self.dir,
                KEY_FILE_NAME,
                &key_file::encode_header(),
                &self.hooks,
            )?;
            state.len = key_file::KEY_FILE_HEADER_LEN as u64;
        }
        let mut record = Vec::new();
        key_file::encode_record(&mut record, subject, key);
        let written = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|mut file| {
                use std::io::{Seek, SeekFrom};
                file.seek(SeekFrom::Start(state.len))?;
                file.write_all(&record)?;
                file.sync_data()?;
                Ok(file)
            });
        match written {
            Ok(_) => {
                state.len += record.len() as u64;
                Ok(())
            }
            Err(error) => {
                // Part of the record may be in the file: cut it, or refuse
                // further changes (a retried fsync proves nothing).
                let cut = OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .and_then(|file| file.set_len(state.len));
                let error = Error::io("appending a key to the key file", &self.path, error);
                if cut.is_err() {
                    state.failed = Some(error.to_string());
                }
                Err(error)
            }
        }
    }
}

impl SubjectKeys for FileKeys {
    fn get_or_create(&self, subject: &str) -> Result<SubjectKey> {
        let mut state = self.state();
        if let Some(key) = state.keys.get(subject) {
            return Ok(*key);
        }
        self.check_writable(&state)?;
        let key = new_key(&self.path)?;
        self.append(&mut state, subject, &key)?;
        state.keys.insert(subject.to_string(), key);
        Ok(key)
    }

    fn get(&self, subject: &str) -> Result<Option<SubjectKey>> {
        let mut state = self.state();
        if let Some(key) = state.keys.get(subject) {
            return Ok(Some(*key));
        }
        if !self.writable {
            // A writer in another process may have added it since.
            self.load(&mut state)?;
        }
        Ok(state.keys.get(subject).copied())
    }

    fn destroy(&self, subject: &str) -> Result<bool> {
        let mut state = self.state();
        if !state.keys.contains_key(subject) {
            return Ok(false);
        }
        self.check_writable(&state)?;
        let mut kept: Vec<(&str, &SubjectKey)> = state
            .keys
            .iter()
            .filter(|(name, _)| name.as_str() != subject)
            .map(|(name, key)| (name.as_str(), key))
            .collect();
        // A deterministic order, so the same keys give the same file.
        kept.sort_unstable_by_key(|(name, _)| *name);
        let bytes = key_file::encode(kept);
        if let Err(error) = write_atomically(&self.dir, KEY_FILE_NAME, &bytes, &self.hooks) {
            // Only a failed directory sync leaves the new file in place
            // without knowing whether it survives a power loss: re-read.
            if fs::read(&self.path).is_ok_and(|now| now == bytes) {
                state.failed = Some(error.to_string());
            }
            return Err(error);
        }
        state.keys.remove(subject);
        state.len = bytes.len() as u64;
        Ok(true)
    }
}

/// A new random key.
fn new_key(path: &Path) -> Result<SubjectKey> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| Error::Io {
        action: "drawing a random subject key for",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(key)
}

/// Checks a subject named on an append or an erasure.
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty subject;
/// [`Error::LimitExceeded`] for one above [`MAX_SUBJECT_BYTES`].
pub(crate) fn validate_subject(subject: &str) -> Result<()> {
    if subject.is_empty() {
        return Err(Error::InvalidArgument("the subject is empty".into()));
    }
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(Error::LimitExceeded {
            limit: "keys::MAX_SUBJECT_BYTES (subject length)",
            actual: subject.len() as u64,
            max: MAX_SUBJECT_BYTES as u64,
        });
    }
    Ok(())
}
