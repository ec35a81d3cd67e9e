//! Migrating from postgres-es, end to end: an export of postgres-es's
//! `events` table (JSON lines) imported with
//! `annals::cqrs::import_postgres_es_events`, then the application carrying
//! on over annals.
#![cfg(feature = "cqrs-es")]

mod cqrs_domain;

use std::sync::Arc;

use annals::cqrs::{AnnalsEventRepository, PostgresEsImport, import_postgres_es_events, open_cqrs};
use annals::{Limits, Options, Store};
use cqrs_domain::*;
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, QueryReplay, SerializedEvent,
};
use cqrs_es::{DomainEvent, EventStore};
use serde_json::{Value, json};

/// The JSON line `psql -At -c "SELECT to_jsonb(e) FROM (SELECT … FROM events) e"`
/// writes for a row of postgres-es's `events` table.
fn row(event: &SerializedEvent) -> String {
    json!({
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "payload": event.payload,
        "metadata": event.metadata,
    })
    .to_string()
}

fn profile_row(id: &str, sequence: usize, name: &str) -> SerializedEvent {
    let event = ProfileEvent::NameSet { name: name.into() };
    SerializedEvent {
        aggregate_id: id.into(),
        sequence,
        aggregate_type: "profile".into(),
        event_type: event.event_type(),
        event_version: event.event_version(),
        payload: serde_json::to_value(&event).unwrap(),
        metadata: json!({}),
    }
}

/// A postgres-es history: two accounts and a profile, interleaved, with
/// metadata as cqrs-es writes it.
fn history() -> Vec<SerializedEvent> {
    let mut ada_opened = serialized("ada", 1, &opened("Ada"));
    ada_opened.metadata = json!({"user": "ada", "time": "2024-05-01T10:00:00Z"});
    vec![
        ada_opened,
        serialized("bob", 1, &opened("Bob")),
        serialized("ada", 2, &BankEvent::Deposited { amount: 100 }),
        serialized("ada", 3, &BankEvent::Withdrew { amount: 30 }),
        profile_row("ada", 1, "Ada"),
        serialized("bob", 2, &BankEvent::Deposited { amount: 5 }),
    ]
}

fn export(events: &[SerializedEvent]) -> String {
    events.iter().map(|e| row(e) + "\n").collect()
}

/// The switch as a user makes it: export, import, open the framework on
/// the store; the accounts carry on from their imported events, and
/// replays, loads and metadata are what postgres-es had.
#[tokio::test]
async fn an_imported_postgres_es_history_carries_on_under_annals() {
    let dir = tempfile::tempdir().unwrap();
    let history = history();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        let imported =
            import_postgres_es_events(&store, format!("\n{}\n", export(&history)).as_bytes())
                .unwrap();
        assert_eq!(
            imported,
            PostgresEsImport {
                lines: 8,
                events_appended: 6,
                events_already_present: 0,
                // ada 2-3 in one append.
                appends: 5,
            }
        );
        store.close().unwrap();
    }

    let repository = AnnalsEventRepository::open(dir.path(), Options::default())
        .await
        .unwrap();
    // The events load exactly as postgres-es stored them.
    let ada: Vec<SerializedEvent> = history
        .iter()
        .filter(|e| e.aggregate_type == "account" && e.aggregate_id == "ada")
        .cloned()
        .collect();
    assert_eq!(
        repository.get_events::<BankAccount>("ada").await.unwrap(),
        ada
    );
    // Replays follow the order of the export.
    let (recorder, seen) = Recorder::<BankAccount>::new();
    QueryReplay::new(repository.clone(), recorder)
        .replay_all()
        .await
        .unwrap();
    let order: Vec<(String, usize)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(id, s, _)| (id.clone(), *s))
        .collect();
    let expected = [("ada", 1), ("bob", 1), ("ada", 2), ("ada", 3), ("bob", 2)];
    assert_eq!(order, expected.map(|(id, s)| (id.to_string(), s)));
    drop(repository);

    // The application, switched: commands go on from the imported state.
    let cqrs = open_cqrs::<BankAccount>(
        dir.path(),
        Options::default(),
        vec![],
        BankServices::default(),
    )
    .await
    .unwrap();
    cqrs.execute("ada", BankCommand::Withdraw { amount: 70 })
        .await
        .unwrap();
    let overdrawn = cqrs
        .execute("ada", BankCommand::Withdraw { amount: 1 })
        .await;
    assert!(overdrawn.is_err());
    cqrs.execute("bob", deposit(1)).await.unwrap();
    drop(cqrs);
    let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
    let events = PersistedEventStore::<_, BankAccount>::new_event_store(
        AnnalsEventRepository::new(Arc::clone(&store)),
    );
    let ada = events.load_aggregate("ada").await.unwrap();
    assert_eq!((ada.aggregate.balance, ada.current_sequence), (0, 4));
    let loaded = events.load_events("ada").await.unwrap();
    assert_eq!(loaded[0].metadata["user"], "ada");
    assert_eq!(store.stream_version("account-bob"), 3);
    assert_eq!(store.stream_version("profile-ada"), 1);
}

