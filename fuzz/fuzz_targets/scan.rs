//! The batch scanner over arbitrary segment bytes (the first 8 bytes are the
//! salt, the rest is the segment): read every batch from the end of the
//! header, then classify the tail. Nothing may panic, and every batch
//! returned must be consistent with itself.
#![no_main]

use annals::format::scan::{self, BatchRead, TailState};
use annals::format::{FRAME_ALIGN, SEGMENT_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let salt = u64::from_le_bytes(data[..8].try_into().unwrap());
    // Frames of the input start right after the (zero) header area.
    let mut bytes = vec![0u8; SEGMENT_HEADER_LEN];
    bytes.extend_from_slice(&data[8..]);
    check_segment(&bytes, salt);
});

fn check_segment(bytes: &[u8], salt: u64) {
    let data_end = bytes.len();
    let mut events = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while let BatchRead::Batch(batch) = scan::read_batch(bytes, salt, offset, data_end, &mut events)
    {
        assert!(batch.end > offset && batch.end <= data_end);
        assert!(batch.end.is_multiple_of(FRAME_ALIGN));
        assert_eq!(batch.commit.event_count, events.len() as u64);
        offset = batch.end;
    }
    match scan::classify_tail(bytes, salt, offset, data_end) {
        TailState::Clean => {}
        TailState::Torn { last_nonzero_end } => assert!(last_nonzero_end > offset),
        TailState::DamagedSyncedData { synced_offset, .. } => {
            assert!(synced_offset > offset as u64)
        }
    }
}
