//! Open after damage: torn tails are discarded, anything else is refused with
//! the file and offset.

mod common;
mod refusal;

use std::path::Path;

use annals::format::scan::{BatchRead, read_batch};
use annals::format::{FOOTER_LEN, SEGMENT_HEADER_LEN, header::SegmentHeader};
use annals::{
    Durability, Error, EventData, ExpectedVersion, FindingKind, Options, RecoveryAction, Store,
};
use common::*;

/// Offsets where each batch of a segment file ends (sync markers included).
fn batch_ends(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    let header = SegmentHeader::decode(&bytes).unwrap();
    let data_end = bytes.len() - FOOTER_LEN;
    let mut events = Vec::new();
    let mut ends = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while let BatchRead::Batch(batch) = read_batch(
        &bytes,
        header.salt,
        header.format_version,
        offset,
        data_end,
        &mut events,
    ) {
        ends.push(batch.end);
        offset = batch.end;
    }
    ends
}

/// Offsets where each batch with events starts and ends in a segment file.
fn event_batches(path: &Path) -> Vec<(usize, usize, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let header = SegmentHeader::decode(&bytes).unwrap();
    let data_end = bytes.len() - FOOTER_LEN;
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    while let BatchRead::Batch(batch) = read_batch(
        &bytes,
        header.salt,
        header.format_version,
        offset,
        data_end,
        &mut events,
    ) {
        if !events.is_empty() {
            out.push((batch.start, batch.end, events.len()));
        }
        offset = batch.end;
    }
    out
}

fn reopen(dir: &Path) -> annals::Result<Store> {
    Store::open(
        dir,
        Options::default()
            .segment_size_bytes(1 << 20)
            .durability(Durability::None),
    )
}

fn assert_prefix(store: &Store, written: &[(String, Vec<u8>)], batches: usize) {
    let events = all_events(store);
    assert_eq!(events.len(), batches * 3, "exactly the complete batches");
    for (event, (stream, data)) in events.iter().zip(written) {
        assert_eq!((&event.stream, &event.data), (stream, data));
    }
}

/// Copies a store directory as it is now, as a crash would leave it.
fn snapshot_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Writes 20 batches, copies the directory as a crash would leave it (before
/// close writes its sync marker), and returns the copy's events.
fn crash_copy(to: &Path) -> Vec<(String, Vec<u8>)> {
    let live = tempfile::tempdir().unwrap();
    let store = Store::open(
        live.path(),
        Options::default()
            .segment_size_bytes(1 << 20)
            .durability(Durability::None),
    )
    .unwrap();
    let written = fill(&store, 20, 3, 4, 50);
    snapshot_dir(live.path(), to);
    drop(store);
    written
}

#[test]
fn truncated_mid_record_opens_with_the_complete_batches() {
    let dir = tempfile::tempdir().unwrap();
    let written = crash_copy(dir.path());
    let segment = &segment_files(dir.path())[0];
    let batches = event_batches(segment);
    let (start, end, _) = batches[12];
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap();
    file.set_len(((start + end) / 2) as u64).unwrap();
    drop(file);
    let store = reopen(dir.path()).unwrap();
    assert_prefix(&store, &written, 12);
    let report = store.recovery_report().clone();
    let short = report
        .of_kind(|kind| matches!(kind, FindingKind::ShortFile { .. }))
        .next()
        .expect("the short file is reported");
    assert_eq!(short.action, RecoveryAction::Restored);
    assert_eq!(short.finding.offset, (((start + end) / 2) & !7) as u64);
    assert_eq!(
        report.torn_tail().map(|t| t.finding.offset),
        Some(start as u64)
    );
    // The store is whole again: append, close, reopen.
    store
        .append(
            "s-0",
            ExpectedVersion::Any,
            &[EventData::new("After", vec![9])],
        )
        .unwrap();
    store.close().unwrap();
    let store = reopen(dir.path()).unwrap();
    assert_eq!(all_events(&store).len(), 12 * 3 + 1);
}

#[test]
fn garbage_after_the_last_batch_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let written = crash_copy(dir.path());
    let segment = &segment_files(dir.path())[0];
    let end = *batch_ends(segment).last().unwrap();
    let garbage: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8 | 1)
        .collect();
    overwrite(segment, end as u64, &garbage);
    let store = reopen(dir.path()).unwrap();
    assert_prefix(&store, &written, 20);
    let torn = store.recovery_report().torn_tail().expect("a torn tail");
    assert_eq!(torn.finding.offset, end as u64);
    assert_eq!(torn.action, RecoveryAction::Discarded);
    assert!(torn.bytes() >= 3000);
    assert!(
        read_at(segment, end as u64, 3000).iter().all(|&b| b == 0),
        "the torn tail was zeroed"
    );
}

