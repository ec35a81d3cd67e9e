//! Index files (`<base>.idx`) and the index checkpoint are derived data
//! (issue 13): whatever happens to them, a store must answer every read
//! exactly as the log says, and report what it rebuilt. Each test here
//! checks a store's answers against two independent expectations: what was
//! written (recorded as it was appended, with explicit ids and timestamps),
//! and the same store directory, untouched, opened with
//! `Options::rebuild_index(true)` (which ignores every index file).
//!
//! - damage to index files (deleted, truncated, extended, a flipped byte in
//!   the header or in any section of the body, another segment's or another
//!   store's file in its place, empty, a directory): found at open (header)
//!   or on first use (body), rebuilt, reported, and written anew by a writer;
//! - a failure at each step of writing a derived file (hooks), and stray
//!   temporary files;
//! - SIGKILL at random moments, often in the middle of writing an index
//!   file (the child sleeps before each step and says so);
//! - derived files lost, or reverted to older versions (what a power loss
//!   can leave of files whose rename was not yet durable);
//! - a property test: random appends, rolls and reopens, every answer of a
//!   store opened normally equal to a rebuild's and to a model's;
//! - the v1 fixture, which has no index files.
//!
//! `cargo test --test index_files` runs the short variants;
//! `cargo test --test index_files -- --ignored` the long ones.

mod crashkit;

use annals::format::index_file::SECTION_NAMES;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use annals::format::index_file::{IndexFile, parse_index_file_name, read_binding};
use annals::hooks::{DerivedFileStep, Hooks, StorageHooks};
use annals::{
    AppendResult, Durability, Error, EventData, ExpectedVersion, FindingKind, Options,
    RecordedEvent, RecoveryAction, Store, Uuid, VerifyOptions,
};
use crashkit::Rng;
use proptest::prelude::*;

/// The smallest segment size: a small store spans many segments.
const SEGMENT_SIZE: u64 = 64 * 1024;

/// Explicit timestamps start here (2023-11-14), far before the clock, so
/// that an event stamped by the clock after them is simply later.
const T0: u64 = 1_700_000_000_000_000_000;

/// Sealed segments the damage tests want in their store.
const SEALED_SEGMENTS: usize = 4;

/// A child process forked by the SIGKILL test inherits, until it execs,
/// the lock files of stores other tests have open here, which then
/// cannot be reopened: the SIGKILL test runs alone (write), the others
/// beside one another (read).
static CHILD_SPAWNING: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn beside_other_tests() -> std::sync::RwLockReadGuard<'static, ()> {
    CHILD_SPAWNING.read().unwrap_or_else(|p| p.into_inner())
}

fn options() -> Options {
    Options::default().segment_size_bytes(SEGMENT_SIZE)
}

fn rebuilding() -> Options {
    options().rebuild_index(true)
}

// ---------------------------------------------------------------------------
// What was written, and what a store must answer.
// ---------------------------------------------------------------------------

/// What was appended, recorded as it was: the expectation every store is
/// checked against, independent of any index.
#[derive(Debug, Clone, Default)]
struct Written {
    events: Vec<RecordedEvent>,
    /// (command id, stream, the append's result).
    commands: Vec<(String, String, AppendResult)>,
    /// Events made so far (for ids and data).
    made: u64,
}

impl Written {
    fn version(&self, stream: &str) -> u64 {
        self.events.iter().filter(|e| e.stream == stream).count() as u64
    }

    fn last_timestamp(&self) -> u64 {
        self.events.last().map_or(T0, |e| e.timestamp_ns)
    }

    fn command(&self, id: &str) -> Option<AppendResult> {
        self.commands
            .iter()
            .find(|(c, _, _)| c == id)
            .map(|(_, _, r)| *r)
    }

    /// Records an acknowledged append of `events` to `stream`.
    fn record(
        &mut self,
        stream: &str,
        events: &[EventData],
        command: Option<&str>,
        result: AppendResult,
    ) {
        let version = self.version(stream);
        assert_eq!(
            (result.first_version, result.first_position),
            (version + 1, self.events.len() as u64),
            "append to {stream:?} returned an unexpected place"
        );
        for (i, event) in events.iter().enumerate() {
            self.events.push(RecordedEvent {
                stream: stream.to_string(),
                version: version + 1 + i as u64,
                position: result.first_position + i as u64,
                id: event.id.expect("every event here has an id"),
                event_type: event.event_type.clone(),
                timestamp_ns: event
                    .timestamp_ns
                    .expect("every event here has a timestamp"),
                correlation_id: event.correlation_id.clone(),
                causation_id: event.causation_id.clone(),
                content_type: event.content_type.clone(),
                metadata: event.metadata.clone(),
                data: event.data.clone(),
                subject: event.subject.clone(),
                erased: false,
            });
        }
        if let Some(command) = command {
            self.commands
                .push((command.to_string(), stream.to_string(), result));
        }
    }

    /// A new event with an explicit id and timestamp (`advance_ns` after
    /// the last one, which may be 0), correlated when `correlation` is set.
    fn make_event(
        &mut self,
        previous_ns: u64,
        advance_ns: u64,
        data_len: usize,
        correlation: Option<u64>,
    ) -> EventData {
        self.made += 1;
        let n = self.made;
        let data: Vec<u8> = (0..data_len as u64)
            .map(|i| crashkit::mix(n ^ (i << 20)) as u8)
            .collect();
        let mut event = EventData::new(format!("Type{}", n % 3), data)
            .with_id(Uuid::from_u64_pair(0x01DF_11E5, n))
            .with_timestamp_ns(previous_ns + advance_ns);
        if n % 4 == 1 {
            event = event.with_metadata(format!("meta-{n}").into_bytes());
        }
        if let Some(c) = correlation {
            event = event
                .with_correlation_id(format!("corr-{c}"))
                .with_causation_id(format!("cause-{n}"));
        }
        event
    }
}

/// Appends `batches` random batches (several streams, correlation ids,
/// command ids, timestamps repeating or advancing) to `store`, recording
/// them in `written`. Deterministic in `rng`: two stores written with the
/// same generator hold the same events in the same segments.
fn append_batches(store: &Store, written: &mut Written, rng: &mut Rng, batches: usize) {
    for _ in 0..batches {
        append_one_batch(store, written, rng);
    }
}

fn append_one_batch(store: &Store, written: &mut Written, rng: &mut Rng) {
    let stream = format!("stream-{}", rng.below(6));
    let count = rng.range(1, 5) as usize;
    let mut previous = written.last_timestamp();
    let events: Vec<EventData> = (0..count)
        .map(|_| {
            let correlation = rng.chance(700).then(|| rng.below(5));
            let event = written.make_event(
                previous,
                rng.below(3) * 1_000,
                rng.range(40, 1_500) as usize,
                correlation,
            );
            previous = event.timestamp_ns.unwrap();
            event
        })
        .collect();
    let expected = if rng.chance(500) {
        ExpectedVersion::Any
    } else {
        ExpectedVersion::Exact(written.version(&stream))
    };
    let command = rng
        .chance(300)
        .then(|| format!("cmd-{}", written.commands.len()));
    let result = match &command {
        Some(id) => store.append_idempotent(id, &stream, expected, &events),
        None => store.append(&stream, expected, &events),
    }
    .unwrap_or_else(|e| panic!("append to {stream:?} failed: {e}"));
    written.record(&stream, &events, command.as_deref(), result);
}

/// The questions asked of a store: every stream and correlation id (and
/// ones that do not exist), and timestamps around the events'.
#[derive(Debug, Clone)]
struct Queries {
    streams: Vec<String>,
    correlations: Vec<String>,
    timestamps: Vec<u64>,
}

impl Queries {
    fn of(events: &[RecordedEvent]) -> Queries {
        let streams: BTreeSet<String> = events.iter().map(|e| e.stream.clone()).collect();
        let correlations: BTreeSet<String> = events
            .iter()
            .filter_map(|e| e.correlation_id.clone())
            .collect();
        let mut timestamps: BTreeSet<u64> = [0, T0 - 1, u64::MAX].into();
        for (i, event) in events.iter().enumerate() {
            // Every event's time in a short log; a sample in a long one.
            if events.len() < 400 || i % 5 == 0 {
                timestamps.insert(event.timestamp_ns);
                timestamps.insert(event.timestamp_ns + 1);
                timestamps.insert(event.timestamp_ns.saturating_sub(1));
            }
        }
        Queries {
            streams: streams
                .into_iter()
                .chain(["no-such-stream".to_string()])
                .collect(),
            correlations: correlations
                .into_iter()
                .chain(["no-such-correlation".to_string()])
                .collect(),
            timestamps: timestamps.into_iter().collect(),
        }
    }
}

/// Every answer of the read API, labelled by the question.
#[derive(Debug, Clone, Default)]
struct Answers {
    events: Vec<(String, Vec<RecordedEvent>)>,
    values: Vec<(String, String)>,
}

