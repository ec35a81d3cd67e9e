//! The on-disk decoders and the batch scanner fed arbitrary bytes (proptest,
//! in the normal suite; `fuzz/` has the cargo-fuzz targets for the same
//! functions). Nothing may panic, and nothing may be accepted that was not
//! written:
//! - arbitrary bytes through every decoder;
//! - frames with valid checksums around arbitrary bodies (so that the body
//!   decoders and batch consistency checks are reached, which random bytes
//!   almost never do past a CRC);
//! - valid segments with random damage: the scanner returns each original
//!   batch unchanged where its bytes are intact, and never a batch over
//!   damaged bytes.

use annals::format::batch::{encode_commit_frame, encode_event_frame};
use annals::format::body::{self, CommitBody, EventBody};
use annals::format::footer::{FooterState, SegmentFooter};
use annals::format::frame::{self, FrameKind, FrameRead};
use annals::format::header::SegmentHeader;
use annals::format::scan::{self, BatchRead, TailState};
use annals::format::{
    CHAIN_LEN, FOOTER_LEN, FORMAT_VERSION, FRAME_ALIGN, SEGMENT_HEADER_LEN, chain,
};
use proptest::prelude::*;

/// Runs every decoder over `bytes` as a segment with `salt`, checking what
/// each returns is consistent. Returns the batches the scanner found, as
/// (start, end).
fn scan_everything(bytes: &[u8], salt: u64) -> Vec<(usize, usize)> {
    let _ = SegmentHeader::decode(bytes);
    if bytes.len() >= FOOTER_LEN {
        let _ = SegmentFooter::decode(&bytes[bytes.len() - FOOTER_LEN..]);
    }
    let _ = SegmentFooter::decode(bytes);
    let _ = body::decode_event(bytes, FORMAT_VERSION);
    let _ = body::decode_commit(bytes);
    let data_end = bytes.len();
    let mut found = Vec::new();
    let mut events = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN.min(bytes.len()) / FRAME_ALIGN * FRAME_ALIGN;
    loop {
        match scan::read_batch(bytes, salt, FORMAT_VERSION, offset, data_end, &mut events) {
            BatchRead::Batch(batch) => {
                assert_eq!(batch.start, offset);
                assert!(batch.start < batch.end && batch.end <= data_end);
                assert!(batch.end.is_multiple_of(FRAME_ALIGN));
                assert!(batch.commit_offset >= batch.start && batch.commit_offset < batch.end);
                assert_eq!(batch.commit.event_count, events.len() as u64);
                assert!(batch.commit.synced_offset <= batch.start as u64);
                for (i, event) in events.iter().enumerate() {
                    assert!(event.offset >= batch.start && event.offset < batch.commit_offset);
                    assert_eq!(event.event.position, batch.commit.first_position + i as u64);
                    // The event is really there: reading its frame again agrees.
                    let FrameRead::Frame(f) =
                        frame::read_frame(bytes, salt, event.offset, data_end)
                    else {
                        panic!("an event of a valid batch does not read as a frame");
                    };
                    assert_eq!(body::decode_event(f.body, FORMAT_VERSION), Ok(event.event));
                }
                found.push((batch.start, batch.end));
                offset = batch.end;
            }
            BatchRead::Empty => break,
            BatchRead::Invalid { at, .. } => {
                assert!(at >= offset);
                break;
            }
        }
    }
    // The tail after the last batch, and from arbitrary places.
    for from in [offset, SEGMENT_HEADER_LEN, 0, data_end] {
        if from <= data_end {
            match scan::classify_tail(bytes, salt, from, data_end) {
                TailState::Clean => {
                    // The whole words from `from` on are zero.
                    let words_end = from + (data_end - from) / 8 * 8;
                    assert!(bytes[from..words_end].iter().all(|&b| b == 0));
                }
                TailState::Torn { last_nonzero_end } => {
                    assert!(last_nonzero_end > from && last_nonzero_end <= data_end);
                }
                TailState::DamagedSyncedData {
                    commit_at,
                    synced_offset,
                } => {
                    assert!(commit_at >= from && synced_offset > from as u64);
                }
            }
        }
    }
    found
}