#[test]
fn a_batch_cut_in_half_disappears_whole() {
    let dir = tempfile::tempdir().unwrap();
    let written = crash_copy(dir.path());
    let segment = &segment_files(dir.path())[0];
    let (start, end, _) = *event_batches(segment).last().unwrap();
    let middle = (start + end) / 2;
    overwrite(segment, middle as u64, &vec![0u8; end - middle]);
    let store = reopen(dir.path()).unwrap();
    assert_prefix(&store, &written, 19);
}

#[test]
fn a_missing_commit_record_discards_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let written = crash_copy(dir.path());
    let segment = &segment_files(dir.path())[0];
    let batches = event_batches(segment);
    let (_, end, _) = *batches.last().unwrap();
    // Zero only the commit frame (the last 64 bytes or so): every event frame
    // of the batch is still valid, but the batch is incomplete.
    let bytes = std::fs::read(segment).unwrap();
    let commit_start = (batches[batches.len() - 2].1..end)
        .step_by(8)
        .rev()
        .find(|&o| bytes[o + 4] == 2 && bytes[o + 5] == 1)
        .unwrap();
    overwrite(segment, commit_start as u64, &vec![0u8; end - commit_start]);
    let store = reopen(dir.path()).unwrap();
    assert_prefix(&store, &written, 19);
}

#[test]
fn a_bit_flip_in_a_sealed_segment_is_refused_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    fill(&store, 300, 3, 5, 100);
    store.close().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    let sealed = &files[1];
    let (start, _, _) = event_batches(sealed)[4];
    let target = start as u64 + 40;
    let mut byte = read_at(sealed, target, 1);
    byte[0] ^= 0x10;
    overwrite(sealed, target, &byte);
    // Opens that read every byte refuse at open, naming the damaged frame.
    let error = Store::open(dir.path(), small_segments().rebuild_index(true))
        .err()
        .expect("a full-check open must refuse");
    match &error {
        Error::Corrupt(finding) => {
            assert_eq!(&finding.path, sealed);
            assert_eq!(
                finding.offset, start as u64,
                "the offset of the damaged frame"
            );
        }
        other => panic!("expected corruption, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&sealed.display().to_string())
            && message.contains(&format!("offset {start}")),
        "{message}"
    );
    let error = Store::open_read_only_rebuilding_index(dir.path())
        .err()
        .expect("a full-check read-only open must refuse");
    assert_eq!(
        error.finding().map(|f| (&f.path, f.offset)),
        Some((sealed, start as u64)),
        "{error}"
    );
    // Default opens rely on the index checkpoint: they refuse the damaged
    // frame at open or when a read reaches it, naming the same file and an
    // offset inside the damaged frame; never wrong data.
    let frame = start as u64..target + 1;
    refusal::assert_refused_at_open_or_on_read(
        "read-only open",
        || Store::open_read_only(dir.path()),
        &[],
        sealed,
        Some(frame.clone()),
    );
    refusal::assert_refused_at_open_or_on_read(
        "writable open",
        || Store::open(dir.path(), small_segments()),
        &[],
        sealed,
        Some(frame),
    );
    // Nothing was changed: a full check still refuses.
    assert!(
        Store::open_read_only_rebuilding_index(dir.path())
            .err()
            .unwrap()
            .is_corruption()
    );
}

#[test]
fn damage_before_a_sync_marker_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path()).unwrap();
    fill(&store, 20, 3, 4, 50);
    store.close().unwrap(); // syncs and writes a marker vouching for everything
    let segment = &segment_files(dir.path())[0];
    let (start, _, _) = event_batches(segment)[10];
    overwrite(segment, start as u64 + 20, &[0xFF]);
    let error = reopen(dir.path()).err().expect("open must refuse");
    assert!(
        error.finding().map(|f| f.offset) == Some(start as u64),
        "{error}"
    );
}

#[test]
fn damage_before_a_durable_batch_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let live = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size_bytes(1 << 20)
        .durability(Durability::Always);
    let store = Store::open(live.path(), options.clone()).unwrap();
    fill(&store, 20, 3, 4, 50);
    snapshot_dir(live.path(), dir.path()); // a crash: no marker, but batches carry synced offsets
    drop(store);
    let segment = &segment_files(dir.path())[0];
    let (start, _, _) = event_batches(segment)[5];
    overwrite(segment, start as u64 + 20, &[0xFF]);
    let error = Store::open(dir.path(), options)
        .err()
        .expect("open must refuse");
    assert!(
        error.finding().map(|f| f.offset) == Some(start as u64),
        "{error}"
    );
}