impl Answers {
    fn events(&mut self, label: String, events: Vec<RecordedEvent>) {
        self.events.push((label, events));
    }

    fn value(&mut self, label: String, value: impl std::fmt::Debug) {
        self.values.push((label, format!("{value:?}")));
    }
}

fn middle(version: u64) -> u64 {
    version / 2 + 1
}

/// What `store` answers to `queries`.
fn answers(store: &Store, queries: &Queries) -> Answers {
    let mut out = Answers::default();
    let ok = |label: &str, r: annals::Result<Vec<RecordedEvent>>| {
        r.unwrap_or_else(|e| panic!("{label} failed: {e}"))
    };
    out.events(
        "read_all".into(),
        ok("read_all", store.read_all(0, usize::MAX)),
    );
    out.events(
        "read_all_backward".into(),
        ok(
            "read_all_backward",
            store.read_all_backward(u64::MAX, usize::MAX),
        ),
    );
    let next = store.next_position();
    out.events(
        "read_all from the middle".into(),
        ok("read_all", store.read_all(next / 2, 7)),
    );
    for stream in &queries.streams {
        let version = store.stream_version(stream);
        out.value(format!("stream_version({stream})"), version);
        let label = format!("read_stream({stream})");
        out.events(
            label.clone(),
            ok(&label, store.read_stream(stream, 1, usize::MAX)),
        );
        out.events(
            format!("{label} from the middle"),
            ok(&label, store.read_stream(stream, middle(version), 5)),
        );
        let label = format!("read_stream_backward({stream})");
        out.events(
            label.clone(),
            ok(
                &label,
                store.read_stream_backward(stream, u64::MAX, usize::MAX),
            ),
        );
        out.events(
            format!("{label} from the middle"),
            ok(
                &label,
                store.read_stream_backward(stream, middle(version), 5),
            ),
        );
    }
    for correlation in &queries.correlations {
        let label = format!("read_correlated({correlation})");
        out.events(
            label.clone(),
            ok(&label, store.read_correlated(correlation)),
        );
    }
    for &timestamp in &queries.timestamps {
        let found = store
            .position_at_or_after(timestamp)
            .unwrap_or_else(|e| panic!("position_at_or_after({timestamp}) failed: {e}"));
        out.value(format!("position_at_or_after({timestamp})"), found);
    }
    out.value("next_position".into(), next);
    out.value("stream_count".into(), store.stream_count());
    out
}

/// What a store holding `written` must answer to `queries`.
fn expected_answers(written: &Written, queries: &Queries) -> Answers {
    let log = &written.events;
    let mut out = Answers::default();
    out.events("read_all".into(), log.clone());
    out.events(
        "read_all_backward".into(),
        log.iter().rev().cloned().collect(),
    );
    let next = log.len() as u64;
    out.events(
        "read_all from the middle".into(),
        log.iter()
            .skip((next / 2) as usize)
            .take(7)
            .cloned()
            .collect(),
    );
    for stream in &queries.streams {
        let events: Vec<RecordedEvent> = log
            .iter()
            .filter(|e| &e.stream == stream)
            .cloned()
            .collect();
        let version = events.len() as u64;
        out.value(format!("stream_version({stream})"), version);
        let label = format!("read_stream({stream})");
        out.events(label.clone(), events.clone());
        let from = (middle(version) - 1) as usize;
        out.events(
            format!("{label} from the middle"),
            events.iter().skip(from).take(5).cloned().collect(),
        );
        let label = format!("read_stream_backward({stream})");
        out.events(label.clone(), events.iter().rev().cloned().collect());
        let end = (middle(version) as usize).min(events.len());
        out.events(
            format!("{label} from the middle"),
            events[..end].iter().rev().take(5).cloned().collect(),
        );
    }
    for correlation in &queries.correlations {
        out.events(
            format!("read_correlated({correlation})"),
            log.iter()
                .filter(|e| e.correlation_id.as_deref() == Some(correlation))
                .cloned()
                .collect(),
        );
    }
    for &timestamp in &queries.timestamps {
        let found = log
            .iter()
            .find(|e| e.timestamp_ns >= timestamp)
            .map(|e| e.position);
        out.value(format!("position_at_or_after({timestamp})"), found);
    }
    out.value("next_position".into(), next);
    let streams: BTreeSet<&str> = log.iter().map(|e| e.stream.as_str()).collect();
    out.value("stream_count".into(), streams.len());
    out
}

fn describe(event: &RecordedEvent) -> String {
    format!(
        "position {} ({} v{}, id {}, {} ns)",
        event.position, event.stream, event.version, event.id, event.timestamp_ns
    )
}

/// Panics with the first answer that differs.
fn assert_same_answers(got: &Answers, want: &Answers, context: &str) {
    assert_eq!(
        got.events.len(),
        want.events.len(),
        "{context}: different questions"
    );
    for ((label, got), (want_label, want)) in got.events.iter().zip(&want.events) {
        assert_eq!(label, want_label, "{context}: different questions");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                a == b,
                "{context}: {label}: event {i} is {} but should be {}{}",
                describe(a),
                describe(b),
                if describe(a) == describe(b) {
                    " (another field differs)"
                } else {
                    ""
                }
            );
        }
        assert_eq!(
            got.len(),
            want.len(),
            "{context}: {label}: {} events instead of {}",
            got.len(),
            want.len()
        );
    }
    assert_eq!(got.values, want.values, "{context}");
}

/// The questions only a writer answers, asked so that a correct store
/// writes nothing: every command id repeated (the original result comes
/// back, whatever the expected version says), and for every stream an
/// append expecting the wrong version (refused with the actual one).
fn check_writer_answers(store: &Store, written: &Written, streams: &[String], context: &str) {
    let before = store.next_position();
    let retry = [EventData::new("Retry", b"retry".to_vec())];
    for (command, stream, result) in &written.commands {
        let again = store
            .append_idempotent(command, stream, ExpectedVersion::NoStream, &retry)
            .unwrap_or_else(|e| panic!("{context}: repeating command {command} failed: {e}"));
        assert_eq!(
            again, *result,
            "{context}: repeating command {command} gave another result"
        );
    }
    for stream in streams {
        let actual = written.version(stream);
        match store.append(stream, ExpectedVersion::Exact(actual + 3), &retry) {
            Err(Error::WrongExpectedVersion {
                stream: got_stream,
                actual: got_actual,
                ..
            }) => {
                assert_eq!(
                    (got_stream.as_str(), got_actual),
                    (stream.as_str(), actual),
                    "{context}: wrong version check on {stream}"
                );
            }
            other => panic!("{context}: appending to {stream} at the wrong version gave {other:?}"),
        }
    }
    assert_eq!(
        store.next_position(),
        before,
        "{context}: the writer checks wrote something"
    );
}

// ---------------------------------------------------------------------------
// Store directories.
// ---------------------------------------------------------------------------

/// Index files in `dir` by file name.
fn index_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_type().unwrap().is_file()
                && parse_index_file_name(&e.file_name().to_string_lossy()).is_some()
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Names of every file or directory in `dir`.
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Names of the index files of the sealed segments of `dir` (all but the newest).
fn sealed_index_names(dir: &Path) -> Vec<String> {
    let segments = crashkit::segment_files(dir);
    segments[..segments.len() - 1]
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            format!("{}.idx", name.strip_suffix(".seg").unwrap())
        })
        .collect()
}

/// Checks that every sealed segment of `dir` has an index file, whole and
/// valid, and byte for byte the one a rebuild wrote (`reference`).
fn assert_index_files_like(dir: &Path, reference: &BTreeMap<String, Vec<u8>>, context: &str) {
    let found = index_files(dir);
    for name in sealed_index_names(dir) {
        let bytes = found
            .get(&name)
            .unwrap_or_else(|| panic!("{context}: {name} is missing"));
        if let Err(e) = IndexFile::parse(bytes) {
            panic!("{context}: {name} is not a valid index file: {e}");
        }
        let want = reference
            .get(&name)
            .unwrap_or_else(|| panic!("{context}: the rebuild wrote no {name}"));
        assert!(
            bytes == want,
            "{context}: {name} differs from the one a rebuild writes"
        );
    }
}

/// The index files of findings of kind `IndexFile` in a recovery report.
fn reported_index_files(store: &Store) -> Vec<(PathBuf, RecoveryAction)> {
    store
        .recovery_report()
        .items
        .iter()
        .filter(|item| matches!(item.finding.kind, FindingKind::IndexFile { .. }))
        .map(|item| (item.finding.path.clone(), item.action))
        .collect()
}

/// Index files reported by `index_rebuilds` (found damaged on first use, or
/// not written).
fn late_index_files(store: &Store) -> Vec<PathBuf> {
    store
        .index_rebuilds()
        .into_iter()
        .filter_map(|finding| match &finding.kind {
            FindingKind::IndexFile { .. } => Some(finding.path),
            // The checkpoint written after the failed index file fails
            // alike when the same step keeps failing.
            FindingKind::IndexCheckpoint { detail }
                if detail.starts_with("could not be written") =>
            {
                None
            }
            _ => panic!("index_rebuilds holds another kind: {finding}"),
        })
        .collect()
}

