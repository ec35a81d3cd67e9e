//! Long-term readability: a store written by each format version, checked
//! in under `tests/fixtures/v<N>-store/`, must stay readable and verifiable
//! by every later build, byte for byte as it was written.
//!
//! - `tests/fixtures/v1-store/`: format version 1 (no durable mark in the
//!   segment headers), written by the generator of this file when it was
//!   still `tests/fixture_v1.rs` (commit 592a1cf, rewritten with the SHA-256
//!   chain in fc2992b; the v1 manifest still names that file).
//! - `tests/fixtures/v2-store/`: format version 2 (a durable mark in every
//!   segment header), the same content.
//! - `tests/fixtures/v3-store/`: format version 3 (event bodies of 12
//!   elements, the 12th the subject, nil here), the same content.
//! - `tests/fixtures/v4-store/`: format version 4 (a batch may write
//!   several streams), the same content followed by twelve batches of two
//!   or three streams ([`multi_stream_batches`]).
//!
//! The events are a deterministic function of their batch number
//! ([`fixture_batches`]); what was random when a store was written (event
//! timestamps, segment salts and creation times, and so the hash chain) is
//! recorded in `tests/fixtures/v<N>-store.manifest`, a text file that also
//! lists every event, so that an implementation in another language can
//! check its reading of a fixture without this code.
//!
//! Never regenerate a fixture to make a test pass: a failure here means a
//! build can no longer read what an earlier one wrote. When the format
//! changes, add a fixture for the new version beside these. A build writes
//! only its own [`FORMAT_VERSION`], so only the newest fixture can be
//! written by the current generator ([`regenerate_v4_fixture`]); the v1,
//! v2 and v3 generators refuse. Run it only on purpose:
//!
//! ```text
//! ANNALS_REGENERATE_V4_FIXTURE=1 cargo test --test fixtures -- --ignored regenerate_v4_fixture
//! ```
//!
//! Sealed segments are read-only on disk after the generator ran; git
//! records them as mode 644 anyway, and every test that writes works on a
//! copy ([`Fixture::copy`]).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use annals::format::durable_mark::{DURABLE_MARK_RANGE, DurableMark};
use annals::format::footer::{FooterState, SegmentFooter};
use annals::format::header::SegmentHeader;
use annals::format::scan::{BatchRead, EventRef, read_batch};
use annals::format::{FOOTER_LEN, FORMAT_VERSION, SEGMENT_HEADER_LEN};
use annals::{
    AppendResult, Durability, EventData, ExpectedHead, ExpectedVersion, Options, RecordedEvent,
    Store, Uuid, VerifyOptions, verify,
};

/// Segment size of the fixtures: the smallest allowed, so that a small store
/// spans several segments.
const SEGMENT_SIZE: u64 = 64 * 1024;

/// Batches in a fixture.
const BATCHES: u64 = 110;

const STREAMS: [&str; 7] = [
    "account-1",
    "account-2",
    "order-17",
    "order-18",
    "audit",
    "sensor-α",
    "cart-9",
];

/// One checked-in fixture: the store written by format version `version`.
#[derive(Debug, Clone, Copy)]
struct Fixture {
    /// The format version of every segment header in the fixture, and the
    /// `format_version` line of its manifest.
    version: u16,
}

const V1: Fixture = Fixture { version: 1 };
const V2: Fixture = Fixture { version: 2 };
const V3: Fixture = Fixture { version: 3 };
const V4: Fixture = Fixture { version: 4 };

impl Fixture {
    fn name(self) -> String {
        format!("v{}-store", self.version)
    }

    /// The checked-in store directory.
    fn dir(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(self.name())
    }

    fn manifest_path(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("{}.manifest", self.name()))
    }

    fn manifest(self) -> Manifest {
        let text = fs::read_to_string(self.manifest_path()).unwrap_or_else(|e| {
            panic!("the v{} fixture manifest: {e}", self.version);
        });
        parse_manifest(self, &text)
    }

    /// A writable copy of the fixture (git does not keep the read-only mode
    /// of sealed segments, and nothing may write to the checked-in files).
    fn copy(self) -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        for entry in fs::read_dir(self.dir()).unwrap() {
            let path = entry.unwrap().path();
            let target = copy.path().join(path.file_name().unwrap());
            fs::copy(&path, &target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        }
        copy
    }

    /// Every checked-in file of the store, sorted: only segments (the
    /// read-back test checks them against the manifest's list).
    fn file_names(self) -> Vec<String> {
        file_names(&self.dir())
    }
}

/// The file names in `dir`, sorted (segment names sort like positions).
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The segment file names in `dir`, sorted; not the lock file a writer
/// leaves behind.
fn segment_names(dir: &Path) -> Vec<String> {
    file_names(dir)
        .into_iter()
        .filter(|name| annals::format::parse_segment_file_name(name).is_some())
        .collect()
}

#[derive(serde::Serialize)]
struct Deposit {
    account: String,
    amount: u64,
    note: String,
}

