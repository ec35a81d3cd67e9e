//! `annals repair`: finds the first damaged spot of a store, says exactly
//! what cutting it would remove, and cuts only with `--yes`, after copying
//! every file it changes or removes to `DIR/repair-backup-<time>/`.
//!
//! The scan makes the checks `Store::open` makes (`docs/design.md`, "Open
//! and recovery"), in the same order, with the public `annals::format`
//! functions: headers and their links, every batch, the sequence of
//! positions and stream versions, footers. The first failure is the *cut
//! point*; the log is kept up to it and everything after it goes:
//!
//! - damage in a segment's header (or a segment that does not follow the one
//!   before): that segment file and every later one are moved to the backup;
//! - damage at a batch, or in the footer of a segment whose batches are
//!   intact: the segment is copied to the backup, then zeroed from the start
//!   of the first bad batch (or the end of its last good one) to its end,
//!   footer included, and made writable again; every later segment file is
//!   moved to the backup. With no footer, the segment becomes the newest
//!   one, which the writer continues;
//! - snapshots of a stream at a version past the cut are moved to the backup
//!   (they describe events that are gone).
//!
//! Files are moved newest first, so that a crash during repair always leaves
//! a prefix of the log (run repair again to finish). What `Store::open` fixes
//! by itself (a torn tail or a torn footer of the newest segment, stray
//! temporary files) is not damage: repair only mentions it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use annals::format::footer::{self, FooterState, SegmentFooter};
use annals::format::frame::{self, FrameKind, FrameRead};
use annals::format::header::SegmentHeader;
use annals::format::scan::{self, BatchRead, TailState};
use annals::format::{CHAIN_LEN, FOOTER_LEN, FRAME_ALIGN, SEGMENT_HEADER_LEN, body, chain};
use annals::{Options, Store};

use super::args::RepairArgs;
use super::failure::{EXIT_CORRUPTION, EXIT_LOCKED, Failure};
use super::output::Output;
use super::timestamp::{compact_nanos, now_ns};

/// Prefix of the directory, inside the store directory, that receives what
/// a repair removes.
pub const BACKUP_DIR_PREFIX: &str = "repair-backup-";

/// How many streams the report lists one by one.
const STREAMS_LISTED: usize = 20;

pub fn run(args: &RepairArgs) -> Result<(), Failure> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(Failure::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let lock = lock_store(dir)?;
    let examination = examine(dir)?;
    let mut out = Output::stdout();
    out.text(&format!("store: {}\n", dir.display()))?;
    for note in &examination.notes {
        out.text(&format!("note: {note}\n"))?;
    }
    let Some(plan) = &examination.plan else {
        out.text(&format!(
            "no damage found: nothing to cut ({} events in {} segment files)\n",
            examination.kept_events,
            examination.files.len()
        ))?;
        return out.flush();
    };
    out.text(&describe(dir, &examination, plan))?;
    if !args.yes {
        out.text(&format!(
            "dry run: nothing was changed. Run `annals repair {} --yes` to cut.\n",
            dir.display()
        ))?;
        out.flush()?;
        return Err(Failure {
            code: EXIT_CORRUPTION,
            message: "damage found (dry run: nothing was changed)".into(),
        });
    }
    out.flush()?;
    let backup = cut(dir, &examination, plan)?;
    out.text(&format!(
        "cut. Removed and changed files were copied to {} first.\n",
        backup.display()
    ))?;
    out.flush()?;
    // The writer lock is ours: release it so that Store::open can take it.
    drop(lock);
    let options = match examination.kept_segment_size_bytes {
        Some(size) => Options::default().segment_size_bytes(size),
        None => Options::default(),
    };
    let store = Store::open(dir, options)?;
    let events = store.next_position();
    store.close()?;
    out.text(&format!("the store opens: {events} events.\n"))?;
    out.flush()
}

/// One segment file of the store directory.
#[derive(Debug)]
struct SegmentFile {
    path: PathBuf,
    name: String,
    base_position: u64,
    len: u64,
}