fn assert_verifies(dir: &Path, context: &str) {
    let report = annals::verify(dir, &VerifyOptions::default())
        .unwrap_or_else(|e| panic!("{context}: verify failed: {e}"));
    assert!(
        report.is_ok(),
        "{context}: verify found problems: {:?}",
        report.problems
    );
}

/// A closed store with several sealed segments (each with its index file),
/// what was written to it, and its answers as a rebuild gives them.
struct Pristine {
    dir: tempfile::TempDir,
    written: Written,
    queries: Queries,
    /// The answers of a rebuild (`Options::rebuild_index(true)`) of a copy.
    reference: Answers,
    reference_chain_head: ([u8; 32], Option<u64>),
    /// The index files that rebuild wrote.
    reference_files: BTreeMap<String, Vec<u8>>,
    /// The index checkpoint of this store before its last two seals, if
    /// close wrote one.
    older_checkpoint: Option<Vec<u8>>,
}

/// Writes a store of at least [`SEALED_SEGMENTS`] sealed segments from
/// `seed` (the same seed gives the same events in the same segments).
fn write_store(dir: &Path, seed: u64) -> Written {
    write_store_keeping_older_checkpoint(dir, seed).0
}

/// As [`write_store`], closing and reopening the store once on the way;
/// also returns the index checkpoint that close left, if any (an older
/// checkpoint than the final one: two fewer sealed segments).
fn write_store_keeping_older_checkpoint(dir: &Path, seed: u64) -> (Written, Option<Vec<u8>>) {
    let mut rng = Rng::new(seed);
    let mut written = Written::default();
    let store = Store::open(dir, options()).unwrap();
    while crashkit::segment_files(dir).len() <= SEALED_SEGMENTS - 2 {
        append_batches(&store, &mut written, &mut rng, 10);
    }
    store.close().unwrap();
    let older_checkpoint = fs::read(dir.join(CHECKPOINT)).ok();
    let store = Store::open(dir, options()).unwrap();
    while crashkit::segment_files(dir).len() <= SEALED_SEGMENTS {
        append_batches(&store, &mut written, &mut rng, 10);
    }
    store.close().unwrap();
    (written, older_checkpoint)
}

/// The index checkpoint's file name.
const CHECKPOINT: &str = "index.checkpoint";

fn pristine(seed: u64) -> Pristine {
    let dir = crashkit::ram_dir();
    let (written, older_checkpoint) = write_store_keeping_older_checkpoint(dir.path(), seed);
    let queries = Queries::of(&written.events);
    let expected = expected_answers(&written, &queries);
    // The reference: an untouched copy, its index rebuilt from the log.
    let copy = crashkit::ram_dir();
    crashkit::copy_dir(dir.path(), copy.path());
    let store = Store::open(copy.path(), rebuilding()).unwrap();
    let reference = answers(&store, &queries);
    assert_same_answers(&reference, &expected, "the rebuilt reference");
    check_writer_answers(&store, &written, &queries.streams, "the rebuilt reference");
    let reference_chain_head = store.chain_head();
    store.close().unwrap();
    let reference_files = index_files(copy.path());
    // The index files written when each segment was sealed are the ones a
    // rebuild writes.
    assert_index_files_like(dir.path(), &reference_files, "index files written at seal");
    Pristine {
        dir,
        written,
        queries,
        reference,
        reference_chain_head,
        reference_files,
        older_checkpoint,
    }
}

impl Pristine {
    /// A copy of the store to damage.
    fn copy(&self) -> tempfile::TempDir {
        let work = crashkit::ram_dir();
        crashkit::copy_dir(self.dir.path(), work.path());
        work
    }

    /// Checks that `store` answers as the reference and as written.
    fn assert_answers(&self, store: &Store, context: &str) {
        let got = answers(store, &self.queries);
        assert_same_answers(&got, &self.reference, context);
        assert_same_answers(
            &got,
            &expected_answers(&self.written, &self.queries),
            context,
        );
        assert_eq!(
            store.chain_head(),
            self.reference_chain_head,
            "{context}: chain head"
        );
    }
}

// ---------------------------------------------------------------------------
// 1. Damaged index files.
// ---------------------------------------------------------------------------

/// What is done to one index file.
#[derive(Debug, Clone)]
enum Damage {
    Delete,
    /// Cut short.
    Truncate(Cut),
    /// Eight zero bytes added at the end.
    Extend,
    /// The byte at this offset of the 320-byte header inverted.
    FlipHeader(usize),
    /// The byte at this offset of the body inverted (`section` names where).
    FlipBody {
        offset: usize,
        section: String,
    },
    /// The index file of another segment of the same store renamed to it.
    OtherSegment,
    /// The same segment's index file from another store with the same
    /// events (another salt).
    OtherStore(PathBuf),
    Empty,
}

/// Where an index file is cut.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// To this many bytes.
    To(usize),
    Half,
    /// By this many bytes.
    By(usize),
}

impl Damage {
    /// Whether open sees it (the header, binding and tree section, which
    /// has a checksum of its own, are checked at open; the rest of the
    /// body, by its checksum, on first use).
    fn found_at_open(&self) -> bool {
        match self {
            Damage::FlipBody { section, .. } => section == "tree",
            _ => true,
        }
    }

    fn apply(&self, dir: &Path, name: &str, other_name: &str) {
        let path = dir.join(name);
        match self {
            Damage::Delete => fs::remove_file(&path).unwrap(),
            Damage::Truncate(cut) => {
                let bytes = fs::read(&path).unwrap();
                let len = match *cut {
                    Cut::To(len) => len,
                    Cut::Half => bytes.len() / 2,
                    Cut::By(by) => bytes.len() - by,
                };
                assert!(len < bytes.len());
                fs::write(&path, &bytes[..len]).unwrap();
            }
            Damage::Extend => {
                let mut bytes = fs::read(&path).unwrap();
                bytes.extend_from_slice(&[0; 8]);
                fs::write(&path, bytes).unwrap();
            }
            Damage::FlipHeader(offset) | Damage::FlipBody { offset, .. } => {
                let mut bytes = fs::read(&path).unwrap();
                bytes[*offset] ^= 0xFF;
                fs::write(&path, bytes).unwrap();
            }
            Damage::OtherSegment => {
                fs::copy(dir.join(other_name), &path).unwrap();
            }
            Damage::OtherStore(other_dir) => {
                let theirs = fs::read(other_dir.join(name)).unwrap();
                assert!(
                    theirs != fs::read(&path).unwrap(),
                    "the other store's {name} is the same file: the test would prove nothing"
                );
                fs::write(&path, theirs).unwrap();
            }
            Damage::Empty => fs::write(&path, b"").unwrap(),
        }
    }
}

/// Reads the section table of an index file (`docs/format.md`): ten
/// (offset, length) pairs at 120.
fn sections(bytes: &[u8]) -> Vec<(usize, usize)> {
    (0..10)
        .map(|i| {
            let at = 120 + 16 * i;
            let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
            (word(at) as usize, word(at + 8) as usize)
        })
        .collect()
}

/// Body offsets to flip in an index file: the first, middle and last byte
/// of every section, and padding between sections.
fn body_damages(bytes: &[u8], name: &str) -> Vec<Damage> {
    let mut out = Vec::new();
    let mut end = 320;
    for (i, (offset, len)) in sections(bytes).into_iter().enumerate() {
        if SECTION_NAMES[i] == "tiles" && len == 0 {
            // These segments hold fewer than 256 events, so no tile: a
            // damaged tiles section is tested in tests/proofs.rs.
            continue;
        }
        assert!(
            len > 0,
            "{name}: its {} is empty: the store does not exercise it",
            SECTION_NAMES[i]
        );
        if offset > end {
            out.push(Damage::FlipBody {
                offset: end,
                section: format!("padding before the {}", SECTION_NAMES[i]),
            });
        }
        for at in [offset, offset + len / 2, offset + len - 1] {
            out.push(Damage::FlipBody {
                offset: at,
                section: SECTION_NAMES[i].to_string(),
            });
        }
        end = offset + len;
    }
    if end < bytes.len() {
        out.push(Damage::FlipBody {
            offset: bytes.len() - 1,
            section: "padding at the end".to_string(),
        });
    }
    out
}

/// Header offsets to flip: the first byte of every field, and more.
fn header_damages() -> Vec<Damage> {
    let mut offsets: BTreeSet<usize> = [
        0, 7, 8, 12, 16, 24, 32, 40, 48, 52, 56, 64, 72, 103, 104, 112, 119, 280, 295, 311, 312,
        315, 316, 319,
    ]
    .into();
    offsets.extend((120..280).step_by(8));
    offsets.into_iter().map(Damage::FlipHeader).collect()
}

