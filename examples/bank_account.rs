//! A bank account service on cqrs-es with annals as its event store.
//!
//! ```text
//! cargo run --example bank_account --features cqrs-es            # a fresh temporary store
//! cargo run --example bank_account --features cqrs-es -- ./bank  # a store that outlives the run
//! ```
//!
//! Run it twice with the same directory: the account carries on from the
//! events of the first run, and the balance view (kept in memory) is rebuilt
//! at start-up by replaying the log.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use annals::cqrs::{AnnalsEventRepository, annals_cqrs};
use annals::{Options, Store};
use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::QueryReplay;
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, Query};
use serde::{Deserialize, Serialize};

// The write side: the account aggregate, its commands and events.

#[derive(Debug, Default, Serialize, Deserialize)]
struct BankAccount {
    owner: Option<String>,
    balance_cents: i64,
}

enum Command {
    Open { owner: String },
    Deposit { cents: i64 },
    Withdraw { cents: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Opened { owner: String },
    Deposited { cents: i64 },
    Withdrew { cents: i64 },
}

impl DomainEvent for Event {
    fn event_type(&self) -> String {
        match self {
            Event::Opened { .. } => "Opened",
            Event::Deposited { .. } => "Deposited",
            Event::Withdrew { .. } => "Withdrew",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug)]
struct Refused(&'static str);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Refused {}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "account";
    type Command = Command;
    type Event = Event;
    type Error = Refused;
    type Services = ();

    async fn handle(
        &mut self,
        command: Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refused> {
        let event = match command {
            Command::Open { .. } if self.owner.is_some() => return Err(Refused("already open")),
            Command::Open { owner } => Event::Opened { owner },
            _ if self.owner.is_none() => return Err(Refused("no such account")),
            Command::Deposit { cents } if cents <= 0 => return Err(Refused("nothing to deposit")),
            Command::Deposit { cents } => Event::Deposited { cents },
            Command::Withdraw { cents } if cents > self.balance_cents => {
                return Err(Refused("insufficient funds"));
            }
            Command::Withdraw { cents } => Event::Withdrew { cents },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Opened { owner } => self.owner = Some(owner),
            Event::Deposited { cents } => self.balance_cents += cents,
            Event::Withdrew { cents } => self.balance_cents -= cents,
        }
    }
}

// The read side: balances of every account, updated by committed events.

#[derive(Clone, Default)]
struct Balances(Arc<Mutex<BTreeMap<String, i64>>>);

#[async_trait]
impl Query<BankAccount> for Balances {
    async fn dispatch(&self, account: &str, events: &[EventEnvelope<BankAccount>]) {
        let mut balances = self.0.lock().unwrap();
        let balance = balances.entry(account.to_string()).or_default();
        for event in events {
            match event.payload {
                Event::Opened { .. } => {}
                Event::Deposited { cents } => *balance += cents,
                Event::Withdrew { cents } => *balance -= cents,
            }
        }
    }
}

impl Balances {
    fn print(&self) {
        for (account, cents) in self.0.lock().unwrap().iter() {
            println!("  {account}: {}.{:02}", cents / 100, cents % 100);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Kept until the end of `main`: dropping it deletes the directory.
    let temporary;
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => dir.into(),
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    let store = Arc::new(Store::open(&dir, Options::default())?);
    println!(
        "store {} holds {} events",
        dir.display(),
        store.next_position()
    );

    // Rebuild the in-memory view from the events already in the store.
    let balances = Balances::default();
    QueryReplay::new(
        AnnalsEventRepository::new(Arc::clone(&store)),
        balances.clone(),
    )
    .replay_all()
    .await?;

    let cqrs = annals_cqrs(Arc::clone(&store), vec![Box::new(balances.clone())], ())?;
    let commands = [
        (
            "ada",
            Command::Open {
                owner: "Ada Lovelace".into(),
            },
        ),
        ("ada", Command::Deposit { cents: 10_000 }),
        ("ada", Command::Withdraw { cents: 2_550 }),
        (
            "grace",
            Command::Open {
                owner: "Grace Hopper".into(),
            },
        ),
        ("grace", Command::Deposit { cents: 500 }),
        ("grace", Command::Withdraw { cents: 99_999 }),
    ];
    for (account, command) in commands {
        match cqrs.execute(account, command).await {
            Ok(()) => {}
            Err(AggregateError::UserError(refused)) => println!("{account}: refused: {refused}"),
            Err(error) => return Err(error.into()),
        }
    }

    println!("balances:");
    balances.print();
    println!(
        "the account \"ada\" is the annals stream \"account-ada\", at version {}",
        store.stream_version("account-ada")
    );
    drop(cqrs);
    Arc::try_unwrap(store)
        .map_err(|_| "the store is still shared")?
        .close()?;
    Ok(())
}
