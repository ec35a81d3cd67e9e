//! Behaviour every store must show, run against a file store and an
//! in-memory store alike: the in-memory store must behave exactly like the
//! file store (same errors, same versions, same positions).

#[macro_use]
mod common;

use std::time::Duration;

use annals::codec::Json;
use annals::{Error, EventData, ExpectedVersion, Filter, Limits, Options, Store, Uuid};

fn options() -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(annals::Durability::None)
}

fn one(data: &[u8]) -> [EventData; 1] {
    [EventData::new("E", data.to_vec())]
}

for_both_stores!(expected_version_matrix, |store: &Store| {
    // (expected, succeeds on a stream at version 2, succeeds on a missing stream)
    let cases = [
        (ExpectedVersion::Any, true, true),
        (ExpectedVersion::NoStream, false, true),
        (ExpectedVersion::StreamExists, true, false),
        (ExpectedVersion::Exact(2), true, false),
        (ExpectedVersion::Exact(1), false, false),
        (ExpectedVersion::Exact(3), false, false),
        (ExpectedVersion::Exact(0), false, true),
    ];
    for (i, (expected, ok_existing, ok_missing)) in cases.into_iter().enumerate() {
        for (exists, should_succeed) in [(true, ok_existing), (false, ok_missing)] {
            let stream = format!("case-{i}-{exists}");
            if exists {
                store
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        &[EventData::new("E", vec![1]), EventData::new("E", vec![2])],
                    )
                    .unwrap();
            }
            let actual = store.stream_version(&stream);
            match store.append(&stream, expected, &one(b"x")) {
                Ok(result) => {
                    assert!(
                        should_succeed,
                        "{expected:?} on {stream} at {actual} should conflict"
                    );
                    assert_eq!(
                        (result.first_version, result.last_version),
                        (actual + 1, actual + 1)
                    );
                }
                Err(Error::WrongExpectedVersion {
                    stream: s,
                    expected: e,
                    actual: a,
                }) => {
                    assert!(
                        !should_succeed,
                        "{expected:?} on {stream} at {actual} should succeed"
                    );
                    assert_eq!((s.as_str(), e, a), (stream.as_str(), expected, actual));
                    assert_eq!(
                        store.stream_version(&stream),
                        actual,
                        "a conflict writes nothing"
                    );
                }
                Err(other) => panic!("{other}"),
            }
        }
    }
});

for_both_stores!(versions_and_positions, |store: &Store| {
    assert_eq!(store.stream_version("a"), 0);
    let first = store
        .append("a", ExpectedVersion::NoStream, &one(b"1"))
        .unwrap();
    assert_eq!((first.first_version, first.first_position), (1, 0));
    let second = store
        .append(
            "b",
            ExpectedVersion::NoStream,
            &[EventData::new("E", vec![]), EventData::new("E", vec![])],
        )
        .unwrap();
    assert_eq!(
        (
            second.first_version,
            second.last_version,
            second.first_position,
            second.last_position
        ),
        (1, 2, 1, 2)
    );
    let error = store
        .append("a", ExpectedVersion::Exact(5), &one(b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"a\"") && error.contains("version 5") && error.contains("version 1"),
        "{error}"
    );
});

for_both_stores!(reads_across_segment_rolls, |store: &Store| {
    for i in 0..1200u64 {
        store
            .append(
                &format!("s-{}", i % 5),
                ExpectedVersion::Any,
                &[EventData::new("T", vec![(i % 256) as u8; 120])],
            )
            .unwrap();
    }
    let all = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(all.len(), 1200);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.position == i as u64 && e.data[0] == (i % 256) as u8)
    );
    let backward = store.read_all_backward(u64::MAX, usize::MAX).unwrap();
    assert!(backward.iter().rev().eq(all.iter()));
    let s2: Vec<_> = all.iter().filter(|e| e.stream == "s-2").cloned().collect();
    assert_eq!(store.read_stream("s-2", 1, usize::MAX).unwrap(), s2);
    assert_eq!(
        s2.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=240).collect::<Vec<_>>()
    );
    let timestamps: Vec<u64> = all.iter().map(|e| e.timestamp_ns).collect();
    assert!(
        timestamps.windows(2).all(|w| w[0] <= w[1]),
        "timestamps never decrease"
    );
});