/// What to do to the segment where the damage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Remove the whole file (and every later one).
    WholeFile,
    /// Zero the file from this offset to its end (footer included).
    From(u64),
}

/// The first damaged spot and what goes with it.
#[derive(Debug)]
struct Plan {
    /// Index in `Examination::files` of the damaged segment.
    ordinal: usize,
    /// Where the damage was found.
    offset: u64,
    reason: String,
    cut: Cut,
    /// Stale snapshots: (path, stream, snapshot version, kept version).
    snapshots: Vec<(PathBuf, String, u64, u64)>,
    lost: Lost,
}

/// Events that still decode in the bytes that would be cut.
#[derive(Debug, Default)]
struct Lost {
    events: u64,
    first_position: Option<u64>,
    last_position: Option<u64>,
    /// Per stream: (the version it keeps, the highest version that still
    /// decodes in what is cut).
    streams: BTreeMap<String, (u64, u64)>,
    /// Segment files whose header is unreadable: their events cannot be counted.
    uncounted_files: Vec<String>,
}

#[derive(Debug)]
struct Examination {
    files: Vec<SegmentFile>,
    plan: Option<Plan>,
    /// Events before the cut point (all of them when there is no damage).
    kept_events: u64,
    /// The segment size of the newest kept segment, for the writer that
    /// opens the store after the cut.
    kept_segment_size_bytes: Option<u64>,
    /// What `Store::open` repairs by itself.
    notes: Vec<String>,
}

/// The log as walked so far: what the next segment and batch must continue.
struct Walk {
    next_position: u64,
    chain: [u8; CHAIN_LEN],
    stream_versions: HashMap<String, u64>,
}

/// The first problem found in one segment, before it is turned into a plan.
struct Damage {
    offset: u64,
    reason: String,
    cut: Cut,
}

impl Damage {
    fn new(offset: impl TryInto<u64>, reason: impl Into<String>, cut: Cut) -> Damage {
        Damage {
            offset: offset.try_into().unwrap_or(u64::MAX),
            reason: reason.into(),
            cut,
        }
    }
}

/// Takes the store's writer lock, so that no writer changes the files while
/// repair looks at them and cuts.
fn lock_store(dir: &Path) -> Result<File, Failure> {
    let path = dir.join(annals::LOCK_FILE_NAME);
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Failure::other(format!("opening lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Failure {
            code: EXIT_LOCKED,
            message: format!(
                "the store {} is locked by another writer; stop it before repairing",
                dir.display()
            ),
        }),
        Err(fs::TryLockError::Error(e)) => {
            Err(Failure::other(format!("locking {}: {e}", path.display())))
        }
    }
}

fn list_segment_files(dir: &Path) -> Result<Vec<SegmentFile>, Failure> {
    let listing = |e: std::io::Error| Failure::other(format!("listing {}: {e}", dir.display()));
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(base_position) = annals::format::parse_segment_file_name(&name) {
            let len = entry
                .metadata()
                .map_err(|e| Failure::other(format!("reading {name}: {e}")))?
                .len();
            files.push(SegmentFile {
                path: entry.path(),
                name,
                base_position,
                len,
            });
        }
    }
    files.sort_by_key(|f| f.base_position);
    Ok(files)
}

/// Maps a segment file read-only.
fn map(file: &SegmentFile) -> Result<memmap2::Mmap, Failure> {
    let opened = File::open(&file.path)
        .map_err(|e| Failure::other(format!("opening {}: {e}", file.path.display())))?;
    // SAFETY: repair holds the store's writer lock, so no annals process
    // writes the file while it is mapped; bytes are only read.
    unsafe { memmap2::Mmap::map(&opened) }
        .map_err(|e| Failure::other(format!("mapping {}: {e}", file.path.display())))
}

