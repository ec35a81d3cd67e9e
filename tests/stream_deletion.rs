//! Stream truncation and deletion (issue 14, item 3), KurrentDB's
//! semantics: through the library against a file store and an in-memory
//! store alike, across reopen (writable and read-only) and for a follower;
//! the command line in `tests/cli_stream_deletion.rs`.

#[macro_use]
mod common;

use std::ops::ControlFlow;
use std::time::Duration;

use annals::system_streams::{METADATA_EVENT_TYPE, metadata_stream_of};
use annals::{
    Error, EventData, EventDataRef, ExpectedVersion, Filter, Options, ReadRequest, Store,
};

fn options() -> Options {
    common::small_segments()
}

/// Appends events 1..=count to `stream` (data: the version as one byte).
fn append_n(store: &Store, stream: &str, count: u8) {
    let events: Vec<EventData> = (1..=count).map(|i| EventData::new("E", vec![i])).collect();
    store
        .append(stream, ExpectedVersion::NoStream, &events)
        .unwrap();
}

fn versions(events: &[annals::RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

/// Versions of `stream` through every stream read there is.
fn every_stream_read(store: &Store, stream: &str) -> [Vec<u64>; 5] {
    let mut scanned = Vec::new();
    store
        .scan_stream(stream, 1, |e| {
            scanned.push(e.version);
            ControlFlow::Continue(())
        })
        .unwrap();
    let forward: Vec<u64> = store
        .read(ReadRequest::stream(stream))
        .map(|e| e.unwrap().version)
        .collect();
    let backward: Vec<u64> = store
        .read(ReadRequest::stream(stream).backward())
        .map(|e| e.unwrap().version)
        .collect();
    [
        versions(&store.read_stream(stream, 1, 100).unwrap()),
        versions(&store.read_stream_backward(stream, u64::MAX, 100).unwrap()),
        scanned,
        forward,
        backward,
    ]
}

/// That every stream read of `stream` answers `StreamDeleted` naming it.
fn assert_every_read_deleted(store: &Store, stream: &str) {
    let deleted = |result: Result<(), Error>, what: &str| match result {
        Err(Error::StreamDeleted { stream: named }) => assert_eq!(named, stream, "{what}"),
        other => panic!("{what}: expected StreamDeleted, got {other:?}"),
    };
    deleted(store.read_stream(stream, 1, 10).map(drop), "read_stream");
    deleted(
        store.read_stream_backward(stream, u64::MAX, 10).map(drop),
        "read_stream_backward",
    );
    deleted(
        store.scan_stream(stream, 1, |_| ControlFlow::Continue(())),
        "scan_stream",
    );
    for request in [
        ReadRequest::stream(stream),
        ReadRequest::stream(stream).backward(),
    ] {
        let first = store.read(request).next().expect("an error, not an end");
        deleted(first.map(drop), "read(ReadRequest::stream)");
    }
    let mut subscription = store.subscribe_stream(stream, 1, Filter::default());
    deleted(
        subscription
            .next_timeout(Duration::from_millis(10))
            .map(drop),
        "subscribe_stream",
    );
}

/// The metadata events of `stream`, as (type, decoded map) in log order.
fn metadata_events(store: &Store, stream: &str) -> Vec<(String, serde_json::Value)> {
    let metadata_stream = metadata_stream_of(stream);
    store
        .read_all(0, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|e| e.stream == metadata_stream)
        .map(|e| {
            let map: serde_json::Value = rmp_serde::from_slice(&e.data).unwrap();
            (e.event_type, map)
        })
        .collect()
}

for_both_stores!(
    truncation_hides_what_is_before_and_keeps_the_version,
    |store: &Store| {
        append_n(store, "cart", 6);
        let written = store.truncate_stream("cart", 4).unwrap();
        assert_eq!((written.first_version, written.last_version), (1, 1));
        assert_eq!(written.first_position, 6, "after the stream's six events");
        for read in every_stream_read(store, "cart") {
            let mut read = read;
            read.sort_unstable();
            assert_eq!(read, [4, 5, 6]);
        }
        // Reads from inside or after the kept range are as before.
        assert_eq!(
            versions(&store.read_stream("cart", 5, 100).unwrap()),
            [5, 6]
        );
        assert_eq!(
            versions(&store.read_stream_backward("cart", 5, 100).unwrap()),
            [5, 4],
            "a backward read stops at the truncation point"
        );
        assert!(
            store
                .read_stream_backward("cart", 3, 100)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.stream_version("cart"), 6);
        // Appends go on at the unchanged version.
        store
            .append(
                "cart",
                ExpectedVersion::Exact(6),
                &[EventData::new("E", vec![7])],
            )
            .unwrap();
        assert_eq!(
            versions(&store.read_stream("cart", 1, 100).unwrap()),
            [4, 5, 6, 7]
        );
        // The whole log still holds everything, and the metadata event.
        let all = store.read_all(0, usize::MAX).unwrap();
        assert_eq!(all.iter().filter(|e| e.stream == "cart").count(), 7);
        let mut scanned = 0;
        store
            .scan_all(0, |_| {
                scanned += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(scanned, 8);
        assert_eq!(
            metadata_events(store, "cart"),
            [(
                METADATA_EVENT_TYPE.to_string(),
                serde_json::json!({ "truncate_before": 4, "deleted": false })
            )]
        );
        let mut everything = store.subscribe_all(0, Filter::default());
        let mut seen = 0;
        while everything
            .next_timeout(Duration::from_millis(10))
            .unwrap()
            .is_some()
        {
            seen += 1;
        }
        assert_eq!(seen, 8, "an all-stream subscription sees every event");
        // A stream subscription starts at the truncation point.
        let mut subscription = store.subscribe_stream("cart", 1, Filter::default());
        let first = subscription
            .next_timeout(Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert_eq!(first.version, 4);
        // Moving the point forward, to the end: the stream reads empty.
        store.truncate_stream("cart", 8).unwrap();
        assert!(store.read_stream("cart", 1, 100).unwrap().is_empty());
        assert_eq!(store.stream_version("cart"), 7);
        // The same point again is allowed (nothing is undone).
        store.truncate_stream("cart", 8).unwrap();
        assert_eq!(metadata_events(store, "cart").len(), 3);
    }
);

for_both_stores!(
    bad_truncations_are_refused_and_write_nothing,
    |store: &Store| {
        append_n(store, "cart", 3);
        store.truncate_stream("cart", 2).unwrap();
        let before = store.next_position();
        let invalid = |result: Result<annals::AppendResult, Error>, needle: &str| match result {
            Err(Error::InvalidArgument(message)) => {
                assert!(message.contains(needle), "{message:?} lacks {needle:?}")
            }
            other => panic!("expected InvalidArgument ({needle}), got {other:?}"),
        };
        invalid(store.truncate_stream("nothing", 1), "does not exist");
        invalid(store.truncate_stream("cart", 5), "from 1 to 4");
        invalid(store.truncate_stream("cart", 0), "from 1 to 4");
        invalid(store.truncate_stream("cart", 1), "never undone");
        assert!(matches!(
            store.truncate_stream("$$cart", 1),
            Err(Error::ReservedStream { .. })
        ));
        assert_eq!(store.next_position(), before, "nothing was written");
        assert_eq!(versions(&store.read_stream("cart", 1, 10).unwrap()), [2, 3]);
    }
);

for_both_stores!(
    deletion_refuses_reads_and_appends_for_good,
    |store: &Store| {
        append_n(store, "cart", 3);
        append_n(store, "other", 2);
        store.truncate_stream("cart", 2).unwrap();
        let before = store.next_position();
        // A conflict writes nothing.
        match store.delete_stream("cart", ExpectedVersion::Exact(2)) {
            Err(Error::WrongExpectedVersion { stream, actual, .. }) => {
                assert_eq!((stream.as_str(), actual), ("cart", 3));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(matches!(
            store.delete_stream("cart", ExpectedVersion::NoStream),
            Err(Error::WrongExpectedVersion { .. })
        ));
        assert!(matches!(
            store.delete_stream("nothing", ExpectedVersion::Any),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(store.next_position(), before);
        assert_eq!(store.read_stream("cart", 1, 10).unwrap().len(), 2);

        store
            .delete_stream("cart", ExpectedVersion::Exact(3))
            .unwrap();
        assert_every_read_deleted(store, "cart");
        for expected in [
            ExpectedVersion::Any,
            ExpectedVersion::NoStream,
            ExpectedVersion::StreamExists,
            ExpectedVersion::Exact(3),
        ] {
            assert!(
                matches!(
                    store.append("cart", expected, &[EventData::new("E", vec![9])]),
                    Err(Error::StreamDeleted { .. })
                ),
                "append at {expected:?}"
            );
        }
        assert!(matches!(
            store.append_idempotent(
                "cmd",
                "cart",
                ExpectedVersion::Any,
                &[EventData::new("E", vec![])]
            ),
            Err(Error::StreamDeleted { .. })
        ));
        assert!(matches!(
            store.delete_stream("cart", ExpectedVersion::Any),
            Err(Error::StreamDeleted { .. })
        ));
        assert!(matches!(
            store.truncate_stream("cart", 3),
            Err(Error::StreamDeleted { .. })
        ));
        assert_eq!(
            store.stream_version("cart"),
            3,
            "a deleted stream keeps its version"
        );
        // The tombstone keeps the truncation point: the whole metadata.
        assert_eq!(
            metadata_events(store, "cart").last().unwrap().1,
            serde_json::json!({ "truncate_before": 2, "deleted": true })
        );
        // Other streams are untouched; the log still holds the deleted events.
        assert_eq!(store.read_stream("other", 1, 10).unwrap().len(), 2);
        let all = store.read_all(0, usize::MAX).unwrap();
        assert_eq!(all.iter().filter(|e| e.stream == "cart").count(), 3);
        assert_eq!(all.len() as u64, store.next_position());
    }
);

for_both_stores!(
    a_live_stream_subscription_ends_with_the_deletion,
    |store: &Store| {
        append_n(store, "cart", 1);
        let mut subscription = store.subscribe_stream("cart", 1, Filter::default());
        assert_eq!(
            subscription
                .next_timeout(Duration::from_secs(1))
                .unwrap()
                .unwrap()
                .version,
            1
        );
        assert!(
            subscription
                .next_timeout(Duration::from_millis(5))
                .unwrap()
                .is_none()
        );
        store.delete_stream("cart", ExpectedVersion::Any).unwrap();
        assert!(matches!(
            subscription.next_timeout(Duration::from_secs(1)),
            Err(Error::StreamDeleted { .. })
        ));
    }
);

for_both_stores!(system_stream_names_are_reserved, |store: &Store| {
    let events = [EventData::new(METADATA_EVENT_TYPE, vec![0x80])];
    let borrowed = [EventDataRef::new(METADATA_EVENT_TYPE, &[0x80])];
    for stream in ["$$cart", "$erasures", "$anything"] {
        let results = [
            store.append(stream, ExpectedVersion::Any, &events),
            store.append_ref(stream, ExpectedVersion::Any, &borrowed),
            store.append_idempotent("c", stream, ExpectedVersion::Any, &events),
            store.append_ref_idempotent("c", stream, ExpectedVersion::Any, &borrowed),
        ];
        for result in results {
            match result {
                Err(Error::ReservedStream { stream: named }) => assert_eq!(named, stream),
                other => panic!("{stream}: expected ReservedStream, got {other:?}"),
            }
        }
    }
    assert_eq!(store.next_position(), 0);
    let message = Error::ReservedStream {
        stream: "$x".into(),
    }
    .to_string();
    assert!(message.contains("does not start with '$'"), "{message}");
    // A '$' inside a name is an ordinary character.
    store
        .append("cart$1", ExpectedVersion::Any, &events)
        .unwrap();
});

/// Segments roll many times, so that the metadata events and the streams
/// sit in sealed segments covered by the index checkpoint.
fn a_store_with_history(dir: &std::path::Path) {
    let store = Store::open(dir, options()).unwrap();
    common::fill(&store, 300, 5, 7, 100);
    append_n(&store, "cart", 5);
    append_n(&store, "gone", 2);
    store.truncate_stream("cart", 3).unwrap();
    store
        .delete_stream("gone", ExpectedVersion::Exact(2))
        .unwrap();
    common::fill(&store, 300, 5, 7, 100);
    assert!(common::segment_files(dir).len() > 3);
    store.close().unwrap();
}

fn assert_history_rules(store: &Store) {
    assert_eq!(
        versions(&store.read_stream("cart", 1, 10).unwrap()),
        [3, 4, 5]
    );
    assert_eq!(store.stream_version("cart"), 5);
    assert_every_read_deleted(store, "gone");
    assert_eq!(store.stream_version("gone"), 2);
    assert_eq!(store.read_stream("s-1", 1, 1).unwrap()[0].version, 1);
}

#[test]
fn truncation_and_deletion_survive_every_kind_of_reopen() {
    let dir = tempfile::tempdir().unwrap();
    a_store_with_history(dir.path());
    for rebuild in [false, true] {
        let store = Store::open(dir.path(), options().rebuild_index(rebuild)).unwrap();
        assert_history_rules(&store);
        assert!(matches!(
            store.append("gone", ExpectedVersion::Any, &[EventData::new("E", vec![])]),
            Err(Error::StreamDeleted { .. })
        ));
        assert!(matches!(
            store.truncate_stream("cart", 2),
            Err(Error::InvalidArgument(_))
        ));
        store.close().unwrap();
    }
    assert_history_rules(&Store::open_read_only(dir.path()).unwrap());
    assert_history_rules(&Store::open_read_only_rebuilding_index(dir.path()).unwrap());
    let read_only = Store::open_read_only(dir.path()).unwrap();
    assert!(matches!(
        read_only.truncate_stream("cart", 4),
        Err(Error::ReadOnly { .. })
    ));
}

#[test]
fn a_follower_sees_a_truncation_and_a_deletion_made_after_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::open(dir.path(), options()).unwrap();
    append_n(&writer, "cart", 4);
    append_n(&writer, "gone", 1);
    writer.flush().unwrap();
    let follower = Store::open_read_only(dir.path()).unwrap();
    let mut subscription = follower.subscribe_stream("gone", 1, Filter::default());
    assert_eq!(
        subscription
            .next_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert_eq!(follower.read_stream("cart", 1, 10).unwrap().len(), 4);

    writer.truncate_stream("cart", 3).unwrap();
    writer.delete_stream("gone", ExpectedVersion::Any).unwrap();
    // Rolls, so that the follower follows into new segments too.
    common::fill(&writer, 200, 5, 3, 100);
    writer.flush().unwrap();
    assert_eq!(
        versions(&follower.read_stream("cart", 1, 10).unwrap()),
        [1, 2, 3, 4]
    );
    assert!(follower.refresh().unwrap() > 0);
    assert_eq!(
        versions(&follower.read_stream("cart", 1, 10).unwrap()),
        [3, 4]
    );
    assert_every_read_deleted(&follower, "gone");
    assert!(matches!(
        subscription.next_timeout(Duration::from_secs(5)),
        Err(Error::StreamDeleted { .. })
    ));
}

#[test]
fn deletion_and_truncation_are_in_the_hash_chain_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    a_store_with_history(dir.path());
    let report = annals::verify(dir.path(), &annals::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

/// The cqrs-es adapter replays the log by the prefix `"{type}-"`: a type
/// may not start with `$`, so no replay can reach a system stream (a
/// metadata stream is `$$<stream>`, which no such prefix matches).
#[cfg(feature = "cqrs-es")]
#[test]
fn cqrs_aggregate_types_cannot_name_system_streams() {
    for aggregate_type in ["$account", "$"] {
        let message = annals::cqrs::stream_prefix(aggregate_type)
            .unwrap_err()
            .to_string();
        assert!(message.contains("must not start with '$'"), "{message}");
        assert!(annals::cqrs::stream_id(aggregate_type, "7").is_err());
    }
    let prefix = annals::cqrs::stream_prefix("account").unwrap();
    assert!(!metadata_stream_of("account-7").starts_with(&prefix));
}

for_both_stores!(
    a_deleted_streams_snapshot_is_gone_with_it,
    |store: &Store| {
        append_n(store, "cart-1", 3);
        store
            .save_snapshot_serde("cart-1", 3, &vec![1u8, 2, 3])
            .unwrap();
        assert!(store.load_snapshot("cart-1").unwrap().is_some());
        store
            .delete_stream("cart-1", ExpectedVersion::Exact(3))
            .unwrap();
        let error = store.load_snapshot("cart-1").unwrap_err();
        assert!(matches!(error, Error::StreamDeleted { .. }), "{error}");
        let error = store
            .save_snapshot_serde("cart-1", 3, &vec![1u8])
            .unwrap_err();
        assert!(matches!(error, Error::StreamDeleted { .. }), "{error}");
    }
);
