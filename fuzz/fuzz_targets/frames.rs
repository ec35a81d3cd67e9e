//! The batch scanner over frames that all carry valid checksums, built from
//! the input: random bytes almost never get past a CRC, so this target
//! reaches the body decoders and the batch consistency checks. Each input
//! chunk is a tag byte, then the fields or body of one frame.
#![no_main]

use annals::format::batch::{encode_commit_frame, encode_event_frame};
use annals::format::body::{CommitBody, EventBody};
use annals::format::frame::{self, FrameKind};
use annals::format::scan::{self, BatchRead};
use annals::format::{CHAIN_LEN, SEGMENT_HEADER_LEN, chain};
use libfuzzer_sys::fuzz_target;

const SALT: u64 = 0x5A17;

fn take<'a>(input: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(input.len());
    let (head, tail) = input.split_at(n);
    *input = tail;
    head
}

fn number(input: &mut &[u8]) -> u64 {
    let bytes = take(input, 2);
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let mut bytes = vec![0u8; SEGMENT_HEADER_LEN];
    while let Some((&tag, rest)) = input.split_first() {
        input = rest;
        match tag % 4 {
            0 | 1 => {
                let len = usize::from(take(&mut input, 1).first().copied().unwrap_or(0));
                let body = take(&mut input, len).to_vec();
                let kind = if tag % 4 == 0 {
                    FrameKind::Event
                } else {
                    FrameKind::Commit
                };
                frame::encode_frame(&mut bytes, SALT, kind, |o| o.extend_from_slice(&body));
            }
            2 => {
                let stream = format!("s{}", tag >> 6);
                let version = number(&mut input);
                let position = number(&mut input);
                let data_len = number(&mut input) as usize % 512;
                let data = vec![tag; data_len];
                encode_event_frame(
                    &mut bytes,
                    SALT,
                    &EventBody {
                        stream: &stream,
                        version,
                        position,
                        id: [tag; 16],
                        event_type: "T",
                        timestamp_ns: number(&mut input),
                        correlation_id: (tag & 4 != 0).then_some("c"),
                        causation_id: None,
                        content_type: None,
                        metadata: b"",
                        data: &data,
                    },
                );
            }
            _ => {
                let start = bytes.len();
                let first_position = number(&mut input);
                let event_count = number(&mut input) % 8;
                let synced_offset = number(&mut input);
                encode_commit_frame(
                    &mut bytes,
                    SALT,
                    start,
                    &chain::GENESIS,
                    &CommitBody {
                        chain: [0; CHAIN_LEN],
                        first_position,
                        event_count,
                        synced_offset,
                        command_id: (tag & 4 != 0).then_some("cmd"),
                    },
                );
            }
        }
    }
    bytes.resize(bytes.len() + 64, 0);
    let data_end = bytes.len();
    let mut events = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while let BatchRead::Batch(batch) =
        scan::read_batch(&bytes, SALT, offset, data_end, &mut events)
    {
        assert!(batch.end > offset && batch.end <= data_end);
        assert_eq!(batch.commit.event_count, events.len() as u64);
        assert!(batch.commit.synced_offset <= offset as u64);
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.event.position, batch.commit.first_position + i as u64);
        }
        offset = batch.end;
    }
    let _ = scan::classify_tail(&bytes, SALT, offset, data_end);
    let _ = scan::classify_tail(&bytes, SALT, SEGMENT_HEADER_LEN, data_end);
});