/// Walks every segment as `Store::open` does, up to the first damage.
fn examine(dir: &Path) -> Result<Examination, Failure> {
    let files = list_segment_files(dir)?;
    let mut walk = Walk {
        next_position: 0,
        chain: chain::GENESIS,
        stream_versions: HashMap::new(),
    };
    let mut notes = Vec::new();
    let mut kept_segment_size_bytes = None;
    for (ordinal, file) in files.iter().enumerate() {
        let newest = ordinal + 1 == files.len();
        match examine_segment(file, newest, &mut walk, &mut notes)? {
            Ok(size) => kept_segment_size_bytes = Some(size),
            Err(damage) => {
                let lost = count_lost(&files, ordinal, damage.cut, &walk.stream_versions)?;
                let snapshots = stale_snapshots(dir, &walk.stream_versions)?;
                if let Cut::From(_) = damage.cut {
                    kept_segment_size_bytes = Some(segment_size_of(file)?);
                }
                return Ok(Examination {
                    kept_events: walk.next_position,
                    plan: Some(Plan {
                        ordinal,
                        offset: damage.offset,
                        reason: damage.reason,
                        cut: damage.cut,
                        snapshots,
                        lost,
                    }),
                    files,
                    kept_segment_size_bytes,
                    notes,
                });
            }
        }
    }
    Ok(Examination {
        kept_events: walk.next_position,
        plan: None,
        files,
        kept_segment_size_bytes,
        notes,
    })
}

fn segment_size_of(file: &SegmentFile) -> Result<u64, Failure> {
    let bytes = map(file)?;
    SegmentHeader::decode(&bytes)
        .map(|h| h.segment_size_bytes)
        .map_err(|e| Failure::other(format!("{}: {e}", file.name)))
}

