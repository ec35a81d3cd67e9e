//! Bugs found by the crash, power-loss, corruption and fuzz tests, each kept
//! as a small deterministic test named after what it caught.

mod crashkit;

use std::path::Path;

use annals::format::FOOTER_LEN;
use annals::{Durability, EventData, ExpectedVersion, Options, Store, Uuid};

fn options() -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::Always)
}

/// End of the complete batches of the newest segment, and where its data area ends.
fn newest_end(dir: &Path) -> (usize, usize) {
    let newest = crashkit::segment_files(dir).pop().unwrap();
    let bytes = std::fs::read(newest).unwrap();
    (
        crashkit::batches_end(&bytes).unwrap(),
        bytes.len() - FOOTER_LEN,
    )
}

/// One event whose encoded size depends only on `data_len` (fixed id, type
/// and stream, timestamps of constant width).
fn sized_event(data_len: usize) -> EventData {
    EventData::new("Fill", vec![7u8; data_len]).with_id(Uuid::from_u64_pair(1, data_len as u64))
}

/// Bytes a one-event batch of `data_len` takes when appended to the store in
/// `dir` in its current state, measured on a copy of the directory.
fn probe_batch_len(dir: &Path, data_len: usize) -> usize {
    let copy = crashkit::ram_dir();
    crashkit::copy_dir(dir, copy.path());
    let store = Store::open(copy.path(), options()).unwrap();
    let (before, _) = newest_end(copy.path());
    store
        .append("fill", ExpectedVersion::Any, &[sized_event(data_len)])
        .unwrap();
    let (after, _) = newest_end(copy.path());
    drop(store);
    after - before
}

/// Fills the active segment with batches until exactly `gap` bytes of its
/// data area are left, then appends one more batch (which must roll),
/// closes, and reopens.
fn fill_segment_leaving(gap: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    loop {
        let (end, data_end) = newest_end(dir.path());
        if data_end - end < 3_000 {
            break;
        }
        store
            .append("fill", ExpectedVersion::Any, &[sized_event(1_000)])
            .unwrap();
    }
    // Find the data length whose batch leaves exactly `gap` bytes.
    let (end, data_end) = newest_end(dir.path());
    let want = data_end - end - gap;
    let mut data_len = want - 200;
    for _ in 0..20 {
        let len = probe_batch_len(dir.path(), data_len);
        if len == want {
            break;
        }
        data_len = data_len + want - len;
    }
    assert_eq!(probe_batch_len(dir.path(), data_len), want);
    store
        .append("fill", ExpectedVersion::Any, &[sized_event(data_len)])
        .unwrap();
    assert_eq!(newest_end(dir.path()), (data_end - gap, data_end));
    let segments_before = crashkit::segment_files(dir.path()).len();
    store
        .append("fill", ExpectedVersion::Any, &[sized_event(10)])
        .unwrap();
    assert_eq!(
        crashkit::segment_files(dir.path()).len(),
        segments_before + 1,
        "the last append rolled"
    );
    let events = store.read_all(0, usize::MAX).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), options())
        .unwrap_or_else(|e| panic!("reopen with a segment {gap} bytes short of full: {e}"));
    assert_eq!(store.read_all(0, usize::MAX).unwrap(), events);
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.read_all(0, usize::MAX).unwrap(), events);
}

/// Found by `crash_process`: a segment whose batches end exactly at the end
/// of its data area was refused on open as "frame header does not fit at
/// this offset" (the scanner read the end of the data area as a broken frame
/// instead of the end of the batches), making the whole store unopenable.
#[test]
fn a_segment_filled_to_the_last_byte_reopens() {
    fill_segment_leaving(0);
}

/// The same with 8 bytes left: too few for a frame header, and zero.
#[test]
fn a_segment_filled_to_eight_bytes_short_reopens() {
    fill_segment_leaving(8);
}