/// The fields of an event body, owned.
#[derive(Debug, Clone)]
struct OwnedEvent {
    stream: String,
    version: u64,
    position: u64,
    id: [u8; 16],
    event_type: String,
    timestamp_ns: u64,
    correlation: Option<String>,
    metadata: Vec<u8>,
    data: Vec<u8>,
}

/// An arbitrary event body (names and payloads of every length class).
fn event_body_strategy() -> impl Strategy<Value = OwnedEvent> {
    (
        (
            "[a-z0-9-]{1,40}",
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 16]>(),
        ),
        (
            "[A-Za-z]{1,20}",
            any::<u64>(),
            proptest::option::of("[a-z]{0,300}"),
        ),
        proptest::collection::vec(any::<u8>(), 0..40),
        // Payloads of every length class (up to bin 32), cheap to generate.
        (0usize..70_000, any::<u8>()).prop_map(|(len, byte)| vec![byte; len]),
    )
        .prop_map(
            |(
                (stream, version, position, id),
                (event_type, timestamp_ns, correlation),
                metadata,
                data,
            )| {
                OwnedEvent {
                    stream,
                    version,
                    position,
                    id,
                    event_type,
                    timestamp_ns,
                    correlation,
                    metadata,
                    data,
                }
            },
        )
}

/// A frame to assemble into a test segment.
#[derive(Debug, Clone)]
enum FrameSpec {
    /// A valid event body.
    Event {
        stream: u8,
        version: u64,
        position: u64,
        data_len: usize,
    },
    /// A valid commit body.
    Commit {
        first_position: u64,
        event_count: u64,
        synced_offset: u64,
        command: bool,
    },
    /// Arbitrary bytes as the body of a frame of this kind, with a valid checksum.
    Raw { kind: u8, body: Vec<u8> },
}

fn frame_spec_strategy() -> impl Strategy<Value = FrameSpec> {
    prop_oneof![
        4 => (0u8..2, 0u64..4, 0u64..6, 0usize..300).prop_map(|(stream, version, position, data_len)| {
            FrameSpec::Event { stream, version, position, data_len }
        }),
        3 => (0u64..6, 0u64..5, prop_oneof![Just(SEGMENT_HEADER_LEN as u64), 0u64..2_000], any::<bool>())
            .prop_map(|(first_position, event_count, synced_offset, command)| FrameSpec::Commit {
                first_position, event_count, synced_offset, command,
            }),
        1 => (1u8..=2, proptest::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(kind, body)| FrameSpec::Raw { kind, body }),
    ]
}

/// Builds a segment-like buffer: a zero header area, then the frames, then zeroes.
fn assemble(salt: u64, specs: &[FrameSpec], extra: usize) -> Vec<u8> {
    let mut out = vec![0u8; SEGMENT_HEADER_LEN];
    for spec in specs {
        match spec {
            FrameSpec::Event {
                stream,
                version,
                position,
                data_len,
            } => {
                let stream = format!("s{stream}");
                let data = vec![0x5Au8; *data_len];
                encode_event_frame(
                    &mut out,
                    salt,
                    FORMAT_VERSION,
                    &EventBody {
                        stream: &stream,
                        version: *version,
                        position: *position,
                        id: [1; 16],
                        event_type: "T",
                        timestamp_ns: 5,
                        correlation_id: None,
                        causation_id: None,
                        content_type: None,
                        metadata: b"",
                        data: &data,
                        subject: None,
                    },
                );
            }
            FrameSpec::Commit {
                first_position,
                event_count,
                synced_offset,
                command,
            } => {
                let start = out.len();
                encode_commit_frame(
                    &mut out,
                    salt,
                    start,
                    &chain::GENESIS,
                    &CommitBody {
                        chain: [0; CHAIN_LEN],
                        first_position: *first_position,
                        event_count: *event_count,
                        synced_offset: *synced_offset,
                        command_id: command.then_some("cmd"),
                    },
                );
            }
            FrameSpec::Raw { kind, body } => {
                let kind = if *kind == 1 {
                    FrameKind::Event
                } else {
                    FrameKind::Commit
                };
                frame::encode_frame(&mut out, salt, kind, |o| o.extend_from_slice(body));
            }
        }
    }
    out.resize(out.len() + extra, 0);
    out
}

