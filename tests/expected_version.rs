//! The expected-version matrix: every kind against a missing and an existing stream.

use annals::{Error, EventData, ExpectedVersion, Options, Store};

fn one() -> [EventData; 1] {
    [EventData::new("E", b"x".to_vec())]
}

#[test]
fn expected_version_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        Options::default().durability(annals::Durability::None),
    )
    .unwrap();
    store
        .append(
            "existing",
            ExpectedVersion::Any,
            &[
                EventData::new("E", b"1".to_vec()),
                EventData::new("E", b"2".to_vec()),
            ],
        )
        .unwrap();

    // (expected, against an existing stream at version 2, against a missing stream)
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
        for (stream_exists, should_succeed) in [(true, ok_existing), (false, ok_missing)] {
            let stream = if stream_exists {
                format!("existing-{i}-{stream_exists}")
            } else {
                format!("missing-{i}")
            };
            if stream_exists {
                store
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        &[
                            EventData::new("E", b"1".to_vec()),
                            EventData::new("E", b"2".to_vec()),
                        ],
                    )
                    .unwrap();
            }
            let actual = store.stream_version(&stream);
            match store.append(&stream, expected, &one()) {
                Ok(result) => {
                    assert!(
                        should_succeed,
                        "{expected:?} on {stream} (version {actual}) should conflict"
                    );
                    assert_eq!(result.first_version, actual + 1);
                    assert_eq!(result.last_version, actual + 1);
                    assert_eq!(store.stream_version(&stream), actual + 1);
                }
                Err(Error::WrongExpectedVersion {
                    stream: s,
                    expected: e,
                    actual: a,
                }) => {
                    assert!(
                        !should_succeed,
                        "{expected:?} on {stream} (version {actual}) should succeed"
                    );
                    assert_eq!((s.as_str(), e, a), (stream.as_str(), expected, actual));
                    assert_eq!(
                        store.stream_version(&stream),
                        actual,
                        "a conflict writes nothing"
                    );
                }
                Err(other) => panic!("unexpected error {other}"),
            }
        }
    }
}

#[test]
fn conflict_message_names_stream_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store
        .append("order-7", ExpectedVersion::NoStream, &one())
        .unwrap();
    let error = store
        .append("order-7", ExpectedVersion::Exact(5), &one())
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("order-7")
            && message.contains("version 5")
            && message.contains("version 1"),
        "{message}"
    );
}

#[test]
fn versions_start_at_one_and_positions_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.stream_version("a"), 0);
    let first = store
        .append("a", ExpectedVersion::NoStream, &one())
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
}
