//! `annals stats`: counts, sizes and time range of a store, and what its
//! open found that a crash leaves behind (read-only open, so it works beside
//! a writer).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::args::StatsArgs;
use super::failure::Failure;
use super::output::Output;
use super::store_dir::open_read_only;
use super::timestamp::rfc3339_nanos;

#[derive(Debug, Serialize)]
struct Stats {
    /// Events the store keeps.
    events: u64,
    /// Position of the first kept event: above 0 once segments were retired.
    first_position: u64,
    /// Position the next event will get.
    next_position: u64,
    streams: usize,
    segments: u64,
    /// Sum of the segment files' sizes (segments are preallocated whole).
    segment_file_bytes: u64,
    /// Disk space allocated to every file of the store directory.
    bytes_on_disk: u64,
    first_timestamp: Option<String>,
    last_timestamp: Option<String>,
    /// Hash-chain value after the last batch (hex).
    chain_head: String,
    /// Memory the in-memory index takes (an estimate).
    index_heap_bytes: usize,
    /// What the read-only open found that a crash leaves behind and left
    /// out (a writer's open discards it); empty when nothing.
    recovery: Vec<RecoveryItem>,
}

/// One item of the store's recovery report ([`annals::Recovered`]).
#[derive(Debug, Serialize)]
struct RecoveryItem {
    /// What was found ([`annals::FindingKind`]'s message).
    what: String,
    /// The file concerned.
    file: String,
    /// Byte offset within that file.
    offset: u64,
    /// How many bytes it covers ([`annals::Recovered::bytes`]).
    bytes: u64,
    /// What open did about it ([`annals::RecoveryAction::describe`]).
    action: &'static str,
    /// Global position concerned, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u64>,
}

impl From<&annals::Recovered> for RecoveryItem {
    fn from(item: &annals::Recovered) -> RecoveryItem {
        RecoveryItem {
            what: item.finding.kind.to_string(),
            file: item.finding.path.display().to_string(),
            offset: item.finding.offset,
            bytes: item.bytes(),
            action: item.action.describe(),
            position: item.finding.position,
        }
    }
}

pub fn run(args: &StatsArgs) -> Result<(), Failure> {
    let store = open_read_only(&args.dir)?;
    let (segments, segment_file_bytes) = segment_files(&args.dir)?;
    let first = store.read_all(0, 1)?;
    let last = store.read_all_backward(u64::MAX, 1)?;
    let stats = Stats {
        events: store.next_position() - store.log_start_position(),
        first_position: store.log_start_position(),
        next_position: store.next_position(),
        streams: store.stream_count(),
        segments,
        segment_file_bytes,
        bytes_on_disk: allocated_bytes(&args.dir)?,
        first_timestamp: first.first().map(|e| rfc3339_nanos(e.timestamp_ns)),
        last_timestamp: last.first().map(|e| rfc3339_nanos(e.timestamp_ns)),
        chain_head: annals::ExpectedHead::from(store.chain_head()).digest_hex(),
        index_heap_bytes: store.index_heap_bytes(),
        recovery: store
            .recovery_report()
            .items
            .iter()
            .map(RecoveryItem::from)
            .collect(),
    };
    let mut out = Output::stdout();
    if args.json {
        out.json_line(&stats)?;
    } else {
        let none = || "-".to_string();
        out.text(&format!(
            "events:             {}\n\
             positions:          {}\n\
             streams:            {}\n\
             segments:           {}\n\
             segment file bytes: {}\n\
             bytes on disk:      {}\n\
             first timestamp:    {}\n\
             last timestamp:     {}\n\
             chain head:         {}\n\
             index heap bytes:   {}\n\
             recovery:           {}\n",
            stats.events,
            positions_text(stats.first_position, stats.next_position),
            stats.streams,
            stats.segments,
            stats.segment_file_bytes,
            stats.bytes_on_disk,
            stats.first_timestamp.clone().unwrap_or_else(none),
            stats.last_timestamp.clone().unwrap_or_else(none),
            stats.chain_head,
            stats.index_heap_bytes,
            recovery_text(store.recovery_report()),
        ))?;
    }
    out.flush()
}

/// The positions the store keeps: `0..N`, and what was retired before.
fn positions_text(first: u64, next: u64) -> String {
    let kept = format!("{first}..{next}");
    if first == 0 {
        kept
    } else {
        format!("{kept} (positions 0..{first} retired)")
    }
}

