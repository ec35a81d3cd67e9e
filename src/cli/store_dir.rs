//! Opening a store directory for a command: writers may create a store in
//! an empty or missing directory, but never in a directory that holds
//! something else; readers open read-only, beside a writer.

use std::path::Path;

use annals::{Options, Store};

use super::failure::Failure;

/// Opens (or creates) the store in `dir` for writing.
///
/// # Errors
/// A [`Failure`] when `dir` is not empty and holds no store, or when the
/// library refuses (locked: exit code 5, corrupt: 4).
pub fn open_writable(dir: &Path, options: Options) -> Result<Store, Failure> {
    check_store_or_empty(dir)?;
    Ok(Store::open(dir, options)?)
}

/// Opens the store in `dir` read-only (no lock; a writer may be appending).
pub fn open_read_only(dir: &Path) -> Result<Store, Failure> {
    Ok(Store::open_read_only(dir)?)
}

/// Refuses a directory that exists, is not empty, and holds neither a
/// segment file nor the store's lock file: creating a store there would mix
/// it with someone else's files.
pub fn check_store_or_empty(dir: &Path) -> Result<(), Failure> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(Failure::other(format!(
                "cannot read directory {}: {error}",
                dir.display()
            )));
        }
    };
    let mut empty = true;
    for entry in entries {
        let entry = entry
            .map_err(|e| Failure::other(format!("cannot read directory {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == annals::LOCK_FILE_NAME
            || annals::format::parse_segment_file_name(&name).is_some()
        {
            return Ok(());
        }
        empty = false;
    }
    if empty {
        Ok(())
    } else {
        Err(Failure::other(format!(
            "{} is not empty and holds no annals store (no segment files, no {}); \
             refusing to create a store among other files: use an empty or new directory",
            dir.display(),
            annals::LOCK_FILE_NAME
        )))
    }
}
