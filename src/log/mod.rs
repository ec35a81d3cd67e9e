//! The log on disk: segment files, the store directory (listing, writer
//! lock) and, above the pure codec of [`crate::format`], the one scanner and
//! decision table that every reader of the log uses.

pub(crate) mod archived;
pub(crate) mod derived_file;
pub(crate) mod directory;
pub mod finding;
pub(crate) mod retention;
pub(crate) mod scan;
pub(crate) mod segment;
pub mod verdict;
pub(crate) mod walk;