/// Checks one segment, advancing `walk` over its valid batches. Returns the
/// segment's size, or the damage that ends the kept log.
fn examine_segment(
    file: &SegmentFile,
    newest: bool,
    walk: &mut Walk,
    notes: &mut Vec<String>,
) -> Result<Result<u64, Damage>, Failure> {
    use Cut::{From, WholeFile};
    if file.len < SEGMENT_HEADER_LEN as u64 {
        return Ok(Err(Damage::new(
            file.len,
            format!(
                "the file is only {} bytes, shorter than a segment header",
                file.len
            ),
            WholeFile,
        )));
    }
    let bytes = map(file)?;
    let header = match SegmentHeader::decode(&bytes) {
        Ok(header) => header,
        Err(error) => return Ok(Err(Damage::new(0, error.to_string(), WholeFile))),
    };
    if header.base_position != file.base_position {
        return Ok(Err(Damage::new(
            16,
            format!(
                "header base_position {} differs from the file name",
                header.base_position
            ),
            WholeFile,
        )));
    }
    if header.base_position != walk.next_position {
        return Ok(Err(Damage::new(
            16,
            format!(
                "the segment starts at position {} but the log before it ends at position {}: \
                 a segment is missing",
                header.base_position, walk.next_position
            ),
            WholeFile,
        )));
    }
    if header.chain_start != walk.chain {
        return Ok(Err(Damage::new(
            48,
            "header chain_start differs from the hash-chain value at the end of the previous \
             segment: segments were replaced or reordered",
            WholeFile,
        )));
    }
    let size = header.segment_size_bytes;
    // A writer extends a newest segment that was cut short back to full size.
    let short_newest = newest && file.len < size;
    if file.len != size && !short_newest {
        return Ok(Err(Damage::new(
            file.len.min(size),
            format!("the file is {} bytes but its header says {size}", file.len),
            WholeFile,
        )));
    }
    let full_data_end = annals::format::data_end(size) as usize;
    let data_end = if short_newest {
        (file.len as usize).min(full_data_end) / FRAME_ALIGN * FRAME_ALIGN
    } else {
        full_data_end
    };
    let salt = header.salt;

    // Every batch, and its place in the sequence of positions and versions.
    let mut events = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    let (mut event_count, mut batch_count) = (0u64, 0u64);
    let invalid = loop {
        match scan::read_batch(&bytes, salt, offset, data_end, &mut events) {
            BatchRead::Empty => break None,
            BatchRead::Invalid { at, error } => break Some((at, error.to_string())),
            BatchRead::Batch(batch) => {
                if let Some((at, problem)) = out_of_sequence(&events, &batch, walk) {
                    return Ok(Err(Damage::new(at, problem, From(offset as u64))));
                }
                if let Some(first) = events.first() {
                    walk.stream_versions.insert(
                        first.event.stream.to_string(),
                        first.event.version + events.len() as u64 - 1,
                    );
                }
                walk.next_position += events.len() as u64;
                walk.chain = batch.commit.chain;
                event_count += events.len() as u64;
                batch_count += 1;
                offset = batch.end;
            }
        }
    };
    let end = offset;
    let cut_here = From(end as u64);
    let footer_state = if file.len == size {
        SegmentFooter::decode(&bytes[full_data_end..full_data_end + FOOTER_LEN])
    } else {
        FooterState::Unsealed
    };
    let sealed = match footer_state {
        FooterState::Sealed(footer) => Some(footer),
        FooterState::Invalid(why) if !newest => {
            return Ok(Err(Damage::new(
                full_data_end,
                format!("the segment is followed by another but its footer is invalid: {why}"),
                cut_here,
            )));
        }
        FooterState::Unsealed if !newest => {
            return Ok(Err(Damage::new(
                full_data_end,
                "the segment is followed by another but has no footer",
                cut_here,
            )));
        }
        FooterState::Invalid(why) => {
            if !read_only_on_disk(&file.path)? {
                notes.push(format!(
                    "{}: the footer is torn ({why}); opening the store clears it",
                    file.name
                ));
            }
            None
        }
        FooterState::Unsealed => None,
    };
    if let Some((at, why)) = &invalid
        && (sealed.is_some() || !newest)
    {
        return Ok(Err(Damage::new(*at, why.clone(), cut_here)));
    }
    if let Some(footer) = sealed {
        let mismatch = footer_mismatch(&footer, &bytes, salt, end, event_count, batch_count, walk);
        return Ok(match mismatch {
            Some(problem) => Err(Damage::new(full_data_end, problem, cut_here)),
            None => Ok(size),
        });
    }
    // The newest segment, not sealed: what follows its last good batch.
    if read_only_on_disk(&file.path)? {
        return Ok(Err(Damage::new(
            full_data_end,
            "the newest segment is read-only on disk, as sealed segments are, but has no valid footer",
            cut_here,
        )));
    }
    match scan::classify_tail(&bytes, salt, end, data_end) {
        TailState::Clean => {}
        TailState::Torn { last_nonzero_end } => notes.push(format!(
            "{}: bytes {end} to {last_nonzero_end} are a torn tail (never acknowledged as \
             durable); opening the store discards them",
            file.name
        )),
        TailState::DamagedSyncedData {
            commit_at,
            synced_offset,
        } => {
            let why = invalid.map_or_else(String::new, |(_, why)| format!("{why}; "));
            return Ok(Err(Damage::new(
                end,
                format!(
                    "{why}the commit record at offset {commit_at} shows that every byte below \
                     offset {synced_offset} had been synced: this is damage, not a torn write"
                ),
                cut_here,
            )));
        }
    }
    if short_newest {
        notes.push(format!(
            "{}: the file is {} bytes, shorter than its header's {size}; opening the store \
             extends it",
            file.name, file.len
        ));
    }
    Ok(Ok(size))
}

