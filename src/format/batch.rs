//! Encoding a batch: its event frames, then the commit frame that closes it
//! and carries the hash-chain value over the batch.

use super::body::{self, COMMIT_CHAIN_PREFIX_LEN, CommitBody, EventBody};
use super::frame::{self, FRAME_HEADER_LEN, FrameKind};
use super::{CHAIN_LEN, chain, le_u32};

/// Appends an event frame to `out`, its body in the layout of a segment of
/// `format_version`; returns its offset within `out`.
pub fn encode_event_frame(
    out: &mut Vec<u8>,
    salt: u64,
    format_version: u16,
    event: &EventBody<'_>,
) -> usize {
    frame::encode_frame(out, salt, FrameKind::Event, |o| {
        body::encode_event(o, event, format_version)
    })
}

/// Appends the commit frame that closes the batch whose event frames start at
/// `batch_start` within `out` (none for a sync marker), computing the chain value from
/// `previous_chain`. `commit.chain` is ignored and replaced. Returns the new
/// chain value.
pub fn encode_commit_frame(
    out: &mut Vec<u8>,
    salt: u64,
    batch_start: usize,
    previous_chain: &[u8; CHAIN_LEN],
    commit: &CommitBody<'_>,
) -> [u8; CHAIN_LEN] {
    assert!(
        batch_start <= out.len(),
        "the batch starts inside the buffer"
    );
    let frame_start = out.len();
    let placeholder = CommitBody {
        chain: [0u8; CHAIN_LEN],
        ..*commit
    };
    frame::encode_frame(out, salt, FrameKind::Commit, |o| {
        body::encode_commit(o, &placeholder)
    });
    let body_start = frame_start + FRAME_HEADER_LEN;
    let body_len = le_u32(out, frame_start) as usize;
    let body_end = body_start + body_len;
    let value = chain::next_chain(
        previous_chain,
        &out[batch_start..frame_start],
        &out[body_start + COMMIT_CHAIN_PREFIX_LEN..body_end],
    );
    out[body_start + 3..body_start + COMMIT_CHAIN_PREFIX_LEN].copy_from_slice(&value);
    // The chain value is inside the checksummed body: checksum again.
    let mut header = [0u8; 8];
    header.copy_from_slice(&out[frame_start..frame_start + 8]);
    let crc = frame::frame_crc(salt, &header, &out[body_start..body_end]);
    out[frame_start + 8..frame_start + 12].copy_from_slice(&crc.to_le_bytes());
    value
}
