//! Segment rolls: reads across boundaries, reopen, limits on what fits.

mod common;

use annals::{Error, EventData, ExpectedVersion, Limits, Store};
use common::*;

#[test]
fn thousands_of_events_across_many_segments_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let written = fill(&store, 1500, 3, 7, 90);
    assert!(segment_files(dir.path()).len() > 10, "expected many rolls");
    let before = all_events(&store);
    assert_eq!(before.len(), written.len());
    for (i, (event, (stream, data))) in before.iter().zip(&written).enumerate() {
        assert_eq!(
            (event.position, &event.stream, &event.data),
            (i as u64, stream, data)
        );
    }
    store.close().unwrap();

    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(all_events(&store), before);
    // Every window of the log, forward and backward, across boundaries.
    for from in [0u64, 1, 15, 16, 17, 999, 2000, 4499] {
        let forward = store.read_all(from, 40).unwrap();
        assert_eq!(
            forward,
            before[from as usize..(from as usize + 40).min(before.len())].to_vec()
        );
        let backward = store.read_all_backward(from, 40).unwrap();
        let expected: Vec<_> = before[..=from as usize]
            .iter()
            .rev()
            .take(40)
            .cloned()
            .collect();
        assert_eq!(backward, expected, "backward from {from}");
    }
    // Every stream, forward and backward.
    for s in 0..7 {
        let stream = format!("s-{s}");
        let expected: Vec<_> = before
            .iter()
            .filter(|e| e.stream == stream)
            .cloned()
            .collect();
        assert_eq!(store.read_stream(&stream, 1, usize::MAX).unwrap(), expected);
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(
            store
                .read_stream_backward(&stream, u64::MAX, usize::MAX)
                .unwrap(),
            reversed
        );
        assert_eq!(
            store.read_stream(&stream, 10, 5).unwrap(),
            expected[9..14].to_vec()
        );
        assert_eq!(
            store.read_stream_backward(&stream, 10, 3).unwrap(),
            vec![
                expected[9].clone(),
                expected[8].clone(),
                expected[7].clone()
            ]
        );
    }
    // Appending after reopen continues positions and versions.
    let r = store
        .append(
            "s-0",
            ExpectedVersion::Exact(store.stream_version("s-0")),
            &[EventData::new("E", vec![1])],
        )
        .unwrap();
    assert_eq!(r.first_position, before.len() as u64);
}

#[test]
fn reads_past_the_end_and_of_missing_streams_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.read_all(0, 10).unwrap().is_empty());
    assert!(store.read_all_backward(u64::MAX, 10).unwrap().is_empty());
    fill(&store, 3, 2, 1, 10);
    assert!(store.read_all(6, 10).unwrap().is_empty());
    assert!(store.read_all(0, 0).unwrap().is_empty());
    assert!(store.read_stream("nope", 1, 10).unwrap().is_empty());
    assert!(store.read_stream("s-0", 7, 10).unwrap().is_empty());
    assert_eq!(
        store.read_stream("s-0", 0, 10).unwrap().len(),
        6,
        "version 0 reads from the start"
    );
}

#[test]
fn a_batch_that_cannot_fit_a_segment_is_refused_not_split() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let big: Vec<EventData> = (0..20)
        .map(|_| EventData::new("Big", vec![7u8; 4000]))
        .collect();
    let error = store.append("s", ExpectedVersion::Any, &big).unwrap_err();
    assert!(matches!(error, Error::LimitExceeded { .. }), "{error}");
    assert_eq!(store.next_position(), 0, "nothing was written");
    // A batch that fits an empty segment but not the rest of the current one rolls.
    let medium: Vec<EventData> = (0..10)
        .map(|_| EventData::new("M", vec![1u8; 4000]))
        .collect();
    store.append("s", ExpectedVersion::Any, &medium).unwrap();
    store.append("s", ExpectedVersion::Any, &medium).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
    let events = store.read_stream("s", 1, usize::MAX).unwrap();
    assert_eq!(events.len(), 20);
}

