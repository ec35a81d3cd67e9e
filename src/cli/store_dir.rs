//! Opening a store directory for a command: writers may create a store in
//! an empty or missing directory, but never in a directory that holds
//! something else; readers open read-only, beside a writer. Both say on
//! stderr what open found that a crash leaves behind (the store's recovery
//! report), so that no command repairs or skips anything silently.

use std::io::Write;
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
    let store = Store::open(dir, options)?;
    print_recovery(&store, "recovered");
    Ok(store)
}

/// Opens the store in `dir` read-only (no lock; a writer may be appending).
/// It changes nothing: what a writer would discard is noted and not shown.
pub fn open_read_only(dir: &Path) -> Result<Store, Failure> {
    let store = Store::open_read_only(dir)?;
    print_recovery(&store, "note");
    Ok(store)
}

/// Prints each item of the store's recovery report on stderr, one line
/// each: `annals: {label}: {item}`. stdout is left to the command's output.
fn print_recovery(store: &Store, label: &str) {
    let mut stderr = std::io::stderr().lock();
    for item in &store.recovery_report().items {
        // A closed stderr must not stop the command (nor panic, as eprintln! would).
        let _ = writeln!(stderr, "annals: {label}: {item}");
    }
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
        if name == annals::LOCK_FILE_NAME || annals::is_segment_file_name(&name) {
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
