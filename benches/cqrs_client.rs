//! The cqrs-es client's cost per command (issue 15): a bank-account
//! aggregate (as in `examples/bank_account.rs`) run through cqrs-es's
//! `CqrsFramework` with its event store (`PersistedEventStore::new_event_store`:
//! every command loads the aggregate's events, handles the command and
//! persists the new event), on two repositories in one run:
//!
//! - **annals**: `annals_cqrs` on `Store::in_memory` (no files, no sync), as
//!   a user of `annals::cqrs` would build it;
//! - **trivial**: a `PersistedEventRepository` that keeps `SerializedEvent`s
//!   in a `Mutex<HashMap<aggregate id, Vec<_>>>` and clones them out, with
//!   the same optimistic-concurrency check: the floor for any repository
//!   behind the same framework (issue 15's target: annals ≤ 2× it).
//!
//! cqrs-es's own `MemStore` is left out: it prints a line to stdout for
//! every command it stores, which would be most of what it measured.
//!
//! Each round opens fresh stores, then sends every contender the same
//! commands in turn: an `Open` to each account, then `Deposit`s round robin
//! over the accounts, so each account's stream grows to
//! `ANNALS_BENCH_COMMANDS` events and every command reloads it. The median
//! over the rounds of the mean time per command is reported.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `ANNALS_BENCH_ACCOUNTS` | 100 | aggregates (streams) |
//! | `ANNALS_BENCH_COMMANDS` | 20 | commands per aggregate (events per stream at the end) |
//! | `ANNALS_BENCH_REPEAT` | 3 | rounds (the median is reported) |
//!
//! Run: `cargo bench --features cqrs-es --bench cqrs_client`. Timings are
//! never asserted anywhere.

mod common;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use annals::cqrs::annals_cqrs;
use annals::{Options, Store};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, CqrsFramework, DomainEvent, EventStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;

// The aggregate: a bank account, as in `examples/bank_account.rs`.

#[derive(Debug, Default, Serialize, Deserialize)]
struct BankAccount {
    owner: Option<String>,
    balance_cents: i64,
}

enum Command {
    Open { owner: String },
    Deposit { cents: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Event {
    Opened { owner: String },
    Deposited { cents: i64 },
}

impl DomainEvent for Event {
    fn event_type(&self) -> String {
        match self {
            Event::Opened { .. } => "Opened",
            Event::Deposited { .. } => "Deposited",
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
            Command::Deposit { cents } => Event::Deposited { cents },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Opened { owner } => self.owner = Some(owner),
            Event::Deposited { cents } => self.balance_cents += cents,
        }
    }
}

// The trivial repository: serialized events in a map, cloned out.

#[derive(Default)]
struct TrivialRepository {
    streams: Mutex<HashMap<String, Vec<SerializedEvent>>>,
}

#[derive(Debug)]
struct NotKept;

impl fmt::Display for NotKept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the trivial repository keeps no snapshots and streams no replays")
    }
}

impl std::error::Error for NotKept {}

impl PersistedEventRepository for TrivialRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let streams = self.streams.lock().expect("not poisoned");
        Ok(streams.get(aggregate_id).cloned().unwrap_or_default())
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let streams = self.streams.lock().expect("not poisoned");
        Ok(streams.get(aggregate_id).map_or_else(Vec::new, |events| {
            events
                .iter()
                .filter(|event| event.sequence > last_sequence)
                .cloned()
                .collect()
        }))
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError(Box::new(NotKept)));
        }
        let Some(first) = events.first() else {
            return Ok(());
        };
        let mut streams = self.streams.lock().expect("not poisoned");
        let stream = streams.entry(first.aggregate_id.clone()).or_default();
        if first.sequence != stream.len() + 1 {
            return Err(PersistenceError::OptimisticLockError);
        }
        stream.extend_from_slice(events);
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        Err(PersistenceError::UnknownError(Box::new(NotKept)))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        Err(PersistenceError::UnknownError(Box::new(NotKept)))
    }
}

// The measurement.

struct Config {
    accounts: usize,
    commands: usize,
    repeat: usize,
}

impl Config {
    fn from_env() -> Config {
        let number = common::env_number;
        let config = Config {
            accounts: number("ANNALS_BENCH_ACCOUNTS", 100),
            commands: number("ANNALS_BENCH_COMMANDS", 20),
            repeat: number("ANNALS_BENCH_REPEAT", 3).max(1),
        };
        assert!(config.accounts > 0 && config.commands > 0);
        config
    }

    fn total_commands(&self) -> usize {
        self.accounts * self.commands
    }
}

/// Sends every command to `cqrs` and returns the mean seconds per command.
async fn run<ES: EventStore<BankAccount>>(
    config: &Config,
    cqrs: CqrsFramework<BankAccount, ES>,
) -> f64 {
    let accounts: Vec<String> = (0..config.accounts).map(|i| format!("{i:06}")).collect();
    let started = Instant::now();
    for account in &accounts {
        let owner = format!("owner of {account}");
        cqrs.execute(account, Command::Open { owner })
            .await
            .expect("opening an account");
    }
    for round in 1..config.commands {
        for account in &accounts {
            let cents = round as i64;
            cqrs.execute(account, Command::Deposit { cents })
                .await
                .expect("depositing");
        }
    }
    started.elapsed().as_secs_f64() / config.total_commands() as f64
}

fn main() {
    // `cargo bench` passes `--bench`; only run when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("cqrs_client: run with `cargo bench --features cqrs-es --bench cqrs_client`");
        return;
    }
    let config = Config::from_env();
    // The multi-threaded runtime of `#[tokio::main]`, as a service would use.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    eprintln!(
        "[cqrs_client] {} accounts, {} commands each ({} commands), {} rounds",
        config.accounts,
        config.commands,
        config.total_commands(),
        config.repeat
    );
    let mut seconds: [Vec<f64>; 2] = Default::default();
    for round in 0..config.repeat {
        let per_command = runtime.block_on(async {
            let store = Store::in_memory(Options::default()).expect("opening annals");
            let annals = annals_cqrs::<BankAccount>(store, vec![], ()).expect("annals framework");
            let trivial = CqrsFramework::new(
                PersistedEventStore::new_event_store(TrivialRepository::default()),
                vec![],
                (),
            );
            [run(&config, annals).await, run(&config, trivial).await]
        });
        eprintln!(
            "[cqrs_client]    round {round}: annals {:.1} µs, trivial {:.1} µs per command",
            per_command[0] * 1e6,
            per_command[1] * 1e6
        );
        for (all, one) in seconds.iter_mut().zip(per_command) {
            all.push(one);
        }
    }
    let [annals, trivial] = seconds.map(common::median);
    println!();
    println!(
        "| workload | annals (in-memory store) | trivial repository | ratio (same run) | target |"
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| cqrs-es bank account, {} accounts × {} commands, µs per command | {:.1} µs | {:.1} µs | {:.2}× trivial | ≤ 2× trivial |",
        config.accounts,
        config.commands,
        annals * 1e6,
        trivial * 1e6,
        annals / trivial
    );
}
