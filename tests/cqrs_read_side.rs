//! The read side of the cqrs-es adapter, end to end: the global position
//! every event carries to queries (dispatched live, replayed, decoded from
//! annals' own reads), replays that resume from a position, and views kept
//! in annals' view repository.
#![cfg(feature = "cqrs-es")]

mod cqrs_domain;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use annals::cqrs::{
    AnnalsEventRepository, AnnalsViewRepository, POSITION_METADATA_KEY, annals_cqrs,
    event_envelope, event_position, serialized_event, stream_prefix,
};
use annals::{EventData, ExpectedVersion, Filter, Options};
use async_trait::async_trait;
use cqrs_domain::*;
use cqrs_es::persist::{
    GenericQuery, PersistedEventRepository, PersistedEventStore, PersistenceError, QueryReplay,
    SerializedEvent, ViewContext, ViewRepository,
};
use cqrs_es::{Aggregate, EventEnvelope, EventStore, Query};

/// What a [`Positions`] query saw: aggregate id, sequence, position, and
/// the size of the `dispatch` call that brought it.
type Dispatched = Arc<Mutex<Vec<(String, usize, Option<u64>, usize)>>>;

/// A query that records the position of every event it is given.
#[derive(Default, Clone)]
struct Positions(Dispatched);

#[async_trait]
impl<A: Aggregate> Query<A> for Positions {
    async fn dispatch(&self, aggregate_id: &str, events: &[EventEnvelope<A>]) {
        let mut seen = self.0.lock().unwrap();
        for event in events {
            assert_eq!(event.aggregate_id, aggregate_id);
            seen.push((
                aggregate_id.to_string(),
                event.sequence,
                event_position(event),
                events.len(),
            ));
        }
    }
}

impl Positions {
    /// (aggregate id, sequence, position), without the dispatch sizes.
    fn events(&self) -> Vec<(String, usize, Option<u64>)> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .map(|(id, s, p, _)| (id.clone(), *s, *p))
            .collect()
    }
}

/// The (aggregate id, sequence, position) of every account event in the
/// store, in log order, from annals' own read.
fn stored_account_events(repository: &AnnalsEventRepository) -> Vec<(String, usize, Option<u64>)> {
    repository
        .store()
        .read_all_filtered(0, 1000, &Filter::default().stream_prefix("account-"))
        .unwrap()
        .into_iter()
        .map(|event| {
            let id = event.stream.strip_prefix("account-").unwrap().to_string();
            (id, event.version as usize, Some(event.position))
        })
        .collect()
}

/// Account and profile commands with foreign events in between, so that
/// positions and sequences differ.
async fn busy_store(live: Positions) -> AnnalsEventRepository {
    let repository = AnnalsEventRepository::new(memory_store());
    let accounts = annals_cqrs::<BankAccount>(
        repository.clone(),
        vec![Box::new(live)],
        BankServices::default(),
    )
    .unwrap();
    let profiles = annals_cqrs::<Profile>(repository.clone(), vec![], ()).unwrap();
    let other = |stream: &str| {
        repository
            .store()
            .append(
                stream,
                ExpectedVersion::Any,
                &[EventData::new("Other", vec![1])],
            )
            .unwrap();
    };
    other("audit-1");
    accounts
        .execute_with_metadata(
            "ada",
            BankCommand::Open {
                owner: "Ada".into(),
            },
            HashMap::from([("user".to_string(), "ada".to_string())]),
        )
        .await
        .unwrap();
    profiles
        .execute("ada", ProfileCommand::SetName("Ada".into()))
        .await
        .unwrap();
    accounts
        .execute(
            "bob",
            BankCommand::Open {
                owner: "Bob".into(),
            },
        )
        .await
        .unwrap();
    other("audit-2");
    accounts.execute("ada", deposit(7)).await.unwrap();
    other("accounting-1");
    accounts.execute("bob", deposit(3)).await.unwrap();
    repository
}

// ---------------------------------------------------------------------------
// Positions

