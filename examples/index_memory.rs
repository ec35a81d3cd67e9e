//! Measures the memory the in-memory index costs: bytes per event (streams of
//! 10 and of 1,000 events) and bytes per command id.
//!
//! ```sh
//! cargo run --release --example index_memory
//! ```
//!
//! It uses `Store::index_heap_bytes` (an estimate from the index's own
//! capacities) on in-memory stores, so no disk I/O is measured.

use annals::{Durability, EventData, ExpectedVersion, Options, Store};

const EVENTS: u64 = 200_000;

fn options() -> Options {
    Options::default().durability(Durability::None)
}

/// Index bytes per event for `EVENTS` events in streams of `per_stream`,
/// appended in batches of 10 (each batch with its own correlation id when
/// `correlated`), reopened so the index is rebuilt (as on open).
fn per_event(per_stream: u64, correlated: bool) -> f64 {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path(), options()).expect("open");
    for batch in 0..EVENTS / 10 {
        let stream = format!("stream-{}", batch * 10 / per_stream);
        let events: Vec<EventData> = (0..10)
            .map(|_| {
                let event = EventData::new("E", vec![0u8; 16]);
                if correlated {
                    event.with_correlation_id(format!("request-{batch}"))
                } else {
                    event
                }
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .expect("append");
    }
    store.close().expect("close");
    let store = Store::open(dir.path(), options()).expect("reopen");
    store.index_heap_bytes() as f64 / EVENTS as f64
}

/// Extra index bytes per command id: the same appends with and without a
/// command id (of 36 characters, a UUID's text) on each.
fn per_command_id() -> f64 {
    let measure = |with_ids: bool| {
        let store = Store::in_memory(options()).expect("in-memory store");
        for i in 0..EVENTS {
            let events = [EventData::new("E", vec![0u8; 16])];
            let stream = format!("stream-{}", i % 1000);
            if with_ids {
                let id = annals::Uuid::now_v7().to_string();
                store
                    .append_idempotent(&id, &stream, ExpectedVersion::Any, &events)
                    .expect("append");
            } else {
                store
                    .append(&stream, ExpectedVersion::Any, &events)
                    .expect("append");
            }
        }
        store.index_heap_bytes() as f64
    };
    (measure(true) - measure(false)) / EVENTS as f64
}

fn main() {
    println!(
        "index bytes per event, streams of 10 events:    {:.1}",
        per_event(10, false)
    );
    println!(
        "index bytes per event, streams of 1,000 events: {:.1}",
        per_event(1000, false)
    );
    println!(
        "index bytes per event, streams of 1,000 events, one correlation id per batch of 10: {:.1}",
        per_event(1000, true)
    );
    println!(
        "index bytes per command id (36-character ids):  {:.1}",
        per_command_id()
    );
}