/// Damages one index file of a copy of `pristine` and checks the whole
/// protocol: a reader answers right and reports it (changing nothing), a
/// writer answers right, reports it and writes the file anew, and the next
/// writer finds nothing to report.
fn check_damage(pristine: &Pristine, damage: &Damage, name: &str, other_name: &str) {
    let mut context = format!("{damage:?} on {name}");
    if let Damage::FlipBody { section, .. } = damage {
        context.push_str(&format!(" (in the {section})"));
    }
    let work = pristine.copy();
    let dir = work.path();
    damage.apply(dir, name, other_name);
    let path = dir.join(name);
    let damaged = fs::read(&path).ok();
    let at_open = damage.found_at_open();

    let reader =
        Store::open_read_only(dir).unwrap_or_else(|e| panic!("{context}: read-only open: {e}"));
    let reported = reported_index_files(&reader);
    assert_eq!(
        reader.recovery_report().items.len(),
        reported.len(),
        "{context}: reader: {:?}",
        reader.recovery_report()
    );
    if at_open {
        assert_eq!(
            reported,
            [(path.clone(), RecoveryAction::RebuiltInMemory)],
            "{context}: reader"
        );
    } else {
        assert_eq!(reported, [], "{context}: reader");
    }
    pristine.assert_answers(&reader, &format!("{context}: reader"));
    let late = late_index_files(&reader);
    if at_open {
        assert_eq!(late, Vec::<PathBuf>::new(), "{context}: reader");
    } else {
        assert_eq!(
            late,
            std::slice::from_ref(&path),
            "{context}: reader, after first use"
        );
    }
    drop(reader);
    assert_eq!(
        fs::read(&path).ok(),
        damaged,
        "{context}: a reader changed the index file"
    );

    let writer = Store::open(dir, options()).unwrap_or_else(|e| panic!("{context}: open: {e}"));
    let reported = reported_index_files(&writer);
    assert_eq!(
        writer.recovery_report().items.len(),
        reported.len(),
        "{context}: writer: {:?}",
        writer.recovery_report()
    );
    if at_open {
        assert_eq!(
            reported,
            [(path.clone(), RecoveryAction::Rebuilt)],
            "{context}: writer"
        );
    } else {
        assert_eq!(reported, [], "{context}: writer");
    }
    pristine.assert_answers(&writer, &format!("{context}: writer"));
    let late = late_index_files(&writer);
    if at_open {
        assert_eq!(late, Vec::<PathBuf>::new(), "{context}: writer");
    } else {
        assert_eq!(
            late,
            std::slice::from_ref(&path),
            "{context}: writer, after first use"
        );
    }
    check_writer_answers(
        &writer,
        &pristine.written,
        &pristine.queries.streams,
        &format!("{context}: writer"),
    );
    writer.close().unwrap();
    assert_index_files_like(
        dir,
        &pristine.reference_files,
        &format!("{context}: after the writer"),
    );

    let again = Store::open(dir, options()).unwrap();
    assert!(
        again.recovery_report().is_empty(),
        "{context}: the second writer found {:?}",
        again.recovery_report()
    );
    pristine.assert_answers(&again, &format!("{context}: second writer"));
    assert_eq!(
        late_index_files(&again),
        Vec::<PathBuf>::new(),
        "{context}: second writer"
    );
    again.close().unwrap();
    assert_verifies(dir, &context);
}

/// The sealed index file the `i`th case damages, and another one.
fn target(pristine: &Pristine, i: usize) -> (String, String) {
    let names = sealed_index_names(pristine.dir.path());
    assert!(names.len() >= SEALED_SEGMENTS);
    let name = names[i % names.len()].clone();
    let other = names[(i + 1) % names.len()].clone();
    (name, other)
}