/// The position a query is given for an event is the same whether the
/// framework dispatched it live, `QueryReplay` replayed it, or the public
/// decoder decoded it from an annals subscription: the event's position in
/// the log.
#[tokio::test]
async fn live_dispatch_replays_and_the_decoder_give_each_event_its_position() {
    let live = Positions::default();
    let repository = busy_store(live.clone()).await;
    let stored = stored_account_events(&repository);
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[0], ("ada".to_string(), 1, Some(1)));

    assert_eq!(live.events(), stored, "dispatched live");

    let replayed = Positions::default();
    QueryReplay::<_, _, BankAccount>::new(repository.clone(), replayed.clone())
        .replay_all()
        .await
        .unwrap();
    assert_eq!(replayed.events(), stored, "QueryReplay");

    let one = Positions::default();
    QueryReplay::<_, _, BankAccount>::new(repository.clone(), one.clone())
        .replay("bob")
        .await
        .unwrap();
    let bob: Vec<_> = stored.iter().filter(|e| e.0 == "bob").cloned().collect();
    assert_eq!(one.events(), bob, "QueryReplay of one aggregate");

    // annals' own subscription, decoded by the public decoder.
    let filter = Filter::default().stream_prefix(stream_prefix(BankAccount::TYPE).unwrap());
    let mut subscription = repository.store().subscribe_all(0, filter);
    let mut decoded = Vec::new();
    while let Some(event) = subscription
        .next_timeout(Duration::from_millis(50))
        .unwrap()
    {
        let envelope = event_envelope::<BankAccount>(&event, &[]).unwrap();
        decoded.push((
            envelope.aggregate_id.clone(),
            envelope.sequence,
            event_position(&envelope),
        ));
        if decoded.len() == 1 {
            // The metadata of the command is there, beside the position.
            assert_eq!(envelope.metadata["user"], "ada");
            assert_eq!(envelope.metadata[POSITION_METADATA_KEY], "1");
            assert_eq!(envelope.payload, opened("Ada"));
        }
    }
    assert_eq!(decoded, stored, "decoded from a subscription");
}

/// The decoder is exact (`serialized_event`), refuses events of another
/// aggregate type and events this adapter did not write, and applies
/// upcasters.
#[tokio::test]
async fn the_decoder_is_exact_and_refuses_what_is_not_its_aggregate() {
    let repository = AnnalsEventRepository::new(memory_store());
    let mut legacy = serialized("ada", 1, &opened("Ada"));
    legacy.event_version = "0.9".into();
    legacy.payload = serde_json::json!({"Opened": {"holder": "Ada"}});
    repository
        .persist::<BankAccount>(&[legacy.clone()], None)
        .await
        .unwrap();
    let profile = SerializedEvent {
        aggregate_type: "profile".into(),
        ..serialized("ada", 1, &opened("Ada"))
    };
    repository
        .persist::<Profile>(&[profile], None)
        .await
        .unwrap();
    repository
        .store()
        .append(
            "account-raw",
            ExpectedVersion::Any,
            &[EventData::new("Opened", b"{}".to_vec())],
        )
        .unwrap();
    let events = repository.store().read_all(0, 10).unwrap();

    assert_eq!(serialized_event(&events[0]).unwrap(), legacy);
    let without_upcaster = event_envelope::<BankAccount>(&events[0], &[]).unwrap_err();
    assert!(
        without_upcaster.to_string().contains("position 0"),
        "{without_upcaster}"
    );
    let upcaster = cqrs_es::persist::SemanticVersionEventUpcaster::new(
        "Opened",
        "1.0.0",
        Box::new(|mut payload: serde_json::Value| {
            let opened = payload["Opened"].as_object_mut().unwrap();
            let holder = opened.remove("holder").unwrap();
            opened.insert("owner".into(), holder);
            payload
        }),
    );
    let upcasters: Vec<Box<dyn cqrs_es::persist::EventUpcaster>> = vec![Box::new(upcaster)];
    let upcast = event_envelope::<BankAccount>(&events[0], &upcasters).unwrap();
    assert_eq!(upcast.payload, opened("Ada"));

    let other_type = event_envelope::<BankAccount>(&events[1], &[]).unwrap_err();
    assert!(
        other_type.to_string().contains("\"account-\""),
        "{other_type}"
    );
    assert!(
        event_envelope::<Profile>(&events[1], &[]).is_err(),
        "the payload is an account's"
    );
    let foreign = event_envelope::<BankAccount>(&events[2], &[]).unwrap_err();
    assert!(matches!(foreign, annals::Error::Codec { .. }), "{foreign}");

    // An envelope cqrs-es built itself has no position.
    let unpositioned = EventEnvelope::<BankAccount> {
        aggregate_id: "ada".into(),
        sequence: 1,
        payload: opened("Ada"),
        metadata: HashMap::new(),
    };
    assert_eq!(event_position(&unpositioned), None);
}

