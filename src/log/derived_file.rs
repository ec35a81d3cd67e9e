//! Writing derived files (per-segment index files, the index checkpoint)
//! atomically: a temporary file, synced, renamed over the final name, the
//! directory synced. After a crash the final name holds either the old file
//! or the new one, whole; at worst a stray temporary file is left, which a
//! writer's open removes ([`is_derived_temp_name`]). Derived files are
//! checked against the log when read and rebuilt when in doubt, so this is
//! about not losing work, never about correctness of the log.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::ARCHIVE_PROGRESS_FILE_NAME;
use crate::format::checkpoint::CHECKPOINT_FILE_NAME;
use crate::format::index_file::parse_index_file_name;
use crate::format::key_file::KEY_FILE_NAME;
use crate::format::retention::RETENTION_FILE_NAME;
use crate::hooks::{DerivedFileStep, Hooks};

use super::directory::sync_dir;

/// Suffix of a derived file being written.
pub(crate) const DERIVED_TEMP_SUFFIX: &str = ".tmp";

/// Whether `name` (without a directory) is the temporary file of a file
/// annals writes atomically (this module): `<20 digits>.idx.tmp`,
/// `index.checkpoint.tmp`, `annals.retention.tmp`, `annals.keys.tmp` or
/// `annals.archive.tmp`.
/// Every walk lists them as temporary files, which a writer's open removes.
pub(crate) fn is_derived_temp_name(name: &str) -> bool {
    name.strip_suffix(DERIVED_TEMP_SUFFIX).is_some_and(|name| {
        name == CHECKPOINT_FILE_NAME
            || name == RETENTION_FILE_NAME
            || name == KEY_FILE_NAME
            || name == ARCHIVE_PROGRESS_FILE_NAME
            || parse_index_file_name(name).is_some()
    })
}

/// Copies the file `source` to `dir/name` atomically and durably, with the
/// steps and hooks of [`write_atomically`], streaming it rather than
/// holding it in memory. Returns the SHA-256 of the bytes copied, read from
/// the copy after it was synced, so that the caller can compare it with
/// the source's.
///
/// # Errors
/// As [`write_atomically`]; [`Error::Io`] when `source` cannot be read.
pub(crate) fn copy_atomically(
    source: &Path,
    dir: &Path,
    name: &str,
    hooks: &Hooks,
) -> Result<[u8; 32]> {
    replace_atomically(
        dir,
        name,
        hooks,
        ["writing copy", "syncing copy", "renaming copy"],
        |to| std::io::copy(&mut fs::File::open(source)?, to).map(drop),
        sha256_of_file,
    )
}

/// SHA-256 of a whole file, read in blocks.
///
/// # Errors
/// [`Error::Io`] when it cannot be read.
pub(crate) fn sha256_of_file(path: &Path) -> Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = fs::File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut block)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Writes `bytes` to `dir/name` atomically and durably: `name.tmp` created
/// (or truncated) and written, synced, renamed to `name`, and `dir` synced.
/// `hooks` are called before each step. On failure the temporary file is
/// removed (best effort) and `dir/name` is as it was, unless the failure was
/// the final directory sync (then the new file may or may not survive a
/// power loss).
///
/// # Errors
/// [`Error::NoSpace`] when the disk is full; [`Error::Io`] for any other
/// failure, naming the step and the file.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8], hooks: &Hooks) -> Result<()> {
    replace_atomically(
        dir,
        name,
        hooks,
        [
            "writing derived file",
            "syncing derived file",
            "renaming derived file",
        ],
        |file| file.write_all(bytes),
        |_| Ok(()),
    )
}

