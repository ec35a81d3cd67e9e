//! Salvage: every event of a damaged store that can still be verified, for
//! an export, when the store refuses to open.
//!
//! It walks the log with the same scanner and decision table as every open,
//! but, like `verify`, goes on after damage: it skips what cannot be read
//! (resuming after the next valid commit record, or at the next segment)
//! and reports each skipped range. Every event it hands out belongs to a
//! complete batch whose checksums hold; what it cannot vouch for is said in
//! [`SalvageReport`]. It changes nothing and takes no lock.
//!
//! The data of an event with a subject is opened with the key file's key;
//! a subject without a key is taken as erased (salvage cannot look up
//! `$erasures` before the events, so an erasure interrupted before its key
//! was destroyed still shows that subject's data; the next writable open
//! finishes it).
//!
//! What the hash chain vouches for after a gap: each batch stores the chain
//! value it extends, so the batches after a gap still link to each other,
//! and a later segment's header links to the footer before it; but nothing
//! ties them to the history before the gap. Only a head digest kept
//! elsewhere ([`crate::ExpectedHead`], checked by `verify`) vouches for them
//! against a rewrite.
//!
//! ```
//! use annals::{EventData, ExpectedVersion, Options, Store};
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), Options::default())?;
//! store.append("s", ExpectedVersion::NoStream, &[EventData::new("E", vec![1])])?;
//! store.close()?;
//! let mut positions = Vec::new();
//! let report = annals::salvage(dir.path(), |event| {
//!     positions.push(event.position);
//!     Ok(())
//! })?;
//! assert_eq!(positions, [0]);
//! assert!(report.skipped.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::engine::erasure::Subjects;
use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::format::scan::stream_ends;
use crate::keys::FileKeys;
use crate::log::directory;
use crate::log::finding::Finding;
use crate::log::scan::{BatchSeen, Flow, Visitor};
use crate::log::segment::Segment;
use crate::log::verdict::{SegmentRole, Verdict};
use crate::log::walk::LogWalk;

/// What [`salvage`] read and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// Events handed out.
    pub events: u64,
    /// Batches they came in.
    pub batches: u64,
    /// Damage skipped over, in log order: each finding names the file and
    /// offset where unreadable bytes (or a log that does not hold together)
    /// began.
    pub skipped: Vec<Finding>,
    /// What a crash leaves (a torn tail, a stray temporary file): not
    /// damage, not read.
    pub notes: Vec<Finding>,
}

/// Hands every event of every complete, valid batch of the store in `dir`
/// to `on_event`, in log order, skipping and reporting damage.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed or read; the first
/// error `on_event` returns (no event is handed out after it).
pub fn salvage(
    dir: impl AsRef<Path>,
    on_event: impl FnMut(RecordedEvent) -> Result<()>,
) -> Result<SalvageReport> {
    let dir = dir.as_ref();
    directory::check_store_dir(dir)?;
    // A damaged key file fails here: without it no sealed data opens, and
    // handing those events out as erased would be untrue.
    let keys = FileKeys::open(dir, false, Default::default())?;
    let mut salvager = Salvager {
        subjects: Subjects::for_salvage(Arc::new(keys)),
        on_event,
        failed: None,
        report: SalvageReport::default(),
        versions: HashMap::new(),
    };
    let newest_role = if directory::writer_is_live(dir) {
        SegmentRole::Live
    } else {
        SegmentRole::Newest
    };
    LogWalk::new(dir, newest_role, &Default::default()).walk_all(&mut salvager)?;
    match salvager.failed {
        Some(error) => Err(error),
        None => Ok(salvager.report),
    }
}

struct Salvager<F> {
    subjects: Subjects,
    on_event: F,
    /// The first error of `on_event`: nothing is handed out after it.
    failed: Option<Error>,
    report: SalvageReport,
    /// Per stream, its last version and the gap epoch it was seen in, for
    /// the scanner's sequence rules.
    versions: HashMap<Box<str>, (u64, u32)>,
}

impl<F: FnMut(RecordedEvent) -> Result<()>> Visitor for Salvager<F> {
    fn stream_version(&self, stream: &str) -> Option<(u64, u32)> {
        self.versions.get(stream).copied()
    }

    fn segment(&mut self, _ordinal: usize, _segment: &Arc<Segment>, _role: SegmentRole) {}

    fn batch(&mut self, seen: &BatchSeen<'_, '_>) {
        if seen.events.is_empty() {
            return;
        }
        for last in stream_ends(seen.events) {
            self.versions
                .insert(last.stream.into(), (last.version, seen.epoch));
        }
        if self.failed.is_some() {
            return;
        }
        self.report.batches += 1;
        for event in seen.events {
            let event = self
                .subjects
                .payload(&event.event)
                .map(|payload| RecordedEvent::from_body(&event.event, &payload));
            if let Err(error) = event.and_then(&mut self.on_event) {
                self.failed = Some(error);
                return;
            }
            self.report.events += 1;
        }
    }

    fn finding(&mut self, finding: Finding, verdict: Verdict) -> Flow {
        match verdict {
            Verdict::Refuse => self.report.skipped.push(finding),
            Verdict::Discard | Verdict::Remove | Verdict::Rebuild => {
                self.report.notes.push(finding)
            }
            Verdict::Wait => {}
        }
        // Go on: the point of salvage.
        Flow::Continue
    }
}