// ---------------------------------------------------------------------------
// Replays that resume

#[tokio::test]
async fn replay_from_resumes_where_the_last_replay_ended() {
    let repository = busy_store(Positions::default()).await;
    let stored = stored_account_events(&repository);
    let end = repository.store().next_position();

    let first = Positions::default();
    let checkpoint = repository
        .replay_from::<BankAccount, _>(&first, 0, &[])
        .await
        .unwrap();
    assert_eq!(checkpoint, end);
    assert_eq!(first.events(), stored);

    // Nothing new: nothing dispatched, the checkpoint stays.
    let idle = Positions::default();
    let again = repository
        .replay_from::<BankAccount, _>(&idle, checkpoint, &[])
        .await
        .unwrap();
    assert_eq!((again, idle.events().len()), (checkpoint, 0));

    // New events, of this type and others: only this type's new events.
    let cqrs =
        annals_cqrs::<BankAccount>(repository.clone(), vec![], BankServices::default()).unwrap();
    cqrs.execute("ada", deposit(1)).await.unwrap();
    repository
        .store()
        .append(
            "audit-3",
            ExpectedVersion::Any,
            &[EventData::new("Other", vec![1])],
        )
        .unwrap();
    cqrs.execute("bob", deposit(1)).await.unwrap();
    let second = Positions::default();
    let next = repository
        .replay_from::<BankAccount, _>(&second, checkpoint, &[])
        .await
        .unwrap();
    assert_eq!(next, end + 3);
    assert_eq!(
        second.events(),
        [
            ("ada".to_string(), 3, Some(end)),
            ("bob".to_string(), 3, Some(end + 2))
        ]
    );

    // A position past the end of the log is kept, not moved back.
    let ahead = repository
        .replay_from::<BankAccount, _>(&Positions::default(), next + 10, &[])
        .await
        .unwrap();
    assert_eq!(ahead, next + 10);

    // The same resumption through cqrs-es's ReplayStream.
    let mut stream = repository
        .stream_all_events_from::<BankAccount>(checkpoint)
        .await
        .unwrap();
    let mut from_stream = Vec::new();
    while let Some(event) = stream.next::<BankAccount>(&[]).await {
        let event = event.unwrap();
        from_stream.push((
            event.aggregate_id.clone(),
            event.sequence,
            event_position(&event),
        ));
    }
    assert_eq!(from_stream, second.events());
}

/// Consecutive events of one aggregate reach the query in one `dispatch`,
/// as the events of one command do; across aggregates they are not merged.
#[tokio::test]
async fn replay_from_dispatches_runs_of_one_aggregate_together() {
    let repository = AnnalsEventRepository::new(memory_store());
    let three: Vec<SerializedEvent> = (1..=3)
        .map(|sequence| serialized("ada", sequence, &BankEvent::Deposited { amount: 1 }))
        .collect();
    repository
        .persist::<BankAccount>(&three, None)
        .await
        .unwrap();
    repository
        .persist::<BankAccount>(&[serialized("bob", 1, &opened("Bob"))], None)
        .await
        .unwrap();
    repository
        .persist::<BankAccount>(
            &[serialized("ada", 4, &BankEvent::Deposited { amount: 1 })],
            None,
        )
        .await
        .unwrap();
    let query = Positions::default();
    repository
        .replay_from::<BankAccount, _>(&query, 0, &[])
        .await
        .unwrap();
    let sizes: Vec<(String, usize, usize)> = query
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(id, sequence, _, size)| (id.clone(), *sequence, *size))
        .collect();
    let expected = [
        ("ada", 1, 3),
        ("ada", 2, 3),
        ("ada", 3, 3),
        ("bob", 1, 1),
        ("ada", 4, 1),
    ];
    assert_eq!(sizes, expected.map(|(id, s, n)| (id.to_string(), s, n)));
}

