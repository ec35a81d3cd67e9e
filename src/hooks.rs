//! Fault injection for tests: the storage layer calls a [`StorageHooks`]
//! implementation around every allocation and every sync, so a test can make
//! the disk "full", make a sync fail, or keep its own image of what is durable
//! (to simulate a power loss, keeping only synced bytes).
//!
//! Production code never sets hooks; the default does nothing.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Observation and failure points of the storage layer. Every method has a
/// default that does nothing.
pub trait StorageHooks: Send + Sync {
    /// Called before `bytes` are preallocated for a new segment file at
    /// `path` (a temporary name). An error fails the allocation as the disk would.
    fn before_allocate(&self, _path: &Path, _bytes: u64) -> io::Result<()> {
        Ok(())
    }

    /// Called before `len` bytes at `offset` of the segment at `path` are
    /// synced. An error is treated exactly like a failed fdatasync.
    fn before_sync(&self, _path: &Path, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }

    /// Called after `len` bytes at `offset` of the segment at `path` became
    /// durable (including the header of a newly created segment, once its
    /// name is durable).
    fn after_sync(&self, _path: &Path, _offset: u64, _len: u64) {}

    /// Called before the segment at `path`, just sealed (its footer
    /// durable), is made read-only on disk. An error fails that change of
    /// permissions as the file system would.
    fn before_make_read_only(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    /// Called before each step of writing a derived file (an index file or
    /// the index checkpoint): `path` is the temporary file for
    /// [`DerivedFileStep::Write`] and [`DerivedFileStep::Sync`], the final
    /// name for [`DerivedFileStep::Rename`], and the directory for
    /// [`DerivedFileStep::SyncDirectory`]. An error fails that step as the
    /// operating system would.
    fn before_derived_file_step(&self, _path: &Path, _step: DerivedFileStep) -> io::Result<()> {
        Ok(())
    }

    /// Called before a file of the store is removed on purpose (a retired
    /// segment or its index file). An error fails the removal.
    fn before_remove_file(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    /// Called before each request of an archive push that changes the
    /// archive (`crate::archive`): putting the object `object` (its name
    /// within the target). An error fails that request as the object store
    /// would.
    fn before_archive_put(&self, _object: &str) -> io::Result<()> {
        Ok(())
    }

    /// Whether a seal hashes the sealed segment's events to record the
    /// Merkle tree in its index file (the default). `false` only to
    /// measure what that costs the writer (`benches/tree.rs`): the index
    /// files then record no tree, and the next writer's open rewrites them.
    fn record_tree_at_seal(&self) -> bool {
        true
    }
}

/// The steps of writing a derived file atomically, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DerivedFileStep {
    /// Creating (or truncating) the temporary file and writing its bytes.
    Write,
    /// Syncing the temporary file.
    Sync,
    /// Renaming the temporary file to its final name.
    Rename,
    /// Syncing the directory, making the rename durable.
    SyncDirectory,
}

/// An optional, shared [`StorageHooks`] implementation, as held by
/// [`crate::Options`]. Two `Hooks` are equal when they hold the same object.
#[derive(Clone, Default)]
pub struct Hooks(Option<Arc<dyn StorageHooks>>);

impl Hooks {
    /// Hooks that call `hooks`.
    // Without the feature `internals` nothing can set hooks: the default is
    // none, and only this crate's tests (which enable it) call this.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn new(hooks: Arc<dyn StorageHooks>) -> Hooks {
        Hooks(Some(hooks))
    }

    pub(crate) fn before_allocate(&self, path: &Path, bytes: u64) -> io::Result<()> {
        self.0
            .as_ref()
            .map_or(Ok(()), |h| h.before_allocate(path, bytes))
    }

    pub(crate) fn before_sync(&self, path: &Path, offset: u64, len: u64) -> io::Result<()> {
        self.0
            .as_ref()
            .map_or(Ok(()), |h| h.before_sync(path, offset, len))
    }

    pub(crate) fn after_sync(&self, path: &Path, offset: u64, len: u64) {
        if let Some(h) = &self.0 {
            h.after_sync(path, offset, len);
        }
    }

    pub(crate) fn before_make_read_only(&self, path: &Path) -> io::Result<()> {
        self.0
            .as_ref()
            .map_or(Ok(()), |h| h.before_make_read_only(path))
    }

    pub(crate) fn before_derived_file_step(
        &self,
        path: &Path,
        step: DerivedFileStep,
    ) -> io::Result<()> {
        self.0
            .as_ref()
            .map_or(Ok(()), |h| h.before_derived_file_step(path, step))
    }
}

impl Hooks {
    #[cfg_attr(not(feature = "object-storage"), allow(dead_code))]
    pub(crate) fn before_archive_put(&self, object: &str) -> io::Result<()> {
        self.0
            .as_ref()
            .map_or(Ok(()), |h| h.before_archive_put(object))
    }

    pub(crate) fn before_remove_file(&self, path: &Path) -> io::Result<()> {
        self.0
            .as_ref()
            .map_or(Ok(()), |h| h.before_remove_file(path))
    }

    pub(crate) fn record_tree_at_seal(&self) -> bool {
        self.0.as_ref().is_none_or(|h| h.record_tree_at_seal())
    }
}

impl PartialEq for Hooks {
    fn eq(&self, other: &Hooks) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Hooks {}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hooks(set)"
        } else {
            "Hooks(none)"
        })
    }
}
