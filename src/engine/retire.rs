//! Retiring whole sealed segments from the front of the log (retention):
//! the one way annals frees disk space. Positions never change; the log
//! then starts at the first kept segment, from the state the retention
//! manifest records at the cut ([`crate::format::retention`]).
//!
//! The steps, and what a crash after each leaves (every opener judges by
//! the manifest, [`crate::log::retention`]):
//! 1. with an archive, each segment is copied there (temporary name,
//!    synced, renamed, directory synced) and the copy's SHA-256 compared
//!    with the original's: a crash leaves the store as it was, and at
//!    worst a copy or a temporary file in the archive;
//! 2. the manifest, with the new record, is written atomically: the commit
//!    point. Before it the store is as it was; after it the log starts at
//!    the cut, and segment files before it are leftovers;
//! 3. the index checkpoint is rewritten without the retired segments (a
//!    crash before leaves one that still covers them: open skips them);
//! 4. each retired segment's index file and segment file are removed, then
//!    the directory synced: a crash in between leaves files before the cut
//!    that the manifest records, which a writer's open removes
//!    ([`crate::FindingKind::RetiredSegment`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::chain;
use crate::format::index_file::index_file_name;
use crate::format::retention::{
    ByteBuf, FirstEvent, MAX_RETENTION_REASON_BYTES, RETENTION_FILE_NAME, RetentionManifest,
    RetiredSegment, RetirementRecord,
};
use crate::log::derived_file;
use crate::log::directory::sync_dir;
use crate::log::retention;
use crate::proof::merkle::Frontier;

use super::Engine;
use super::index_files::footer_of;
use super::writer::now_ns;

/// How to retire segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetireOptions {
    /// Why, recorded in the retention manifest (at most
    /// 4,096 bytes, `MAX_RETENTION_REASON_BYTES` in `annals.retention`).
    pub reason: String,
    /// A directory to move the segments to (copied, synced and checked
    /// there before they are removed from the store); `None` deletes them.
    pub archive: Option<PathBuf>,
}

/// A retirement: made, or planned (a dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    /// Position of the first event kept: where the log starts after it.
    pub first_retained_position: u64,
    /// The segments retired (or to be), oldest first; empty when no whole
    /// sealed segment lies before the position asked for.
    pub segments: Vec<RetiredFile>,
    /// Where they were (or would be) archived.
    pub archive: Option<PathBuf>,
    /// Whether it was carried out (`false`: a plan).
    pub done: bool,
}

/// One segment file of a [`Retirement`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredFile {
    /// The segment file in the store.
    pub path: PathBuf,
    /// Position of its first event.
    pub base_position: u64,
    /// Its number of events.
    pub event_count: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Timestamp of its last event (0 when it has none).
    pub last_timestamp_ns: u64,
}

impl Retirement {
    /// Bytes of disk space the retirement frees in the store.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Events retired.
    pub fn event_count(&self) -> u64 {
        self.segments.iter().map(|s| s.event_count).sum()
    }
}

/// What a plan knows of a segment beyond what it reports.
struct Planned {
    file: RetiredFile,
    segment: Arc<crate::log::segment::Segment>,
}

impl Engine {
    /// The segments a retirement before `before_position` would remove,
    /// changing nothing: every sealed segment all of whose events lie
    /// before it. Returns the plan and the ordinal of the first kept segment.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] for a read-only store; [`Error::InvalidArgument`]
    /// for an in-memory store, or a position inside the active segment.
    pub(crate) fn plan_retirement(
        &self,
        before_position: u64,
        archive: Option<&Path>,
    ) -> Result<Retirement> {
        Ok(self.plan(before_position, archive)?.0)
    }