/// An import that stopped half-way is run again: what is there is
/// skipped, the rest imported. A store holding another history for an
/// aggregate is refused, naming the line, and left as it was.
#[test]
fn an_interrupted_import_resumes_and_another_history_is_refused() {
    let store = Store::in_memory(Options::default()).unwrap();
    let history = history();
    import_postgres_es_events(&store, export(&history[..3]).as_bytes()).unwrap();
    let resumed = import_postgres_es_events(&store, export(&history).as_bytes()).unwrap();
    assert_eq!(
        (resumed.events_already_present, resumed.events_appended),
        (3, 3)
    );
    assert_eq!(store.next_position(), 6);

    let mut other = history.clone();
    other[2].payload = json!({"Deposited": {"amount": 999}});
    let error = import_postgres_es_events(&store, export(&other).as_bytes()).unwrap_err();
    assert_eq!(error.line, 3);
    assert_eq!(error.imported.events_already_present, 2);
    assert!(
        error.to_string().contains("different event at version 2"),
        "{error}"
    );
    assert_eq!(store.next_position(), 6);
}

/// Each kind of bad line stops the import with an error naming it; the
/// lines before it are imported (so that a rerun after fixing the export
/// goes on from there).
#[test]
fn a_bad_line_stops_the_import_naming_it() {
    let good = row(&serialized("ada", 1, &opened("Ada")));
    let next = row(&serialized("ada", 2, &BankEvent::Deposited { amount: 1 }));
    let with = |key: &str, value: Value| {
        let mut row: Value = serde_json::from_str(&next).unwrap();
        row[key] = value;
        row.to_string()
    };
    let mut missing: Value = serde_json::from_str(&next).unwrap();
    missing.as_object_mut().unwrap().remove("metadata");
    let cases = [
        ("not JSON", "{\"aggregate_type\":".to_string(), "not a row"),
        (
            "a misspelt column",
            with("sequnce", json!(2)),
            "unknown field",
        ),
        ("a missing column", missing.to_string(), "missing field"),
        ("sequence 0", with("sequence", json!(0)), "sequence 0"),
        (
            "a negative sequence",
            with("sequence", json!(-2)),
            "not a row",
        ),
        (
            "a type with '-'",
            with("aggregate_type", json!("bank-account")),
            "\"bank-account\"",
        ),
        (
            "a gap",
            with("sequence", json!(3)),
            "wrong expected version",
        ),
    ];
    for (case, bad, says) in cases {
        let store = Store::in_memory(Options::default()).unwrap();
        let input = format!(
            "{good}\n{bad}\n{}\n",
            row(&serialized("bob", 1, &opened("Bob")))
        );
        let error = import_postgres_es_events(&store, input.as_bytes()).unwrap_err();
        assert_eq!(error.line, 2, "{case}: {error}");
        assert!(error.to_string().contains(says), "{case}: {error}");
        assert_eq!(error.imported.events_appended, 1, "{case}");
        assert_eq!(store.stream_version("account-ada"), 1, "{case}");
        assert_eq!(store.stream_version("account-bob"), 0, "{case}");
    }
}

/// Consecutive rows of one aggregate are split into appends of at most
/// `Limits::max_batch_events`.
#[test]
fn long_runs_of_one_aggregate_are_split_into_bounded_appends() {
    let limits = Limits {
        max_batch_events: 2,
        ..Limits::default()
    };
    let store = Store::in_memory(Options::default().limits(limits)).unwrap();
    let rows: Vec<SerializedEvent> = (1..=5)
        .map(|s| serialized("ada", s, &BankEvent::Deposited { amount: 1 }))
        .collect();
    let imported = import_postgres_es_events(&store, export(&rows).as_bytes()).unwrap();
    assert_eq!((imported.appends, imported.events_appended), (3, 5));
    assert_eq!(store.stream_version("account-ada"), 5);
}