/// Whether a valid batch continues the log: its first position, its stream's
/// version. Returns the offset and the problem.
fn out_of_sequence(
    events: &[scan::EventRef<'_>],
    batch: &scan::BatchRef<'_>,
    walk: &Walk,
) -> Option<(usize, String)> {
    let Some(first) = events.first() else {
        return (batch.commit.first_position != walk.next_position).then(|| {
            (
                batch.commit_offset,
                format!(
                    "sync marker at position {} out of sequence: expected {}",
                    batch.commit.first_position, walk.next_position
                ),
            )
        });
    };
    let event = &first.event;
    if event.position != walk.next_position {
        return Some((
            first.offset,
            format!(
                "event position {} out of sequence: expected {}",
                event.position, walk.next_position
            ),
        ));
    }
    let version = walk.stream_versions.get(event.stream).copied().unwrap_or(0);
    (event.version != version + 1).then(|| {
        (
            first.offset,
            format!(
                "stream {:?} jumps from version {version} to {}",
                event.stream, event.version
            ),
        )
    })
}

/// What a sealed segment's footer gets wrong about its batches, if anything.
fn footer_mismatch(
    footer: &SegmentFooter,
    bytes: &[u8],
    salt: u64,
    end: usize,
    event_count: u64,
    batch_count: u64,
    walk: &Walk,
) -> Option<String> {
    let data = &bytes[SEGMENT_HEADER_LEN..end];
    if footer.data_len != data.len() as u64 {
        Some(format!(
            "footer data_len {} but the batches end after {} bytes",
            footer.data_len,
            data.len()
        ))
    } else if footer.event_count != event_count || footer.batch_count != batch_count {
        Some(format!(
            "footer counts {} events in {} batches but the segment holds {event_count} in {batch_count}",
            footer.event_count, footer.batch_count
        ))
    } else if footer.last_position.checked_add(1) != Some(walk.next_position) {
        Some(format!(
            "footer last_position {} but the last event is at {}",
            footer.last_position,
            walk.next_position.wrapping_sub(1)
        ))
    } else if footer.chain_end != walk.chain {
        Some("footer chain_end differs from the last batch's chain value".into())
    } else if footer::contents_crc(salt, data) != footer.contents_crc {
        Some("footer contents_crc does not match the data".into())
    } else {
        None
    }
}

fn read_only_on_disk(path: &Path) -> Result<bool, Failure> {
    fs::metadata(path)
        .map(|m| m.permissions().readonly())
        .map_err(|e| Failure::other(format!("reading permissions of {}: {e}", path.display())))
}

/// Counts the events that still decode in what the cut removes: the damaged
/// segment from the cut on, and every later segment.
fn count_lost(
    files: &[SegmentFile],
    ordinal: usize,
    cut: Cut,
    kept_versions: &HashMap<String, u64>,
) -> Result<Lost, Failure> {
    let mut lost = Lost::default();
    for (i, file) in files.iter().enumerate().skip(ordinal) {
        let from = match (i == ordinal, cut) {
            (true, Cut::From(offset)) => offset as usize,
            _ => SEGMENT_HEADER_LEN,
        };
        if file.len < SEGMENT_HEADER_LEN as u64 {
            continue;
        }
        let bytes = map(file)?;
        let Ok(header) = SegmentHeader::decode(&bytes) else {
            lost.uncounted_files.push(file.name.clone());
            continue;
        };
        let data_end = (annals::format::data_end(header.segment_size_bytes) as usize)
            .min(bytes.len() / FRAME_ALIGN * FRAME_ALIGN);
        count_readable_events(&bytes, header.salt, from, data_end, &mut lost);
    }
    for (stream, (kept, _)) in lost.streams.iter_mut() {
        *kept = kept_versions.get(stream).copied().unwrap_or(0);
    }
    Ok(lost)
}

/// Steps through `from..data_end` frame by frame, resynchronizing after bad
/// bytes at the next 8-byte offset, and counts the valid event frames.
fn count_readable_events(bytes: &[u8], salt: u64, from: usize, data_end: usize, lost: &mut Lost) {
    let mut offset = from.div_ceil(FRAME_ALIGN) * FRAME_ALIGN;
    while offset + FRAME_ALIGN <= data_end {
        match frame::read_frame(bytes, salt, offset, data_end) {
            FrameRead::Frame(frame) => {
                if frame.kind == FrameKind::Event
                    && let Ok(event) = body::decode_event(frame.body)
                {
                    lost.events += 1;
                    let position = event.position;
                    lost.first_position =
                        Some(lost.first_position.map_or(position, |p| p.min(position)));
                    lost.last_position =
                        Some(lost.last_position.map_or(position, |p| p.max(position)));
                    let (_, highest) = lost
                        .streams
                        .entry(event.stream.to_string())
                        .or_insert((0, event.version));
                    *highest = (*highest).max(event.version);
                }
                offset = frame.next_offset;
            }
            FrameRead::Empty | FrameRead::Invalid(_) => offset += FRAME_ALIGN,
        }
    }
}

/// Snapshot files of streams at a version past what the cut keeps.
fn stale_snapshots(
    dir: &Path,
    kept_versions: &HashMap<String, u64>,
) -> Result<Vec<(PathBuf, String, u64, u64)>, Failure> {
    let snapshot_dir = dir.join(annals::SNAPSHOT_DIR_NAME);
    let Ok(entries) = fs::read_dir(&snapshot_dir) else {
        return Ok(Vec::new());
    };
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "snap") {
            continue;
        }
        let bytes = fs::read(&path)
            .map_err(|e| Failure::other(format!("reading {}: {e}", path.display())))?;
        // A snapshot that does not decode is the library's to report; repair
        // only removes valid snapshots that the cut makes wrong.
        if let Ok(record) = annals::format::snapshot::decode_snapshot(&bytes) {
            let kept = kept_versions.get(record.stream).copied().unwrap_or(0);
            if record.version > kept {
                stale.push((path, record.stream.to_string(), record.version, kept));
            }
        }
    }
    stale.sort();
    Ok(stale)
}

