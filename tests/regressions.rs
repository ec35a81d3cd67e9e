//! Bugs found by the crash, power-loss, corruption and fuzz tests, each kept
//! as a small deterministic test named after what it caught.

mod crashkit;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
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
    // A batch whose fields (data, type "Fill", stream "s", a 16-byte id)
    // fit the room left in the 256 KiB segment, so that only its encoded
    // size, a few dozen bytes more, does not; nor does it fit an empty
    // 64 KiB segment.
    let (end, data_end) = newest_end(dir.path());
    let room = data_end - end;
    assert!(room > 64 * 1024);
    let data_len = room - 8 - (4 + 1 + 16);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.append("s", ExpectedVersion::Any, &[sized_event(data_len)])
    }));
    match result {
        Ok(Err(annals::Error::LimitExceeded { actual, max, .. })) => {
            assert!(actual > room as u64, "{actual} fits the room left, {room}");
            assert_eq!(
                max,
                (64 * 1024 - 2 * FOOTER_LEN) as u64,
                "not the new segment's capacity"
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

/// The system allocator, noting the largest single allocation made by a
/// thread inside [`largest_allocation_during`].
struct NotingAllocator;

thread_local! {
    /// `Some(largest so far)` while this thread is being watched.
    static LARGEST_ALLOCATION: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note_allocation(bytes: usize) {
    let _ = LARGEST_ALLOCATION.try_with(|largest| {
        if let Some(so_far) = largest.get() {
            largest.set(Some(so_far.max(bytes)));
        }
    });
}

// SAFETY: every call is passed on to `System` unchanged.
unsafe impl GlobalAlloc for NotingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: NotingAllocator = NotingAllocator;

/// Runs `f`; returns its result and the largest single allocation it made
/// on this thread.
fn largest_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST_ALLOCATION.with(|largest| largest.set(Some(0)));
    let result = f();
    let largest = LARGEST_ALLOCATION.with(|largest| largest.take()).unwrap();
    (result, largest)
}

/// A string of `len` NUL characters whose bytes are never touched (a zeroed
/// allocation maps no memory until written), for sizes no limit allows.
fn untouched_string(len: usize) -> String {
    // SAFETY: zero bytes are valid UTF-8 (NUL characters).
    unsafe { String::from_utf8_unchecked(vec![0u8; len]) }
}

/// Caught: `Options::validate` let `Limits::max_event_bytes`,
/// `max_snapshot_bytes`, `max_stream_id_bytes` (and `max_event_type_bytes`)
/// be set above what a frame (a u32 body length) or the largest segment can
/// hold, which made the `expect`s in the encoders reachable.
#[test]
fn limits_above_what_the_format_can_hold_are_refused_at_open() {
    type Setter = fn(&mut annals::Limits, usize);
    let cases: [(&str, usize, Setter); 4] = [
        (
            "max_event_bytes",
            annals::Limits::MAX_EVENT_BYTES,
            |l, v| l.max_event_bytes = v,
        ),
        (
            "max_snapshot_bytes",
            annals::Limits::MAX_SNAPSHOT_BYTES,
            |l, v| l.max_snapshot_bytes = v,
        ),
        (
            "max_stream_id_bytes",
            annals::Limits::MAX_STREAM_ID_BYTES,
            |l, v| l.max_stream_id_bytes = v,
        ),
        (
            "max_event_type_bytes",
            annals::Limits::MAX_EVENT_TYPE_BYTES,
            |l, v| l.max_event_type_bytes = v,
        ),
    ];
    assert!(annals::Limits::MAX_EVENT_BYTES < u32::MAX as usize);
    for (name, cap, set) in cases {
        let mut limits = annals::Limits::default();
        set(&mut limits, cap);
        Store::in_memory(options().limits(limits.clone()))
            .unwrap_or_else(|e| panic!("{name} at its cap {cap}: {e}"));
        for value in [cap + 1, usize::MAX] {
            set(&mut limits, value);
            let dir = tempfile::tempdir().unwrap();
            match Store::open(dir.path(), options().limits(limits.clone())) {
                Err(annals::Error::InvalidArgument(message)) => {
                    assert!(message.contains(name), "{message}")
                }
                Err(other) => panic!("{name} = {value} gave {other}"),
                Ok(_) => panic!("{name} = {value} was accepted"),
            }
            assert!(Store::in_memory(options().limits(limits.clone())).is_err());
        }
    }
}

/// Caught: only an event's data and metadata were checked before encoding,
/// so a correlation id (or causation id, or content type) longer than a
/// MessagePack string length (u32) reached the `expect` in the body
/// encoder and panicked. The whole event's fields are now checked against
/// `Limits::max_event_bytes` first.
#[cfg(target_pointer_width = "64")]
#[test]
fn an_event_field_longer_than_a_frame_can_hold_is_refused_not_a_panic() {
    let store = Store::in_memory(options()).unwrap();
    let mut event = EventData::new("E", vec![1]);
    event.correlation_id = Some(untouched_string(u32::MAX as usize + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.append("s", ExpectedVersion::Any, std::slice::from_ref(&event))
    }));
    match result {
        Ok(Err(annals::Error::LimitExceeded { limit, .. })) => {
            assert!(limit.contains("max_event_bytes"), "{limit}")
        }
        Ok(other) => panic!("expected LimitExceeded, got {other:?}"),
        Err(_) => panic!("the append panicked"),
    }
    assert_eq!(store.next_position(), 0);
}

/// Caught: a batch was encoded in full before its size was checked against
/// the segment, so a batch of large events (each under
/// `Limits::max_event_bytes`) far over a segment was copied into the
/// encoding buffer before being refused. Now the sum of its fields' lengths
/// (a lower bound of its encoded size) refuses it first.
#[test]
fn a_batch_far_over_a_segment_is_refused_before_encoding() {
    let limits = annals::Limits {
        max_event_bytes: 64 << 20,
        ..annals::Limits::default()
    };
    let store = Store::in_memory(options().limits(limits)).unwrap();
    // Zeroed allocations: no memory is touched until something copies them.
    let events: Vec<EventData> = (0..3)
        .map(|_| EventData::new("E", vec![0u8; 32 << 20]))
        .collect();
    let (result, largest) =
        largest_allocation_during(|| store.append("s", ExpectedVersion::Any, &events));
    assert!(
        matches!(result, Err(annals::Error::LimitExceeded { .. })),
        "{result:?}"
    );
    assert!(
        largest < 1 << 20,
        "refusing the batch allocated {largest} bytes at once: it was encoded"
    );
}

/// Caught: a snapshot's content type is not limited, and the snapshot
/// encoder's length `expect`s were reachable with one longer than a
/// snapshot file can hold. Now `LimitExceeded`, checked before encoding.
#[cfg(target_pointer_width = "64")]
#[test]
fn a_snapshot_too_large_for_its_file_format_is_refused_not_a_panic() {
    let store = Store::in_memory(options()).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[EventData::new("E", vec![1])])
        .unwrap();
    let content_type = untouched_string(u32::MAX as usize + 1);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.save_snapshot("s", 1, b"state", Some(&content_type))
    }));
    match result {
        Ok(Err(annals::Error::LimitExceeded { actual, max, .. })) => assert!(actual > max),
        Ok(other) => panic!("expected LimitExceeded, got {other:?}"),
        Err(_) => panic!("saving the snapshot panicked"),
    }
    assert_eq!(store.load_snapshot("s").unwrap(), None);
}