#[test]
fn deleted_truncated_extended_or_replaced_index_files_are_rebuilt() {
    let _serial = beside_other_tests();
    let seed = crashkit::seed("index_files_replaced");
    let pristine = pristine(seed);
    // The same events, written again: the same segments with other salts.
    let other_store = crashkit::ram_dir();
    let other_written = write_store(other_store.path(), seed);
    assert_eq!(other_written.events, pristine.written.events);
    assert_eq!(
        crashkit::segment_files(other_store.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect::<Vec<_>>(),
        crashkit::segment_files(pristine.dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect::<Vec<_>>(),
    );
    let damages = [
        Damage::Delete,
        Damage::Empty,
        Damage::Truncate(Cut::To(8)),
        Damage::Truncate(Cut::To(255)),
        Damage::Truncate(Cut::To(256)),
        Damage::Truncate(Cut::Half),
        Damage::Truncate(Cut::By(8)),
        Damage::Truncate(Cut::By(1)),
        Damage::Extend,
        Damage::OtherSegment,
        Damage::OtherStore(other_store.path().to_path_buf()),
    ];
    for (i, damage) in damages.iter().enumerate() {
        let (name, other) = target(&pristine, i);
        check_damage(&pristine, damage, &name, &other);
    }
}

#[test]
fn a_flipped_header_byte_is_found_at_open() {
    let _serial = beside_other_tests();
    let pristine = pristine(crashkit::seed("index_files_header"));
    for (i, damage) in header_damages().iter().enumerate() {
        let (name, other) = target(&pristine, i);
        check_damage(&pristine, damage, &name, &other);
    }
}

#[test]
fn a_flipped_body_byte_is_found_on_first_use() {
    let _serial = beside_other_tests();
    let pristine = pristine(crashkit::seed("index_files_body"));
    let names = sealed_index_names(pristine.dir.path());
    // Every section of two files: the first segment's and a middle one's.
    for name in [&names[0], &names[names.len() / 2]] {
        let bytes = &pristine.reference_files[name];
        for damage in body_damages(bytes, name) {
            check_damage(&pristine, &damage, name, &names[0]);
        }
    }
}

/// A directory where an index file belongs cannot be mapped nor replaced:
/// the segment is indexed in memory, reported at every open, and every
/// answer is right.
#[test]
fn a_directory_named_like_an_index_file() {
    let _serial = beside_other_tests();
    let pristine = pristine(crashkit::seed("index_files_directory"));
    let (name, _) = target(&pristine, 1);
    let work = pristine.copy();
    let dir = work.path();
    let path = dir.join(&name);
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("inside"), b"not an index").unwrap();

    let reader = Store::open_read_only(dir).unwrap();
    assert_eq!(
        reported_index_files(&reader),
        [(path.clone(), RecoveryAction::RebuiltInMemory)]
    );
    pristine.assert_answers(&reader, "reader");
    drop(reader);
    for round in 0..2 {
        let writer = Store::open(dir, options()).unwrap();
        let context = format!("writer {round}");
        // It cannot be written: the rename over a directory fails.
        assert_eq!(
            reported_index_files(&writer),
            [(path.clone(), RecoveryAction::RebuiltInMemory)],
            "{context}: {:?}",
            writer.recovery_report()
        );
        pristine.assert_answers(&writer, &context);
        check_writer_answers(
            &writer,
            &pristine.written,
            &pristine.queries.streams,
            &context,
        );
        writer.close().unwrap();
        assert!(
            path.join("inside").is_file(),
            "{context}: the directory was touched"
        );
    }
    assert_verifies(dir, "directory");
}

/// Every index file of the store deleted at once, and a writer's rebuild on
/// request (`rebuild_index`) of a store whose index files are all damaged.
#[test]
fn all_index_files_deleted_or_damaged() {
    let _serial = beside_other_tests();
    let pristine = pristine(crashkit::seed("index_files_all"));
    let names = sealed_index_names(pristine.dir.path());

    let work = pristine.copy();
    for name in &names {
        fs::remove_file(work.path().join(name)).unwrap();
    }
    let reader = Store::open_read_only(work.path()).unwrap();
    assert_eq!(reported_index_files(&reader).len(), names.len());
    pristine.assert_answers(&reader, "all deleted: reader");
    drop(reader);
    let writer = Store::open(work.path(), options()).unwrap();
    assert!(
        reported_index_files(&writer)
            .iter()
            .all(|(_, action)| *action == RecoveryAction::Rebuilt)
    );
    assert_eq!(reported_index_files(&writer).len(), names.len());
    pristine.assert_answers(&writer, "all deleted: writer");
    writer.close().unwrap();
    assert_index_files_like(work.path(), &pristine.reference_files, "all deleted");

    // Bodies damaged everywhere: a rebuild on request reads none of them,
    // reports nothing, and writes them all anew.
    let work = pristine.copy();
    for name in &names {
        let path = work.path().join(name);
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() - 1;
        bytes[at] ^= 0xFF;
        fs::write(&path, bytes).unwrap();
    }
    let reader = Store::open_read_only_rebuilding_index(work.path()).unwrap();
    assert!(reader.recovery_report().is_empty());
    pristine.assert_answers(&reader, "rebuilding reader");
    assert_eq!(late_index_files(&reader), Vec::<PathBuf>::new());
    drop(reader);
    let writer = Store::open(work.path(), rebuilding()).unwrap();
    assert!(writer.recovery_report().is_empty());
    pristine.assert_answers(&writer, "rebuilding writer");
    assert_eq!(late_index_files(&writer), Vec::<PathBuf>::new());
    writer.close().unwrap();
    assert_index_files_like(work.path(), &pristine.reference_files, "rebuilt on request");
}

// ---------------------------------------------------------------------------
// 2a. A failure at each step of writing a derived file.
// ---------------------------------------------------------------------------

/// Fails the `nth` (from 0) call of one step of writing a derived file.
struct FailStep {
    step: DerivedFileStep,
    nth: usize,
    kind: std::io::ErrorKind,
    seen: AtomicUsize,
    /// The path the failed step was called with.
    failed: Mutex<Option<PathBuf>>,
    /// The derived file whose steps run now.
    writing: Mutex<Option<PathBuf>>,
}

impl StorageHooks for FailStep {
    fn before_derived_file_step(&self, path: &Path, step: DerivedFileStep) -> std::io::Result<()> {
        // Only the steps of index files count (checkpoints are written
        // after them); a directory sync belongs to the file written last.
        let mut writing = self.writing.lock().unwrap();
        if step != DerivedFileStep::SyncDirectory {
            *writing = Some(path.to_path_buf());
        }
        let of_index_file = writing
            .as_deref()
            .is_some_and(|p| index_file_of_step(p).is_some());
        if of_index_file
            && step == self.step
            && self.seen.fetch_add(1, Ordering::SeqCst) == self.nth
        {
            *self.failed.lock().unwrap() = Some(path.to_path_buf());
            return Err(std::io::Error::new(self.kind, "injected failure"));
        }
        Ok(())
    }
}

/// The segment's index file a failed step was writing: the step's path is
/// the temporary file, the final name, or (directory sync) the directory.
fn index_file_of_step(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy();
    let name = name.strip_suffix(".tmp").unwrap_or(&name);
    parse_index_file_name(name).map(|_| name.to_string())
}

#[test]
fn a_failure_at_any_step_of_writing_an_index_file_loses_nothing() {
    let _serial = beside_other_tests();
    let seed = crashkit::seed("index_files_failing_step");
    for step in [
        DerivedFileStep::Write,
        DerivedFileStep::Sync,
        DerivedFileStep::Rename,
        DerivedFileStep::SyncDirectory,
    ] {
        for nth in 0..3 {
            let context = format!("{step:?} number {nth} fails");
            let work = crashkit::ram_dir();
            let dir = work.path();
            let hooks = Arc::new(FailStep {
                step,
                nth,
                kind: if nth == 1 {
                    std::io::ErrorKind::StorageFull
                } else {
                    std::io::ErrorKind::Other
                },
                seen: AtomicUsize::new(0),
                failed: Mutex::new(None),
                writing: Mutex::new(None),
            });
            let mut failing = options().durability(Durability::Always);
            failing.hooks = Hooks::new(hooks.clone());
            let mut rng = Rng::new(seed ^ crashkit::mix(nth as u64));
            let mut written = Written::default();
            let store = Store::open(dir, failing.clone()).unwrap();
            // Every append succeeds: the index file is derived data.
            while crashkit::segment_files(dir).len() <= SEALED_SEGMENTS {
                append_batches(&store, &mut written, &mut rng, 5);
            }
            // The indexer writes index files in the background: wait until
            // it has written those of every segment sealed so far (under
            // load it had not always reached the failing step yet).
            let _ = store.index_rebuilds();
            let failed_path = hooks.failed.lock().unwrap().clone();
            let failed_path =
                failed_path.unwrap_or_else(|| panic!("{context}: the step never ran"));
            let queries = Queries::of(&written.events);
            let expected = expected_answers(&written, &queries);
            assert_same_answers(&answers(&store, &queries), &expected, &context);
            // The sealed segment whose index file failed stays in memory,
            // and says so (unless only the directory sync failed: then the
            // file is in place, and may or may not survive a power loss).
            let late = late_index_files(&store);
            let failed_name = index_file_of_step(&failed_path);
            if step == DerivedFileStep::SyncDirectory {
                assert!(late.len() <= 1, "{context}: {late:?}");
            } else {
                let name = failed_name
                    .clone()
                    .unwrap_or_else(|| panic!("{context}: failed at {failed_path:?}"));
                assert_eq!(late, [dir.join(&name)], "{context}");
                assert!(!dir.join(&name).exists(), "{context}: {name} exists");
            }
            check_writer_answers(&store, &written, &queries.streams, &context);
            store.close().unwrap();
            let strays: Vec<String> = names(dir)
                .into_iter()
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert_eq!(
                strays,
                Vec::<String>::new(),
                "{context}: temporary files left"
            );

            // The reference: a copy, rebuilt from the log.
            let copy = crashkit::ram_dir();
            crashkit::copy_dir(dir, copy.path());
            let reference = Store::open(copy.path(), rebuilding()).unwrap();
            let reference_answers = answers(&reference, &queries);
            reference.close().unwrap();
            let reference_files = index_files(copy.path());

            assert_verifies(dir, &context);
            let store = Store::open(dir, options()).unwrap();
            let reported = reported_index_files(&store);
            if step != DerivedFileStep::SyncDirectory {
                let name = failed_name.unwrap();
                assert_eq!(
                    reported,
                    [(dir.join(&name), RecoveryAction::Rebuilt)],
                    "{context}: reopen"
                );
            }
            let got = answers(&store, &queries);
            assert_same_answers(&got, &expected, &format!("{context}: reopen"));
            assert_same_answers(&got, &reference_answers, &format!("{context}: reopen"));
            check_writer_answers(&store, &written, &queries.streams, &context);
            store.close().unwrap();
            assert_index_files_like(dir, &reference_files, &context);
            let store = Store::open(dir, options()).unwrap();
            assert!(
                store.recovery_report().is_empty(),
                "{context}: second reopen: {:?}",
                store.recovery_report()
            );
            store.close().unwrap();
        }
    }
}

/// A crash between writing a derived file's temporary file and renaming it
/// leaves `NAME.tmp`: never read, and removed by a writer's open
/// (`log::derived_file`: "a stray temporary file is left, which a writer's
/// open removes").
#[test]
fn stray_temporary_derived_files_are_ignored_and_removed_by_a_writer() {
    let _serial = beside_other_tests();
    let pristine = pristine(crashkit::seed("index_files_stray_temp"));
    let work = pristine.copy();
    let dir = work.path();
    let sealed = sealed_index_names(dir);
    let active = {
        let segments = crashkit::segment_files(dir);
        let name = segments
            .last()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        format!("{}.idx", name.strip_suffix(".seg").unwrap())
    };
    let strays = [
        format!("{}.tmp", sealed[0]),
        format!("{active}.tmp"),
        "index.checkpoint.tmp".to_string(),
    ];
    // Half of a real index file, and garbage.
    let half = &pristine.reference_files[&sealed[0]];
    fs::write(dir.join(&strays[0]), &half[..half.len() / 2]).unwrap();
    fs::write(dir.join(&strays[1]), b"garbage").unwrap();
    fs::write(dir.join(&strays[2]), b"garbage").unwrap();

    let reader = Store::open_read_only(dir).unwrap();
    pristine.assert_answers(&reader, "reader");
    assert_eq!(late_index_files(&reader), Vec::<PathBuf>::new());
    drop(reader);
    for stray in &strays {
        assert!(dir.join(stray).exists(), "a reader removed {stray}");
    }

    let writer = Store::open(dir, options()).unwrap();
    pristine.assert_answers(&writer, "writer");
    assert_eq!(late_index_files(&writer), Vec::<PathBuf>::new());
    writer.close().unwrap();
    let left: Vec<&String> = strays.iter().filter(|s| dir.join(s).exists()).collect();
    assert!(
        left.is_empty(),
        "a writer's open left stray temporary derived files: {left:?}"
    );
}

// ---------------------------------------------------------------------------
// 2c. Derived files lost or reverted (what a power loss can leave).
// ---------------------------------------------------------------------------

/// Derived files (index files, the checkpoint when there is one) in `dir`:
/// everything that is not a segment, the lock or the settings.
fn derived_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| parse_index_file_name(n).is_some() || n.starts_with("index.checkpoint"))
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

