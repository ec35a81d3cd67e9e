//! A bank account service on cqrs-es with annals as its event store.
//!
//! ```text
//! cargo run --example bank_account --features cqrs-es            # a fresh temporary store
//! cargo run --example bank_account --features cqrs-es -- ./bank  # a store that outlives the run
//! ```
//!
//! Run it twice with the same directory: the accounts carry on from the
//! events of the first run (`<dir>/events`), and the balance views
//! (`<dir>/balances`, kept by a `GenericQuery` on annals' view repository)
//! with them; at start-up only the events after the views' checkpoint are
//! replayed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use annals::Options;
use annals::cqrs::{AnnalsEventRepository, AnnalsViewRepository, annals_cqrs, event_position};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{GenericQuery, ViewRepository};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, View};
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

// The read side: a balance per account, kept in a view repository on
// files. Each view records the position of the last event it applied, so an
// event delivered twice (live, then again by the start-up replay) counts once.

#[derive(Debug, Default, Serialize, Deserialize)]
struct Balance {
    cents: i64,
    position: Option<u64>,
}

impl View<BankAccount> for Balance {
    fn update(&mut self, event: &EventEnvelope<BankAccount>) {
        let position = event_position(event);
        if position.is_some() && position <= self.position {
            return;
        }
        match event.payload {
            Event::Opened { .. } => {}
            Event::Deposited { cents } => self.cents += cents,
            Event::Withdrew { cents } => self.cents -= cents,
        }
        self.position = position.or(self.position);
    }
}

type Balances = AnnalsViewRepository<Balance, BankAccount>;

fn balance_query(views: &Arc<Balances>) -> GenericQuery<Balances, Balance, BankAccount> {
    let mut query = GenericQuery::new(Arc::clone(views));
    query.use_error_handler(Box::new(|error| eprintln!("balance view: {error}")));
    query
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Kept until the end of `main`: dropping it deletes the directory.
    let temporary;
    let dir: PathBuf = match std::env::args_os().nth(1) {
        Some(dir) => dir.into(),
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    // One store, opened off the runtime's threads; clones of the repository
    // share it (the framework, the replay below).
    let events = AnnalsEventRepository::open(dir.join("events"), Options::default()).await?;
    let views = Arc::new(Balances::open(dir.join("balances")).await?);
    println!(
        "store {} holds {} events",
        dir.display(),
        events.store().next_position()
    );

    // Bring the views up to date with events they may have missed (a crash
    // before the last checkpoint was saved), from the saved checkpoint.
    let checkpoint = views.checkpoint().await?;
    let next = events
        .replay_from::<BankAccount, _>(&balance_query(&views), checkpoint, &[])
        .await?;
    views.save_checkpoint(next).await?;
    println!("replayed positions {checkpoint}..{next} into the balance views");

    let cqrs = annals_cqrs(events.clone(), vec![Box::new(balance_query(&views))], ())?;
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
    views
        .save_checkpoint(events.store().next_position())
        .await?;

    println!("balances:");
    for account in ["ada", "grace"] {
        if let Some(balance) = views.load(account).await? {
            let cents = balance.cents;
            println!("  {account}: {}.{:02}", cents / 100, cents % 100);
        }
    }
    println!(
        "the account \"ada\" is the annals stream \"account-ada\", at version {}",
        events.store().stream_version("account-ada")
    );
    Ok(())
}