#[test]
fn limits_are_enforced_with_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_stream_id_bytes: 8,
        max_event_type_bytes: 4,
        max_event_bytes: 100,
        max_batch_events: 2,
        max_snapshot_bytes: 1000,
    };
    let store = Store::open(dir.path(), small_segments().limits(limits)).unwrap();
    let ok = EventData::new("T", vec![0; 10]);
    let cases: Vec<(&str, Vec<EventData>, &str)> = vec![
        ("123456789", vec![ok.clone()], "max_stream_id_bytes"),
        (
            "s",
            vec![EventData::new("TTTTT", vec![])],
            "max_event_type_bytes",
        ),
        (
            "s",
            vec![EventData::new("T", vec![0; 101])],
            "max_event_bytes",
        ),
        (
            "s",
            vec![EventData::new("T", vec![0; 95])],
            "max_event_bytes",
        ),
        (
            "s",
            vec![ok.clone(), ok.clone(), ok.clone()],
            "max_batch_events",
        ),
    ];
    for (stream, events, limit) in cases {
        match store.append(stream, ExpectedVersion::Any, &events) {
            Err(Error::LimitExceeded { limit: name, .. }) => {
                assert!(name.contains(limit), "{name} vs {limit}")
            }
            other => panic!("expected {limit} to be exceeded, got {other:?}"),
        }
    }
    for (stream, events) in [
        ("", vec![ok.clone()]),
        ("s", vec![]),
        ("s", vec![EventData::new("", vec![])]),
    ] {
        assert!(matches!(
            store.append(stream, ExpectedVersion::Any, &events),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert_eq!(store.next_position(), 0);
    store
        .append("s", ExpectedVersion::Any, &[ok.clone(), ok])
        .unwrap();
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for size in [0u64, 4096, 64 * 1024 + 1, 1 << 40] {
        let error = Store::open(dir.path(), small_segments().segment_size_bytes(size))
            .err()
            .unwrap();
        assert!(
            matches!(error, Error::InvalidArgument(_)),
            "{size}: {error}"
        );
    }
}

/// Regression: a segment whose batches end exactly at the end of its data
/// area could not be reopened: open reported "frame header does not fit at
/// this offset" at the start of the footer.
#[test]
fn regression_a_segment_filled_to_its_last_byte_reopens() {
    use annals::format::batch::{encode_commit_frame, encode_event_frame};
    use annals::format::body::{CommitBody, EventBody};
    use annals::format::{FOOTER_LEN, SEGMENT_HEADER_LEN};

    let dir = tempfile::tempdir().unwrap();
    let segment_size = 64 * 1024usize;
    let store = Store::open(dir.path(), small_segments()).unwrap();
    // The encoded length of a one-event batch with `data_len` bytes of data,
    // as the writer will encode it (same field widths).
    let batch_len = |data_len: usize, position: u64| {
        let data = vec![0u8; data_len];
        let mut out = Vec::new();
        let event = EventBody {
            stream: "s",
            version: position + 1,
            position,
            id: [0; 16],
            event_type: "E",
            timestamp_ns: u64::MAX,
            correlation_id: None,
            causation_id: None,
            content_type: None,
            metadata: b"",
            data: &data,
            subject: None,
        };
        encode_event_frame(&mut out, 1, annals::format::FORMAT_VERSION, &event);
        let commit = CommitBody {
            chain: [0; 32],
            first_position: position,
            event_count: 1,
            synced_offset: 128,
            command_id: None,
        };
        encode_commit_frame(&mut out, 1, 0, &[0; 32], &commit);
        out.len()
    };
    // Fill most of the segment with 1000-byte events, then one event sized to
    // end the data area exactly.
    let mut used = SEGMENT_HEADER_LEN;
    let mut position = 0;
    while segment_size - FOOTER_LEN - used > 3000 {
        store
            .append(
                "s",
                ExpectedVersion::Exact(position),
                &[EventData::new("E", vec![0u8; 1000])],
            )
            .unwrap();
        used += batch_len(1000, position);
        position += 1;
    }
    let remaining = segment_size - FOOTER_LEN - used;
    let exact = (0..remaining)
        .find(|&n| batch_len(n, position) == remaining)
        .expect("a data size that fills the segment exactly");
    store
        .append(
            "s",
            ExpectedVersion::Exact(position),
            &[EventData::new("E", vec![0u8; exact])],
        )
        .unwrap();
    // The next append rolls and seals the full segment.
    store
        .append(
            "s",
            ExpectedVersion::Exact(position + 1),
            &[EventData::new("E", vec![1])],
        )
        .unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.stream_version("s"), position + 2);
    Store::open_read_only(dir.path()).unwrap();
}

/// Regression: a segment holding sync markers (one per close) and
/// one-event batches has more batches than events; its footer was refused
/// as impossible, so the store no longer opened once that segment was
/// sealed, and readers in other processes stopped following at the roll.
#[test]
fn a_sealed_segment_may_hold_more_batches_than_events() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let store = Store::open(dir.path(), small_segments()).unwrap();
        store
            .append("s", ExpectedVersion::Any, &[event("s", 0, 0, 10)])
            .unwrap();
        store.close().unwrap();
    }
    let reader = Store::open_read_only(dir.path()).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    while segment_files(dir.path()).len() < 2 {
        store
            .append("s", ExpectedVersion::Any, &[event("s", 1, 0, 500)])
            .unwrap();
    }
    let written = store.next_position();
    store.close().unwrap();
    reader.refresh().unwrap();
    assert_eq!(
        reader.next_position(),
        written,
        "the reader follows the roll"
    );
    let reopened = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(reopened.next_position(), written);
}
