//! Long-term readability: a store written by format version 1, checked in
//! under `tests/fixtures/v1-store/`, must stay readable and verifiable by
//! every later build, byte for byte as it was written.
//!
//! The events are a deterministic function of their batch number
//! ([`fixture_batches`]); what was random when the store was written (event
//! timestamps, segment salts and creation times, and so the hash chain) is
//! recorded in `tests/fixtures/v1-store.manifest`, a text file that also
//! lists every event, so that an implementation in another language can
//! check its reading of the fixture without this code.
//!
//! Never regenerate the fixture to make a test pass: a failure here means a
//! build can no longer read what an earlier one wrote. When the format
//! changes, add a v2 fixture beside this one. The generator is
//! [`regenerate_v1_fixture`], run only on purpose:
//!
//! ```text
//! ANNALS_REGENERATE_V1_FIXTURE=1 cargo test --test fixtures -- --ignored regenerate_v1_fixture
//! ```

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use annals::format::FORMAT_VERSION;
use annals::format::header::SegmentHeader;
use annals::{
    AppendResult, Durability, EventData, ExpectedHead, ExpectedVersion, Options, RecordedEvent,
    Store, Uuid, VerifyOptions, verify,
};

/// Segment size of the fixture: the smallest allowed, so that a small store
/// spans several segments.
const SEGMENT_SIZE: u64 = 64 * 1024;

/// Batches in the fixture.
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

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store")
}

fn manifest_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store.manifest")
}

#[derive(serde::Serialize)]
struct Deposit {
    account: String,
    amount: u64,
    note: String,
}

/// One append of the fixture.
struct FixtureBatch {
    stream: &'static str,
    command_id: Option<String>,
    events: Vec<EventData>,
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
                stream,
                command_id: (b % 5 == 0).then(|| format!("cmd-{b:04}")),
                events,
            }
        })
        .collect()
}