for_both_stores!(limits_are_the_same, |store: &Store| {
    let too_long = "s".repeat(Limits::default().max_stream_id_bytes + 1);
    assert!(matches!(
        store.append(&too_long, ExpectedVersion::Any, &one(b"")),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(matches!(
        store.append("s", ExpectedVersion::Any, &[]),
        Err(Error::InvalidArgument(_))
    ));
    let too_many: Vec<EventData> = (0..=Limits::default().max_batch_events)
        .map(|_| EventData::new("E", vec![]))
        .collect();
    assert!(matches!(
        store.append("s", ExpectedVersion::Any, &too_many),
        Err(Error::LimitExceeded { .. })
    ));
    assert_eq!(store.next_position(), 0);
});

for_both_stores!(command_ids_make_appends_idempotent, |store: &Store| {
    let first = store
        .append_idempotent("cmd-1", "order", ExpectedVersion::NoStream, &one(b"a"))
        .unwrap();
    store
        .append("order", ExpectedVersion::Exact(1), &one(b"b"))
        .unwrap();
    // The expected version no longer matches, yet the repeat returns the original result.
    let again = store
        .append_idempotent("cmd-1", "order", ExpectedVersion::NoStream, &one(b"a"))
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(store.stream_version("order"), 2);
    // A different command id is a different append.
    assert!(matches!(
        store.append_idempotent("cmd-2", "order", ExpectedVersion::NoStream, &one(b"a")),
        Err(Error::WrongExpectedVersion { actual: 2, .. })
    ));
});

for_both_stores!(
    same_event_ids_at_same_version_are_a_no_op,
    |store: &Store| {
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let events: Vec<EventData> = ids
            .iter()
            .map(|&id| EventData::new("E", vec![1]).with_id(id))
            .collect();
        store
            .append("other", ExpectedVersion::Any, &one(b"shift positions"))
            .unwrap();
        let first = store
            .append("s", ExpectedVersion::NoStream, &events)
            .unwrap();
        let again = store
            .append("s", ExpectedVersion::NoStream, &events)
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(store.stream_version("s"), 2);
        // Other ids at the same version conflict; the same ids at another version conflict.
        let other: Vec<EventData> = (0..2)
            .map(|_| EventData::new("E", vec![1]).with_id(Uuid::now_v7()))
            .collect();
        assert!(matches!(
            store.append("s", ExpectedVersion::NoStream, &other),
            Err(Error::WrongExpectedVersion { .. })
        ));
        assert!(matches!(
            store.append("s", ExpectedVersion::Exact(1), &events),
            Err(Error::WrongExpectedVersion { .. })
        ));
        // Events without ids never match.
        let no_ids = [EventData::new("E", vec![1]), EventData::new("E", vec![1])];
        assert!(matches!(
            store.append("s", ExpectedVersion::NoStream, &no_ids),
            Err(Error::WrongExpectedVersion { .. })
        ));
    }
);

for_both_stores!(
    snapshots_keep_the_newest_and_refuse_the_future,
    |store: &Store| {
        assert!(store.load_snapshot("cart").unwrap().is_none());
        store
            .append(
                "cart",
                ExpectedVersion::NoStream,
                &[
                    EventData::new("E", vec![1]),
                    EventData::new("E", vec![2]),
                    EventData::new("E", vec![3]),
                ],
            )
            .unwrap();
        assert!(matches!(
            store.save_snapshot("cart", 4, b"x", None),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            store.save_snapshot("cart", 0, b"x", None),
            Err(Error::InvalidArgument(_))
        ));
        assert!(store.save_snapshot_serde("cart", 2, &vec![1u8, 2]).unwrap());
        assert!(
            store
                .save_snapshot_serde("cart", 3, &vec![1u8, 2, 3])
                .unwrap()
        );
        assert!(
            !store.save_snapshot_serde("cart", 1, &vec![1u8]).unwrap(),
            "an older snapshot does not replace a newer one"
        );
        let snapshot = store.load_snapshot("cart").unwrap().unwrap();
        assert_eq!((snapshot.stream.as_str(), snapshot.version), ("cart", 3));
        assert_eq!(snapshot.decode::<Vec<u8>>().unwrap(), vec![1, 2, 3]);
        assert!(
            store
                .read_stream("cart", snapshot.version + 1, 10)
                .unwrap()
                .is_empty()
        );
        assert!(store.load_snapshot("other").unwrap().is_none());
    }
);

for_both_stores!(filters_correlation_and_time, |store: &Store| {
    store
        .append(
            "order-1",
            ExpectedVersion::Any,
            &[
                EventData::new("Placed", vec![1]).with_correlation_id("req-1"),
                EventData::new("Paid", vec![2]),
            ],
        )
        .unwrap();
    let middle = store.read_all(1, 1).unwrap()[0].timestamp_ns;
    store
        .append(
            "user-1",
            ExpectedVersion::Any,
            &[EventData::new("Placed", vec![3]).with_correlation_id("req-1")],
        )
        .unwrap();
    store
        .append(
            "order-2",
            ExpectedVersion::Any,
            &[EventData::new("Shipped", vec![4])],
        )
        .unwrap();
    let placed = store
        .read_all_filtered(0, 10, &Filter::default().event_type("Placed"))
        .unwrap();
    assert_eq!(
        placed.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![0, 2]
    );
    let orders = store
        .read_all_filtered(0, 10, &Filter::default().stream_prefix("order-"))
        .unwrap();
    assert_eq!(
        orders.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![0, 1, 3]
    );
    let both = store
        .read_all_filtered(
            1,
            10,
            &Filter::default()
                .event_type("Placed")
                .event_type("Shipped")
                .stream_prefix("order-"),
        )
        .unwrap();
    assert_eq!(both.iter().map(|e| e.position).collect::<Vec<_>>(), vec![3]);
    let correlated = store.read_correlated("req-1").unwrap();
    assert_eq!(
        correlated.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert!(store.read_correlated("nope").unwrap().is_empty());
    assert_eq!(store.position_at_or_after(0).unwrap(), Some(0));
    assert_eq!(store.position_at_or_after(u64::MAX).unwrap(), None);
    let found = store.position_at_or_after(middle).unwrap().unwrap();
    assert!(found <= 1 && store.read_all(found, 1).unwrap()[0].timestamp_ns >= middle);
});

for_both_stores!(codecs_are_recorded_and_used, |store: &Store| {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Event {
        Opened { owner: String },
    }
    let value = Event::Opened {
        owner: "ada".into(),
    };
    store
        .append(
            "a",
            ExpectedVersion::Any,
            &[
                EventData::from_serde("Opened", &value).unwrap(),
                EventData::encode_with::<Json, _>("Opened", &value).unwrap(),
            ],
        )
        .unwrap();
    let events = store.read_stream("a", 1, 10).unwrap();
    assert_eq!(events[0].content_type.as_deref(), Some("msgpack"));
    assert_eq!(events[1].content_type.as_deref(), Some("json"));
    assert_eq!(events[1].data, serde_json::to_vec(&value).unwrap());
    for event in &events {
        assert_eq!(event.decode::<Event>().unwrap(), value);
    }
    let error = events[1]
        .decode_with::<annals::codec::MessagePack, Event>()
        .unwrap_err();
    assert!(
        matches!(error, Error::Codec { .. }) && error.to_string().contains("\"a\""),
        "{error}"
    );
    // Views and snapshots name what failed to decode too.
    store
        .scan_stream("a", 1, |view| {
            let error = view.decode::<u64>().unwrap_err().to_string();
            assert!(
                error.contains("stream \"a\"") && error.contains("event 1"),
                "{error}"
            );
            std::ops::ControlFlow::Break(())
        })
        .unwrap();
    store.save_snapshot("a", 2, &[0xC1], None).unwrap();
    let error = store
        .load_snapshot("a")
        .unwrap()
        .unwrap()
        .decode::<u64>()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("snapshot of stream \"a\" at version 2"),
        "{error}"
    );
});

for_both_stores!(
    subscriptions_switch_from_history_to_live,
    |store: &Store| {
        store
            .append(
                "a",
                ExpectedVersion::Any,
                &[EventData::new("E", vec![0]), EventData::new("F", vec![1])],
            )
            .unwrap();
        let mut all = store.subscribe_all(0, Filter::default());
        let mut only_f = store.subscribe_all(0, Filter::default().event_type("F"));
        let mut stream = store.subscribe_stream("a", 2, Filter::default());
        let wait = Duration::from_secs(5);
        assert_eq!(all.next_timeout(wait).unwrap().unwrap().position, 0);
        assert_eq!(all.next_timeout(wait).unwrap().unwrap().position, 1);
        assert!(
            all.next_timeout(Duration::from_millis(5))
                .unwrap()
                .is_none()
        );
        store
            .append("b", ExpectedVersion::Any, &[EventData::new("F", vec![2])])
            .unwrap();
        assert_eq!(all.next_timeout(wait).unwrap().unwrap().position, 2);
        assert_eq!(all.checkpoint(), 3);
        assert_eq!(only_f.next_timeout(wait).unwrap().unwrap().position, 1);
        assert_eq!(only_f.next_timeout(wait).unwrap().unwrap().position, 2);
        assert_eq!(stream.next_timeout(wait).unwrap().unwrap().version, 2);
        assert!(
            stream
                .next_timeout(Duration::from_millis(5))
                .unwrap()
                .is_none(),
            "stream b is not stream a"
        );
    }
);

for_both_stores!(
    given_timestamps_are_kept_and_never_go_back,
    |store: &Store| {
        let imported = [
            EventData::new("E", vec![1]).with_timestamp_ns(1_000),
            EventData::new("E", vec![2]).with_timestamp_ns(1_000),
            EventData::new("E", vec![3]).with_timestamp_ns(2_000),
        ];
        store
            .append("old", ExpectedVersion::NoStream, &imported)
            .unwrap();
        let read: Vec<u64> = store
            .read_stream("old", 1, 10)
            .unwrap()
            .iter()
            .map(|e| e.timestamp_ns)
            .collect();
        assert_eq!(read, vec![1_000, 1_000, 2_000]);
        let earlier = [EventData::new("E", vec![4]).with_timestamp_ns(1_999)];
        assert!(matches!(
            store.append("old", ExpectedVersion::Any, &earlier),
            Err(Error::InvalidArgument(_))
        ));
        let backwards = [
            EventData::new("E", vec![4]).with_timestamp_ns(3_000),
            EventData::new("E", vec![5]).with_timestamp_ns(2_500),
        ];
        assert!(matches!(
            store.append("old", ExpectedVersion::Any, &backwards),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(
            store.stream_version("old"),
            3,
            "refused batches write nothing"
        );
        store
            .append("new", ExpectedVersion::Any, &one(b"now"))
            .unwrap();
        let now = store.read_stream("new", 1, 1).unwrap()[0].timestamp_ns;
        assert!(now > 2_000);
        assert!(matches!(
            store.append(
                "old",
                ExpectedVersion::Any,
                &[EventData::new("E", vec![]).with_timestamp_ns(2_000)]
            ),
            Err(Error::InvalidArgument(_))
        ));
    }
);

for_both_stores!(borrowed_scans_match_owned_reads, |store: &Store| {
    use std::ops::ControlFlow;
    for i in 0..700u64 {
        store
            .append(
                &format!("s-{}", i % 3),
                ExpectedVersion::Any,
                &[EventData::new("T", vec![(i % 256) as u8; 150]).with_correlation_id("c")],
            )
            .unwrap();
    }
    for from in [0u64, 1, 16, 333, 699, 700] {
        let mut scanned = Vec::new();
        store
            .scan_all(from, |event| {
                scanned.push(event.to_recorded());
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(
            scanned,
            store.read_all(from, usize::MAX).unwrap(),
            "from {from}"
        );
    }
    let mut stream = Vec::new();
    store
        .scan_stream("s-1", 5, |event| {
            stream.push(event.to_recorded());
            if stream.len() == 10 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(stream, store.read_stream("s-1", 5, 10).unwrap());
    // The lock is not held during the callback: appending from it works, and
    // what it appends is not visited.
    let mut visited = 0;
    store
        .scan_all(0, |event| {
            visited += 1;
            if event.position < 3 {
                store
                    .append(
                        "inside",
                        ExpectedVersion::Any,
                        &[EventData::new("T", vec![])],
                    )
                    .unwrap();
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(visited, 700);
    assert_eq!(store.stream_version("inside"), 3);
});

// `Store::read`, the lazy iterator, against the `Vec` reads it is built on:
// every direction, start and limit, across page boundaries
// (`READ_PAGE_EVENTS`) and segment rolls.
for_both_stores!(read_iterator_agrees_with_the_page_reads, |store: &Store| {
    use annals::{READ_PAGE_EVENTS, ReadRequest, StartAt};
    let per_stream = READ_PAGE_EVENTS as u64 * 2 + 7;
    for i in 0..per_stream {
        for stream in ["a", "b"] {
            store
                .append(stream, ExpectedVersion::Any, &one(&i.to_le_bytes()))
                .unwrap();
        }
    }
    let total = per_stream * 2;
    let collect = |request: ReadRequest| -> Vec<(u64, u64)> {
        store
            .read(request)
            .map(|event| event.map(|e| (e.position, e.version)))
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let pairs = |events: Vec<annals::RecordedEvent>| -> Vec<(u64, u64)> {
        events.iter().map(|e| (e.position, e.version)).collect()
    };
    let everything = usize::MAX;
    // The whole log, both ways.
    assert_eq!(
        collect(ReadRequest::all()),
        pairs(store.read_all(0, everything).unwrap())
    );
    assert_eq!(collect(ReadRequest::all()).len() as u64, total);
    assert_eq!(
        collect(ReadRequest::all().backward()),
        pairs(store.read_all_backward(u64::MAX, everything).unwrap())
    );
    // A stream, both ways, from a version, with a limit.
    assert_eq!(
        collect(ReadRequest::stream("a")),
        pairs(store.read_stream("a", 1, everything).unwrap())
    );
    assert_eq!(
        collect(ReadRequest::stream("b").backward().from(300).max_count(290)),
        pairs(store.read_stream_backward("b", 300, 290).unwrap())
    );
    assert_eq!(
        collect(ReadRequest::stream("b").start_at(StartAt::End).backward())
            .last()
            .map(|&(_, version)| version),
        Some(1)
    );
    assert_eq!(
        collect(ReadRequest::all().from(total - 3)),
        pairs(store.read_all(total - 3, 3).unwrap())
    );
    assert_eq!(collect(ReadRequest::all().max_count(0)), vec![]);
    assert_eq!(collect(ReadRequest::stream("missing")), vec![]);
    assert_eq!(
        collect(ReadRequest::stream("a").from(per_stream + 1)),
        vec![]
    );
    // Lazy: the first event comes without reading the rest.
    let mut read = store.read(ReadRequest::all());
    assert_eq!(read.next().unwrap().unwrap().position, 0);
    store
        .append("c", ExpectedVersion::Any, &one(b"later"))
        .unwrap();
    assert_eq!(
        read.count() as u64,
        total,
        "the rest, and the event appended meanwhile"
    );
});

for_both_stores!(borrowed_appends_equal_owned_ones, |store: &Store| {
    // The same events, owned and borrowed, into two streams: everything but
    // the stream, position and server-side values is equal; the borrowed
    // append checks versions, limits and command ids the same way.
    let id = Uuid::from_u128(7);
    let owned = [
        EventData::new("Opened", b"{\"n\": 1}".to_vec())
            .with_id(id)
            .with_metadata(b"meta".to_vec())
            .with_correlation_id("req-1")
            .with_causation_id("cmd-1"),
        EventData::encode_with::<Json, _>("Noted", &serde_json::json!({"x": 2})).unwrap(),
    ];
    let borrowed: Vec<annals::EventDataRef<'_>> = owned
        .iter()
        .map(|e| annals::EventDataRef::from(e).with_id(Uuid::from_u128(8)))
        .collect();
    let a = store
        .append("owned", ExpectedVersion::NoStream, &owned)
        .unwrap();
    let b = store
        .append_ref("borrowed", ExpectedVersion::NoStream, &borrowed)
        .unwrap();
    assert_eq!((b.first_version, b.last_version), (1, 2));
    assert_eq!(b.first_position, a.last_position + 1);
    let read_a = store.read_stream("owned", 1, 10).unwrap();
    let read_b = store.read_stream("borrowed", 1, 10).unwrap();
    for (x, y) in read_a.iter().zip(&read_b) {
        assert_eq!(x.event_type, y.event_type);
        assert_eq!(x.data, y.data);
        assert_eq!(x.metadata, y.metadata);
        assert_eq!(x.correlation_id, y.correlation_id);
        assert_eq!(x.causation_id, y.causation_id);
        assert_eq!(x.content_type, y.content_type);
    }
    assert_eq!(read_b[0].id, Uuid::from_u128(8));
    assert!(matches!(
        store.append_ref("borrowed", ExpectedVersion::Exact(1), &borrowed),
        Err(Error::WrongExpectedVersion { actual: 2, .. })
    ));
    assert!(matches!(
        store.append_ref("borrowed", ExpectedVersion::Any, &[]),
        Err(Error::InvalidArgument(_))
    ));
    let once = store
        .append_ref_idempotent("c-1", "borrowed", ExpectedVersion::Exact(2), &borrowed[..1])
        .unwrap();
    let again = store
        .append_ref_idempotent("c-1", "borrowed", ExpectedVersion::Exact(2), &borrowed[..1])
        .unwrap();
    assert_eq!(once, again);
    assert_eq!(store.stream_version("borrowed"), 3);
});
