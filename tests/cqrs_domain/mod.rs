//! The domain shared by the cqrs-es tests: a bank account whose `apply`
//! adds and subtracts (applying an event twice shows in the balance), a
//! profile whose `apply` only sets fields, an aggregate type that cannot
//! name annals streams, a query that records what it sees, and helpers.
#![allow(dead_code)]

use std::fmt;
use std::sync::{Arc, Mutex};

use annals::cqrs::AnnalsEventRepository;
use annals::{Options, Store};
use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventStore, PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, Query};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Barrier;

// ---------------------------------------------------------------------------
// A bank account: `apply` adds and subtracts, so applying an event twice
// shows in the balance.

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BankAccount {
    pub owner: Option<String>,
    pub balance: i64,
}

#[derive(Debug)]
pub enum BankCommand {
    Open { owner: String },
    Deposit { amount: i64 },
    Withdraw { amount: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankEvent {
    Opened { owner: String },
    Deposited { amount: i64 },
    Withdrew { amount: i64 },
}

impl DomainEvent for BankEvent {
    fn event_type(&self) -> String {
        match self {
            BankEvent::Opened { .. } => "Opened",
            BankEvent::Deposited { .. } => "Deposited",
            BankEvent::Withdrew { .. } => "Withdrew",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, PartialEq)]
pub struct BankError(pub String);

impl fmt::Display for BankError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BankError {}

/// Services of the account: an optional barrier every command waits at
/// after loading and before committing, to make two commands overlap.
#[derive(Default)]
pub struct BankServices {
    pub gate: Option<Arc<Barrier>>,
}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "account";
    type Command = BankCommand;
    type Event = BankEvent;
    type Error = BankError;
    type Services = BankServices;

    async fn handle(
        &mut self,
        command: BankCommand,
        services: &BankServices,
        sink: &EventSink<Self>,
    ) -> Result<(), BankError> {
        if let Some(gate) = &services.gate {
            gate.wait().await;
        }
        let event = match command {
            BankCommand::Open { owner } if self.owner.is_none() => BankEvent::Opened { owner },
            BankCommand::Open { .. } => return Err(BankError("already open".into())),
            _ if self.owner.is_none() => return Err(BankError("not open".into())),
            BankCommand::Deposit { amount } => BankEvent::Deposited { amount },
            BankCommand::Withdraw { amount } if amount > self.balance => {
                return Err(BankError("insufficient funds".into()));
            }
            BankCommand::Withdraw { amount } => BankEvent::Withdrew { amount },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: BankEvent) {
        match event {
            BankEvent::Opened { owner } => self.owner = Some(owner),
            BankEvent::Deposited { amount } => self.balance += amount,
            BankEvent::Withdrew { amount } => self.balance -= amount,
        }
    }
}

// ---------------------------------------------------------------------------
// A profile: `apply` only sets fields, so applying an event twice changes
// nothing. cqrs-es 0.5.0's snapshot and aggregate stores are correct for it.

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug)]
pub enum ProfileCommand {
    SetName(String),
    SetEmail(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProfileEvent {
    NameSet { name: String },
    EmailSet { email: String },
}

impl DomainEvent for ProfileEvent {
    fn event_type(&self) -> String {
        match self {
            ProfileEvent::NameSet { .. } => "NameSet",
            ProfileEvent::EmailSet { .. } => "EmailSet",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for Profile {
    const TYPE: &'static str = "profile";
    type Command = ProfileCommand;
    type Event = ProfileEvent;
    type Error = BankError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ProfileCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), BankError> {
        let event = match command {
            ProfileCommand::SetName(name) => ProfileEvent::NameSet { name },
            ProfileCommand::SetEmail(email) => ProfileEvent::EmailSet { email },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: ProfileEvent) {
        match event {
            ProfileEvent::NameSet { name } => self.name = Some(name),
            ProfileEvent::EmailSet { email } => self.email = Some(email),
        }
    }
}

/// What a [`Recorder`] saw: aggregate id, sequence and event.
pub type Seen<E> = Arc<Mutex<Vec<(String, usize, E)>>>;

/// A query that records every event it is given.
pub struct Recorder<A: Aggregate> {
    seen: Seen<A::Event>,
}

impl<A: Aggregate> Recorder<A> {
    pub fn new() -> (Self, Seen<A::Event>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        (
            Recorder {
                seen: Arc::clone(&seen),
            },
            seen,
        )
    }
}

#[async_trait]
impl<A: Aggregate> Query<A> for Recorder<A> {
    async fn dispatch(&self, aggregate_id: &str, events: &[EventEnvelope<A>]) {
        let mut seen = self.seen.lock().unwrap();
        for event in events {
            seen.push((
                aggregate_id.to_string(),
                event.sequence,
                event.payload.clone(),
            ));
        }
    }
}

pub fn memory_store() -> Arc<Store> {
    Arc::new(Store::in_memory(Options::default()).unwrap())
}

pub fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, Options::default()).unwrap()
}

pub fn deposit(amount: i64) -> BankCommand {
    BankCommand::Deposit { amount }
}

pub fn opened(owner: &str) -> BankEvent {
    BankEvent::Opened {
        owner: owner.into(),
    }
}

/// A serialized account event as cqrs-es would hand it to `persist`.
pub fn serialized(id: &str, sequence: usize, event: &BankEvent) -> SerializedEvent {
    SerializedEvent {
        aggregate_id: id.into(),
        sequence,
        aggregate_type: BankAccount::TYPE.into(),
        event_type: event.event_type(),
        event_version: event.event_version(),
        payload: serde_json::to_value(event).unwrap(),
        metadata: json!({"user": "test"}),
    }
}

pub fn event_store(store: &Arc<Store>) -> PersistedEventStore<AnnalsEventRepository, BankAccount> {
    PersistedEventStore::new_event_store(AnnalsEventRepository::new(Arc::clone(store)))
}

/// Collects a replay stream.
pub async fn drain<A: Aggregate>(
    mut stream: cqrs_es::persist::ReplayStream,
) -> Vec<Result<EventEnvelope<A>, PersistenceError>> {
    let mut out = Vec::new();
    while let Some(event) = stream.next::<A>(&[]).await {
        out.push(event);
    }
    out
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Hyphenated;

impl Aggregate for Hyphenated {
    const TYPE: &'static str = "bank-account";
    type Command = ();
    type Event = BankEvent;
    type Error = BankError;
    type Services = ();

    async fn handle(&mut self, _: (), _: &(), _: &EventSink<Self>) -> Result<(), BankError> {
        Ok(())
    }

    fn apply(&mut self, _: BankEvent) {}
}