/// A power loss keeps a derived file whole or not at all, old or new (it is
/// renamed into place): a store whose derived files are lost, or are older
/// versions from before more was appended and sealed, answers right.
#[test]
fn derived_files_lost_or_reverted_to_older_versions() {
    let _serial = beside_other_tests();
    let seed = crashkit::seed("index_files_reverted");
    let mut rng = Rng::new(seed);
    let work = crashkit::ram_dir();
    let dir = work.path();
    let mut written = Written::default();
    let store = Store::open(dir, options()).unwrap();
    while crashkit::segment_files(dir).len() < 3 {
        append_batches(&store, &mut written, &mut rng, 5);
    }
    // Part of the newest segment filled too.
    append_batches(&store, &mut written, &mut rng, 3);
    store.close().unwrap();
    let older = derived_files(dir);
    let store = Store::open(dir, options()).unwrap();
    let segments_before = crashkit::segment_files(dir).len();
    while crashkit::segment_files(dir).len() < segments_before + 2 {
        append_batches(&store, &mut written, &mut rng, 5);
    }
    store.close().unwrap();
    let newer = derived_files(dir);
    assert!(newer.len() > older.len(), "{older:?} / {newer:?}");

    let queries = Queries::of(&written.events);
    let expected = expected_answers(&written, &queries);
    let reference_dir = crashkit::ram_dir();
    crashkit::copy_dir(dir, reference_dir.path());
    let reference = Store::open(reference_dir.path(), rebuilding()).unwrap();
    assert_same_answers(&answers(&reference, &queries), &expected, "reference");
    reference.close().unwrap();
    let reference_files = index_files(reference_dir.path());

    type Change<'a> = Box<dyn Fn(&Path) + 'a>;
    let variants: [(&str, Change); 3] = [
        (
            "the newer derived files lost",
            Box::new(|dir: &Path| {
                for name in newer.keys().filter(|n| older.get(*n) != newer.get(*n)) {
                    fs::remove_file(dir.join(name)).unwrap();
                }
            }),
        ),
        (
            "every derived file reverted to its older version or lost",
            Box::new(|dir: &Path| {
                for name in newer.keys() {
                    match older.get(name) {
                        Some(bytes) => fs::write(dir.join(name), bytes).unwrap(),
                        None => fs::remove_file(dir.join(name)).unwrap(),
                    }
                }
            }),
        ),
        (
            "every derived file lost",
            Box::new(|dir: &Path| {
                for name in newer.keys() {
                    fs::remove_file(dir.join(name)).unwrap();
                }
            }),
        ),
    ];
    for (what, damage) in &variants {
        let copy = crashkit::ram_dir();
        crashkit::copy_dir(dir, copy.path());
        damage(copy.path());
        let reader = Store::open_read_only(copy.path()).unwrap();
        assert!(
            !reported_index_files(&reader).is_empty() || !reader.recovery_report().is_empty(),
            "{what}: the reader reported nothing"
        );
        assert_same_answers(&answers(&reader, &queries), &expected, what);
        drop(reader);
        let writer = Store::open(copy.path(), options()).unwrap();
        assert!(
            !writer.recovery_report().is_empty(),
            "{what}: the writer reported nothing"
        );
        assert!(
            writer.recovery_report().items.iter().all(|item| matches!(
                item.finding.kind,
                FindingKind::IndexFile { .. } | FindingKind::IndexCheckpoint { .. }
            ) && item.action
                == RecoveryAction::Rebuilt),
            "{what}: {:?}",
            writer.recovery_report()
        );
        assert_same_answers(&answers(&writer, &queries), &expected, what);
        check_writer_answers(&writer, &written, &queries.streams, what);
        writer.close().unwrap();
        assert_index_files_like(copy.path(), &reference_files, what);
        let again = Store::open(copy.path(), options()).unwrap();
        assert!(
            again.recovery_report().is_empty(),
            "{what}: {:?}",
            again.recovery_report()
        );
        again.close().unwrap();
    }
}

// ---------------------------------------------------------------------------
// 4. The v1 fixture: no index files.
// ---------------------------------------------------------------------------

fn v1_fixture_copy() -> tempfile::TempDir {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store");
    let copy = tempfile::tempdir().unwrap();
    crashkit::copy_dir(&fixture, copy.path());
    copy
}

#[test]
fn the_v1_fixture_opens_without_index_files_and_a_writer_writes_them() {
    let _serial = beside_other_tests();
    let reference_dir = v1_fixture_copy();
    let reference = Store::open_read_only_rebuilding_index(reference_dir.path()).unwrap();
    let all = reference.read_all(0, usize::MAX).unwrap();
    assert!(!all.is_empty());
    let queries = Queries::of(&all);
    let want = answers(&reference, &queries);
    drop(reference);

    let copy = v1_fixture_copy();
    let dir = copy.path();
    let before = names(dir);
    assert!(
        index_files(dir).is_empty(),
        "the v1 fixture has index files"
    );
    let sealed: Vec<PathBuf> = sealed_index_names(dir)
        .iter()
        .map(|n| dir.join(n))
        .collect();
    assert_eq!(sealed.len(), 2);

    let reader = Store::open_read_only(dir).unwrap();
    assert_eq!(
        reported_index_files(&reader),
        sealed
            .iter()
            .map(|p| (p.clone(), RecoveryAction::RebuiltInMemory))
            .collect::<Vec<_>>()
    );
    assert_same_answers(&answers(&reader, &queries), &want, "v1 reader");
    drop(reader);
    assert_eq!(names(dir), before, "a reader wrote to the fixture");

    let writer = Store::open(dir, Options::default()).unwrap();
    assert_same_answers(&answers(&writer, &queries), &want, "v1 writer");
    writer.close().unwrap();
    for path in &sealed {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        IndexFile::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let binding = read_binding(&bytes).unwrap();
        let base = parse_index_file_name(&path.file_name().unwrap().to_string_lossy()).unwrap();
        assert_eq!(binding.base_position, base);
    }
    let again = Store::open(dir, Options::default()).unwrap();
    assert!(
        again.recovery_report().is_empty(),
        "{:?}",
        again.recovery_report()
    );
    assert_same_answers(&answers(&again, &queries), &want, "v1 second writer");
    assert_eq!(late_index_files(&again), Vec::<PathBuf>::new());
    again.close().unwrap();
    // A reader now maps them, and reports nothing.
    let reader = Store::open_read_only(dir).unwrap();
    assert!(reader.recovery_report().is_empty());
    assert_same_answers(&answers(&reader, &queries), &want, "v1 reader after");
    assert_eq!(late_index_files(&reader), Vec::<PathBuf>::new());
}

// ---------------------------------------------------------------------------
// 2b. SIGKILL, often while an index file is being written.
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "ANNALS_INDEX_CRASH_CHILD";
const CHILD_SEED_ENV: &str = "ANNALS_INDEX_CRASH_CHILD_SEED";
const CHILD_FIRST_ID_ENV: &str = "ANNALS_INDEX_CRASH_CHILD_FIRST_ID";
const CHILD_TEST_NAME: &str = "index_crash_child_entry_point";

/// In the child: says which derived-file step comes next, then sleeps a
/// little, so that the parent's kill lands right there.
struct SlowDerivedFiles;

impl StorageHooks for SlowDerivedFiles {
    fn before_derived_file_step(&self, path: &Path, step: DerivedFileStep) -> std::io::Result<()> {
        let line = format!("STEP {step:?} {}\n", path.display());
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes()).unwrap();
        out.flush().unwrap();
        drop(out);
        std::thread::sleep(Duration::from_millis(2));
        Ok(())
    }
}

fn crash_options() -> Options {
    options().durability(Durability::Always)
}

fn crash_command_id(batch_id: u64) -> Option<String> {
    batch_id
        .is_multiple_of(3)
        .then(|| format!("cmd-{batch_id}"))
}

/// In the child: appends until killed. In a normal test run: does nothing.
#[test]
fn index_crash_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
    let mut batch_id: u64 = std::env::var(CHILD_FIRST_ID_ENV).unwrap().parse().unwrap();
    let mut options = crash_options();
    options.hooks = Hooks::new(Arc::new(SlowDerivedFiles));
    let store = match Store::open(&dir, options) {
        Ok(store) => store,
        Err(error) => {
            println!("OPEN-ERROR {error}");
            std::process::exit(3);
        }
    };
    println!("READY");
    let mut rng = Rng::new(seed);
    loop {
        let stream = format!("s-{}", rng.below(5));
        let count = rng.range(1, 6) as u32;
        let events = crashkit::make_batch(batch_id, count, 1_500, &mut rng);
        let result = match crash_command_id(batch_id) {
            Some(id) => store.append_idempotent(&id, &stream, ExpectedVersion::Any, &events),
            None => store.append(&stream, ExpectedVersion::Any, &events),
        };
        match result {
            Ok(result) => {
                let line = format!(
                    "ACK {batch_id} {stream} {} {} {count}\n",
                    result.first_version, result.first_position
                );
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).unwrap();
                out.flush().unwrap();
            }
            Err(error) => {
                println!("APPEND-ERROR {error}");
                std::process::exit(4);
            }
        }
        batch_id += 1;
    }
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// After this many acknowledged appends, plus a delay.
    AfterAcks(usize, Duration),
    /// After the child announced the `nth` (from 1) derived-file step of
    /// this kind, plus a delay (shorter than the child's sleep, or not).
    AtStep(DerivedFileStep, usize, Duration),
}

/// An acknowledged batch: batch id, stream, first version, first
/// position, event count.
type Ack = (u64, String, u64, u64, u32);