/// Caught: loading a snapshot checked its file against the loading store's
/// `Limits::max_snapshot_bytes`, so a read-only store (which uses the
/// default limits) or a writer reopened with smaller limits refused, as
/// corruption, a valid snapshot that a writer with larger limits had saved.
/// Loading now accepts anything the snapshot format can hold.
#[test]
fn a_snapshot_larger_than_the_default_limit_loads_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let default_max = annals::Limits::default().max_snapshot_bytes;
    let larger = annals::Limits {
        max_snapshot_bytes: 2 * default_max,
        ..annals::Limits::default()
    };
    let store = Store::open(dir.path(), options().limits(larger)).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[EventData::new("E", vec![1])])
        .unwrap();
    let state = vec![7u8; default_max + 64 * 1024];
    assert!(store.save_snapshot("s", 1, &state, None).unwrap());
    store.close().unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    let loaded = reader
        .load_snapshot("s")
        .unwrap_or_else(|e| panic!("read-only load: {e}"))
        .expect("the snapshot saved above");
    assert!(loaded.version == 1 && loaded.data == state);
    drop(reader);
    let writer = Store::open(dir.path(), options()).unwrap();
    let loaded = writer
        .load_snapshot("s")
        .unwrap_or_else(|e| panic!("load with default limits: {e}"))
        .expect("the snapshot saved above");
    assert!(loaded.data == state);
}

/// Caught: a damaged snapshot file was reported with the advice for
/// segments, "run `annals verify` ..., `annals repair` ...", which do not
/// look at snapshot files. A snapshot is a cache: the advice is to delete it.
#[test]
fn a_damaged_snapshot_advises_deleting_it_not_verify_or_repair() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[EventData::new("E", vec![1])])
        .unwrap();
    store.save_snapshot("s", 1, b"state", None).unwrap();
    let snapshots = dir.path().join(annals::SNAPSHOT_DIR_NAME);
    let file = std::fs::read_dir(&snapshots)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&file, &bytes).unwrap();
    let error = store.load_snapshot("s").unwrap_err();
    assert!(error.is_corruption(), "{error}");
    let message = error.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("delete"), "{message}");
    assert!(
        !message.contains("annals repair") && !message.contains("run `annals verify`"),
        "{message}"
    );
    // Deleting it is the remedy.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(store.load_snapshot("s").unwrap(), None);
    // Damaged segments keep their advice.
    let segment_error = annals::Error::Corrupt(Box::new(annals::Finding {
        kind: annals::FindingKind::BytesAfterSealedData,
        path: dir.path().join("00000000000000000000.seg"),
        offset: 128,
        position: None,
    }));
    assert!(segment_error.to_string().contains("annals repair"));
}