#[test]
fn a_missing_middle_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    fill(&store, 300, 3, 5, 100);
    store.close().unwrap();
    let files = segment_files(dir.path());
    std::fs::remove_file(&files[1]).unwrap();
    let error = Store::open(dir.path(), small_segments()).err().unwrap();
    match error {
        Error::Corrupt(finding) => {
            assert_eq!(finding.path, files[2]);
            assert!(
                matches!(finding.kind, FindingKind::MissingSegment { .. }),
                "{finding}"
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn stray_temp_files_are_removed_by_the_writer_and_ignored_by_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let written = fill(&store, 10, 2, 2, 10);
    store.close().unwrap();
    let temp = dir.path().join("00000000000000000020.seg.tmp");
    std::fs::write(&temp, b"half-created segment").unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(all_events(&reader).len(), written.len());
    assert!(temp.exists(), "a reader changes nothing");
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let removed: Vec<_> = store
        .recovery_report()
        .of_kind(|kind| *kind == FindingKind::TemporaryFile)
        .map(|item| (item.finding.path.clone(), item.action))
        .collect();
    assert_eq!(removed, vec![(temp.clone(), RecoveryAction::Removed)]);
    assert!(!temp.exists());
}

#[test]
fn a_sealed_newest_segment_without_successor_opens_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let written = fill(&store, 300, 3, 5, 100);
    store.close().unwrap();
    // Remove the newest (unsealed) segment and the events in it, as if the
    // writer crashed right after sealing the one before.
    let files = segment_files(dir.path());
    let newest = files.last().unwrap();
    let kept =
        annals::format::parse_segment_file_name(newest.file_name().unwrap().to_str().unwrap())
            .unwrap();
    std::fs::remove_file(newest).unwrap();
    let sealed = &files[files.len() - 2];
    assert!(
        std::fs::metadata(sealed).unwrap().permissions().readonly(),
        "sealed segments are read-only on disk"
    );
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.next_position(), kept);
    assert_eq!(all_events(&store).len(), kept as usize);
    assert_eq!(
        all_events(&store)[..]
            .iter()
            .map(|e| e.data.clone())
            .collect::<Vec<_>>(),
        written[..kept as usize]
            .iter()
            .map(|w| w.1.clone())
            .collect::<Vec<_>>()
    );
    store
        .append("s-1", ExpectedVersion::Any, &[EventData::new("E", vec![1])])
        .unwrap();
    assert_eq!(segment_files(dir.path()).len(), files.len());
}

#[test]
fn a_second_writer_gets_a_lock_error_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path(), small_segments()).unwrap();
    let error = Store::open(dir.path(), small_segments()).err().unwrap();
    assert!(matches!(&error, Error::Locked { dir: d } if d == dir.path()));
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string())
    );
    // A reader needs no lock.
    Store::open_read_only(dir.path()).unwrap();
    first.close().unwrap();
    Store::open(dir.path(), small_segments()).unwrap();
}

#[test]
fn a_reader_sees_every_committed_batch_and_never_a_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::open(dir.path(), small_segments()).unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for batch in 0..400u64 {
                let size = 1 + (batch % 7);
                let events: Vec<EventData> = (0..size)
                    .map(|i| EventData::new("E", format!("{batch}:{i}:{size}").into_bytes()))
                    .collect();
                writer
                    .append(&format!("s-{}", batch % 3), ExpectedVersion::Any, &events)
                    .unwrap();
            }
        });
        let mut seen = 0;
        while seen < 400 * 4 {
            reader.refresh().unwrap();
            let events = all_events(&reader);
            // Batches are whole: the last event seen ends its batch.
            if let Some(last) = events.last() {
                let text = String::from_utf8(last.data.clone()).unwrap();
                let parts: Vec<u64> = text.split(':').map(|p| p.parse().unwrap()).collect();
                assert_eq!(parts[1] + 1, parts[2], "a partial batch is visible: {text}");
            }
            seen = events.len();
            if seen == (0..400u64).map(|b| 1 + b % 7).sum::<u64>() as usize {
                break;
            }
        }
    });
    writer.close().unwrap();
    reader.refresh().unwrap();
    let total: u64 = (0..400u64).map(|b| 1 + b % 7).sum();
    assert_eq!(reader.next_position(), total);
    assert_eq!(
        all_events(&reader),
        all_events(&Store::open_read_only(dir.path()).unwrap())
    );
}