    fn plan(
        &self,
        before_position: u64,
        archive: Option<&Path>,
    ) -> Result<(Retirement, Vec<Planned>, usize)> {
        if self.writer.is_none() {
            return Err(Error::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        if self.in_memory {
            return Err(Error::InvalidArgument(
                "an in-memory store keeps no segment files to retire".to_string(),
            ));
        }
        let state = self.read_state();
        let index = &state.index;
        let newest = index.segments.len() - 1;
        let active_base = index.segments[newest].base_position;
        if before_position > active_base {
            return Err(Error::InvalidArgument(format!(
                "position {before_position} is in the active segment {} (it starts at position \
                 {active_base}): only whole sealed segments can be retired, so retire before \
                 {active_base} at most; nothing was retired",
                state.segments[newest].path.display()
            )));
        }
        let first = index.retained_from();
        let keep_from = first
            + index.segments[first..newest]
                .iter()
                .take_while(|segment| segment.end_position() <= before_position)
                .count();
        let planned: Vec<Planned> = (first..keep_from)
            .map(|ordinal| {
                let segment = &state.segments[ordinal];
                let stats = &index.segments[ordinal];
                Planned {
                    file: RetiredFile {
                        path: segment.path.clone(),
                        base_position: stats.base_position,
                        event_count: stats.event_count,
                        bytes: segment.file_len(),
                        last_timestamp_ns: stats.last_timestamp_ns,
                    },
                    segment: Arc::clone(segment),
                }
            })
            .collect();
        let retirement = Retirement {
            first_retained_position: index.segments[keep_from].base_position,
            segments: planned.iter().map(|p| p.file.clone()).collect(),
            archive: archive.map(Path::to_path_buf),
            done: false,
        };
        Ok((retirement, planned, keep_from))
    }

    /// Retires every sealed segment all of whose events lie before
    /// `before_position` (see the module docs for the steps).
    ///
    /// # Errors
    /// As [`Engine::plan_retirement`]; [`Error::InvalidArgument`] for a
    /// reason too long or an archive that is not a directory or holds a
    /// different file under a segment's name; [`Error::Io`] /
    /// [`Error::NoSpace`] when a step fails (the store is then as before
    /// the manifest was written, or after it: both open).
    pub(crate) fn retire(
        &self,
        before_position: u64,
        options: &RetireOptions,
    ) -> Result<Retirement> {
        self.retire_checked(before_position, options, None, &|_| Ok(()))
    }

    /// [`Engine::retire`], calling `check` with the segments to retire
    /// (their names, lengths and SHA-256 as the manifest will record them)
    /// after they are planned and copied, and before anything is
    /// committed: an error from it leaves the store as it was. `archived_in`
    /// is recorded in the manifest as where they were archived (when
    /// `options.archive` is not given), for an archive the check vouches for.
    ///
    /// # Errors
    /// As [`Engine::retire`], and `check`'s.
    pub(crate) fn retire_checked(
        &self,
        before_position: u64,
        options: &RetireOptions,
        archived_in: Option<&str>,
        check: &dyn Fn(&[RetiredSegment]) -> Result<()>,
    ) -> Result<Retirement> {
        if options.reason.len() > MAX_RETENTION_REASON_BYTES {
            return Err(Error::LimitExceeded {
                limit: "MAX_RETENTION_REASON_BYTES",
                actual: options.reason.len() as u64,
                max: MAX_RETENTION_REASON_BYTES as u64,
            });
        }
        if let Some(archive) = &options.archive {
            crate::log::directory::check_store_dir(archive).map_err(|e| {
                Error::InvalidArgument(format!("archive directory {}: {e}", archive.display()))
            })?;
            if same_directory(archive, &self.dir) {
                return Err(Error::InvalidArgument(format!(
                    "the archive directory {} is the store itself",
                    archive.display()
                )));
            }
        }
        // One retirement at a time; appends go on meanwhile (they only add
        // segments after the ones retired).
        let _one = self.retire_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (mut retirement, planned, keep_from) =
            self.plan(before_position, options.archive.as_deref())?;
        if planned.is_empty() {
            retirement.done = true;
            return Ok(retirement);
        }
        // Their index files are written by the indexer: not while they go.
        self.index_queue.wait_idle();
        let hooks = &self.options.hooks;
        let mut retired = Vec::with_capacity(planned.len());
        for plan in &planned {
            let path = &plan.file.path;
            let footer = footer_of(&plan.segment).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} has no valid footer: verify the store before retiring it",
                    path.display()
                ))
            })?;
            let sha256 = derived_file::sha256_of_file(path)?;
            let file_name = file_name_of(path);
            if let Some(archive) = &options.archive {
                archive_copy(path, archive, &file_name, &sha256, hooks)?;
            }
            retired.push(RetiredSegment {
                file_name,
                base_position: plan.file.base_position,
                event_count: plan.file.event_count,
                file_len: plan.file.bytes,
                contents_crc: footer.contents_crc,
                chain_end: chain::to_hex(&footer.chain_end),
                sha256: chain::to_hex(&sha256),
            });
        }
        check(&retired)?;
        // The manifest: the commit point.
        let (mut records, first_event, frontier_before) = match retention::read_anchor(&self.dir)? {
            Some(anchor) => (
                anchor.manifest.records.clone(),
                anchor.manifest.first_event.clone(),
                anchor.frontier.clone(),
            ),
            None => (Vec::new(), self.first_event()?, Some(Frontier::new())),
        };
        // The Merkle tree's frontier at the new cut, from the segments
        // before they go. A cut recorded without one (an earlier build)
        // cannot be extended: the new one is not recorded either.
        let frontier_at_cut = match frontier_before {
            Some(before) => {
                let first = keep_from - planned.len();
                self.frontier_through(before, first..keep_from)?.encode()
            }
            None => Vec::new(),
        };
        let (chain_at_cut, last_timestamp_ns, streams_at_cut, metadata_at_cut) = {
            let state = self.read_state();
            let kept = &state.segments[keep_from];
            let last_timestamp_ns = planned
                .iter()
                .rev()
                .find(|p| p.file.event_count > 0)
                .map_or(state.index.cut_timestamp_ns(), |p| p.file.last_timestamp_ns);
            let streams_at_cut = state.index.versions_before(keep_from)?;
            // Each metadata stream's newest metadata before the cut, read
            // while its segment is still here: a truncation or deletion
            // must outlive the segment recording it.
            let mut metadata_at_cut = Vec::new();
            for (name, version) in &streams_at_cut {
                if !name.starts_with(crate::system_streams::METADATA_STREAM_PREFIX) {
                    continue;
                }
                match super::stream_metadata::newest_metadata_data(&state, name, *version) {
                    Ok(Some((_, data))) => metadata_at_cut.push((name.clone(), ByteBuf(data))),
                    Ok(None) => {}
                    Err((version, detail)) => {
                        return Err(Error::InvalidStreamMetadata {
                            stream: crate::system_streams::stream_of_metadata_stream(name)
                                .unwrap_or(name)
                                .to_string(),
                            metadata_version: version,
                            detail: format!("{detail}; nothing was retired"),
                        });
                    }
                }
            }
            (
                kept.header.chain_start,
                last_timestamp_ns,
                streams_at_cut,
                metadata_at_cut,
            )
        };
        records.push(RetirementRecord {
            first_retained_position: retirement.first_retained_position,
            chain_at_cut: chain::to_hex(&chain_at_cut),
            last_timestamp_ns,
            retired_at_ns: now_ns(),
            reason: options.reason.clone(),
            archive: options
                .archive
                .as_ref()
                .map(|a| a.to_string_lossy().into_owned())
                .or_else(|| archived_in.map(str::to_string)),
            segments: retired,
        });
        // Erasures made before the cut: an erasure outlives its event.
        let mut erasures_at_cut: Vec<(String, u64)> = self
            .subjects
            .erased_subjects()
            .into_iter()
            .filter(|&(_, position)| position < retirement.first_retained_position)
            .collect();
        erasures_at_cut.sort();
        let manifest = RetentionManifest {
            records,
            streams_at_cut,
            metadata_at_cut,
            first_event,
            erasures_at_cut,
            frontier_at_cut: ByteBuf(frontier_at_cut),
        };
        derived_file::write_atomically(&self.dir, RETENTION_FILE_NAME, &manifest.encode(), hooks)?;
        // As every later opener will read it.
        let anchor = retention::read_anchor(&self.dir)?.ok_or_else(|| {
            Error::io(
                "reading back the retention manifest",
                self.dir.join(RETENTION_FILE_NAME),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;

        // Committed: the in-memory state follows, then the files go.
        {
            let mut state = self.write_state();
            state.index.set_cut(&anchor);
            state.index.retire_before(keep_from);
            for ordinal in 0..keep_from {
                if state.segments[ordinal].file_len() > 0 {
                    let slot = state.segments[ordinal].retired()?;
                    state.segments[ordinal] = Arc::new(slot);
                }
            }
        }
        self.write_checkpoint(None, false);
        for plan in &planned {
            let path = &plan.file.path;
            let index_path = self.dir.join(index_file_name(plan.file.base_position));
            remove_file(&index_path, hooks)?;
            remove_file(path, hooks)?;
        }
        hooks
            .before_derived_file_step(&self.dir, crate::hooks::DerivedFileStep::SyncDirectory)
            .map_err(|e| Error::io("syncing directory", &self.dir, e))?;
        sync_dir(&self.dir)?;
        retirement.done = true;
        Ok(retirement)
    }
}

impl Engine {
    /// The store's event at position 0 (in the log: nothing was retired yet).
    fn first_event(&self) -> Result<FirstEvent> {
        let state = self.read_state();
        let mut first = None;
        super::read_events::visit_log(&state, 0, |event| {
            first = Some(FirstEvent {
                id: ByteBuf(event.id.to_vec()),
                timestamp_ns: event.timestamp_ns,
                stream: event.stream.to_string(),
            });
            std::ops::ControlFlow::Break(())
        })?;
        first.ok_or_else(|| {
            Error::InvalidArgument("the store holds no event: nothing to retire".to_string())
        })
    }
}

/// The file name of a segment path.
fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Copies a segment into the archive, unless an identical copy is there
/// (a retirement interrupted after copying, run again).
fn archive_copy(
    path: &Path,
    archive: &Path,
    file_name: &str,
    sha256: &[u8; 32],
    hooks: &crate::hooks::Hooks,
) -> Result<()> {
    let target = archive.join(file_name);
    if target.symlink_metadata().is_ok() {
        if derived_file::sha256_of_file(&target)? == *sha256 {
            return Ok(());
        }
        return Err(Error::InvalidArgument(format!(
            "the archive already holds a different {}: nothing was retired",
            target.display()
        )));
    }
    let copied = derived_file::copy_atomically(path, archive, file_name, hooks)?;
    if copied != *sha256 {
        return Err(Error::InvalidArgument(format!(
            "the copy {} differs from {} after it was written (SHA-256): nothing was retired",
            target.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Removes a file of the store, if it is there.
fn remove_file(path: &Path, hooks: &crate::hooks::Hooks) -> Result<()> {
    hooks
        .before_remove_file(path)
        .map_err(|e| Error::io("removing", path, e))?;
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing", path, e)),
    }
}

/// Whether two paths name the same directory.
fn same_directory(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