/// The recovery report for the text form: `none`, or a count followed by
/// one indented line per item.
fn recovery_text(report: &annals::RecoveryReport) -> String {
    if report.is_empty() {
        return "none".to_string();
    }
    let mut text = format!("{} item(s)", report.items.len());
    for item in &report.items {
        text.push_str(&format!("\n  - {item}"));
    }
    text
}

/// Number and total size of the segment files of `dir`.
fn segment_files(dir: &Path) -> Result<(u64, u64), Failure> {
    segment_sizes(&list(dir)?)
}

/// Number and total size of the segment files among `paths`, a listing.
fn segment_sizes(paths: &[PathBuf]) -> Result<(u64, u64), Failure> {
    let mut count = 0;
    let mut bytes = 0;
    for path in paths {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if annals::is_segment_file_name(&name)
            && let Some(metadata) = metadata(path)?
        {
            count += 1;
            bytes += metadata.len();
        }
    }
    Ok((count, bytes))
}

/// Bytes allocated on disk to the files of `dir` and its subdirectories.
fn allocated_bytes(dir: &Path) -> Result<u64, Failure> {
    allocated_bytes_of(&list(dir)?)
}

/// Bytes allocated on disk to `paths`, a listing, and to what the
/// directories among them hold.
fn allocated_bytes_of(paths: &[PathBuf]) -> Result<u64, Failure> {
    let mut total = 0;
    for path in paths {
        let Some(metadata) = metadata(path)? else {
            continue;
        };
        if !metadata.is_dir() {
            total += metadata.blocks() * 512;
        } else if let Some(entries) = list_if_present(path)? {
            total += allocated_bytes_of(&entries)?;
        }
    }
    Ok(total)
}

/// The entries of `dir`.
fn list(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    list_if_present(dir)?.ok_or_else(|| {
        Failure::other(format!(
            "listing {}: the directory no longer exists",
            dir.display()
        ))
    })
}

/// The entries of `dir`, or `None` when it no longer exists.
//
// A writer beside `stats` renames its `.seg.tmp` files into place (and
// snapshots come and go): anything listed may be gone when it is looked at,
// which is not an error. The segment count and sizes are then those of a
// moment, as with any listing.
fn list_if_present(dir: &Path) -> Result<Option<Vec<PathBuf>>, Failure> {
    let listing = |e: std::io::Error| Failure::other(format!("listing {}: {e}", dir.display()));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(listing(e)),
    };
    entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map(Some)
        .map_err(listing)
}

/// The metadata of `path` (a link is counted as itself, never followed), or
/// `None` when it is gone since it was listed.
fn metadata(path: &Path) -> Result<Option<std::fs::Metadata>, Failure> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => Ok(Some(metadata)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::other(format!("reading {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer renames its `.seg.tmp` into place, and files come and go,
    /// while `stats` walks the directory (the regression: `stats` exited 1
    /// with "reading ….seg.tmp: No such file or directory" beside a live
    /// writer). What vanished after the listing is skipped.
    #[test]
    fn files_gone_between_listing_and_stat_are_skipped() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let sealed = dir.join("00000000000000000000.seg");
        let removed = dir.join("00000000000000000007.seg");
        let temporary = dir.join("00000000000000000010.seg.tmp");
        let snapshots = dir.join("snapshots");
        std::fs::write(&sealed, [1u8; 100]).unwrap();
        std::fs::write(&removed, [1u8; 30]).unwrap();
        std::fs::write(&temporary, [1u8; 50]).unwrap();
        std::fs::create_dir(&snapshots).unwrap();
        std::fs::write(snapshots.join("s.snap"), [1u8; 10]).unwrap();
        let listing = list(dir).unwrap();
        assert_eq!(listing.len(), 4);

        std::fs::rename(&temporary, dir.join("00000000000000000010.seg")).unwrap();
        std::fs::remove_file(&removed).unwrap();
        std::fs::remove_dir_all(&snapshots).unwrap();

        assert_eq!(segment_sizes(&listing).unwrap(), (1, 100));
        let allocated = allocated_bytes_of(&listing).unwrap();
        assert_eq!(
            allocated,
            metadata(&sealed).unwrap().unwrap().blocks() * 512
        );
        // A subdirectory gone between its stat and its listing.
        assert!(list_if_present(&snapshots).unwrap().is_none());
    }
}