/// A sealed footer whose `last_position` is 2^64-1 (valid checksum, an
/// impossible value) made recovery overflow computing the next position:
/// a panic in debug builds, a wrapped position in release builds. Every
/// opener now refuses it as a footer that disagrees with its data.
#[test]
fn a_footer_claiming_the_last_possible_position_is_refused_not_an_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    for i in 0..200u64 {
        store
            .append("s", ExpectedVersion::Any, &[sized_event(600 + i as usize)])
            .unwrap();
    }
    store.close().unwrap();
    let sealed = crashkit::segment_files(dir.path()).remove(0);
    let bytes = std::fs::read(&sealed).unwrap();
    let footer_at = bytes.len() - FOOTER_LEN;
    let annals::format::footer::FooterState::Sealed(mut footer) =
        annals::format::footer::SegmentFooter::decode(&bytes[footer_at..])
    else {
        panic!("the first segment is sealed");
    };
    footer.last_position = u64::MAX;
    let mut permissions = std::fs::metadata(&sealed).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&sealed, permissions).unwrap();
    let mut damaged = bytes.clone();
    damaged[footer_at..].copy_from_slice(&footer.encode());
    std::fs::write(&sealed, &damaged).unwrap();

    for (what, result) in [
        (
            "writable open",
            Store::open(dir.path(), options()).map(drop),
        ),
        (
            "read-only open",
            Store::open_read_only(dir.path()).map(drop),
        ),
    ] {
        let error = result.expect_err(what);
        let finding = error.finding().unwrap_or_else(|| panic!("{what}: {error}"));
        assert_eq!(finding.path, sealed, "{what}");
        assert_eq!(finding.offset, footer_at as u64, "{what}");
        assert!(
            matches!(finding.kind, annals::FindingKind::FooterMismatch { .. }),
            "{what}: {error}"
        );
    }
    let report = annals::verify(dir.path(), &annals::VerifyOptions::default()).unwrap();
    assert!(!report.is_ok(), "{report}");
}

/// A sealed newest segment cut 3 bytes short (inside its footer): the walk
/// reads it as a short, unsealed newest segment, and the writer extended the
/// file back, but kept the first 125 bytes of the old footer: a footer left
/// invalid in the active segment (found by `corruption::damage_long`).
#[test]
fn a_newest_segment_cut_inside_its_footer_is_restored_with_a_zero_footer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    for i in 0..120u64 {
        store
            .append("s", ExpectedVersion::Any, &[sized_event(900 + i as usize)])
            .unwrap();
    }
    store.close().unwrap();
    // Leave the sealed segment newest, as a full disk during a roll does.
    let mut files = crashkit::segment_files(dir.path());
    assert!(files.len() >= 2);
    std::fs::remove_file(files.pop().unwrap()).unwrap();
    let sealed = files.pop().unwrap();
    let mut permissions = std::fs::metadata(&sealed).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&sealed, permissions).unwrap();
    let len = std::fs::metadata(&sealed).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sealed)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let bytes = std::fs::read(&sealed).unwrap();
    assert_eq!(bytes.len() as u64, len);
    assert!(
        bytes[bytes.len() - FOOTER_LEN..].iter().all(|&b| b == 0),
        "the footer area of the active segment is zero"
    );
    store
        .append("s", ExpectedVersion::Any, &[sized_event(10)])
        .unwrap();
    store.close().unwrap();
    Store::open(dir.path(), options()).unwrap();
}

/// A child process started while a store is open holds a copy of its lock
/// file's descriptor until it executes its program. Closing the store used
/// to only close the file, so the lock stayed held through that copy and
/// the store, opened again at that moment, answered `Locked` (parallel
/// tests that spawn children hit it). Closing now unlocks explicitly.
#[test]
fn a_store_closed_while_a_child_is_starting_opens_again_at_once() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let store = annals::Store::open(dir.path(), annals::Options::default()).unwrap();
    let mut command = std::process::Command::new("true");
    // SAFETY: runs in the child between fork and exec; it only sleeps
    // (nanosleep is async-signal-safe) and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            Ok(())
        });
    }
    // `spawn` returns once the child executed its program: start it beside
    // the close, so that the close falls between the fork and the exec.
    let starting = std::thread::spawn(move || command.spawn().unwrap().wait().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(100));
    store.close().unwrap();
    let reopened = annals::Store::open(dir.path(), annals::Options::default());
    starting.join().unwrap();
    assert!(reopened.is_ok(), "{:?}", reopened.err());
}