/// One append of the fixture: one stream, or (from version 4) several.
struct FixtureBatch {
    writes: Vec<(&'static str, Vec<EventData>)>,
    command_id: Option<String>,
}

impl Fixture {
    /// What the fixture's store holds: [`fixture_batches`], then from
    /// version 4 on [`multi_stream_batches`].
    fn batches(self) -> Vec<FixtureBatch> {
        let mut batches = fixture_batches();
        if self.version >= 4 {
            batches.extend(multi_stream_batches());
        }
        batches
    }
}

/// The batches of several streams of the v4 fixture (the same forever):
/// two and three streams, new and existing ones, with and without command
/// ids, after the content every fixture has.
fn multi_stream_batches() -> Vec<FixtureBatch> {
    let groups: [&[&'static str]; 4] = [
        &["order-17", "account-1"],
        &["shipment-α", "order-18", "audit"],
        &["cart-9", "sensor-α"],
        &["account-2", "shipment-α"],
    ];
    (0..12u64)
        .map(|b| {
            let streams = groups[(b % 4) as usize];
            let writes = streams
                .iter()
                .enumerate()
                .map(|(w, &stream)| {
                    let count = 1 + (b + w as u64) % 3;
                    let events = (0..count)
                        .map(|j| {
                            let json = format!(r#"{{"multi":{b},"write":{w},"event":{j}}}"#);
                            let mut event = EventData::new("Moved", json.into_bytes())
                                .with_id(Uuid::from_u128(
                                    0xA11A_5400_0000_0000_0000_0000_0000_0000
                                        | (u128::from(b) << 16)
                                        | ((w as u128) << 8)
                                        | u128::from(j),
                                ))
                                .with_correlation_id(format!("move-{b}"));
                            event.content_type = Some("json".to_string());
                            event
                        })
                        .collect();
                    (stream, events)
                })
                .collect();
            FixtureBatch {
                writes,
                command_id: (b % 3 == 0).then(|| format!("move-{b:04}")),
            }
        })
        .collect()
}

/// The content of the fixture: the same on every build, forever. Covers
/// MessagePack, JSON and raw payloads, metadata, correlation and causation
/// ids, fixed event ids, command ids, a non-ASCII stream name, and batches
/// of 1 to 4 events.
fn fixture_batches() -> Vec<FixtureBatch> {
    (0..BATCHES)
        .map(|b| {
            let stream = STREAMS[(b % STREAMS.len() as u64) as usize];
            let count = 1 + (b * 7 % 4);
            let events = (0..count)
                .map(|j| {
                    let mut event = match b % 3 {
                        0 => EventData::from_serde(
                            "Deposited",
                            &Deposit {
                                account: stream.to_string(),
                                amount: b * 100 + j,
                                note: format!("batch {b} event {j}"),
                            },
                        )
                        .unwrap(),
                        1 => {
                            let json =
                                format!(r#"{{"batch":{b},"event":{j},"text":"héllo wörld"}}"#);
                            let mut event = EventData::new("Noted", json.into_bytes());
                            event.content_type = Some("json".to_string());
                            event
                        }
                        _ => {
                            let len = 800 + ((b * 13 + j * 29) % 1200) as usize;
                            let data: Vec<u8> = (0..len)
                                .map(|k| ((b * 31 + j * 7 + k as u64 * 3) % 256) as u8)
                                .collect();
                            EventData::new("Sampled", data)
                        }
                    };
                    event = event.with_id(Uuid::from_u128(
                        0xA11A_5000_0000_0000_0000_0000_0000_0000
                            | (u128::from(b) << 8)
                            | u128::from(j),
                    ));
                    if b % 2 == 0 {
                        event =
                            event.with_metadata(format!(r#"{{"user":"u{}"}}"#, b % 5).into_bytes());
                    }
                    if b % 3 == 0 {
                        event = event.with_correlation_id(format!("req-{b}"));
                    }
                    if b % 4 == 1 {
                        event = event.with_causation_id(format!("evt-{}", b - 1));
                    }
                    event
                })
                .collect();
            FixtureBatch {
                writes: vec![(stream, events)],
                command_id: (b % 5 == 0).then(|| format!("cmd-{b:04}")),
            }
        })
        .collect()
}

/// What the manifest records.
struct Manifest {
    segments: Vec<(String, u64, bool)>,
    events: Vec<ManifestEvent>,
    commands: Vec<(String, AppendResult)>,
    /// The commands of batches of several streams: what each stream got.
    multi_commands: Vec<(String, Vec<(String, AppendResult)>)>,
    streams: u64,
    head: ExpectedHead,
}

/// One `event` line.
#[derive(Debug, PartialEq, Eq)]
struct ManifestEvent {
    position: u64,
    stream: String,
    version: u64,
    event_type: String,
    timestamp_ns: u64,
    id: String,
    correlation_id: String,
    causation_id: String,
    content_type: String,
    metadata_hex: String,
    data_len: usize,
    data_sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

impl ManifestEvent {
    fn of(event: &RecordedEvent) -> ManifestEvent {
        ManifestEvent {
            position: event.position,
            stream: event.stream.clone(),
            version: event.version,
            event_type: event.event_type.clone(),
            timestamp_ns: event.timestamp_ns,
            id: event.id.to_string(),
            correlation_id: or_dash(event.correlation_id.as_deref()),
            causation_id: or_dash(event.causation_id.as_deref()),
            content_type: or_dash(event.content_type.as_deref()),
            metadata_hex: if event.metadata.is_empty() {
                "-".to_string()
            } else {
                hex(&event.metadata)
            },
            data_len: event.data.len(),
            data_sha256: sha256_hex(&event.data),
        }
    }

    fn line(&self) -> String {
        format!(
            "event {} {} {} {} {} {} {} {} {} {} {} {}",
            self.position,
            self.stream,
            self.version,
            self.event_type,
            self.timestamp_ns,
            self.id,
            self.correlation_id,
            self.causation_id,
            self.content_type,
            self.metadata_hex,
            self.data_len,
            self.data_sha256
        )
    }
}

fn parse_manifest(fixture: Fixture, text: &str) -> Manifest {
    let mut manifest = Manifest {
        segments: Vec::new(),
        events: Vec::new(),
        commands: Vec::new(),
        multi_commands: Vec::new(),
        streams: 0,
        head: ExpectedHead::from(([0; 32], None)),
    };
    let mut format_version = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [comment, ..] if comment.starts_with('#') => {}
            ["manifest_version", "1"] => {}
            ["format_version", version] => {
                format_version = Some(version.parse::<u16>().unwrap());
            }
            ["segment_size_bytes", size] => assert_eq!(size.parse::<u64>().unwrap(), SEGMENT_SIZE),
            ["streams", n] => manifest.streams = n.parse().unwrap(),
            ["head", head] => manifest.head = head.parse().unwrap(),
            ["segment", name, base, state] => manifest.segments.push((
                name.to_string(),
                base.parse().unwrap(),
                *state == "sealed",
            )),
            [
                "command",
                id,
                first_version,
                last_version,
                first_position,
                last_position,
            ] => manifest.commands.push((
                id.to_string(),
                AppendResult {
                    first_version: first_version.parse().unwrap(),
                    last_version: last_version.parse().unwrap(),
                    first_position: first_position.parse().unwrap(),
                    last_position: last_position.parse().unwrap(),
                },
            )),
            [
                "multicommand",
                id,
                stream,
                first_version,
                last_version,
                first_position,
                last_position,
            ] => {
                let result = AppendResult {
                    first_version: first_version.parse().unwrap(),
                    last_version: last_version.parse().unwrap(),
                    first_position: first_position.parse().unwrap(),
                    last_position: last_position.parse().unwrap(),
                };
                let stream = stream.to_string();
                match manifest.multi_commands.last_mut() {
                    Some((last, streams)) if last == id => streams.push((stream, result)),
                    _ => manifest
                        .multi_commands
                        .push((id.to_string(), vec![(stream, result)])),
                }
            }
            [
                "event",
                position,
                stream,
                version,
                event_type,
                timestamp_ns,
                id,
                correlation_id,
                causation_id,
                content_type,
                metadata_hex,
                data_len,
                data_sha256,
            ] => manifest.events.push(ManifestEvent {
                position: position.parse().unwrap(),
                stream: stream.to_string(),
                version: version.parse().unwrap(),
                event_type: event_type.to_string(),
                timestamp_ns: timestamp_ns.parse().unwrap(),
                id: id.to_string(),
                correlation_id: correlation_id.to_string(),
                causation_id: causation_id.to_string(),
                content_type: content_type.to_string(),
                metadata_hex: metadata_hex.to_string(),
                data_len: data_len.parse().unwrap(),
                data_sha256: data_sha256.to_string(),
            }),
            other => panic!("unknown manifest line {other:?}"),
        }
    }
    assert_eq!(
        format_version,
        Some(fixture.version),
        "the format_version line of {}",
        fixture.manifest_path().display()
    );
    manifest
}

/// The complete batches of a segment file, read from the start of its data
/// area with the format's own batch reader.
struct Batches {
    /// Offset right after the last complete batch: where the next one would
    /// start.
    end: usize,
    /// The last batch's commit record: `(event_count, synced_offset)`. An
    /// event count of 0 is a sync marker (written on close).
    last_commit: Option<(u64, u64)>,
}

fn scan_batches(bytes: &[u8], header: &SegmentHeader) -> Batches {
    let data_end = annals::format::data_end(header.segment_size_bytes) as usize;
    let mut events = Vec::new();
    let mut batches = Batches {
        end: SEGMENT_HEADER_LEN,
        last_commit: None,
    };
    loop {
        match read_batch(
            bytes,
            header.salt,
            header.format_version,
            batches.end,
            data_end,
            &mut events,
        ) {
            BatchRead::Batch(batch) => {
                batches.last_commit = Some((batch.commit.event_count, batch.commit.synced_offset));
                batches.end = batch.end;
            }
            BatchRead::Empty => return batches,
            BatchRead::Invalid { at, error } => panic!("invalid batch at {at}: {error}"),
        }
    }
}

/// The footer of a segment file, if it is sealed.
fn footer_of(bytes: &[u8]) -> Option<SegmentFooter> {
    match SegmentFooter::decode(&bytes[bytes.len() - FOOTER_LEN..]) {
        FooterState::Sealed(footer) => Some(footer),
        FooterState::Unsealed => None,
        FooterState::Invalid(why) => panic!("invalid footer: {why}"),
    }
}

/// Checks the durable mark of each segment of a closed store in `dir`
/// (`names`, sorted, the newest last):
///
/// - A version-1 header has no durable mark: bytes 80..112 are zero, as
///   version 1 requires (they were reserved), whatever the writer did.
/// - A version-2 header has a valid, plausible mark, and it says that the
///   segment was durable exactly up to where its batches end:
///   - a sealed segment: the writer (under `Durability::Always`) synced each
///     batch and then marked its end (`Engine::sync_written_data`); sealing
///     syncs the data and writes the footer but not the mark, which already
///     covered the last batch. So the mark is the end of the data the
///     footer's `data_len` counts.
///   - the active segment: `Store::close` appends a sync marker (a commit
///     record with no events, whose `synced_offset` vouches only for the
///     bytes before it), syncs it, and then marks the end of the marker.
///     That last mark is written into the mapping after the last sync, and
///     nothing syncs the header again: it reaches the file through the page
///     cache (kernel write-back), which is what a copy of the file holds, so
///     the mark in the file covers the marker too.
fn assert_durable_marks(dir: &Path, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        let bytes = fs::read(dir.join(name)).unwrap();
        let header = SegmentHeader::decode(&bytes).unwrap();
        let mark = DurableMark::current(&bytes[..SEGMENT_HEADER_LEN], header.salt);
        let batches = scan_batches(&bytes, &header);
        let footer = footer_of(&bytes);
        let newest = i + 1 == names.len();
        assert_eq!(
            footer.is_none(),
            newest,
            "{name}: only the newest is active"
        );
        if header.format_version == 1 {
            assert!(
                bytes[DURABLE_MARK_RANGE].iter().all(|&b| b == 0),
                "{name}: a version-1 header has zeroes where version 2 keeps the mark"
            );
            assert_eq!(mark, None, "{name}");
            continue;
        }
        assert!(header.format_version >= 2, "{name}");
        let mark = mark.unwrap_or_else(|| panic!("{name}: no valid durable mark"));
        let data_end = annals::format::data_end(header.segment_size_bytes) as usize;
        assert!(mark.is_plausible(data_end), "{name}: {mark:?}");
        assert_eq!(
            mark.durable_end as usize, batches.end,
            "{name}: the durable mark is where the segment's batches end"
        );
        match footer {
            Some(footer) => assert_eq!(
                footer.data_len as usize + SEGMENT_HEADER_LEN,
                batches.end,
                "{name}: the footer counts the same data"
            ),
            None => {
                let (event_count, synced_offset) = batches.last_commit.unwrap();
                assert_eq!(
                    event_count, 0,
                    "{name}: close ended the segment with a sync marker"
                );
                assert!(
                    (synced_offset as usize) < mark.durable_end as usize,
                    "{name}: the marker vouches for the bytes before it, the mark for the marker too"
                );
            }
        }
    }
}

/// The events the generator appends, as a reader sees them, with the
/// timestamps the manifest recorded.
fn expected_events(fixture: Fixture, manifest: &Manifest) -> Vec<RecordedEvent> {
    let mut versions = std::collections::HashMap::new();
    let mut out = Vec::new();
    for batch in fixture.batches() {
        for (stream, event) in batch
            .writes
            .into_iter()
            .flat_map(|(stream, events)| events.into_iter().map(move |e| (stream, e)))
        {
            let position = out.len() as u64;
            let version = versions.entry(stream).or_insert(0u64);
            *version += 1;
            out.push(RecordedEvent {
                stream: stream.to_string(),
                version: *version,
                position,
                id: event.id.unwrap(),
                event_type: event.event_type,
                timestamp_ns: manifest.events[position as usize].timestamp_ns,
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                content_type: event.content_type,
                metadata: event.metadata,
                data: event.data,
                subject: None,
                erased: false,
            });
        }
    }
    out
}

fn reads_back_exactly_as_written(fixture: Fixture) {
    let manifest = fixture.manifest();
    let dir = fixture.copy();
    let store = Store::open_read_only(dir.path()).unwrap();
    let all = store.read_all(0, usize::MAX).unwrap();
    let expected = expected_events(fixture, &manifest);
    assert_eq!(all.len(), expected.len());
    for (read, expected) in all.iter().zip(&expected) {
        assert_eq!(read, expected, "event at position {}", expected.position);
    }
    // The manifest's listing agrees with what was read, line by line.
    let listed: Vec<ManifestEvent> = all.iter().map(ManifestEvent::of).collect();
    assert_eq!(listed, manifest.events);
    // Timestamps never go backward; events of a batch share one.
    assert!(
        all.windows(2)
            .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns)
    );
    // Stream reads go through the index, not the log.
    assert_eq!(store.stream_count() as u64, manifest.streams);
    let mut streams: Vec<&str> = expected.iter().map(|e| e.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    for stream in streams {
        let of_stream: Vec<_> = expected
            .iter()
            .filter(|e| e.stream == stream)
            .cloned()
            .collect();
        assert_eq!(store.read_stream(stream, 1, usize::MAX).unwrap(), of_stream);
        assert_eq!(store.stream_version(stream), of_stream.len() as u64);
    }
    assert_eq!(ExpectedHead::from(store.chain_head()), manifest.head);
    // The checked-in segments are the manifest's, written by the fixture's
    // format version.
    let names = fixture.file_names();
    let listed: Vec<String> = manifest.segments.iter().map(|s| s.0.clone()).collect();
    assert_eq!(names, listed);
    for (name, base, _) in &manifest.segments {
        let header = SegmentHeader::decode(&fs::read(fixture.dir().join(name)).unwrap()).unwrap();
        assert_eq!(
            (header.format_version, header.base_position),
            (fixture.version, *base)
        );
    }
}

fn verifies_against_its_recorded_head(fixture: Fixture) {
    let manifest = fixture.manifest();
    let report = verify(
        fixture.dir(),
        &VerifyOptions::default().expect_head(manifest.head),
    )
    .unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.problems.is_empty(), "{report}");
    let summary = &report.summary;
    assert_eq!(summary.events, manifest.events.len() as u64);
    assert_eq!(summary.segments, manifest.segments.len() as u64);
    assert_eq!(
        summary.sealed_segments,
        manifest.segments.iter().filter(|s| s.2).count() as u64
    );
    assert_eq!(summary.streams, manifest.streams);
    assert_eq!(summary.expected_head(), manifest.head);
    assert_eq!(
        summary.first_timestamp_ns,
        Some(manifest.events[0].timestamp_ns)
    );
    assert!(
        manifest.segments.len() >= 3,
        "the fixture spans several segments"
    );
}

fn opens_for_writing_and_remembers_its_command_ids(fixture: Fixture) {
    let manifest = fixture.manifest();
    let dir = fixture.copy();
    let options = Options::default()
        .segment_size_bytes(SEGMENT_SIZE)
        .durability(Durability::None);
    let store = Store::open(dir.path(), options).unwrap();
    let before = store.next_position();
    assert_eq!(before, manifest.events.len() as u64);
    assert!(!manifest.commands.is_empty());
    for (command_id, result) in &manifest.commands {
        // Idempotent: the original result, whatever the expected version, nothing written.
        let again = store
            .append_idempotent(
                command_id,
                "some-other-stream",
                ExpectedVersion::NoStream,
                &[EventData::new("Ignored", b"x".to_vec())],
            )
            .unwrap();
        assert_eq!(&again, result, "command {command_id}");
    }
    assert_eq!(
        manifest.multi_commands.is_empty(),
        fixture.version < 4,
        "commands of several streams from version 4 on"
    );
    let ignored = [EventData::new("Ignored", b"x".to_vec())];
    for (command_id, results) in &manifest.multi_commands {
        // Repeated with the same streams: the original results.
        let mut request = annals::MultiStreamAppend::new().command_id(command_id);
        for (stream, _) in results {
            request = request.write(stream, ExpectedVersion::NoStream, &ignored);
        }
        let again = store.append_multi(&request).unwrap();
        let again: Vec<(String, AppendResult)> = again
            .streams
            .into_iter()
            .map(|s| (s.stream, s.result))
            .collect();
        assert_eq!(&again, results, "command {command_id}");
        // Not as one stream's: one result cannot stand for several.
        let error = store
            .append_idempotent(command_id, &results[0].0, ExpectedVersion::Any, &ignored)
            .unwrap_err();
        assert!(
            matches!(error, annals::Error::InvalidArgument(_)),
            "{error}"
        );
    }
    assert_eq!(store.next_position(), before);
    let written = store
        .append(
            "account-1",
            ExpectedVersion::Any,
            &[EventData::new("Later", b"y".to_vec())],
        )
        .unwrap();
    assert_eq!(written.first_position, before);
    store.close().unwrap();
    // The old head is still in the log, unchanged.
    let report = verify(
        dir.path(),
        &VerifyOptions::default().expect_head(manifest.head),
    )
    .unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.summary.last_position, Some(before));
}

#[test]
fn the_v1_fixture_reads_back_exactly_as_written() {
    reads_back_exactly_as_written(V1);
}

#[test]
fn the_v1_fixture_verifies_against_its_recorded_head() {
    verifies_against_its_recorded_head(V1);
}

#[test]
fn the_v1_fixture_opens_for_writing_and_remembers_its_command_ids() {
    opens_for_writing_and_remembers_its_command_ids(V1);
}

/// Version 1 had no durable mark: its header bytes 80..112 are zero.
#[test]
fn no_v1_fixture_segment_has_a_durable_mark() {
    assert_durable_marks(&V1.dir(), &V1.file_names());
}

#[test]
fn the_v3_fixture_reads_back_exactly_as_written() {
    reads_back_exactly_as_written(V3);
}

#[test]
fn the_v3_fixture_verifies_against_its_recorded_head() {
    verifies_against_its_recorded_head(V3);
}

#[test]
fn the_v3_fixture_opens_for_writing_and_remembers_its_command_ids() {
    opens_for_writing_and_remembers_its_command_ids(V3);
}

/// Version 3 kept the header of version 2 (a durable mark) and gave event
/// bodies a 12th element, the subject: nil for every fixture event.
/// Calls `f` with the events of every complete batch of a segment file's
/// `bytes` (sync markers too, with no events), read with the format's own
/// batch reader from the start of its data area.
fn for_each_batch(bytes: &[u8], header: &SegmentHeader, mut f: impl FnMut(&[EventRef<'_>])) {
    let data_end = bytes.len() - FOOTER_LEN;
    let mut events = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while let BatchRead::Batch(batch) = read_batch(
        bytes,
        header.salt,
        header.format_version,
        offset,
        data_end,
        &mut events,
    ) {
        f(&events);
        offset = batch.end;
    }
}

#[test]
fn every_v3_fixture_segment_is_version_3_with_12_element_bodies() {
    let names = V3.file_names();
    for name in names.iter().filter(|n| n.ends_with(".seg")) {
        let bytes = fs::read(V3.dir().join(name)).unwrap();
        let header = SegmentHeader::decode(&bytes).unwrap();
        assert_eq!(header.format_version, 3, "{name}");
        let mut seen = 0;
        for_each_batch(&bytes, &header, |events| {
            for event in events {
                // The array marker of the body, right after the 12-byte frame header.
                assert_eq!(bytes[event.offset + 12], 0x9C, "{name} at {}", event.offset);
                assert_eq!(event.event.subject, None);
                seen += 1;
            }
        });
        assert!(seen > 0, "{name}");
    }
    assert_durable_marks(&V3.dir(), &names);
}

#[test]
fn the_v4_fixture_reads_back_exactly_as_written() {
    reads_back_exactly_as_written(V4);
}

#[test]
fn the_v4_fixture_verifies_against_its_recorded_head() {
    verifies_against_its_recorded_head(V4);
}

#[test]
fn the_v4_fixture_opens_for_writing_and_remembers_its_command_ids() {
    opens_for_writing_and_remembers_its_command_ids(V4);
}

/// Version 4 kept everything of version 3 and let a batch write several
/// streams: the fixture's last batches do, so its newest segments hold
/// batches of two and three runs.
#[test]
fn the_v4_fixture_holds_batches_of_several_streams() {
    let names = V4.file_names();
    let mut runs_seen = std::collections::BTreeSet::new();
    for name in &names {
        let bytes = fs::read(V4.dir().join(name)).unwrap();
        let header = SegmentHeader::decode(&bytes).unwrap();
        assert_eq!(header.format_version, 4, "{name}");
        for_each_batch(&bytes, &header, |events| {
            if !events.is_empty() {
                runs_seen.insert(annals::format::scan::stream_runs(events).count());
            }
        });
    }
    assert_eq!(runs_seen.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert_durable_marks(&V4.dir(), &names);
}

#[test]
fn the_v2_fixture_reads_back_exactly_as_written() {
    reads_back_exactly_as_written(V2);
}

#[test]
fn the_v2_fixture_verifies_against_its_recorded_head() {
    verifies_against_its_recorded_head(V2);
}

#[test]
fn the_v2_fixture_opens_for_writing_and_remembers_its_command_ids() {
    opens_for_writing_and_remembers_its_command_ids(V2);
}

/// Every v2 segment records, in its header, that it was durable up to the
/// end of its batches (see [`assert_durable_marks`] for why that is exactly
/// the end, the close's sync marker included for the active segment).
#[test]
fn every_v2_fixture_segment_has_a_durable_mark_where_its_batches_end() {
    let names = V2.file_names();
    for name in &names {
        let header = SegmentHeader::decode(&fs::read(V2.dir().join(name)).unwrap()).unwrap();
        assert_eq!(header.format_version, 2, "{name}");
    }
    assert_durable_marks(&V2.dir(), &names);
}

/// The migration path: a writer continues the newest segment of a version-1
/// store as version 1 (without a durable mark) and writes every new segment
/// as version 2; the hash chain goes on across the version change.
#[test]
fn a_v1_store_continues_as_v2() {
    let manifest = V1.manifest();
    let dir = V1.copy();
    let old_names = V1.file_names();
    let originals: Vec<Vec<u8>> = old_names
        .iter()
        .map(|name| fs::read(V1.dir().join(name)).unwrap())
        .collect();
    let options = Options::default()
        .segment_size_bytes(SEGMENT_SIZE)
        // Every batch is synced, so that the writer tries to mark every one
        // durable (and must not, in the version-1 segment).
        .durability(Durability::Always);
    let store = Store::open(dir.path(), options.clone()).unwrap();
    // Version 1 had no index checkpoint and no index files: the first
    // writable open writes the checkpoint, then an index file for each
    // sealed segment, and says so; nothing else is recovered.
    let report = store.recovery_report();
    assert_eq!(report.items.len(), old_names.len(), "{report:?}");
    let checkpoint = &report.items[0];
    assert!(
        checkpoint.finding.kind
            == (annals::FindingKind::IndexCheckpoint {
                detail: "missing".to_string()
            })
            && checkpoint.finding.path == dir.path().join("index.checkpoint")
            && checkpoint.action == annals::RecoveryAction::Rebuilt,
        "{checkpoint}"
    );
    for item in &report.items[1..] {
        assert!(
            matches!(item.finding.kind, annals::FindingKind::IndexFile { .. })
                && item.action == annals::RecoveryAction::Rebuilt,
            "{item}"
        );
    }
    let before = store.next_position();
    assert_eq!(before, manifest.events.len() as u64);

    // Append until the writer rolled twice: it sealed the v1 segment it
    // continued, then the first v2 segment, and writes a second v2 segment.
    let mut appended = Vec::new();
    let mut i = 0u64;
    while segment_names(dir.path()).len() < old_names.len() + 2 {
        assert!(i < 1000, "the store never rolled twice");
        let stream = ["migrated-a", "migrated-b", "account-1"][(i % 3) as usize];
        let data: Vec<u8> = (0..2500u64).map(|k| ((i * 17 + k) % 251) as u8).collect();
        let event = EventData::new("Migrated", data)
            .with_id(Uuid::from_u128(
                0xB22B_0000_0000_0000_0000_0000_0000_0000 | u128::from(i),
            ))
            .with_metadata(format!(r#"{{"i":{i}}}"#).into_bytes());
        store
            .append(stream, ExpectedVersion::Any, std::slice::from_ref(&event))
            .unwrap();
        appended.push((stream, event));
        i += 1;
    }
    store.close().unwrap();
    let names = segment_names(dir.path());
    assert_eq!(names[..old_names.len()], old_names[..]);
    assert_eq!(names.len(), old_names.len() + 2);

    // The sealed v1 segments are untouched, byte for byte.
    let newest_v1 = old_names.len() - 1;
    for (name, original) in old_names[..newest_v1].iter().zip(&originals) {
        assert!(
            fs::read(dir.path().join(name)).unwrap() == *original,
            "{name} changed"
        );
    }
    // The newest v1 segment was continued and sealed: its header is as it
    // was (version 1, no durable mark: bytes 80..112 still zero), the batches
    // it held (the close's sync marker included) are unchanged, new batches
    // follow them, and a footer seals it.
    let name = &old_names[newest_v1];
    let original = &originals[newest_v1];
    let continued = fs::read(dir.path().join(name)).unwrap();
    assert_eq!(continued.len(), original.len());
    assert!(
        continued[DURABLE_MARK_RANGE].iter().all(|&b| b == 0),
        "{name}: the writer put a durable mark into a version-1 header"
    );
    assert_eq!(
        continued[..SEGMENT_HEADER_LEN],
        original[..SEGMENT_HEADER_LEN],
        "{name}: header rewritten"
    );
    let header = SegmentHeader::decode(&continued).unwrap();
    assert_eq!(header.format_version, 1);
    assert_eq!(DurableMark::current(&continued, header.salt), None);
    let old_end = scan_batches(original, &header).end;
    assert!(
        original[old_end..].iter().all(|&b| b == 0),
        "{name}: the fixture's active segment is zero after its batches"
    );
    assert_eq!(
        continued[..old_end],
        original[..old_end],
        "{name}: old batches changed"
    );
    let new_end = scan_batches(&continued, &header).end;
    assert!(new_end > old_end, "{name}: the writer appended to it");
    let footer = footer_of(&continued).expect("the continued v1 segment is sealed");
    assert_eq!(footer.data_len as usize + SEGMENT_HEADER_LEN, new_end);
    let mode = fs::metadata(dir.path().join(name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o222, 0, "{name}: sealed, so read-only on disk");

    // Every new segment is version 2; each starts where the previous one
    // ended, at the chain value its footer sealed.
    let mut previous = footer;
    for name in &names[old_names.len()..] {
        let bytes = fs::read(dir.path().join(name)).unwrap();
        let header = SegmentHeader::decode(&bytes).unwrap();
        // The newest version: 2 when this test was written, 3 since event
        // bodies carry a subject; either way a durable mark (checked below).
        assert_eq!(header.format_version, FORMAT_VERSION, "{name}");
        assert_eq!(header.base_position, previous.last_position + 1, "{name}");
        assert_eq!(header.chain_start, previous.chain_end, "{name}");
        if let Some(footer) = footer_of(&bytes) {
            previous = footer;
        }
    }
    assert_durable_marks(dir.path(), &names);

    // The old history is intact and the chain continues across the change.
    let report = verify(
        dir.path(),
        &VerifyOptions::default().expect_head(manifest.head),
    )
    .unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.problems.is_empty(), "{report}");
    let total = before + appended.len() as u64;
    assert_eq!(report.summary.events, total);
    assert_eq!(report.summary.segments, names.len() as u64);
    assert_eq!(report.summary.sealed_segments, names.len() as u64 - 1);
    let head = report.summary.expected_head();

    // Read back: the fixture's events, then the new ones.
    let check = |store: &Store| {
        let all = store.read_all(0, usize::MAX).unwrap();
        assert_eq!(all.len() as u64, total);
        let expected = expected_events(V1, &manifest);
        assert_eq!(all[..expected.len()], expected[..]);
        // Versions count on from the fixture's (account-1 is one of its streams).
        let mut versions = std::collections::HashMap::<&str, u64>::new();
        for event in &expected {
            *versions.entry(event.stream.as_str()).or_insert(0) += 1;
        }
        for ((stream, event), read) in appended.iter().zip(&all[expected.len()..]) {
            let version = versions.entry(stream).or_insert(0);
            *version += 1;
            assert_eq!(&read.stream, stream);
            assert_eq!(read.version, *version);
            assert_eq!(Some(read.id), event.id);
            assert_eq!(read.event_type, event.event_type);
            assert_eq!(read.metadata, event.metadata);
            assert_eq!(read.data, event.data);
        }
        assert!(
            all.windows(2)
                .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns
                    && w[0].position + 1 == w[1].position)
        );
        assert_eq!(ExpectedHead::from(store.chain_head()), head);
    };

    // It reopens: for reading, and for writing, with nothing to recover.
    check(&Store::open_read_only(dir.path()).unwrap());
    let store = Store::open(dir.path(), options).unwrap();
    assert!(store.recovery_report().is_empty());
    check(&store);
    store
        .append(
            "migrated-a",
            ExpectedVersion::Any,
            &[EventData::new("AfterReopen", b"z".to_vec())],
        )
        .unwrap();
    store.close().unwrap();
    let report = verify(dir.path(), &VerifyOptions::default().expect_head(head)).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.summary.events, total + 1);
}

/// Refuses: this build writes format version 2, so it cannot write the v1
/// fixture (which stays as checked in, forever).
#[test]
#[ignore = "the v1 fixture can only be written by a version-1 build; this refuses"]
fn regenerate_v1_fixture() {
    regenerate(V1);
}

/// Refuses since this build writes format version 3: the v2 fixture stays
/// as checked in, forever.
#[test]
#[ignore = "the v2 fixture can only be written by a version-2 build; this refuses"]
fn regenerate_v2_fixture() {
    regenerate(V2);
}

/// Refuses: this build writes version 4 (see [`regenerate`]).
#[test]
#[ignore = "rewrites tests/fixtures/v3-store; set ANNALS_REGENERATE_V3_FIXTURE=1"]
fn regenerate_v3_fixture() {
    regenerate(V3);
}

/// Writes the v4 fixture and its manifest. Run only on purpose (see the
/// module docs): the result differs on every run (timestamps, salts, chain).
#[test]
#[ignore = "rewrites tests/fixtures/v4-store; set ANNALS_REGENERATE_V4_FIXTURE=1"]
fn regenerate_v4_fixture() {
    regenerate(V4);
}

/// Writes `fixture` (its store and its manifest) with this build, after
/// checking that this build writes the fixture's format version. Does
/// nothing unless `ANNALS_REGENERATE_V<N>_FIXTURE=1`.
fn regenerate(fixture: Fixture) {
    let variable = format!("ANNALS_REGENERATE_V{}_FIXTURE", fixture.version);
    if std::env::var(&variable).as_deref() != Ok("1") {
        eprintln!(
            "set {variable}=1 to rewrite the v{} fixture",
            fixture.version
        );
        return;
    }
    assert_eq!(
        FORMAT_VERSION, fixture.version,
        "this build writes format version {FORMAT_VERSION}: it cannot write the v{} fixture \
         (and a checked-in fixture is never regenerated to make a test pass)",
        fixture.version
    );
    let dir = fixture.dir();
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    let options = Options::default()
        .segment_size_bytes(SEGMENT_SIZE)
        .durability(Durability::Always);
    let store = Store::open(&dir, options).unwrap();
    let mut commands = Vec::new();
    let mut multi_commands = Vec::new();
    let expected = |stream| match store.stream_version(stream) {
        0 => ExpectedVersion::NoStream,
        version => ExpectedVersion::Exact(version),
    };
    for batch in fixture.batches() {
        if let [(stream, events)] = batch.writes.as_slice() {
            match &batch.command_id {
                Some(id) => {
                    let result = store
                        .append_idempotent(id, stream, expected(stream), events)
                        .unwrap();
                    commands.push((id.clone(), result));
                }
                None => {
                    store.append(stream, expected(stream), events).unwrap();
                }
            }
            continue;
        }
        let mut request = annals::MultiStreamAppend::new();
        for (stream, events) in &batch.writes {
            request = request.write(stream, expected(stream), events);
        }
        if let Some(id) = &batch.command_id {
            request = request.command_id(id);
        }
        let written = store.append_multi(&request).unwrap();
        if let Some(id) = &batch.command_id {
            multi_commands.push((id.clone(), written));
        }
    }
    let streams = store.stream_count();
    store.close().unwrap();
    fs::remove_file(dir.join(annals::LOCK_FILE_NAME)).unwrap();
    // Only the segments are the fixture, as in the older ones (written
    // before index files, the checkpoint and the settings file existed):
    // each opener must cope without the derived files.
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "seg") {
            fs::remove_file(&path).unwrap();
        }
    }

    let store = Store::open_read_only(&dir).unwrap();
    // After close: the head includes the sync marker that close appended.
    let head = ExpectedHead::from(store.chain_head());
    let events = store.read_all(0, usize::MAX).unwrap();
    let name = fixture.name();
    let mut text = String::new();
    writeln!(text, "# annals fixture manifest: tests/fixtures/{name}").unwrap();
    writeln!(
        text,
        "# Written by tests/fixtures.rs (regenerate_v{}_fixture). Never regenerate it to make a test pass.",
        fixture.version
    )
    .unwrap();
    writeln!(text, "# segment NAME BASE_POSITION sealed|active").unwrap();
    writeln!(
        text,
        "# command ID FIRST_VERSION LAST_VERSION FIRST_POSITION LAST_POSITION"
    )
    .unwrap();
    if fixture.version >= 4 {
        writeln!(
            text,
            "# multicommand ID STREAM FIRST_VERSION LAST_VERSION FIRST_POSITION LAST_POSITION  \
             (one line per stream of an append to several)"
        )
        .unwrap();
    }
    writeln!(
        text,
        "# event POSITION STREAM VERSION TYPE TIMESTAMP_NS ID CORRELATION CAUSATION CONTENT_TYPE \
         METADATA_HEX DATA_LEN DATA_SHA256  ('-' for none)"
    )
    .unwrap();
    writeln!(text, "manifest_version 1").unwrap();
    writeln!(text, "format_version {FORMAT_VERSION}").unwrap();
    writeln!(text, "segment_size_bytes {SEGMENT_SIZE}").unwrap();
    writeln!(text, "streams {streams}").unwrap();
    writeln!(text, "head {head}").unwrap();
    let names = file_names(&dir);
    let report = verify(&dir, &VerifyOptions::default().expect_head(head)).unwrap();
    assert!(report.is_ok() && report.problems.is_empty(), "{report}");
    for (i, name) in names.iter().enumerate() {
        let header = SegmentHeader::decode(&fs::read(dir.join(name)).unwrap()).unwrap();
        assert_eq!(header.format_version, fixture.version, "{name}");
        let state = if i + 1 < names.len() {
            "sealed"
        } else {
            "active"
        };
        writeln!(text, "segment {name} {} {state}", header.base_position).unwrap();
    }
    for (id, result) in &commands {
        writeln!(
            text,
            "command {id} {} {} {} {}",
            result.first_version, result.last_version, result.first_position, result.last_position
        )
        .unwrap();
    }
    for (id, written) in &multi_commands {
        for written in &written.streams {
            let result = &written.result;
            writeln!(
                text,
                "multicommand {id} {} {} {} {} {}",
                written.stream,
                result.first_version,
                result.last_version,
                result.first_position,
                result.last_position
            )
            .unwrap();
        }
    }
    for event in &events {
        writeln!(text, "{}", ManifestEvent::of(event).line()).unwrap();
    }
    fs::write(fixture.manifest_path(), text).unwrap();
}

/// Lower-case hex of the SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