/// An event it cannot decode stops the replay with an error naming its
/// position: the events before it were dispatched, none after it.
#[tokio::test]
async fn replay_from_stops_at_an_event_it_cannot_decode() {
    let repository = AnnalsEventRepository::new(memory_store());
    repository
        .persist::<BankAccount>(&[serialized("ada", 1, &opened("Ada"))], None)
        .await
        .unwrap();
    repository
        .store()
        .append(
            "account-raw",
            ExpectedVersion::Any,
            &[EventData::new("Opened", b"{}".to_vec())],
        )
        .unwrap();
    repository
        .persist::<BankAccount>(&[serialized("bob", 1, &opened("Bob"))], None)
        .await
        .unwrap();

    let query = Positions::default();
    let error = repository
        .replay_from::<BankAccount, _>(&query, 0, &[])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("position 1"), "{error}");
    assert_eq!(query.events(), [("ada".to_string(), 1, Some(0))]);

    let after = repository
        .replay_from::<BankAccount, _>(&query, 2, &[])
        .await
        .unwrap();
    assert_eq!(after, 3);
    assert_eq!(
        query.events().last().unwrap(),
        &("bob".to_string(), 1, Some(2))
    );
}

// ---------------------------------------------------------------------------
// Views

/// A balance view that records the position of the last event it applied
/// and ignores events at or before it: exact under at-least-once delivery.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Balance {
    owner: Option<String>,
    cents: i64,
    position: Option<u64>,
}

impl cqrs_es::View<BankAccount> for Balance {
    fn update(&mut self, event: &EventEnvelope<BankAccount>) {
        let position = event_position(event);
        if position.is_some() && position <= self.position {
            return;
        }
        match &event.payload {
            BankEvent::Opened { owner } => self.owner = Some(owner.clone()),
            BankEvent::Deposited { amount } => self.cents += amount,
            BankEvent::Withdrew { amount } => self.cents -= amount,
        }
        self.position = position.or(self.position);
    }
}

type Balances = AnnalsViewRepository<Balance, BankAccount>;
type BalanceQuery = GenericQuery<Balances, Balance, BankAccount>;
type Errors = Arc<Mutex<Vec<String>>>;

/// A `GenericQuery` on `views` whose errors are collected.
fn balance_query(views: &Arc<Balances>) -> (BalanceQuery, Errors) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut query = GenericQuery::new(Arc::clone(views));
    let sink = Arc::clone(&errors);
    query.use_error_handler(Box::new(move |e| sink.lock().unwrap().push(e.to_string())));
    (query, errors)
}

async fn balance(views: &Balances, id: &str) -> Option<(i64, i64)> {
    views
        .load_with_context(id)
        .await
        .unwrap()
        .map(|(view, context)| (view.cents, context.version))
}

/// postgres-es's use of a view repository, on files: a `GenericQuery`
/// registered with the framework keeps its views, which survive a reopen;
/// each update raises the view's version by one.
#[tokio::test]
async fn a_generic_query_keeps_its_views_in_the_view_repository() {
    let dir = tempfile::tempdir().unwrap();
    let views_dir = dir.path().join("balances");
    {
        let events = AnnalsEventRepository::open(dir.path().join("events"), Options::default())
            .await
            .unwrap();
        let views = Arc::new(Balances::open(&views_dir).await.unwrap());
        let (query, errors) = balance_query(&views);
        let cqrs = annals_cqrs(events, vec![Box::new(query)], BankServices::default()).unwrap();
        cqrs.execute(
            "ada",
            BankCommand::Open {
                owner: "Ada".into(),
            },
        )
        .await
        .unwrap();
        cqrs.execute("ada", deposit(100)).await.unwrap();
        cqrs.execute(
            "bob",
            BankCommand::Open {
                owner: "Bob".into(),
            },
        )
        .await
        .unwrap();
        cqrs.execute("ada", BankCommand::Withdraw { amount: 30 })
            .await
            .unwrap();
        assert!(errors.lock().unwrap().is_empty(), "{errors:?}");
        assert_eq!(balance(&views, "ada").await, Some((70, 3)));
        assert_eq!(balance(&views, "nobody").await, None);
    }
    let views = Balances::open(&views_dir).await.unwrap();
    assert_eq!(balance(&views, "ada").await, Some((70, 3)));
    let bob = views.load("bob").await.unwrap().unwrap();
    assert_eq!(
        bob,
        Balance {
            owner: Some("Bob".into()),
            cents: 0,
            position: Some(2)
        }
    );
}