/// The one procedure behind [`write_atomically`] and [`copy_atomically`]:
/// `fill` writes the temporary file, which is synced, handed to `check`
/// (whose answer is returned), renamed over `name`, and the directory
/// synced; `actions` name the write, sync and rename steps in errors.
fn replace_atomically<T>(
    dir: &Path,
    name: &str,
    hooks: &Hooks,
    actions: [&'static str; 3],
    fill: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
    check: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}{DERIVED_TEMP_SUFFIX}"));
    let replaced = (|| {
        hooks
            .before_derived_file_step(&temp, DerivedFileStep::Write)
            .and_then(|()| {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&temp)?;
                fill(&mut file)?;
                Ok(file)
            })
            .map_err(|e| Error::io(actions[0], &temp, e))
            .and_then(|file| {
                hooks
                    .before_derived_file_step(&temp, DerivedFileStep::Sync)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io(actions[1], &temp, e))
            })?;
        let checked = check(&temp)?;
        hooks
            .before_derived_file_step(&path, DerivedFileStep::Rename)
            .and_then(|()| fs::rename(&temp, &path))
            .map_err(|e| Error::io(actions[2], &path, e))?;
        Ok(checked)
    })();
    let checked = match replaced {
        Ok(checked) => checked,
        Err(error) => {
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
    };
    hooks
        .before_derived_file_step(dir, DerivedFileStep::SyncDirectory)
        .map_err(|e| Error::io("syncing directory", dir, e))?;
    sync_dir(dir)?;
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::StorageHooks;
    use std::io;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    /// Records every step, and fails the one it is told to.
    #[derive(Default)]
    struct Recorder {
        steps: Mutex<Vec<(PathBuf, DerivedFileStep)>>,
        fail: Option<(DerivedFileStep, io::ErrorKind)>,
    }

    impl StorageHooks for Recorder {
        fn before_derived_file_step(&self, path: &Path, step: DerivedFileStep) -> io::Result<()> {
            self.steps.lock().unwrap().push((path.to_path_buf(), step));
            match self.fail {
                Some((failing, kind)) if failing == step => Err(io::Error::from(kind)),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn writes_replaces_and_calls_every_step_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let hooks = Hooks::new(recorder.clone());
        write_atomically(dir.path(), CHECKPOINT_FILE_NAME, b"first", &hooks).unwrap();
        // A stray temporary file from a crash is simply overwritten.
        fs::write(
            dir.path().join("index.checkpoint.tmp"),
            b"stale garbage, longer",
        )
        .unwrap();
        write_atomically(dir.path(), CHECKPOINT_FILE_NAME, b"second", &hooks).unwrap();
        assert_eq!(
            fs::read(dir.path().join(CHECKPOINT_FILE_NAME)).unwrap(),
            b"second"
        );
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [CHECKPOINT_FILE_NAME]);
        let temp = dir.path().join("index.checkpoint.tmp");
        let path = dir.path().join(CHECKPOINT_FILE_NAME);
        let expected = [
            (temp.clone(), DerivedFileStep::Write),
            (temp, DerivedFileStep::Sync),
            (path, DerivedFileStep::Rename),
            (dir.path().to_path_buf(), DerivedFileStep::SyncDirectory),
        ];
        assert_eq!(
            *recorder.steps.lock().unwrap(),
            [expected.clone(), expected].concat()
        );
    }

    #[test]
    fn a_failed_step_leaves_the_old_file_and_no_temporary() {
        for step in [
            DerivedFileStep::Write,
            DerivedFileStep::Sync,
            DerivedFileStep::Rename,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let name = crate::format::index_file::index_file_name(64);
            write_atomically(dir.path(), &name, b"old", &Hooks::default()).unwrap();
            let hooks = Hooks::new(Arc::new(Recorder {
                fail: Some((step, io::ErrorKind::Other)),
                ..Recorder::default()
            }));
            let error = write_atomically(dir.path(), &name, b"new", &hooks).unwrap_err();
            assert!(matches!(error, Error::Io { .. }), "{step:?}: {error}");
            assert_eq!(fs::read(dir.path().join(&name)).unwrap(), b"old");
            assert!(!dir.path().join(format!("{name}.tmp")).exists(), "{step:?}");
        }
    }

    #[test]
    fn a_full_disk_is_no_space() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks::new(Arc::new(Recorder {
            fail: Some((DerivedFileStep::Write, io::ErrorKind::StorageFull)),
            ..Recorder::default()
        }));
        let error = write_atomically(dir.path(), CHECKPOINT_FILE_NAME, b"x", &hooks).unwrap_err();
        assert!(matches!(error, Error::NoSpace { .. }), "{error}");
        let error = {
            let hooks = Hooks::new(Arc::new(Recorder {
                fail: Some((DerivedFileStep::SyncDirectory, io::ErrorKind::Other)),
                ..Recorder::default()
            }));
            write_atomically(dir.path(), CHECKPOINT_FILE_NAME, b"y", &hooks).unwrap_err()
        };
        assert!(error.to_string().contains("syncing directory"), "{error}");
    }

    #[test]
    fn temporary_names() {
        assert!(is_derived_temp_name("00000000000000000000.idx.tmp"));
        assert!(is_derived_temp_name("index.checkpoint.tmp"));
        assert!(!is_derived_temp_name("00000000000000000000.idx"));
        assert!(!is_derived_temp_name("00000000000000000000.seg.tmp"));
        assert!(!is_derived_temp_name("0.idx.tmp"));
        assert!(!is_derived_temp_name("index.checkpoint"));
        assert!(!is_derived_temp_name("annals.settings.tmp"));
        assert!(is_derived_temp_name("annals.archive.tmp"));
    }
}
