//! Opening a store directory for a command, and the one place that tells
//! what a path is when it is not a store.
//!
//! Readers (`read`, `tail`, `stats`, `export`, `verify`) never create
//! anything: a missing directory, a regular file and a directory that holds
//! no store each get their own message (exit 1). Writers (`append`,
//! `import`) create a store only in an empty directory or in a missing one
//! whose parent exists (with `--create`, missing parents too), and say so,
//! so that a mistyped path does not silently become a new store. Every open
//! says on stderr what it found that a crash leaves behind (the store's
//! recovery report), so that no command repairs or skips anything silently.

use std::io::{ErrorKind, Write};
use std::path::Path;

use annals::{Options, Store};

use super::failure::Failure;

/// What a path holds, as far as opening a store is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathKind {
    /// Nothing there (or a component of the path is not a directory).
    Missing,
    /// Something that is not a directory (a regular file, a device, …).
    NotADirectory,
    /// A directory with no entries.
    EmptyDirectory,
    /// A directory with a segment file or the store's lock file.
    Store,
    /// A directory with other entries, but no segment file and no lock file.
    OtherDirectory,
}

/// Looks at `dir` (following symbolic links) without changing anything.
fn path_kind(dir: &Path) -> Result<PathKind, Failure> {
    let cannot_read =
        |e: std::io::Error| Failure::other(format!("{}: cannot read: {e}", dir.display()));
    match std::fs::metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => return Ok(PathKind::NotADirectory),
        Ok(_) => {}
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(PathKind::Missing);
        }
        Err(e) => return Err(cannot_read(e)),
    }
    let mut empty = true;
    for entry in std::fs::read_dir(dir).map_err(cannot_read)? {
        let name = entry.map_err(cannot_read)?.file_name();
        let name = name.to_string_lossy();
        if name == annals::LOCK_FILE_NAME || annals::is_segment_file_name(&name) {
            return Ok(PathKind::Store);
        }
        empty = false;
    }
    Ok(if empty {
        PathKind::EmptyDirectory
    } else {
        PathKind::OtherDirectory
    })
}

fn not_a_directory(dir: &Path) -> Failure {
    Failure::other(format!("{}: a file, not a store directory", dir.display()))
}

/// Checks that `dir` holds a store, for commands that only read: a store
/// directory has a segment file or the lock file (a writer creates the lock
/// first, then the first segment).
///
/// # Errors
/// A [`Failure`] (exit 1) naming what `dir` is instead: missing, not a
/// directory, empty, or holding other files.
pub fn check_store_to_read(dir: &Path) -> Result<(), Failure> {
    let shown = dir.display();
    match path_kind(dir)? {
        PathKind::Store => Ok(()),
        PathKind::Missing => Err(Failure::other(format!("{shown}: no such directory"))),
        PathKind::NotADirectory => Err(not_a_directory(dir)),
        PathKind::EmptyDirectory => Err(Failure::other(format!(
            "{shown}: not an annals store: the directory is empty"
        ))),
        PathKind::OtherDirectory => Err(Failure::other(format!(
            "{shown}: not an annals store: the directory holds no segment file \
             (like 00000000000000000000.seg) and no {}",
            annals::LOCK_FILE_NAME
        ))),
    }
}

/// How a writer may treat a directory that holds no store yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct Creation {
    /// Also create missing parent directories (`--create`).
    pub create_parents: bool,
}

/// Opens (or creates) the store in `dir` for writing; says on stderr when it
/// created a new store.
///
/// # Errors
/// A [`Failure`] when `dir` is a file, a directory that holds other files,
/// or a missing directory whose parent is missing too (unless
/// `create_parents`), or when the library refuses (locked: exit code 5,
/// corrupt: 4).
pub fn open_writable(dir: &Path, options: Options, creation: Creation) -> Result<Store, Failure> {
    let creating = check_store_to_write(dir, creation)?;
    let store = Store::open(dir, options.rebuild_index(rebuild_index()))?;
    if creating {
        say(&format!("created a new store in {}", dir.display()));
    }
    print_recovery(&store, "recovered");
    Ok(store)
}

/// Opens the existing store in `dir` for writing, never creating one: for
/// commands that change a store's streams (`truncate`, `delete-stream`).
///
/// # Errors
/// As [`check_store_to_read`], or when the library refuses (locked: exit
/// code 5, corrupt: 4).
pub fn open_existing_writable(dir: &Path, options: Options) -> Result<Store, Failure> {
    check_store_to_read(dir)?;
    let store = Store::open(dir, options.rebuild_index(rebuild_index()))?;
    print_recovery(&store, "recovered");
    Ok(store)
}

/// Checks that a writer may open `dir`; returns whether it creates a new
/// store there.
fn check_store_to_write(dir: &Path, creation: Creation) -> Result<bool, Failure> {
    match path_kind(dir)? {
        PathKind::Store => Ok(false),
        PathKind::EmptyDirectory => Ok(true),
        PathKind::NotADirectory => Err(not_a_directory(dir)),
        PathKind::OtherDirectory => Err(Failure::other(format!(
            "{}: not empty and holds no annals store (no segment files, no {}); \
             refusing to create a store among other files: use an empty or new directory",
            dir.display(),
            annals::LOCK_FILE_NAME
        ))),
        PathKind::Missing => {
            // `store` has the parent "" (the current directory), which exists.
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            let parent_exists = parent.is_none_or(|p| p.is_dir());
            if parent_exists || creation.create_parents {
                Ok(true)
            } else {
                Err(Failure::other(format!(
                    "{}: no such directory, nor its parent {}: check the path, \
                     or pass --create to create them",
                    dir.display(),
                    parent.map_or_else(String::new, |p| p.display().to_string())
                )))
            }
        }
    }
}

/// Opens the store in `dir` read-only (no lock; a writer may be appending).
/// It changes nothing: what a writer would discard is noted and not shown.
///
/// # Errors
/// As [`check_store_to_read`], or when the library refuses (corrupt: 4).
pub fn open_read_only(dir: &Path) -> Result<Store, Failure> {
    check_store_to_read(dir)?;
    let store = if rebuild_index() {
        Store::open_read_only_rebuilding_index(dir)?
    } else {
        Store::open_read_only(dir)?
    };
    print_recovery(&store, "note");
    Ok(store)
}

/// `--rebuild-index`, given to every command: set once, before any store
/// is opened.
static REBUILD_INDEX: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records `--rebuild-index` for every open of this command.
pub fn set_rebuild_index(rebuild: bool) {
    REBUILD_INDEX.store(rebuild, std::sync::atomic::Ordering::Relaxed);
}

fn rebuild_index() -> bool {
    REBUILD_INDEX.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints each item of the store's recovery report on stderr, one line
/// each: `annals: {label}: {item}`. stdout is left to the command's output.
fn print_recovery(store: &Store, label: &str) {
    for item in &store.recovery_report().items {
        say(&format!("{label}: {item}"));
    }
}

/// Prints `annals: {message}` on stderr.
fn say(message: &str) {
    // A closed stderr must not stop the command (nor panic, as eprintln! would).
    let _ = writeln!(std::io::stderr().lock(), "annals: {message}");
}