/// `update_view` writes only at the version the view was loaded at, as
/// postgres-es's `UPDATE … WHERE version = $4`; on a file repository and an
/// in-memory one alike.
#[tokio::test]
async fn update_view_writes_only_at_the_version_it_was_loaded_at() {
    let dir = tempfile::tempdir().unwrap();
    let on_files = Balances::open(dir.path()).await.unwrap();
    for views in [on_files, Balances::in_memory()] {
        let view = |cents| Balance {
            cents,
            ..Balance::default()
        };
        let context = |version| ViewContext::new("ada".into(), version);
        views.update_view(view(1), context(0)).await.unwrap();
        // A second first write conflicts: the view exists.
        let conflict = views.update_view(view(2), context(0)).await.unwrap_err();
        assert!(
            matches!(conflict, PersistenceError::OptimisticLockError),
            "{conflict:?}"
        );
        let (_, loaded) = views.load_with_context("ada").await.unwrap().unwrap();
        assert_eq!(loaded.version, 1);
        views.update_view(view(3), context(1)).await.unwrap();
        // The context loaded at version 1 is stale now.
        let stale = views.update_view(view(4), context(1)).await.unwrap_err();
        assert!(matches!(stale, PersistenceError::OptimisticLockError));
        let ahead = views.update_view(view(5), context(7)).await.unwrap_err();
        assert!(matches!(ahead, PersistenceError::OptimisticLockError));
        assert_eq!(balance(&views, "ada").await, Some((3, 2)));
        let negative = views.update_view(view(6), context(-1)).await.unwrap_err();
        assert!(
            matches!(negative, PersistenceError::UnknownError(_)),
            "{negative:?}"
        );
        assert_eq!(balance(&views, "ada").await, Some((3, 2)));
    }
}

/// Two GenericQuery updates of one view that overlap: one wins, the other
/// gets `OptimisticLockError` and its update is not written.
#[tokio::test]
async fn of_two_overlapping_view_updates_one_conflicts() {
    let views = Balances::in_memory();
    let first = views.clone();
    let a = first.load_with_context("ada").await.unwrap();
    let b = views.load_with_context("ada").await.unwrap();
    assert!(a.is_none() && b.is_none());
    let (left, right) = tokio::join!(
        views.update_view(
            Balance {
                cents: 1,
                ..Balance::default()
            },
            ViewContext::new("ada".into(), 0)
        ),
        first.update_view(
            Balance {
                cents: 2,
                ..Balance::default()
            },
            ViewContext::new("ada".into(), 0)
        ),
    );
    assert_eq!(
        [left.is_ok(), right.is_ok()]
            .iter()
            .filter(|ok| **ok)
            .count(),
        1
    );
    let cents = balance(&views, "ada").await.unwrap().0;
    assert_eq!(cents, if left.is_ok() { 1 } else { 2 });
}

/// A view directory has one owner: a second open is `Locked` while any
/// clone of the first lives; leftover temporary files are removed on open.
#[tokio::test]
async fn a_view_directory_is_opened_once_and_shared_by_clones() {
    let dir = tempfile::tempdir().unwrap();
    let views = Balances::open(dir.path()).await.unwrap();
    let clone = views.clone();
    drop(views);
    let second = Balances::open(dir.path()).await;
    assert!(
        matches!(second, Err(annals::Error::Locked { .. })),
        "{:?}",
        second.err()
    );
    clone
        .update_view(Balance::default(), ViewContext::new("ada".into(), 0))
        .await
        .unwrap();
    drop(clone);

    let interrupted = dir.path().join("0123456789abcdef0123456789abcdef.tmp");
    std::fs::write(&interrupted, b"half a view").unwrap();
    let views = Balances::open(dir.path()).await.unwrap();
    assert!(!interrupted.exists());
    assert_eq!(balance(&views, "ada").await, Some((0, 1)));

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let not_a_dir = Balances::open(&file).await;
    assert!(matches!(not_a_dir, Err(annals::Error::InvalidArgument(_))));
}

