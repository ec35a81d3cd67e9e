//! `annals stats`: counts, sizes and time range of a store, and what its
//! open found that a crash leaves behind (read-only open, so it works beside
//! a writer).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use super::args::StatsArgs;
use super::failure::Failure;
use super::output::Output;
use super::store_dir::open_read_only;
use super::timestamp::rfc3339_nanos;

#[derive(Debug, Serialize)]
struct Stats {
    events: u64,
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
        events: store.next_position(),
        streams: store.stream_count(),
        segments,
        segment_file_bytes,
        bytes_on_disk: allocated_bytes(&args.dir)?,
        first_timestamp: first.first().map(|e| rfc3339_nanos(e.timestamp_ns)),
        last_timestamp: last.first().map(|e| rfc3339_nanos(e.timestamp_ns)),
        chain_head: annals::format::chain::to_hex(&store.chain_head().0),
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
    let mut count = 0;
    let mut bytes = 0;
    for entry in read_dir(dir)? {
        let name = entry.file_name();
        if annals::format::parse_segment_file_name(&name.to_string_lossy()).is_some() {
            count += 1;
            bytes += metadata(&entry.path())?.len();
        }
    }
    Ok((count, bytes))
}

/// Bytes allocated on disk to the files of `dir` and its subdirectories.
fn allocated_bytes(dir: &Path) -> Result<u64, Failure> {
    let mut total = 0;
    for entry in read_dir(dir)? {
        let metadata = metadata(&entry.path())?;
        total += if metadata.is_dir() {
            allocated_bytes(&entry.path())?
        } else {
            metadata.blocks() * 512
        };
    }
    Ok(total)
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, Failure> {
    let listing = |e: std::io::Error| Failure::other(format!("listing {}: {e}", dir.display()));
    std::fs::read_dir(dir)
        .map_err(listing)?
        .collect::<Result<_, _>>()
        .map_err(listing)
}

fn metadata(path: &Path) -> Result<std::fs::Metadata, Failure> {
    // symlink_metadata: a link is counted as itself, never followed.
    std::fs::symlink_metadata(path)
        .map_err(|e| Failure::other(format!("reading {}: {e}", path.display())))
}