/// Runs one child until the kill; returns the acknowledged batches
/// (batch id, stream, first version, first position, count), the steps it
/// announced, and any error.
fn run_index_child(
    dir: &Path,
    seed: u64,
    first_id: u64,
    kill_at: KillAt,
) -> (Vec<Ack>, usize, Vec<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD_TEST_NAME,
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env(CHILD_SEED_ENV, seed.to_string())
        .env(CHILD_FIRST_ID_ENV, first_id.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let (mut acks, mut steps) = (0, 0);
    let delay = loop {
        // A guard so that a stuck child cannot hang the test; the kill
        // happens either way.
        let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(20)) else {
            break Duration::ZERO;
        };
        let is_error = line.contains("ERROR");
        acks += usize::from(line.starts_with("ACK "));
        let step = line
            .strip_prefix("STEP ")
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string);
        lines.push(line);
        if is_error {
            break Duration::ZERO;
        }
        match kill_at {
            KillAt::AfterAcks(n, delay) if acks >= n => break delay,
            KillAt::AtStep(kind, n, delay) if step == Some(format!("{kind:?}")) => {
                steps += 1;
                if steps >= n {
                    break delay;
                }
            }
            _ => {}
        }
    };
    std::thread::sleep(delay);
    let _ = child.kill();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(lines_rx.try_iter());
    let mut errors: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("ERROR"))
        .cloned()
        .collect();
    if status.code().is_some() {
        errors.push(format!("the child exited by itself ({status})"));
    }
    let acks = lines
        .iter()
        .filter_map(|line| {
            let mut parts = line.strip_prefix("ACK ")?.split(' ');
            Some((
                parts.next()?.parse().ok()?,
                parts.next()?.to_string(),
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
            ))
        })
        .collect();
    let steps = lines.iter().filter(|l| l.starts_with("STEP ")).count();
    (acks, steps, errors)
}

fn index_crash_cycles(cycles: u64) {
    let seed = crashkit::seed("index_files_sigkill");
    let mut rng = Rng::new(seed);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let mut known: BTreeMap<u64, crashkit::SeenBatch> = BTreeMap::new();
    let mut next_id = 0u64;
    let (mut steps_seen, mut rebuilt_at_open, mut strays) = (0, 0, 0);
    for cycle in 0..cycles {
        let kill_at = match rng.below(3) {
            0 => KillAt::AfterAcks(
                rng.range(1, 40) as usize,
                Duration::from_micros(rng.below(2_000)),
            ),
            _ => {
                let step = [
                    DerivedFileStep::Write,
                    DerivedFileStep::Sync,
                    DerivedFileStep::Rename,
                    DerivedFileStep::SyncDirectory,
                ][rng.below(4) as usize];
                KillAt::AtStep(
                    step,
                    rng.range(1, 2) as usize,
                    Duration::from_micros(rng.below(3_000)),
                )
            }
        };
        let (acks, steps, errors) = run_index_child(dir, rng.next_u64(), next_id, kill_at);
        let context = format!("seed {seed}, cycle {cycle}, kill {kill_at:?}");
        assert!(errors.is_empty(), "{context}: the child failed: {errors:?}");
        steps_seen += steps;

        // The reference: a copy of what the kill left, rebuilt from the log.
        let copy = crashkit::ram_dir();
        crashkit::copy_dir(dir, copy.path());
        strays += names(dir)
            .iter()
            .filter(|n| n.ends_with(".idx.tmp"))
            .count();
        let reference = Store::open(copy.path(), crash_options().rebuild_index(true))
            .unwrap_or_else(|e| panic!("{context}: rebuilding open failed: {e}"));
        let all = reference.read_all(0, usize::MAX).unwrap();
        let queries = Queries::of(&all);
        let want = answers(&reference, &queries);
        let want_head = reference.chain_head();
        reference.close().unwrap();
        let reference_files = index_files(copy.path());

        let store = Store::open(dir, crash_options())
            .unwrap_or_else(|e| panic!("{context}: reopen after SIGKILL failed: {e}"));
        rebuilt_at_open += reported_index_files(&store).len();
        let seen = crashkit::check_log(&store).unwrap_or_else(|e| panic!("{context}: {e}"));
        let seen_by_id: BTreeMap<u64, &crashkit::SeenBatch> =
            seen.iter().map(|b| (b.batch_id, b)).collect();
        for (batch_id, stream, first_version, first_position, count) in &acks {
            let batch = seen_by_id.get(batch_id).unwrap_or_else(|| {
                panic!("{context}: acknowledged batch {batch_id} is missing after the kill")
            });
            assert_eq!(
                (
                    &batch.stream,
                    batch.first_version,
                    batch.first_position,
                    batch.count
                ),
                (stream, *first_version, *first_position, *count),
                "{context}: batch {batch_id}"
            );
        }
        for old in known.values() {
            assert_eq!(
                seen_by_id.get(&old.batch_id).copied(),
                Some(old),
                "{context}: batch {} was there before this kill",
                old.batch_id
            );
        }
        assert_same_answers(&answers(&store, &queries), &want, &context);
        assert_eq!(store.chain_head(), want_head, "{context}");
        assert_eq!(
            late_index_files(&store),
            Vec::<PathBuf>::new(),
            "{context}: an index file found valid at open was damaged"
        );
        // Command ids survive, through the index files.
        for batch in seen
            .iter()
            .filter(|b| crash_command_id(b.batch_id).is_some())
        {
            let again = store
                .append_idempotent(
                    &crash_command_id(batch.batch_id).unwrap(),
                    &batch.stream,
                    ExpectedVersion::NoStream,
                    &[EventData::new("Retry", b"retry".to_vec())],
                )
                .unwrap_or_else(|e| panic!("{context}: idempotent retry failed: {e}"));
            assert_eq!(
                (again.first_version, again.first_position),
                (batch.first_version, batch.first_position),
                "{context}: command of batch {}",
                batch.batch_id
            );
        }
        assert_eq!(store.next_position(), all.len() as u64, "{context}");
        if rng.chance(500) {
            store.close().unwrap();
        } else {
            drop(store);
        }
        assert_index_files_like(dir, &reference_files, &context);
        known = seen.iter().map(|b| (b.batch_id, b.clone())).collect();
        next_id = known.keys().next_back().map_or(0, |id| id + 1).max(next_id) + 2;
    }
    assert_verifies(dir, "after the last kill");
    let segments = crashkit::segment_files(dir).len();
    eprintln!(
        "index_files sigkill: {cycles} kills, {} batches, {segments} segments, \
         {steps_seen} derived-file steps announced, {rebuilt_at_open} index files rebuilt at \
         open, {strays} stray .idx.tmp files seen after a kill",
        known.len()
    );
    assert!(segments > 3, "the children never rolled enough");
    assert!(rebuilt_at_open > 0, "no kill ever cost an index file");
}

#[test]
fn sigkill_while_writing_index_files_loses_nothing() {
    let _alone = CHILD_SPAWNING.write().unwrap_or_else(|p| p.into_inner());
    index_crash_cycles(crashkit::scaled(30));
}

#[test]
#[ignore = "long: 300 kill cycles"]
fn sigkill_while_writing_index_files_loses_nothing_long() {
    let _alone = CHILD_SPAWNING.write().unwrap_or_else(|p| p.into_inner());
    index_crash_cycles(crashkit::scaled(300));
}

// ---------------------------------------------------------------------------
// 3. Property: random appends, rolls and reopens.
// ---------------------------------------------------------------------------

/// Explicit timestamps of the property test start here (year 2191), after
/// the clock: an event stamped by the clock gets the previous event's time.
const FUTURE_NS: u64 = 7_000_000_000_000_000_000;

#[derive(Debug, Clone)]
struct NewEvent {
    data_len: usize,
    correlation: Option<u8>,
    /// Explicit timestamp: this many microseconds after the previous
    /// event; `None`: stamped by the clock.
    advance_us: Option<u8>,
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: u8,
        events: Vec<NewEvent>,
        command: Option<u8>,
        exact: bool,
    },
    /// One event of 20 KB: rolls come fast.
    Big {
        stream: u8,
    },
    Reopen,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let event = (
        prop_oneof![2 => 0usize..200, 2 => 200usize..3_000, 1 => 3_000usize..12_000],
        proptest::option::weighted(0.6, 0u8..4),
        proptest::option::weighted(0.5, 0u8..3),
    )
        .prop_map(|(data_len, correlation, advance_us)| NewEvent {
            data_len,
            correlation,
            advance_us,
        });
    prop_oneof![
        10 => (
            0u8..5,
            proptest::collection::vec(event, 1..5),
            proptest::option::weighted(0.3, 0u8..8),
            any::<bool>(),
        )
            .prop_map(|(stream, events, command, exact)| Op::Append {
                stream,
                events,
                command,
                exact,
            }),
        2 => (0u8..5).prop_map(|stream| Op::Big { stream }),
        2 => Just(Op::Reopen),
    ]
}

