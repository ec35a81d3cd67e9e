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
    AnnalsEventRepository, POSITION_METADATA_KEY, annals_cqrs, event_envelope, event_position,
    serialized_event, stream_prefix,
};
use annals::{EventData, ExpectedVersion, Filter};
use async_trait::async_trait;
use cqrs_domain::*;
use cqrs_es::persist::{PersistedEventRepository, QueryReplay, SerializedEvent};
use cqrs_es::{Aggregate, EventEnvelope, Query};

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
