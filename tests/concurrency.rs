//! Many threads appending at once.

use std::sync::{Arc, Barrier};

use annals::{Durability, Error, EventData, ExpectedVersion, Options, Store};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn store_is_send_and_sync() {
    assert_send_sync::<Store>();
}

/// 8 threads race to append to one stream at the same expected version, many
/// rounds: exactly one wins each round and the stream has no gap or duplicate.
#[test]
fn exactly_one_racer_wins_each_round() {
    const THREADS: usize = 8;
    const ROUNDS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::None);
    let store = Arc::new(Store::open(dir.path(), options).unwrap());
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut wins = Vec::new();
                for round in 0..ROUNDS {
                    barrier.wait();
                    let data = format!("round {round} thread {thread}").into_bytes();
                    match store.append(
                        "contested",
                        ExpectedVersion::Exact(round),
                        &[EventData::new("Won", data)],
                    ) {
                        Ok(result) => {
                            assert_eq!(result.first_version, round + 1);
                            wins.push(round);
                        }
                        Err(Error::WrongExpectedVersion { actual, .. }) => {
                            assert_eq!(actual, round + 1)
                        }
                        Err(other) => panic!("{other}"),
                    }
                    barrier.wait();
                }
                wins
            })
        })
        .collect();
    let mut wins: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    wins.sort();
    assert_eq!(
        wins,
        (0..ROUNDS).collect::<Vec<_>>(),
        "one winner per round"
    );
    let events = store.read_stream("contested", 1, usize::MAX).unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=ROUNDS).collect::<Vec<_>>());
    for (round, event) in events.iter().enumerate() {
        assert!(String::from_utf8_lossy(&event.data).starts_with(&format!("round {round} ")));
    }
}

/// Concurrent appenders under Durability::Always share syncs and all succeed,
/// while readers read.
#[test]
fn concurrent_durable_appends_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size_bytes(256 * 1024)
        .durability(Durability::Always);
    let store = Arc::new(Store::open(dir.path(), options).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|thread| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let stream = format!("w-{thread}");
                for i in 0..50u64 {
                    let r = store
                        .append(
                            &stream,
                            ExpectedVersion::Exact(i),
                            &[EventData::new("E", vec![thread as u8; 100])],
                        )
                        .unwrap();
                    assert_eq!(r.last_version, i + 1);
                }
            })
        })
        .collect();
    let reader = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for _ in 0..50 {
                let all = store.read_all(0, usize::MAX).unwrap();
                for (i, e) in all.iter().enumerate() {
                    assert_eq!(e.position, i as u64);
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    assert_eq!(store.next_position(), 200);
}