/// What the manifest records.
struct Manifest {
    segments: Vec<(String, u64, bool)>,
    events: Vec<ManifestEvent>,
    commands: Vec<(String, AppendResult)>,
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

fn parse_manifest(text: &str) -> Manifest {
    let mut manifest = Manifest {
        segments: Vec::new(),
        events: Vec::new(),
        commands: Vec::new(),
        streams: 0,
        head: ExpectedHead::from(([0; 32], None)),
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [comment, ..] if comment.starts_with('#') => {}
            ["manifest_version", "1"] => {}
            ["format_version", version] => assert_eq!(*version, "1"),
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
    manifest
}

fn manifest() -> Manifest {
    parse_manifest(&fs::read_to_string(manifest_path()).expect("the v1 fixture manifest"))
}

/// A writable copy of the fixture (git does not keep the read-only mode of
/// sealed segments, and nothing may write to the checked-in files).
fn copy_of_fixture() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixture_dir()).unwrap() {
        let path = entry.unwrap().path();
        let target = copy.path().join(path.file_name().unwrap());
        fs::copy(&path, &target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    }
    copy
}

/// The events the generator appends, as a reader sees them, with the
/// timestamps the manifest recorded.
fn expected_events(manifest: &Manifest) -> Vec<RecordedEvent> {
    let mut versions = std::collections::HashMap::new();
    let mut out = Vec::new();
    for batch in fixture_batches() {
        for event in batch.events {
            let position = out.len() as u64;
            let version = versions.entry(batch.stream).or_insert(0u64);
            *version += 1;
            out.push(RecordedEvent {
                stream: batch.stream.to_string(),
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
            });
        }
    }
    out
}

#[test]
fn the_v1_fixture_reads_back_exactly_as_written() {
    let manifest = manifest();
    let dir = copy_of_fixture();
    let store = Store::open_read_only(dir.path()).unwrap();
    let all = store.read_all(0, usize::MAX).unwrap();
    let expected = expected_events(&manifest);
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
    for stream in STREAMS {
        let of_stream: Vec<_> = expected
            .iter()
            .filter(|e| e.stream == stream)
            .cloned()
            .collect();
        assert_eq!(store.read_stream(stream, 1, usize::MAX).unwrap(), of_stream);
        assert_eq!(store.stream_version(stream), of_stream.len() as u64);
    }
    assert_eq!(ExpectedHead::from(store.chain_head()), manifest.head);
    // The checked-in segments are the manifest's, written by format version 1.
    let mut names: Vec<String> = fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let listed: Vec<String> = manifest.segments.iter().map(|s| s.0.clone()).collect();
    assert_eq!(names, listed);
    for (name, base, _) in &manifest.segments {
        let header = SegmentHeader::decode(&fs::read(fixture_dir().join(name)).unwrap()).unwrap();
        assert_eq!((header.format_version, header.base_position), (1, *base));
    }
}

#[test]
fn the_v1_fixture_verifies_against_its_recorded_head() {
    let manifest = manifest();
    let report = verify(
        fixture_dir(),
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

#[test]
fn the_v1_fixture_opens_for_writing_and_remembers_its_command_ids() {
    let manifest = manifest();
    let dir = copy_of_fixture();
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

/// Writes the fixture and its manifest. Run only on purpose (see the module
/// docs): the result differs on every run (timestamps, salts, chain).
#[test]
#[ignore = "rewrites tests/fixtures/v1-store; set ANNALS_REGENERATE_V1_FIXTURE=1"]
fn regenerate_v1_fixture() {
    if std::env::var("ANNALS_REGENERATE_V1_FIXTURE").as_deref() != Ok("1") {
        eprintln!("set ANNALS_REGENERATE_V1_FIXTURE=1 to rewrite the v1 fixture");
        return;
    }
    let dir = fixture_dir();
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    let options = Options::default()
        .segment_size_bytes(SEGMENT_SIZE)
        .durability(Durability::Always);
    let store = Store::open(&dir, options).unwrap();
    let mut commands = Vec::new();
    for batch in fixture_batches() {
        let expected = match store.stream_version(batch.stream) {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        match &batch.command_id {
            Some(id) => {
                let result = store
                    .append_idempotent(id, batch.stream, expected, &batch.events)
                    .unwrap();
                commands.push((id.clone(), result));
            }
            None => {
                store.append(batch.stream, expected, &batch.events).unwrap();
            }
        }
    }
    let streams = store.stream_count();
    store.close().unwrap();
    fs::remove_file(dir.join(annals::LOCK_FILE_NAME)).unwrap();

    let store = Store::open_read_only(&dir).unwrap();
    // After close: the head includes the sync marker that close appended.
    let head = ExpectedHead::from(store.chain_head());
    let events = store.read_all(0, usize::MAX).unwrap();
    let mut text = String::new();
    writeln!(text, "# annals fixture manifest: tests/fixtures/v1-store").unwrap();
    writeln!(
        text,
        "# Written by tests/fixture_v1.rs (regenerate_v1_fixture). Never regenerate it to make a test pass."
    )
    .unwrap();
    writeln!(text, "# segment NAME BASE_POSITION sealed|active").unwrap();
    writeln!(
        text,
        "# command ID FIRST_VERSION LAST_VERSION FIRST_POSITION LAST_POSITION"
    )
    .unwrap();
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
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let report = verify(&dir, &VerifyOptions::default().expect_head(head)).unwrap();
    assert!(report.is_ok() && report.problems.is_empty(), "{report}");
    for (i, name) in names.iter().enumerate() {
        let header = SegmentHeader::decode(&fs::read(dir.join(name)).unwrap()).unwrap();
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
    for event in &events {
        writeln!(text, "{}", ManifestEvent::of(event).line()).unwrap();
    }
    fs::write(manifest_path(), text).unwrap();
}

/// Lower-case hex of the SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