/// Appends as `op` says, to the store and to the model.
fn apply_append(
    store: &Store,
    model: &mut Written,
    stream: &str,
    new: &[NewEvent],
    command: Option<String>,
    exact: bool,
) -> Result<(), TestCaseError> {
    let mut previous = model.events.last().map_or(FUTURE_NS, |e| e.timestamp_ns);
    let mut for_model = Vec::new();
    let mut for_store = Vec::new();
    for (i, event) in new.iter().enumerate() {
        // The very first event is always explicit: the clock's time is not
        // the model's to know.
        let advance = match event.advance_us {
            None if !(model.events.is_empty() && i == 0) => None,
            advance => Some(u64::from(advance.unwrap_or(0)) * 1_000),
        };
        let made = model.make_event(
            previous,
            advance.unwrap_or(0),
            event.data_len,
            event.correlation.map(u64::from),
        );
        previous = made.timestamp_ns.unwrap();
        let mut stored = made.clone();
        if advance.is_none() {
            stored.timestamp_ns = None;
        }
        for_model.push(made);
        for_store.push(stored);
    }
    let expected = if exact {
        ExpectedVersion::Exact(model.version(stream))
    } else {
        ExpectedVersion::Any
    };
    let got = match &command {
        Some(id) => store.append_idempotent(id, stream, expected, &for_store),
        None => store.append(stream, expected, &for_store),
    }
    .map_err(|e| TestCaseError::fail(format!("append failed: {e}")))?;
    match command.as_deref().and_then(|id| model.command(id)) {
        Some(original) => prop_assert_eq!(got, original, "a repeated command"),
        None => model.record(stream, &for_model, command.as_deref(), got),
    }
    Ok(())
}

/// After a clean close: a reader and a writer opened normally (index
/// files, checkpoint) answer exactly as a rebuild of a copy and as the
/// model; nothing is reported. Returns the writer.
fn reopen_and_compare(dir: &Path, model: &Written) -> Store {
    let queries = Queries::of(&model.events);
    let want = expected_answers(model, &queries);

    let reader = Store::open_read_only(dir).unwrap();
    assert!(
        reader.recovery_report().is_empty(),
        "reader: {:?}",
        reader.recovery_report()
    );
    assert_same_answers(&answers(&reader, &queries), &want, "reader");
    assert_eq!(late_index_files(&reader), Vec::<PathBuf>::new(), "reader");
    drop(reader);

    let copy = crashkit::ram_dir();
    crashkit::copy_dir(dir, copy.path());
    let rebuilt = Store::open(copy.path(), rebuilding()).unwrap();
    assert_same_answers(&answers(&rebuilt, &queries), &want, "rebuild");
    check_writer_answers(&rebuilt, model, &queries.streams, "rebuild");
    let rebuilt_head = rebuilt.chain_head();
    rebuilt.close().unwrap();

    let store = Store::open(dir, options()).unwrap();
    assert!(
        store.recovery_report().is_empty(),
        "writer: {:?}",
        store.recovery_report()
    );
    assert_same_answers(&answers(&store, &queries), &want, "writer");
    assert_eq!(store.chain_head(), rebuilt_head, "writer: chain head");
    check_writer_answers(&store, model, &queries.streams, "writer");
    assert_eq!(late_index_files(&store), Vec::<PathBuf>::new(), "writer");
    store
}

fn run_ops(ops: &[Op]) -> Result<(), TestCaseError> {
    let work = crashkit::ram_dir();
    let dir = work.path();
    let mut model = Written::default();
    let mut store = Some(Store::open(dir, options()).unwrap());
    for op in ops {
        let s = store.as_ref().unwrap();
        match op {
            Op::Append {
                stream,
                events,
                command,
                exact,
            } => {
                let command = command.map(|c| format!("command-{c}"));
                apply_append(
                    s,
                    &mut model,
                    &format!("p-{stream}"),
                    events,
                    command,
                    *exact,
                )?;
            }
            Op::Big { stream } => {
                let big = [NewEvent {
                    data_len: 20_000,
                    correlation: Some(*stream % 2),
                    advance_us: Some(1),
                }];
                apply_append(s, &mut model, &format!("p-{stream}"), &big, None, false)?;
            }
            Op::Reopen => {
                store.take().unwrap().close().unwrap();
                store = Some(reopen_and_compare(dir, &model));
            }
        }
    }
    store.take().unwrap().close().unwrap();
    reopen_and_compare(dir, &model).close().unwrap();
    Ok(())
}

fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(64)))]

    #[test]
    fn normal_opens_answer_as_a_rebuild_and_the_model(
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        let _serial = beside_other_tests();
        run_ops(&ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(400)))]

    #[test]
    #[ignore = "long: 400 sequences"]
    fn normal_opens_answer_as_a_rebuild_and_the_model_long(
        ops in proptest::collection::vec(op_strategy(), 1..80),
    ) {
        let _serial = beside_other_tests();
        run_ops(&ops)?;
    }
}

// ---------------------------------------------------------------------------
// 1b. A damaged index checkpoint.
// ---------------------------------------------------------------------------

/// Damages the index checkpoint of a copy of `pristine` with `change` and
/// checks: a reader and a writer answer right and report it (a reader
/// changing nothing), and after the writer the next open reports nothing.
fn check_checkpoint_damage(pristine: &Pristine, what: &str, change: &dyn Fn(&Path)) {
    let work = pristine.copy();
    let dir = work.path();
    change(&dir.join(CHECKPOINT));
    let damaged = fs::read(dir.join(CHECKPOINT)).ok();
    let is_checkpoint = |store: &Store, action: RecoveryAction| {
        store.recovery_report().items.iter().any(|item| {
            matches!(item.finding.kind, FindingKind::IndexCheckpoint { .. })
                && item.action == action
        })
    };
    let reader = Store::open_read_only(dir).unwrap();
    assert!(
        is_checkpoint(&reader, RecoveryAction::RebuiltInMemory),
        "{what}: reader: {:?}",
        reader.recovery_report()
    );
    pristine.assert_answers(&reader, &format!("{what}: reader"));
    drop(reader);
    assert_eq!(
        fs::read(dir.join(CHECKPOINT)).ok(),
        damaged,
        "{what}: a reader changed the checkpoint"
    );
    let writer = Store::open(dir, options()).unwrap();
    assert!(
        is_checkpoint(&writer, RecoveryAction::Rebuilt),
        "{what}: writer: {:?}",
        writer.recovery_report()
    );
    pristine.assert_answers(&writer, &format!("{what}: writer"));
    check_writer_answers(
        &writer,
        &pristine.written,
        &pristine.queries.streams,
        &format!("{what}: writer"),
    );
    writer.close().unwrap();
    assert!(
        dir.join(CHECKPOINT).is_file(),
        "{what}: no checkpoint after close"
    );
    let again = Store::open(dir, options()).unwrap();
    assert!(
        again.recovery_report().is_empty(),
        "{what}: second writer: {:?}",
        again.recovery_report()
    );
    pristine.assert_answers(&again, &format!("{what}: second writer"));
    again.close().unwrap();
    assert_verifies(dir, what);
}

/// Deleted, truncated, a byte flipped anywhere, or swapped with the
/// checkpoint of two seals before: every answer right, reported.
#[test]
fn a_damaged_or_older_index_checkpoint_is_rebuilt() {
    let _serial = beside_other_tests();
    let seed = crashkit::seed("index_files_checkpoint");
    let pristine = pristine(seed);
    let older = pristine
        .older_checkpoint
        .clone()
        .expect("close writes index.checkpoint");
    let other_older = {
        let other = crashkit::ram_dir();
        write_store_keeping_older_checkpoint(other.path(), seed)
            .1
            .expect("close writes index.checkpoint")
    };
    let current =
        fs::read(pristine.dir.path().join(CHECKPOINT)).expect("close writes index.checkpoint");
    assert!(older != current);
    check_checkpoint_damage(&pristine, "deleted", &|path| fs::remove_file(path).unwrap());
    check_checkpoint_damage(&pristine, "empty", &|path| fs::write(path, b"").unwrap());
    for keep in [8, current.len() / 2, current.len() - 1] {
        check_checkpoint_damage(&pristine, &format!("cut to {keep} bytes"), &|path| {
            fs::write(path, &current[..keep]).unwrap()
        });
    }
    let step = (current.len() / 40).max(1);
    for offset in (0..current.len()).step_by(step).chain([current.len() - 1]) {
        check_checkpoint_damage(&pristine, &format!("byte {offset} flipped"), &|path| {
            let mut bytes = current.clone();
            bytes[offset] ^= 0xFF;
            fs::write(path, bytes).unwrap()
        });
    }
    // The store's own checkpoint from two seals before, and that of a
    // store with the same events (the same segments then, other salts).
    check_checkpoint_damage(&pristine, "an older checkpoint", &|path| {
        fs::write(path, &older).unwrap()
    });
    check_checkpoint_damage(&pristine, "another store's older checkpoint", &|path| {
        fs::write(path, &other_older).unwrap()
    });
}