/// A damaged view file (a flipped bit, a truncation, a size no record can
/// have) is an error naming the file, never a wrong view or a panic.
#[tokio::test]
async fn a_damaged_view_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let views = Balances::open(dir.path()).await.unwrap();
    views
        .update_view(
            Balance {
                cents: 5,
                ..Balance::default()
            },
            ViewContext::new("ada".into(), 0),
        )
        .await
        .unwrap();
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|x| x == "view"))
        .unwrap();
    let good = std::fs::read(&file).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().to_string();

    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 0x20;
    let truncated = good[..good.len() - 1].to_vec();
    for damaged in [flipped, truncated] {
        std::fs::write(&file, &damaged).unwrap();
        let error = views.load("ada").await.unwrap_err();
        assert!(
            matches!(error, PersistenceError::DeserializationError(_)),
            "{error:?}"
        );
        assert!(error.to_string().contains(&name), "{error}");
        // An update does not overwrite what it cannot read.
        let refused = views
            .update_view(Balance::default(), ViewContext::new("ada".into(), 1))
            .await;
        assert!(refused.is_err());
    }

    // Over the largest record: refused from its length, without reading it.
    let huge = std::fs::File::options().write(true).open(&file).unwrap();
    huge.set_len(annals::cqrs::MAX_VIEW_BYTES as u64 * 2)
        .unwrap();
    let error = views.load("ada").await.unwrap_err();
    assert!(
        error.to_string().contains("over the largest view record"),
        "{error}"
    );
}

/// The read side after a restart, as a user would run it: views kept by a
/// `GenericQuery` live, then a restart that replays from the saved
/// checkpoint (re-delivering events the views have), then events the views
/// missed while their query was not registered. A view that records
/// positions ends exact: every event applied once.
#[tokio::test]
async fn views_with_positions_are_exact_across_live_dispatch_and_resumed_replays() {
    let dir = tempfile::tempdir().unwrap();
    let events_dir = dir.path().join("events");
    let views_dir = dir.path().join("balances");

    // First run: live views; the checkpoint is never saved (a crash).
    {
        let events = AnnalsEventRepository::open(&events_dir, Options::default())
            .await
            .unwrap();
        let views = Arc::new(Balances::open(&views_dir).await.unwrap());
        let (query, _) = balance_query(&views);
        let cqrs = annals_cqrs(
            events.clone(),
            vec![Box::new(query)],
            BankServices::default(),
        )
        .unwrap();
        cqrs.execute(
            "ada",
            BankCommand::Open {
                owner: "Ada".into(),
            },
        )
        .await
        .unwrap();
        cqrs.execute("ada", deposit(100)).await.unwrap();
        assert_eq!(views.checkpoint().await.unwrap(), 0);
    }

    // Restart: replay from the checkpoint (0) re-delivers both events.
    let events = AnnalsEventRepository::open(&events_dir, Options::default())
        .await
        .unwrap();
    let views = Arc::new(Balances::open(&views_dir).await.unwrap());
    let (query, errors) = balance_query(&views);
    let from = views.checkpoint().await.unwrap();
    let next = events
        .replay_from::<BankAccount, _>(&query, from, &[])
        .await
        .unwrap();
    views.save_checkpoint(next).await.unwrap();
    assert_eq!(views.load("ada").await.unwrap().unwrap().cents, 100);

    // Commands while the view query is not registered: the views miss them.
    let offline =
        annals_cqrs::<BankAccount>(events.clone(), vec![], BankServices::default()).unwrap();
    offline.execute("ada", deposit(5)).await.unwrap();
    offline
        .execute(
            "bob",
            BankCommand::Open {
                owner: "Bob".into(),
            },
        )
        .await
        .unwrap();
    // And live again, with the replay from the checkpoint running after
    // the first live command (which it re-delivers).
    let cqrs = annals_cqrs(
        events.clone(),
        vec![Box::new(query)],
        BankServices::default(),
    )
    .unwrap();
    cqrs.execute("bob", deposit(7)).await.unwrap();
    let (catch_up, _) = balance_query(&views);
    let next = events
        .replay_from::<BankAccount, _>(&catch_up, views.checkpoint().await.unwrap(), &[])
        .await
        .unwrap();
    views.save_checkpoint(next).await.unwrap();
    cqrs.execute("ada", BankCommand::Withdraw { amount: 1 })
        .await
        .unwrap();

    assert!(errors.lock().unwrap().is_empty(), "{errors:?}");
    let ada = views.load("ada").await.unwrap().unwrap();
    let bob = views.load("bob").await.unwrap().unwrap();
    assert_eq!((ada.cents, bob.cents), (104, 7));
    assert_eq!(ada.position, Some(5));
    assert_eq!(views.checkpoint().await.unwrap(), 5);
    // The views agree with the aggregates rebuilt from their events.
    let store = PersistedEventStore::<_, BankAccount>::new_event_store(events.clone());
    assert_eq!(
        store.load_aggregate("ada").await.unwrap().aggregate.balance,
        104
    );
}