/// Found while analysing sync markers (the marker `close` writes, a commit
/// record with no events): a segment could hold nothing but markers (a store
/// opened and closed without appends). A batch that fits an empty segment but
/// not the room the markers left then made the writer seal a segment without
/// events, which panicked ("only a segment with events is sealed", or the
/// `last_position` of an empty segment underflowing). The same happened to
/// the first append after enough open/close cycles filled a segment with
/// markers.
#[test]
fn a_batch_after_sync_markers_in_an_empty_segment_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    // The data length whose one-event batch fills an empty segment to 8
    // bytes short: measured on a fresh store.
    let capacity = 64 * 1024 - 2 * FOOTER_LEN;
    let want = capacity - 8;
    let mut data_len = want - 200;
    for _ in 0..20 {
        let probe = crashkit::ram_dir();
        let store = Store::open(probe.path(), options()).unwrap();
        let (before, _) = newest_end(probe.path());
        store
            .append("big", ExpectedVersion::Any, &[sized_event(data_len)])
            .unwrap();
        let len = newest_end(probe.path()).0 - before;
        if len == want {
            break;
        }
        data_len = data_len + want - len;
    }
    // Open and close without appending, a few times.
    for _ in 0..3 {
        Store::open(dir.path(), options()).unwrap().close().unwrap();
    }
    let store = Store::open(dir.path(), options()).unwrap();
    store
        .append("big", ExpectedVersion::Any, &[sized_event(data_len)])
        .unwrap();
    store
        .append("small", ExpectedVersion::Any, &[sized_event(10)])
        .unwrap();
    let events = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(events.len(), 2);
    store.close().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.read_all(0, usize::MAX).unwrap(), events);
    crashkit::check_tail_zeroed(dir.path()).unwrap();
}

/// Caught: the writer checked a batch against the capacity of the active
/// segment, then, when it did not fit in the room left, sealed that segment
/// and rolled into a new one of `Options::segment_size_bytes`. A store
/// reopened with smaller segments than its active one could so roll into a
/// segment too small for the batch and panic in `publish_buffer` ("the
/// caller checked that the batch fits"). A batch that does not fit an empty
/// segment of the size that will be created is now `LimitExceeded`, before
/// anything is written or sealed.
#[test]
fn a_batch_too_big_for_a_smaller_next_segment_is_refused_before_rolling() {
    let dir = tempfile::tempdir().unwrap();
    let big = Options::default()
        .segment_size_bytes(256 * 1024)
        .durability(Durability::Always);
    let store = Store::open(dir.path(), big).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[sized_event(150_000)])
        .unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let files_before = crashkit::segment_files(dir.path());
    let active_before = std::fs::read(files_before.last().unwrap()).unwrap();
    // Fits an empty 256 KiB segment, not the room left in this one, nor an
    // empty 64 KiB one.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.append("s", ExpectedVersion::Any, &[sized_event(120_000)])
    }));
    match result {
        Ok(Err(annals::Error::LimitExceeded { actual, max, .. })) => {
            assert!(actual > max, "{actual} <= {max}");
            assert!(
                max < 64 * 1024,
                "max {max} is not the new segment's capacity"
            );
        }
        Ok(other) => panic!("expected LimitExceeded, got {other:?}"),
        Err(_) => panic!("the append panicked"),
    }
    assert_eq!(crashkit::segment_files(dir.path()), files_before);
    assert_eq!(
        std::fs::read(files_before.last().unwrap()).unwrap(),
        active_before,
        "the refused batch changed the active segment"
    );
    // The store goes on: a batch that fits the room left goes there, the
    // next one, which fits a new 64 KiB segment, rolls into one.
    for version in 1..3 {
        store
            .append("s", ExpectedVersion::Exact(version), &[sized_event(60_000)])
            .unwrap();
    }
    assert_eq!(
        crashkit::segment_files(dir.path()).len(),
        files_before.len() + 1
    );
    let events = store.read_all(0, usize::MAX).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.read_all(0, usize::MAX).unwrap(), events);
}