/// The report: what is damaged, what is kept, what would be cut.
fn describe(dir: &Path, examination: &Examination, plan: &Plan) -> String {
    use std::fmt::Write;
    let files = &examination.files;
    let damaged = &files[plan.ordinal];
    let mut text = String::new();
    let _ = writeln!(
        text,
        "damage: {} at byte offset {}: {}",
        damaged.path.display(),
        plan.offset,
        plan.reason
    );
    let kept = examination.kept_events;
    let kept_range = match kept {
        0 => "no events".to_string(),
        n => format!("{n} events (positions 0 to {})", n - 1),
    };
    let _ = match plan.cut {
        Cut::WholeFile => writeln!(
            text,
            "keep: {kept_range}, in the {} segment files before {}",
            plan.ordinal, damaged.name
        ),
        Cut::From(offset) => writeln!(
            text,
            "keep: {kept_range}, up to byte offset {offset} of {}",
            damaged.name
        ),
    };
    let _ = writeln!(text, "cut:");
    for (i, file) in files.iter().enumerate().skip(plan.ordinal) {
        match (i == plan.ordinal, plan.cut) {
            (true, Cut::From(offset)) => {
                let _ = writeln!(
                    text,
                    "  {}: zero bytes {offset} to {} (the rest of its data area and its footer) \
                     and make it writable; it becomes the newest segment",
                    file.name, file.len
                );
            }
            _ => {
                let _ = writeln!(
                    text,
                    "  {}: remove the whole file ({} bytes)",
                    file.name, file.len
                );
            }
        }
    }
    for (path, stream, version, kept) in &plan.snapshots {
        let _ = writeln!(
            text,
            "  {}: remove the snapshot of stream {stream:?} at version {version} (the stream keeps {kept} events)",
            path.strip_prefix(dir).unwrap_or(path).display()
        );
    }
    let lost = &plan.lost;
    let _ = match (lost.first_position, lost.last_position) {
        (Some(first), Some(last)) => writeln!(
            text,
            "events cut: {} that still decode (positions {first} to {last}) in {} streams, \
             plus whatever the damaged bytes held",
            lost.events,
            lost.streams.len()
        ),
        _ => writeln!(
            text,
            "events cut: none that still decode, plus whatever the damaged bytes held"
        ),
    };
    for (stream, (kept, highest)) in lost.streams.iter().take(STREAMS_LISTED) {
        let keeps = match kept {
            0 => "keeps no event".to_string(),
            kept => format!("keeps versions 1 to {kept}"),
        };
        let _ = writeln!(
            text,
            "  stream {stream:?}: {keeps}, loses versions {} to {highest}",
            kept + 1
        );
    }
    if lost.streams.len() > STREAMS_LISTED {
        let _ = writeln!(
            text,
            "  ... and {} more streams",
            lost.streams.len() - STREAMS_LISTED
        );
    }
    if !lost.uncounted_files.is_empty() {
        let _ = writeln!(
            text,
            "  (not counted: the headers of {} are unreadable)",
            lost.uncounted_files.join(", ")
        );
    }
    let _ = writeln!(
        text,
        "backup: every file removed or changed is first copied to {}/{BACKUP_DIR_PREFIX}<time>/",
        dir.display()
    );
    text
}