/// A valid segment of `batches`, each of `sizes[i]` events: header, frames,
/// zeroes, footer area (zero). Returns it and each batch's (start, end).
fn valid_segment(salt: u64, sizes: &[usize]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut out = vec![0u8; SEGMENT_HEADER_LEN];
    let mut ranges = Vec::new();
    let mut position = 0;
    let mut previous = chain::GENESIS;
    for (b, &size) in sizes.iter().enumerate() {
        let start = out.len();
        for i in 0..size {
            let data = vec![b as u8; 10 + 37 * i];
            encode_event_frame(
                &mut out,
                salt,
                FORMAT_VERSION,
                &EventBody {
                    stream: "stream",
                    version: position + 1,
                    position,
                    id: [b as u8; 16],
                    event_type: "Type",
                    timestamp_ns: 1_700_000_000_000_000_000,
                    correlation_id: Some("corr"),
                    causation_id: None,
                    content_type: None,
                    metadata: b"meta",
                    data: &data,
                    subject: None,
                },
            );
            position += 1;
        }
        let commit = CommitBody {
            chain: [0; CHAIN_LEN],
            first_position: position - size as u64,
            event_count: size as u64,
            synced_offset: start as u64,
            command_id: None,
        };
        previous = encode_commit_frame(&mut out, salt, start, &previous, &commit);
        ranges.push((start, out.len()));
    }
    out.resize(out.len() + 512 + FOOTER_LEN, 0);
    (out, ranges)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..2_000),
        salt in any::<u64>(),
        offset in 0usize..2_100,
        data_end in 0usize..2_100,
    ) {
        scan_everything(&bytes, salt);
        let _ = frame::read_frame(&bytes, salt, offset, data_end);
        let mut events = Vec::new();
        let _ = scan::read_batch(&bytes, salt, FORMAT_VERSION, offset, data_end, &mut events);
        let _ = scan::classify_tail(&bytes, salt, offset.min(bytes.len()), data_end);
    }

    #[test]
    fn frames_with_valid_checksums_and_arbitrary_bodies_never_panic(
        specs in proptest::collection::vec(frame_spec_strategy(), 0..12),
        salt in any::<u64>(),
        extra in 0usize..64,
    ) {
        let bytes = assemble(salt, &specs, extra);
        scan_everything(&bytes, salt);
        // With another salt nothing is a frame.
        let mut events = Vec::new();
        prop_assert!(!matches!(
            scan::read_batch(&bytes, salt ^ 1, FORMAT_VERSION, SEGMENT_HEADER_LEN, bytes.len(), &mut events),
            BatchRead::Batch(_)
        ));
    }

    #[test]
    fn event_and_commit_bodies_round_trip(
        owned in event_body_strategy(),
        command in proptest::option::of("[a-z0-9]{1,600}"),
        chain_value in any::<[u8; 32]>(),
        numbers in any::<(u64, u64, u64)>(),
    ) {
        let event = EventBody {
            stream: &owned.stream,
            version: owned.version,
            position: owned.position,
            id: owned.id,
            event_type: &owned.event_type,
            timestamp_ns: owned.timestamp_ns,
            correlation_id: owned.correlation.as_deref(),
            causation_id: None,
            content_type: Some("msgpack"),
            metadata: &owned.metadata,
            data: &owned.data,
            subject: None,
        };
        let mut out = Vec::new();
        body::encode_event(&mut out, &event, FORMAT_VERSION);
        prop_assert_eq!(body::decode_event(&out, FORMAT_VERSION), Ok(event));
        for cut in [0, 1, out.len() / 2, out.len() - 1] {
            prop_assert!(body::decode_event(&out[..cut], FORMAT_VERSION).is_err());
        }
        let commit = CommitBody {
            chain: chain_value, first_position: numbers.0, event_count: numbers.1,
            synced_offset: numbers.2, command_id: command.as_deref(),
        };
        let mut out = Vec::new();
        body::encode_commit(&mut out, &commit);
        prop_assert_eq!(body::decode_commit(&out), Ok(commit));
        out.push(0);
        prop_assert!(body::decode_commit(&out).is_err(), "trailing bytes accepted");
    }

    #[test]
    fn damaged_headers_and_footers_are_never_accepted(
        base_position in any::<u64>(),
        salt in any::<u64>(),
        damage in proptest::collection::vec((0usize..128, 1u8..=255), 1..6),
    ) {
        let header = SegmentHeader {
            format_version: 1,
            base_position,
            salt,
            created_unix_ns: 7,
            segment_size_bytes: 1 << 20,
            chain_start: [3; 32],
        };
        let mut bytes = header.encode();
        prop_assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for &(at, xor) in &damage {
            bytes[at] ^= xor;
        }
        let changed = bytes != SegmentHeader { format_version: 1, base_position, salt,
            created_unix_ns: 7, segment_size_bytes: 1 << 20, chain_start: [3; 32] }.encode();
        prop_assert_eq!(SegmentHeader::decode(&bytes).is_ok(), !changed);

        let footer = SegmentFooter {
            event_count: base_position | 1,
            batch_count: 1,
            last_position: salt,
            data_len: 64,
            contents_crc: 9,
            chain_end: [4; 32],
            sealed_unix_ns: 8,
        };
        let original = footer.encode();
        let mut bytes = original;
        for &(at, xor) in &damage {
            bytes[at] ^= xor;
        }
        let decoded = SegmentFooter::decode(&bytes);
        if bytes == original {
            prop_assert_eq!(decoded, FooterState::Sealed(footer));
        } else {
            prop_assert!(!matches!(decoded, FooterState::Sealed(_)), "damaged footer accepted");
        }
    }

    #[test]
    fn damaged_segments_never_yield_a_damaged_batch(
        sizes in proptest::collection::vec(1usize..5, 1..12),
        salt in any::<u64>(),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let (original, ranges) = valid_segment(salt, &sizes);
        let mut bytes = original.clone();
        let data_end = bytes.len() - FOOTER_LEN;
        for (at, xor) in &damage {
            bytes[SEGMENT_HEADER_LEN + at.index(data_end - SEGMENT_HEADER_LEN)] ^= xor;
        }
        let found = scan_everything(&bytes[..data_end], salt);
        // The scanner stops at the first damaged batch, and returns the
        // batches before it exactly as written.
        let first_damaged = ranges
            .iter()
            .position(|&(s, e)| bytes[s..e] != original[s..e]);
        let intact = first_damaged.unwrap_or(ranges.len());
        prop_assert_eq!(&found[..], &ranges[..intact.min(found.len())]);
        prop_assert!(found.len() <= ranges.len());
        if let Some(bad) = first_damaged {
            prop_assert_eq!(found.len(), bad, "a damaged batch was returned");
            // Every later batch vouches (synced_offset = its own start) for
            // what is before it: damage followed by an intact commit is
            // damage to synced data, not a torn tail.
            let vouched = ranges[bad + 1..].iter().any(|&(s, e)| bytes[s..e] == original[s..e]);
            let state = scan::classify_tail(&bytes, salt, ranges[bad].0, data_end);
            if vouched {
                let is_damage = matches!(state, TailState::DamagedSyncedData { .. });
                prop_assert!(is_damage, "{:?}", state);
            }
        } else {
            prop_assert_eq!(found.len(), ranges.len());
        }
    }
}