/// Cuts: backs up, moves later files out newest first, zeroes the damaged
/// segment from the cut point. Returns the backup directory.
fn cut(dir: &Path, examination: &Examination, plan: &Plan) -> Result<PathBuf, Failure> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Failure::other(format!("{what} {}: {e}", path.display()))
    };
    let backup = dir.join(format!("{BACKUP_DIR_PREFIX}{}", compact_nanos(now_ns())));
    fs::create_dir(&backup).map_err(|e| io("creating", &backup, e))?;
    let files = &examination.files;
    let damaged = &files[plan.ordinal];
    if let Cut::From(_) = plan.cut {
        let copy = backup.join(&damaged.name);
        fs::copy(&damaged.path, &copy).map_err(|e| io("copying to", &copy, e))?;
        File::open(&copy)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("syncing", &copy, e))?;
    }
    let first_removed = match plan.cut {
        Cut::WholeFile => plan.ordinal,
        Cut::From(_) => plan.ordinal + 1,
    };
    sync_dir(&backup)?;
    // Newest first: a crash in between leaves a shorter log, never a gap.
    for file in files[first_removed..].iter().rev() {
        let target = backup.join(&file.name);
        fs::rename(&file.path, &target).map_err(|e| io("moving to", &target, e))?;
        sync_dir(&backup)?;
        sync_dir(dir)?;
    }
    if !plan.snapshots.is_empty() {
        let snapshot_backup = backup.join(annals::SNAPSHOT_DIR_NAME);
        fs::create_dir(&snapshot_backup).map_err(|e| io("creating", &snapshot_backup, e))?;
        for (path, ..) in &plan.snapshots {
            let target = snapshot_backup.join(path.file_name().unwrap_or_default());
            fs::rename(path, &target).map_err(|e| io("moving to", &target, e))?;
        }
        sync_dir(&snapshot_backup)?;
        sync_dir(&dir.join(annals::SNAPSHOT_DIR_NAME))?;
    }
    if let Cut::From(offset) = plan.cut {
        zero_from(&damaged.path, offset, damaged.len)?;
    }
    sync_dir(dir)?;
    Ok(backup)
}

/// Makes a (sealed, read-only) segment writable and zeroes it from `offset`
/// to `len`, then syncs it.
fn zero_from(path: &Path, offset: u64, len: u64) -> Result<(), Failure> {
    let io =
        |what: &str, e: std::io::Error| Failure::other(format!("{what} {}: {e}", path.display()));
    let mut permissions = fs::metadata(path)
        .map_err(|e| io("reading permissions of", e))?
        .permissions();
    permissions.set_mode(permissions.mode() | 0o200);
    fs::set_permissions(path, permissions).map_err(|e| io("making writable", e))?;
    let file = File::options()
        .write(true)
        .open(path)
        .map_err(|e| io("opening", e))?;
    let zeroes = vec![0u8; 1 << 20];
    let mut at = offset;
    while at < len {
        let n = zeroes.len().min((len - at) as usize);
        file.write_all_at(&zeroes[..n], at)
            .map_err(|e| io("zeroing", e))?;
        at += n as u64;
    }
    file.sync_all().map_err(|e| io("syncing", e))
}

fn sync_dir(dir: &Path) -> Result<(), Failure> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::other(format!("syncing directory {}: {e}", dir.display())))
}
