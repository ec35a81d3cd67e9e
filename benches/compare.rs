//! annals against SQLite and the raw file limit, side by side in one run
//! (issue 7; workloads 7 to 10 from issue 15). Ten workloads, each run
//! against up to three contenders:
//!
//! - **annals**;
//! - **SQLite** (through rusqlite, bundled), with the `events` table an
//!   event-sourcing user would write: `UNIQUE(aggregate_id, version)` for
//!   optimistic concurrency, indexes on event type, timestamp and correlation
//!   id, WAL mode; an append is one transaction that reads the stream's
//!   current version, checks it, then inserts;
//! - **raw**: the same payload bytes, length-prefixed, through one
//!   `BufWriter<File>` (no index, no checksums), read back with one sequential
//!   read. No store can beat it; it says how close to the file system we are.
//!
//! The workloads: 1. batched append; 2. durable single append latency;
//! 3. group commit; 4. read every stream; 5. read the log; 6. open and index
//! memory; 7. appends at batch sizes 1, 10 and 100, through the owned
//! `Store::append` and the borrowed `Store::append_ref`; 8. owned reads
//! (`read_all`, `read_stream`) in pages of 100, 1,000 and 100,000 events;
//! 9. the iterator API, `Store::read(ReadRequest)`, over the log and every
//! stream; 10. atomic appends to two streams (`Store::append_multi`) against
//! one SQLite transaction over both, beside annals' one-stream batch of the
//! same size. Workloads 4, 5, 6, 8 and 9 read the stores workload 1 wrote.
//! The cqrs-es client's cost per command is `benches/cqrs_client.rs`.
//!
//! This is a `harness = false` binary rather than a criterion bench: the
//! workloads are single long runs (a million events), latency percentiles and
//! memory measurements, which criterion's repeated-sample model does not fit.
//! It prints a markdown table of absolute numbers and same-run ratios.
//!
//! Sizes come from environment variables (defaults are the sizes):
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `ANNALS_BENCH_EVENTS` | 1000000 | events of workloads 1, 4 to 10 (7: at each batch size) |
//! | `ANNALS_BENCH_STREAMS` | 1000 | streams of workloads 1, 7 and 10 |
//! | `ANNALS_BENCH_BATCH` | 10 | events per append in workloads 1 and 10 |
//! | `ANNALS_BENCH_PAYLOAD` | 256 | payload bytes per event |
//! | `ANNALS_BENCH_SYNC_OPS` | 2000 | durable appends per contender in workloads 2 and 3 |
//! | `ANNALS_BENCH_THREADS` | 8 | threads of workload 3 |
//! | `ANNALS_BENCH_REPEAT` | 3 | rounds of workloads 1, 3, 4, 5, 7, 8, 9, 10 (the median is reported) |
//! | `ANNALS_BENCH_SEGMENT_BYTES` | 67108864 (annals' default) | segment size of workload 1's and 7's annals stores |
//! | `ANNALS_BENCH_DIR` | the system temp dir | where the stores are created |
//! | `ANNALS_BENCH_ONLY` | all | comma-separated workload numbers to run, e.g. `1,4,5` or `7,8,9` |
//!
//! Run: `cargo bench --bench compare`. Timings are never asserted anywhere.

mod common;

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use annals::{
    Durability, EventData, EventDataRef, ExpectedVersion, MultiStreamAppend, Options, ReadRequest,
    Store, Uuid,
};
use common::{env_number, machine, median, payload};
use rusqlite::{Connection, TransactionBehavior, params};

/// Environment variable that makes this binary run only the open measurement
/// of workload 6 on the store in the named directory, in a fresh process, so
/// that its memory delta is not blurred by the earlier workloads' heap.
const CHILD_OPEN_VAR: &str = "ANNALS_BENCH_CHILD_OPEN";

/// Events read per `read_all` call (and per SQLite page) in workload 5.
const READ_ALL_PAGE: usize = 10_000;

/// Unmeasured operations before a latency or throughput measurement.
const WARMUP_OPS: usize = 50;

const EVENT_TYPE: &str = "ItemAdded";

struct Config {
    events: usize,
    streams: usize,
    batch: usize,
    payload: usize,
    sync_ops: usize,
    threads: usize,
    repeat: usize,
    segment_bytes: u64,
    dir: PathBuf,
    only: Option<Vec<u32>>,
}

impl Config {
    fn from_env() -> Config {
        let number = env_number;
        let config = Config {
            events: number("ANNALS_BENCH_EVENTS", 1_000_000),
            streams: number("ANNALS_BENCH_STREAMS", 1_000),
            batch: number("ANNALS_BENCH_BATCH", 10),
            payload: number("ANNALS_BENCH_PAYLOAD", 256),
            sync_ops: number("ANNALS_BENCH_SYNC_OPS", 2_000),
            threads: number("ANNALS_BENCH_THREADS", 8),
            repeat: number("ANNALS_BENCH_REPEAT", 3).max(1),
            segment_bytes: number("ANNALS_BENCH_SEGMENT_BYTES", 64 << 20) as u64,
            dir: std::env::var_os("ANNALS_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            only: std::env::var("ANNALS_BENCH_ONLY").ok().map(|text| {
                text.split(',')
                    .map(|n| n.trim().parse().expect("ANNALS_BENCH_ONLY lists numbers"))
                    .collect()
            }),
        };
        assert!(config.events > 0 && config.streams > 0 && config.batch > 0);
        assert!(config.threads > 0 && config.sync_ops >= config.threads);
        config
    }

    fn runs(&self, workload: u32) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.contains(&workload))
    }

    /// Appends of workload 1: every stream gets the same number of batches.
    fn batches(&self) -> usize {
        self.events / self.batch
    }

    fn total_events(&self) -> usize {
        self.batches() * self.batch
    }
}

fn stream_name(i: usize) -> String {
    format!("order-{i:06}")
}

fn correlation_id(batch: usize) -> String {
    format!("request-{batch:010}")
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    m.blocks() * 512
                })
                .sum()
        })
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The SQLite contender.

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id             INTEGER PRIMARY KEY,
    event_id       BLOB    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    data           BLOB    NOT NULL,
    timestamp      INTEGER NOT NULL,
    correlation_id TEXT,
    UNIQUE (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS events_event_type ON events (event_type);
CREATE INDEX IF NOT EXISTS events_timestamp ON events (timestamp);
CREATE INDEX IF NOT EXISTS events_correlation_id ON events (correlation_id);
";

const SQLITE_COLUMNS: &str =
    "id, event_id, aggregate_id, version, event_type, data, timestamp, correlation_id";

/// An event as an SQLite user's code gets it back: owned, every column.
#[allow(dead_code)] // Fields are read only through `black_box`.
#[derive(Debug)]
struct SqlEvent {
    position: i64,
    event_id: Vec<u8>,
    aggregate_id: String,
    version: i64,
    event_type: String,
    data: Vec<u8>,
    timestamp: i64,
    correlation_id: Option<String>,
}

impl SqlEvent {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SqlEvent> {
        Ok(SqlEvent {
            position: row.get(0)?,
            event_id: row.get(1)?,
            aggregate_id: row.get(2)?,
            version: row.get(3)?,
            event_type: row.get(4)?,
            data: row.get(5)?,
            timestamp: row.get(6)?,
            correlation_id: row.get(7)?,
        })
    }
}

struct Sqlite {
    connection: Connection,
}

#[allow(dead_code)] // Fields are shown through `Debug` when an append fails.
#[derive(Debug)]
enum SqlAppendError {
    WrongExpectedVersion { expected: i64, actual: i64 },
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for SqlAppendError {
    fn from(error: rusqlite::Error) -> Self {
        SqlAppendError::Sql(error)
    }
}

impl Sqlite {
    /// Opens (creating) the database with WAL and the given `synchronous` level.
    fn open(path: &Path, synchronous: &str) -> Sqlite {
        let connection = Connection::open(path).expect("opening SQLite");
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .expect("setting WAL");
        assert_eq!(mode.to_lowercase(), "wal");
        connection
            .pragma_update(None, "synchronous", synchronous)
            .expect("setting synchronous");
        connection
            .busy_timeout(Duration::from_secs(60))
            .expect("setting busy timeout");
        connection
            .execute_batch(SQLITE_SCHEMA)
            .expect("creating schema");
        Sqlite { connection }
    }

    /// One append: a transaction that checks the stream's version, then inserts.
    fn append(
        &mut self,
        aggregate_id: &str,
        expected_version: i64,
        payloads: &[&[u8]],
        correlation_id: &str,
    ) -> Result<i64, SqlAppendError> {
        let versions = self.append_to_streams(
            &[(aggregate_id, expected_version, payloads)],
            correlation_id,
        )?;
        Ok(versions[0])
    }

    /// One append to several streams: a transaction that checks every
    /// stream's version, then inserts; each stream's new version.
    fn append_to_streams(
        &mut self,
        writes: &[(&str, i64, &[&[u8]])],
        correlation_id: &str,
    ) -> Result<Vec<i64>, SqlAppendError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut versions = Vec::with_capacity(writes.len());
        for &(aggregate_id, expected_version, payloads) in writes {
            let actual: i64 = transaction
                .prepare_cached(
                    "SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?1",
                )?
                .query_row([aggregate_id], |row| row.get(0))?;
            if actual != expected_version {
                return Err(SqlAppendError::WrongExpectedVersion {
                    expected: expected_version,
                    actual,
                });
            }
            let mut insert = transaction.prepare_cached(
                "INSERT INTO events (event_id, aggregate_id, version, event_type, data, timestamp, correlation_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let timestamp = now_ns();
            for (i, data) in payloads.iter().enumerate() {
                insert.execute(params![
                    Uuid::now_v7().as_bytes().as_slice(),
                    aggregate_id,
                    actual + 1 + i as i64,
                    EVENT_TYPE,
                    data,
                    timestamp,
                    correlation_id,
                ])?;
            }
            versions.push(actual + payloads.len() as i64);
        }
        transaction.commit()?;
        Ok(versions)
    }

    fn read_stream(&self, aggregate_id: &str) -> Vec<SqlEvent> {
        let mut statement = self
            .connection
            .prepare_cached(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events WHERE aggregate_id = ?1 ORDER BY version"
            ))
            .expect("preparing stream read");
        statement
            .query_map([aggregate_id], SqlEvent::from_row)
            .expect("reading a stream")
            .collect::<rusqlite::Result<_>>()
            .expect("decoding rows")
    }

    /// Up to `limit` events of a stream from `from_version` on (a page).
    fn read_stream_page(
        &self,
        aggregate_id: &str,
        from_version: i64,
        limit: usize,
    ) -> Vec<SqlEvent> {
        let mut statement = self
            .connection
            .prepare_cached(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events WHERE aggregate_id = ?1 AND version >= ?2 \
                 ORDER BY version LIMIT ?3"
            ))
            .expect("preparing stream page read");
        statement
            .query_map(
                params![aggregate_id, from_version, limit as i64],
                SqlEvent::from_row,
            )
            .expect("reading a stream page")
            .collect::<rusqlite::Result<_>>()
            .expect("decoding rows")
    }

    /// Every event of a stream (`Some`) or of the log (`None`) through one
    /// query whose rows are decoded one at a time and handed to `f`, never
    /// collected: SQLite's counterpart of a lazy iterator. Returns the count.
    fn for_each_event(&self, aggregate_id: Option<&str>, mut f: impl FnMut(SqlEvent)) -> usize {
        let sql = match aggregate_id {
            Some(_) => format!(
                "SELECT {SQLITE_COLUMNS} FROM events WHERE aggregate_id = ?1 ORDER BY version"
            ),
            None => format!("SELECT {SQLITE_COLUMNS} FROM events ORDER BY id"),
        };
        let mut statement = self
            .connection
            .prepare_cached(&sql)
            .expect("preparing a lazy read");
        let rows = match aggregate_id {
            Some(id) => statement.query_map([id], SqlEvent::from_row),
            None => statement.query_map([], SqlEvent::from_row),
        }
        .expect("reading lazily");
        let mut count = 0;
        for row in rows {
            f(row.expect("decoding a row"));
            count += 1;
        }
        count
    }

    fn read_all_page(&self, after_id: i64, limit: usize) -> Vec<SqlEvent> {
        let mut statement = self
            .connection
            .prepare_cached(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))
            .expect("preparing log read");
        statement
            .query_map(params![after_id, limit as i64], SqlEvent::from_row)
            .expect("reading the log")
            .collect::<rusqlite::Result<_>>()
            .expect("decoding rows")
    }
}

// ---------------------------------------------------------------------------
// The raw contender: length-prefixed payloads, nothing else.

fn raw_write_record(out: &mut impl Write, payload: &[u8]) {
    out.write_all(&(payload.len() as u32).to_le_bytes())
        .and_then(|()| out.write_all(payload))
        .expect("raw write");
}

/// One sequential read of the whole file, then a walk over its records.
/// Returns (records, payload bytes).
fn raw_read_all(path: &Path) -> (usize, usize) {
    let bytes = fs::read(path).expect("raw read");
    let mut at = 0;
    let (mut records, mut total) = (0, 0);
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let record = &bytes[at + 4..at + 4 + len];
        black_box(record);
        records += 1;
        total += record.len();
        at += 4 + len;
    }
    (records, total)
}

// ---------------------------------------------------------------------------
// Results.

/// One measured number of one contender.
#[derive(Clone, Copy)]
enum Value {
    /// Events (or operations) per second.
    Rate(f64),
    /// A latency.
    Latency(Duration),
    /// Anything else, with its unit.
    Amount(f64, &'static str),
}

impl Value {
    fn render(self) -> String {
        match self {
            Value::Rate(rate) => format!("{} /s", si(rate)),
            Value::Latency(d) => format!("{:.1} µs", d.as_secs_f64() * 1e6),
            Value::Amount(x, unit) => format!("{x:.2} {unit}"),
        }
    }
}

fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

struct Row {
    workload: String,
    annals: Option<Value>,
    sqlite: Option<Value>,
    raw: Option<Value>,
    /// Ratios, as text ("12.3× SQLite").
    ratios: Vec<String>,
    target: &'static str,
}

/// How many times better annals is than `other`, for rates (higher is
/// better) and latencies (lower is better).
fn advantage(annals: Value, other: Value) -> f64 {
    match (annals, other) {
        (Value::Rate(a), Value::Rate(b)) => a / b,
        (Value::Latency(a), Value::Latency(b)) => b.as_secs_f64() / a.as_secs_f64(),
        _ => f64::NAN,
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| workload | annals | SQLite | raw | ratios (same run) | target |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let cell = |v: Option<Value>| v.map_or("—".to_string(), Value::render);
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.workload,
            cell(row.annals),
            cell(row.sqlite),
            cell(row.raw),
            row.ratios.join("; "),
            row.target
        );
    }
}

fn log(message: impl AsRef<str>) {
    eprintln!("[compare] {}", message.as_ref());
}

// ---------------------------------------------------------------------------
// Workloads.

/// The stores written by workload 1, read by 4, 5 and 6.
struct Written {
    annals: PathBuf,
    sqlite: PathBuf,
    raw: PathBuf,
}

/// Which append call the annals contender of an append workload uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AppendApi {
    /// `Store::append` of owned `EventData`: the payload and the
    /// correlation id are copied into each event.
    Owned,
    /// `Store::append_ref` of `EventDataRef`s borrowing the caller's bytes:
    /// one `Vec` of references per append, nothing allocated per event.
    Borrowed,
}

/// `config.events / batch` appends of `batch` events each, round robin over
/// `streams`, each with an exact expected version; returns the seconds.
fn annals_batched(
    config: &Config,
    dir: &Path,
    data: &[u8],
    streams: &[String],
    batch: usize,
    api: AppendApi,
) -> f64 {
    let options = Options::default()
        .durability(Durability::None)
        .segment_size_bytes(config.segment_bytes);
    let store = Store::open(dir, options).expect("opening annals");
    let mut versions = vec![0u64; streams.len()];
    let started = Instant::now();
    for b in 0..config.events / batch {
        let s = b % streams.len();
        let correlation = correlation_id(b);
        let expected = ExpectedVersion::Exact(versions[s]);
        let result = match api {
            AppendApi::Owned => {
                let events: Vec<EventData> = (0..batch)
                    .map(|_| {
                        EventData::new(EVENT_TYPE, data.to_vec())
                            .with_correlation_id(correlation.clone())
                    })
                    .collect();
                store.append(&streams[s], expected, &events)
            }
            AppendApi::Borrowed => {
                let events: Vec<EventDataRef<'_>> = (0..batch)
                    .map(|_| EventDataRef::new(EVENT_TYPE, data).with_correlation_id(&correlation))
                    .collect();
                store.append_ref(&streams[s], expected, &events)
            }
        };
        versions[s] = result.expect("annals append").last_version;
    }
    let seconds = started.elapsed().as_secs_f64();
    store.close().expect("closing annals");
    seconds
}

fn sqlite_batched(
    config: &Config,
    path: &Path,
    data: &[u8],
    streams: &[String],
    batch: usize,
) -> f64 {
    let mut sqlite = Sqlite::open(path, "NORMAL");
    let mut versions = vec![0i64; streams.len()];
    let payloads: Vec<&[u8]> = vec![data; batch];
    let started = Instant::now();
    for b in 0..config.events / batch {
        let s = b % config.streams;
        versions[s] = sqlite
            .append(&streams[s], versions[s], &payloads, &correlation_id(b))
            .expect("SQLite append");
    }
    started.elapsed().as_secs_f64()
}

fn raw_batched(config: &Config, path: &Path, data: &[u8], batch: usize) -> f64 {
    let started = Instant::now();
    let mut out = BufWriter::new(File::create(path).expect("creating raw file"));
    for _ in 0..config.events / batch {
        for _ in 0..batch {
            raw_write_record(&mut out, data);
        }
    }
    out.flush().expect("raw flush");
    drop(out);
    started.elapsed().as_secs_f64()
}

/// Reads pages of `page_size` from cursor `start` until a short page:
/// `read_page(cursor)` returns a page and the cursor after its last item.
/// Returns how many items were read.
fn read_in_pages<T, C: Copy>(
    page_size: usize,
    start: C,
    mut read_page: impl FnMut(C) -> (Vec<T>, Option<C>),
) -> usize {
    let (mut cursor, mut read) = (start, 0);
    loop {
        let (page, next) = read_page(cursor);
        read += page.len();
        let short = page.len() < page_size;
        black_box(page);
        match next {
            Some(next) if !short => cursor = next,
            _ => return read,
        }
    }
}

/// Runs each contender `repeat` times, taking turns; returns the median
/// seconds of each.
/// Runs each contender once per round, taking turns, and returns each
/// one's median over the rounds.
fn rounds<const N: usize>(
    repeat: usize,
    contenders: [&dyn Fn() -> f64; N],
    names: [&str; N],
) -> [f64; N] {
    let mut seconds: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    for round in 0..repeat {
        for (all, contender) in seconds.iter_mut().zip(contenders) {
            all.push(contender());
        }
        let line: Vec<String> = names
            .iter()
            .zip(&seconds)
            .map(|(name, all)| format!("{name} {:.2} s", all[round]))
            .collect();
        log(format!("   round {round}: {}", line.join(", ")));
    }
    seconds.map(median)
}

fn remove(path: &Path) {
    let _ = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
}

fn workload_1(config: &Config, root: &Path, rows: &mut Vec<Row>) -> Written {
    let data = payload(config.payload);
    let streams: Vec<String> = (0..config.streams).map(stream_name).collect();
    let events = config.total_events() as f64;
    log(format!(
        "1. batched append: {events} events, {} streams, {} per append, {} rounds",
        config.streams, config.batch, config.repeat
    ));
    let mut seconds = [Vec::new(), Vec::new(), Vec::new()];
    let mut written = None;
    // Written only for the read workloads: one round is enough.
    let repeat = if config.runs(1) { config.repeat } else { 1 };
    for round in 0..repeat {
        // The contenders take turns, so that background writeback of one
        // round's dirty pages hits each of them alike.
        let paths = Written {
            annals: root.join(format!("w1-annals-{round}")),
            sqlite: root.join(format!("w1-sqlite-{round}.db")),
            raw: root.join(format!("w1-raw-{round}.log")),
        };
        let round_seconds = [
            annals_batched(
                config,
                &paths.annals,
                &data,
                &streams,
                config.batch,
                AppendApi::Owned,
            ),
            sqlite_batched(config, &paths.sqlite, &data, &streams, config.batch),
            raw_batched(config, &paths.raw, &data, config.batch),
        ];
        log(format!(
            "   round {round}: annals {:.2} s, SQLite {:.2} s, raw {:.2} s",
            round_seconds[0], round_seconds[1], round_seconds[2]
        ));
        for (all, one) in seconds.iter_mut().zip(round_seconds) {
            all.push(one);
        }
        if let Some(previous) = written.replace(paths) {
            remove(&previous.annals);
            remove(&previous.sqlite);
            remove(&PathBuf::from(format!("{}-wal", previous.sqlite.display())));
            remove(&PathBuf::from(format!("{}-shm", previous.sqlite.display())));
            remove(&previous.raw);
        }
    }
    let written = written.expect("at least one round");
    let [annals, sqlite, raw] = seconds.map(|s| Value::Rate(events / median(s)));
    let disk = |path: &Path| {
        let bytes = if path.is_dir() {
            dir_bytes(path)
        } else {
            fs::metadata(path).map_or(0, |m| m.len())
        };
        bytes as f64 / events
    };
    let sqlite_disk =
        disk(&written.sqlite) + disk(&PathBuf::from(format!("{}-wal", written.sqlite.display())));
    log(format!(
        "   disk bytes per event: annals {:.0} (preallocated segments), SQLite {:.0}, raw {:.0}",
        disk(&written.annals),
        sqlite_disk,
        disk(&written.raw)
    ));
    rows.push(Row {
        workload: format!(
            "1. batched append ({} events, {} streams, {} per append, no sync), events/s",
            config.total_events(),
            config.streams,
            config.batch
        ),
        annals: Some(annals),
        sqlite: Some(sqlite),
        raw: Some(raw),
        ratios: vec![
            format!("{:.1}× SQLite", advantage(annals, sqlite)),
            format!("{:.2}× raw", advantage(annals, raw)),
        ],
        target: "≥ 25× SQLite, ≥ 0.5× raw",
    });
    written
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn latencies(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 0.50), percentile(&samples, 0.99))
}

fn workload_2(config: &Config, root: &Path, rows: &mut Vec<Row>) {
    use std::os::unix::fs::FileExt;
    let data = payload(config.payload);
    let ops = config.sync_ops;
    log(format!(
        "2. durable single append: {ops} appends each, contenders interleaved"
    ));
    let streams: Vec<String> = (0..100).map(stream_name).collect();

    let store = Store::open(
        root.join("w2-annals"),
        Options::default().durability(Durability::Always),
    )
    .expect("opening annals");
    let mut annals_versions = vec![0u64; streams.len()];
    let mut sqlite = Sqlite::open(&root.join("w2-sqlite.db"), "FULL");
    let mut sqlite_versions = vec![0i64; streams.len()];
    // raw: write + fdatasync of a growing file.
    let mut raw_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("w2-raw.log"))
        .expect("creating raw file");
    let mut record = Vec::with_capacity(4 + data.len());
    raw_write_record(&mut record, &data);
    // The floor: overwriting blocks that are already written and durable,
    // so that fdatasync has no file-system metadata to commit.
    let mut floor_file =
        File::create(root.join("w2-raw-overwrite.log")).expect("creating raw file");
    floor_file
        .write_all(&vec![0u8; (WARMUP_OPS + ops) * record.len()])
        .and_then(|()| floor_file.sync_all())
        .expect("pre-writing raw file");

    // One append of each contender in turn, so that every contender sees the
    // same disk: on a shared machine its latency changes from second to second.
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for i in 0..WARMUP_OPS + ops {
        let s = i % streams.len();
        let mut timings = [Duration::ZERO; 4];

        let event = [EventData::new(EVENT_TYPE, data.clone())];
        let started = Instant::now();
        let result = store
            .append(
                &streams[s],
                ExpectedVersion::Exact(annals_versions[s]),
                &event,
            )
            .expect("annals append");
        timings[0] = started.elapsed();
        annals_versions[s] = result.last_version;

        let started = Instant::now();
        sqlite_versions[s] = sqlite
            .append(&streams[s], sqlite_versions[s], &[&data], "request")
            .expect("SQLite append");
        timings[1] = started.elapsed();

        let started = Instant::now();
        raw_file.write_all(&record).expect("raw write");
        raw_file.sync_data().expect("raw fdatasync");
        timings[2] = started.elapsed();

        let started = Instant::now();
        floor_file
            .write_all_at(&record, (i * record.len()) as u64)
            .expect("raw write");
        floor_file.sync_data().expect("raw fdatasync");
        timings[3] = started.elapsed();

        if i >= WARMUP_OPS {
            for (all, one) in samples.iter_mut().zip(timings) {
                all.push(one);
            }
        }
    }
    store.close().expect("closing annals");
    drop(sqlite);
    let [annals, sqlite, raw, raw_overwrite] = samples.map(latencies);

    for (label, pick, target) in [("p50", 0, "p50 ≤ 1.25× raw"), ("p99", 1, "(reported)")] {
        let get =
            |pair: (Duration, Duration)| Value::Latency(if pick == 0 { pair.0 } else { pair.1 });
        let (a, s, r) = (get(annals), get(sqlite), get(raw));
        let Value::Latency(floor) = get(raw_overwrite) else {
            unreachable!()
        };
        rows.push(Row {
            workload: format!("2. durable single append, {label} latency ({ops} appends)"),
            annals: Some(a),
            sqlite: Some(s),
            raw: Some(r),
            ratios: vec![
                format!("{:.1}× faster than SQLite", advantage(a, s)),
                format!("{:.2}× raw latency", 1.0 / advantage(a, r)),
                format!(
                    "raw overwriting pre-written blocks: {:.1} µs",
                    floor.as_secs_f64() * 1e6
                ),
            ],
            target,
        });
    }
}

/// Durable appends of `threads` threads, `total / threads` each, each to its
/// own stream; returns appends per second.
fn annals_group_commit(dir: &Path, threads: usize, total: usize, data: &[u8]) -> f64 {
    let store = Arc::new(
        Store::open(dir, Options::default().durability(Durability::Always))
            .expect("opening annals"),
    );
    let per_thread = total / threads;
    let run = |ops: usize| {
        std::thread::scope(|scope| {
            for t in 0..threads {
                let store = &store;
                scope.spawn(move || {
                    let stream = format!("thread-{t}");
                    for _ in 0..ops {
                        store
                            .append(
                                &stream,
                                ExpectedVersion::Any,
                                &[EventData::new(EVENT_TYPE, data.to_vec())],
                            )
                            .expect("annals append");
                    }
                });
            }
        });
    };
    run(WARMUP_OPS.div_ceil(threads));
    let started = Instant::now();
    run(per_thread);
    let rate = (per_thread * threads) as f64 / started.elapsed().as_secs_f64();
    Arc::try_unwrap(store)
        .ok()
        .expect("threads are done")
        .close()
        .expect("closing annals");
    rate
}

fn sqlite_group_commit(path: &Path, threads: usize, total: usize, data: &[u8]) -> f64 {
    drop(Sqlite::open(path, "FULL"));
    let per_thread = total / threads;
    let run = |ops: usize| {
        std::thread::scope(|scope| {
            for t in 0..threads {
                scope.spawn(move || {
                    let mut sqlite = Sqlite::open(path, "FULL");
                    let stream = format!("thread-{t}");
                    let mut version: i64 = sqlite
                        .connection
                        .query_row(
                            "SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?1",
                            [&stream],
                            |row| row.get(0),
                        )
                        .expect("reading version");
                    for _ in 0..ops {
                        version = sqlite
                            .append(&stream, version, &[data], "request")
                            .expect("SQLite append");
                    }
                });
            }
        });
    };
    run(WARMUP_OPS.div_ceil(threads));
    let started = Instant::now();
    run(per_thread);
    (per_thread * threads) as f64 / started.elapsed().as_secs_f64()
}

fn workload_3(config: &Config, root: &Path, rows: &mut Vec<Row>) {
    let data = payload(config.payload);
    let (threads, total) = (config.threads, config.sync_ops);
    log(format!(
        "3. group commit: {total} durable appends by 1 and by {threads} threads"
    ));
    let mut rates = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..config.repeat {
        let dir = |name: &str| root.join(format!("w3-{name}-{round}"));
        let round_rates = [
            annals_group_commit(&dir("annals-1"), 1, total, &data),
            annals_group_commit(&dir("annals-n"), threads, total, &data),
            sqlite_group_commit(&dir("sqlite-1.db"), 1, total, &data),
            sqlite_group_commit(&dir("sqlite-n.db"), threads, total, &data),
        ];
        log(format!(
            "   round {round}: annals {:.0}/s and {:.0}/s, SQLite {:.0}/s and {:.0}/s",
            round_rates[0], round_rates[1], round_rates[2], round_rates[3]
        ));
        for (all, one) in rates.iter_mut().zip(round_rates) {
            all.push(one);
        }
    }
    let [annals_one, annals_many, sqlite_one, sqlite_many] = rates.map(median);
    rows.push(Row {
        workload: "3. durable single appends, 1 thread, appends/s".into(),
        annals: Some(Value::Rate(annals_one)),
        sqlite: Some(Value::Rate(sqlite_one)),
        raw: None,
        ratios: vec![format!("{:.1}× SQLite", annals_one / sqlite_one)],
        target: "(baseline)",
    });
    rows.push(Row {
        workload: format!("3. durable single appends, {threads} threads, own streams, appends/s"),
        annals: Some(Value::Rate(annals_many)),
        sqlite: Some(Value::Rate(sqlite_many)),
        raw: None,
        ratios: vec![
            format!("annals {:.2}× its 1 thread", annals_many / annals_one),
            format!("SQLite {:.2}× its 1 thread", sqlite_many / sqlite_one),
            format!("{:.1}× SQLite", annals_many / sqlite_many),
        ],
        target: "≥ 4× one thread",
    });
}

fn workload_4(config: &Config, written: &Written, rows: &mut Vec<Row>) {
    let streams: Vec<String> = (0..config.streams).map(stream_name).collect();
    let events = config.total_events();
    log(format!(
        "4. read every stream fully: {} streams",
        streams.len()
    ));
    let store = Store::open(
        &written.annals,
        Options::default().durability(Durability::None),
    )
    .expect("opening annals");
    let sqlite = Sqlite::open(&written.sqlite, "NORMAL");
    let annals_round = || {
        let started = Instant::now();
        let mut read = 0;
        for stream in &streams {
            let batch = store
                .read_stream(stream, 1, usize::MAX)
                .expect("annals read");
            read += batch.len();
            black_box(batch);
        }
        assert_eq!(read, events, "annals read every event");
        started.elapsed().as_secs_f64()
    };
    // The same reads through borrowed views: nothing copied per event.
    let scan_round = || {
        let started = Instant::now();
        let (mut read, mut bytes) = (0usize, 0usize);
        for stream in &streams {
            store
                .scan_stream(stream, 1, |event| {
                    read += 1;
                    bytes += event.data.len() + event.event_type.len() + event.stream.len();
                    std::ops::ControlFlow::Continue(())
                })
                .expect("annals scan");
        }
        black_box(bytes);
        assert_eq!(read, events, "annals scanned every event");
        started.elapsed().as_secs_f64()
    };
    let sqlite_round = || {
        let started = Instant::now();
        let mut read = 0;
        for stream in &streams {
            let batch = sqlite.read_stream(stream);
            read += batch.len();
            black_box(batch);
        }
        assert_eq!(read, events, "SQLite read every event");
        started.elapsed().as_secs_f64()
    };
    // The raw file has no index: reading a stream means reading everything.
    let raw_round = || raw_read_seconds(&written.raw, events);
    let [annals_secs, scan_secs, sqlite_secs, raw_secs] = rounds(
        config.repeat,
        [&annals_round, &scan_round, &sqlite_round, &raw_round],
        ["annals", "annals scan", "SQLite", "raw"],
    );
    drop(sqlite);
    store.close().expect("closing annals");

    let rate = |secs: f64| Value::Rate(events as f64 / secs);
    push_read_rows(
        rows,
        format!(
            "4. read every stream fully ({} streams of {}), events/s",
            config.streams,
            events / config.streams
        ),
        "4. the same, annals through `scan_stream` (borrowed views, nothing copied), events/s",
        [
            rate(annals_secs),
            rate(scan_secs),
            rate(sqlite_secs),
            rate(raw_secs),
        ],
        "raw (one scan, no index)",
    );
}

/// The two rows of a read workload: annals' owned reads and its borrowed
/// scan, each against SQLite and raw of the same run.
fn push_read_rows(
    rows: &mut Vec<Row>,
    owned: String,
    scan: &str,
    [annals, scanned, sqlite, raw]: [Value; 4],
    raw_label: &str,
) {
    for (workload, value) in [(owned, annals), (scan.to_string(), scanned)] {
        rows.push(Row {
            workload,
            annals: Some(value),
            sqlite: Some(sqlite),
            raw: Some(raw),
            ratios: vec![
                format!("{:.1}× SQLite", advantage(value, sqlite)),
                format!("{:.2}× {raw_label}", advantage(value, raw)),
            ],
            target: "≥ 3× SQLite",
        });
    }
}

fn workload_5(config: &Config, written: &Written, rows: &mut Vec<Row>) {
    let events = config.total_events();
    log(format!("5. read all {events} events in order"));
    let store = Store::open(
        &written.annals,
        Options::default().durability(Durability::None),
    )
    .expect("opening annals");
    let sqlite = Sqlite::open(&written.sqlite, "NORMAL");
    let annals_round = || {
        let started = Instant::now();
        let mut position = 0u64;
        loop {
            let page = store
                .read_all(position, READ_ALL_PAGE)
                .expect("annals read");
            let Some(last) = page.last() else { break };
            position = last.position + 1;
            black_box(page);
        }
        assert_eq!(position as usize, events, "annals read every event");
        started.elapsed().as_secs_f64()
    };
    // The same read through borrowed views: nothing copied per event.
    let scan_round = || {
        let started = Instant::now();
        let (mut read, mut bytes) = (0usize, 0usize);
        store
            .scan_all(0, |event| {
                read += 1;
                bytes += event.data.len() + event.event_type.len() + event.stream.len();
                std::ops::ControlFlow::Continue(())
            })
            .expect("annals scan");
        black_box(bytes);
        assert_eq!(read, events, "annals scanned every event");
        started.elapsed().as_secs_f64()
    };
    let sqlite_round = || {
        let started = Instant::now();
        let (mut after, mut read) = (0i64, 0usize);
        loop {
            let page = sqlite.read_all_page(after, READ_ALL_PAGE);
            let Some(last) = page.last() else { break };
            after = last.position;
            read += page.len();
            black_box(page);
        }
        assert_eq!(read, events, "SQLite read every event");
        started.elapsed().as_secs_f64()
    };
    let raw_round = || raw_read_seconds(&written.raw, events);
    let [annals_secs, scan_secs, sqlite_secs, raw_secs] = rounds(
        config.repeat,
        [&annals_round, &scan_round, &sqlite_round, &raw_round],
        ["annals", "annals scan", "SQLite", "raw"],
    );
    drop(sqlite);
    store.close().expect("closing annals");

    let rate = |secs: f64| Value::Rate(events as f64 / secs);
    push_read_rows(
        rows,
        format!("5. read all events in order (pages of {READ_ALL_PAGE}), events/s"),
        "5. the same, annals through `scan_all` (borrowed views, nothing copied), events/s",
        [
            rate(annals_secs),
            rate(scan_secs),
            rate(sqlite_secs),
            rate(raw_secs),
        ],
        "raw",
    );
}

fn raw_read_seconds(path: &Path, events: usize) -> f64 {
    let started = Instant::now();
    let (records, _) = raw_read_all(path);
    assert_eq!(records, events, "raw read every record");
    started.elapsed().as_secs_f64()
}

/// Memory of this process from /proc/self/statm, in bytes:
/// (resident, resident file-backed or shared).
fn statm() -> (u64, u64) {
    let text = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let fields: Vec<u64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let page = 4096;
    match fields.as_slice() {
        [_, resident, shared, ..] => (resident * page, shared * page),
        _ => (0, 0),
    }
}

/// Runs in a fresh process (see [`CHILD_OPEN_VAR`]): opens the store three
/// times and prints `key=value` lines for the parent.
fn child_open(dir: &Path) {
    let (mut seconds, mut cpu_seconds) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let before = statm();
        let cpu_before = thread_cpu_seconds();
        let started = Instant::now();
        let store =
            Store::open(dir, Options::default().durability(Durability::None)).expect("open");
        seconds.push(started.elapsed().as_secs_f64());
        cpu_seconds.push(thread_cpu_seconds() - cpu_before);
        if round == 0 {
            let after = statm();
            let anonymous = (after.0 - after.1) as i64 - (before.0 as i64 - before.1 as i64);
            println!("events={}", store.next_position());
            println!("streams={}", store.stream_count());
            println!("index_heap_bytes={}", store.index_heap_bytes());
            println!("rss_anonymous_delta_bytes={anonymous}");
            println!("rss_total_delta_bytes={}", after.0 as i64 - before.0 as i64);
        }
        store.close().expect("close");
    }
    println!("open_seconds_median={}", median(seconds));
    println!("open_cpu_seconds_median={}", median(cpu_seconds));
}

/// Time this thread has spent on a CPU (from /proc/thread-self/schedstat,
/// in nanoseconds): unlike wall time, it does not grow while other tenants
/// of a shared machine hold the CPU.
fn thread_cpu_seconds() -> f64 {
    fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

struct OpenMeasurement {
    events: f64,
    streams: f64,
    index_heap_bytes: f64,
    rss_anonymous_delta_bytes: f64,
    open_seconds: f64,
    open_cpu_seconds: f64,
}

fn measure_open(dir: &Path) -> OpenMeasurement {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_OPEN_VAR, dir)
        .output()
        .expect("running the open measurement");
    assert!(
        output.status.success(),
        "open measurement failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let get = |key: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("open measurement did not report {key}: {text}"))
    };
    OpenMeasurement {
        events: get("events"),
        streams: get("streams"),
        index_heap_bytes: get("index_heap_bytes"),
        rss_anonymous_delta_bytes: get("rss_anonymous_delta_bytes"),
        open_seconds: get("open_seconds_median"),
        open_cpu_seconds: get("open_cpu_seconds_median"),
    }
}

fn workload_6(config: &Config, root: &Path, written: &Written, rows: &mut Vec<Row>) {
    log("6. open (index rebuild) and index memory");
    let wide = measure_open(&written.annals);

    // The worst case the target allows: streams of exactly 10 events.
    let short_dir = root.join("w6-annals-short-streams");
    {
        let data = payload(config.payload);
        let store = Store::open(&short_dir, Options::default().durability(Durability::None))
            .expect("opening annals");
        for s in 0..config.total_events() / 10 {
            let batch: Vec<EventData> = (0..10)
                .map(|_| EventData::new(EVENT_TYPE, data.clone()))
                .collect();
            store
                .append(&stream_name(s), ExpectedVersion::NoStream, &batch)
                .expect("annals append");
        }
        store.close().expect("closing annals");
    }
    let short = measure_open(&short_dir);

    // SQLite has no index to rebuild: opening is O(1). Reported for contrast.
    let started = Instant::now();
    let sqlite = Sqlite::open(&written.sqlite, "NORMAL");
    let count: i64 = sqlite
        .connection
        .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
        .expect("counting");
    let sqlite_open = started.elapsed().as_secs_f64();
    drop(sqlite);
    log(format!(
        "   SQLite open + COUNT(*) of {count} rows: {:.3} s",
        sqlite_open
    ));

    for m in [&wide, &short] {
        let per_stream = m.events / m.streams;
        let rebuild = Value::Rate(m.events / m.open_seconds);
        rows.push(Row {
            workload: format!(
                "6. open: index rebuild, {} events in {} streams of {per_stream:.0}, events/s",
                m.events, m.streams
            ),
            annals: Some(rebuild),
            sqlite: None,
            raw: None,
            ratios: vec![format!(
                "{:.3} s to open; {:.2} M events per CPU-second ({:.3} s on CPU)",
                m.open_seconds,
                m.events / m.open_cpu_seconds / 1e6,
                m.open_cpu_seconds
            )],
            target: "≥ 5 M events/s",
        });
        rows.push(Row {
            workload: format!(
                "6. index memory, {per_stream:.0} events per stream: index_heap_bytes / event (RSS anonymous delta / event)"
            ),
            annals: Some(Value::Amount(m.index_heap_bytes / m.events, "B/event")),
            sqlite: None,
            raw: None,
            ratios: vec![format!(
                "RSS: {:.2} B/event",
                m.rss_anonymous_delta_bytes / m.events
            )],
            target: "≤ 16 B/event",
        });
    }
}

/// Batch sizes of workload 7.
const APPEND_BATCHES: [usize; 3] = [1, 10, 100];

/// Page sizes of workload 8.
const READ_PAGES: [usize; 3] = [100, 1_000, 100_000];

fn remove_sqlite(path: &Path) {
    remove(path);
    remove(&PathBuf::from(format!("{}-wal", path.display())));
    remove(&PathBuf::from(format!("{}-shm", path.display())));
}

/// Appends at batch sizes 1, 10 and 100 (issue 15): annals' owned `append`
/// and borrowed `append_ref`, SQLite and raw, each round writing fresh stores.
fn workload_7(config: &Config, root: &Path, rows: &mut Vec<Row>) {
    let data = payload(config.payload);
    let streams: Vec<String> = (0..config.streams).map(stream_name).collect();
    for batch in APPEND_BATCHES {
        let events = (config.events / batch * batch) as f64;
        log(format!(
            "7. append, batches of {batch}: {events} events, {} streams, {} rounds",
            config.streams, config.repeat
        ));
        let path = |name: &str| root.join(format!("w7-{batch}-{name}"));
        let annals = |name: &str, api: AppendApi| {
            let seconds = annals_batched(config, &path(name), &data, &streams, batch, api);
            remove(&path(name));
            seconds
        };
        let owned = || annals("owned", AppendApi::Owned);
        let borrowed = || annals("borrowed", AppendApi::Borrowed);
        let sqlite = || {
            let seconds = sqlite_batched(config, &path("sqlite.db"), &data, &streams, batch);
            remove_sqlite(&path("sqlite.db"));
            seconds
        };
        let raw = || {
            let seconds = raw_batched(config, &path("raw.log"), &data, batch);
            remove(&path("raw.log"));
            seconds
        };
        let seconds = rounds(
            config.repeat,
            [&owned, &borrowed, &sqlite, &raw],
            ["annals append", "annals append_ref", "SQLite", "raw"],
        );
        let [owned, borrowed, sqlite, raw] = seconds.map(|s| Value::Rate(events / s));
        let target = match batch {
            1 => "≥ 20× SQLite",
            10 => "≥ 30× SQLite, ≥ 0.5× raw",
            _ => "(reported)",
        };
        for (workload, value) in [
            (
                format!("7. append, batches of {batch}, owned `append` (no sync), events/s"),
                owned,
            ),
            (
                format!("7. append, batches of {batch}, borrowed `append_ref` (no sync), events/s"),
                borrowed,
            ),
        ] {
            rows.push(Row {
                workload,
                annals: Some(value),
                sqlite: Some(sqlite),
                raw: Some(raw),
                ratios: vec![
                    format!("{:.1}× SQLite", advantage(value, sqlite)),
                    format!("{:.2}× raw", advantage(value, raw)),
                ],
                target,
            });
        }
    }
}

/// Streams written by one append in workload 10.
const MULTI_STREAMS: usize = 2;

/// Workload 10 (issue 15): an atomic append to [`MULTI_STREAMS`] streams,
/// `config.batch / MULTI_STREAMS` events each, with an expected version for
/// every stream (annals' `append_multi` against one SQLite transaction that
/// checks both versions), beside annals' one-stream batch of the same size
/// in the same run.
fn workload_10(config: &Config, root: &Path, rows: &mut Vec<Row>) {
    let data = payload(config.payload);
    let streams: Vec<String> = (0..config.streams).map(stream_name).collect();
    assert!(
        config.streams >= MULTI_STREAMS,
        "workload 10 writes {MULTI_STREAMS} different streams per append"
    );
    let per_stream = (config.batch / MULTI_STREAMS).max(1);
    let batch = per_stream * MULTI_STREAMS;
    let appends = config.events / batch;
    let events = (appends * batch) as f64;
    log(format!(
        "10. atomic append to {MULTI_STREAMS} streams, {per_stream} events each: {events} events, \
         {} streams, {} rounds",
        config.streams, config.repeat
    ));
    // Append `a` writes streams `a % n` and `(a + n / 2) % n`: different
    // streams, each written as often as the others.
    let pair = |a: usize| {
        let n = streams.len();
        [a % n, (a + n / 2) % n]
    };
    let path = |name: &str| root.join(format!("w10-{name}"));
    let multi = || {
        let options = Options::default()
            .durability(Durability::None)
            .segment_size_bytes(config.segment_bytes);
        let store = Store::open(path("annals"), options).expect("opening annals");
        let mut versions = vec![0u64; streams.len()];
        let started = Instant::now();
        for a in 0..appends {
            let correlation = correlation_id(a);
            let events: Vec<EventDataRef<'_>> = (0..per_stream)
                .map(|_| EventDataRef::new(EVENT_TYPE, &data).with_correlation_id(&correlation))
                .collect();
            let [first, second] = pair(a);
            let written = store
                .append_multi(
                    &MultiStreamAppend::new()
                        .write_ref(
                            &streams[first],
                            ExpectedVersion::Exact(versions[first]),
                            &events,
                        )
                        .write_ref(
                            &streams[second],
                            ExpectedVersion::Exact(versions[second]),
                            &events,
                        ),
                )
                .expect("annals append_multi");
            versions[first] = written.streams[0].result.last_version;
            versions[second] = written.streams[1].result.last_version;
        }
        let seconds = started.elapsed().as_secs_f64();
        store.close().expect("closing annals");
        remove(&path("annals"));
        seconds
    };
    let one_stream = || {
        let seconds = annals_batched(
            config,
            &path("annals-one"),
            &data,
            &streams,
            batch,
            AppendApi::Borrowed,
        );
        remove(&path("annals-one"));
        seconds
    };
    let sqlite = || {
        let mut sqlite = Sqlite::open(&path("sqlite.db"), "NORMAL");
        let mut versions = vec![0i64; streams.len()];
        let payloads: Vec<&[u8]> = vec![&data; per_stream];
        let started = Instant::now();
        for a in 0..appends {
            let [first, second] = pair(a);
            let written = sqlite
                .append_to_streams(
                    &[
                        (&streams[first], versions[first], &payloads),
                        (&streams[second], versions[second], &payloads),
                    ],
                    &correlation_id(a),
                )
                .expect("SQLite append");
            versions[first] = written[0];
            versions[second] = written[1];
        }
        let seconds = started.elapsed().as_secs_f64();
        drop(sqlite);
        remove_sqlite(&path("sqlite.db"));
        seconds
    };
    let seconds = rounds(
        config.repeat,
        [&multi, &one_stream, &sqlite],
        [
            "annals append_multi",
            "annals one-stream append_ref",
            "SQLite",
        ],
    );
    let [multi, one_stream, sqlite] = seconds.map(|s| Value::Rate(events / s));
    rows.push(Row {
        workload: format!(
            "10. atomic append to {MULTI_STREAMS} streams, {per_stream} events each, \
             `append_multi` (no sync), events/s"
        ),
        annals: Some(multi),
        sqlite: Some(sqlite),
        raw: None,
        ratios: vec![
            format!("{:.1}× SQLite", advantage(multi, sqlite)),
            format!(
                "{:.2}× annals' one-stream batch of {batch}",
                advantage(multi, one_stream)
            ),
        ],
        target: "(reported)",
    });
}

/// Owned reads in pages of 100, 1,000 and 100,000 events (issue 15): the
/// whole log by position (`read_all`) and every stream by version
/// (`read_stream`), each page a separate call, against SQLite's `LIMIT`
/// pages of the same size.
fn workload_8(config: &Config, written: &Written, rows: &mut Vec<Row>) {
    let streams: Vec<String> = (0..config.streams).map(stream_name).collect();
    let events = config.total_events();
    let store = Store::open(
        &written.annals,
        Options::default().durability(Durability::None),
    )
    .expect("opening annals");
    let sqlite = Sqlite::open(&written.sqlite, "NORMAL");
    for page_size in READ_PAGES {
        log(format!(
            "8. owned reads in pages of {page_size}: the log, then every stream"
        ));
        let annals_log = || {
            let started = Instant::now();
            let read = read_in_pages(page_size, 0, |position| {
                let page = store.read_all(position, page_size).expect("annals read");
                let next = page.last().map(|e| e.position + 1);
                (page, next)
            });
            assert_eq!(read, events, "annals read every event");
            started.elapsed().as_secs_f64()
        };
        let sqlite_log = || {
            let started = Instant::now();
            let read = read_in_pages(page_size, 0, |after| {
                let page = sqlite.read_all_page(after, page_size);
                let next = page.last().map(|e| e.position);
                (page, next)
            });
            assert_eq!(read, events, "SQLite read every event");
            started.elapsed().as_secs_f64()
        };
        let annals_streams = || {
            let started = Instant::now();
            let mut read = 0;
            for stream in &streams {
                read += read_in_pages(page_size, 1, |from| {
                    let page = store
                        .read_stream(stream, from, page_size)
                        .expect("annals read");
                    let next = page.last().map(|e| e.version + 1);
                    (page, next)
                });
            }
            assert_eq!(read, events, "annals read every event");
            started.elapsed().as_secs_f64()
        };
        let sqlite_streams = || {
            let started = Instant::now();
            let mut read = 0;
            for stream in &streams {
                read += read_in_pages(page_size, 1, |from| {
                    let page = sqlite.read_stream_page(stream, from, page_size);
                    let next = page.last().map(|e| e.version + 1);
                    (page, next)
                });
            }
            assert_eq!(read, events, "SQLite read every event");
            started.elapsed().as_secs_f64()
        };
        let [annals_log, sqlite_log, annals_streams, sqlite_streams] = rounds(
            config.repeat,
            [&annals_log, &sqlite_log, &annals_streams, &sqlite_streams],
            [
                "annals log",
                "SQLite log",
                "annals streams",
                "SQLite streams",
            ],
        );
        let rate = |secs: f64| Value::Rate(events as f64 / secs);
        for (workload, annals, sqlite) in [
            (
                format!("8. read the log, owned `read_all` pages of {page_size}, events/s"),
                annals_log,
                sqlite_log,
            ),
            (
                format!(
                    "8. read every stream ({} of {}), owned `read_stream` pages of {page_size}, events/s",
                    config.streams,
                    events / config.streams
                ),
                annals_streams,
                sqlite_streams,
            ),
        ] {
            let (annals, sqlite) = (rate(annals), rate(sqlite));
            rows.push(Row {
                workload,
                annals: Some(annals),
                sqlite: Some(sqlite),
                raw: None,
                ratios: vec![format!("{:.1}× SQLite", advantage(annals, sqlite))],
                target: "≥ 2× SQLite",
            });
        }
    }
    drop(sqlite);
    store.close().expect("closing annals");
}

/// The iterator API (issue 15): `Store::read(ReadRequest)` over the whole
/// log and over every stream, each event handed out owned, one at a time,
/// against one SQLite query per read whose rows are decoded one at a time.
fn workload_9(config: &Config, written: &Written, rows: &mut Vec<Row>) {
    let streams: Vec<String> = (0..config.streams).map(stream_name).collect();
    let events = config.total_events();
    log("9. iterator reads (`Store::read`): the log, then every stream");
    let store = Store::open(
        &written.annals,
        Options::default().durability(Durability::None),
    )
    .expect("opening annals");
    let sqlite = Sqlite::open(&written.sqlite, "NORMAL");
    let annals_log = || {
        let started = Instant::now();
        let mut read = 0;
        for event in store.read(ReadRequest::all()) {
            black_box(event.expect("annals read"));
            read += 1;
        }
        assert_eq!(read, events, "annals read every event");
        started.elapsed().as_secs_f64()
    };
    let sqlite_log = || {
        let started = Instant::now();
        let read = sqlite.for_each_event(None, |event| {
            black_box(event);
        });
        assert_eq!(read, events, "SQLite read every event");
        started.elapsed().as_secs_f64()
    };
    let annals_streams = || {
        let started = Instant::now();
        let mut read = 0;
        for stream in &streams {
            for event in store.read(ReadRequest::stream(stream.as_str())) {
                black_box(event.expect("annals read"));
                read += 1;
            }
        }
        assert_eq!(read, events, "annals read every event");
        started.elapsed().as_secs_f64()
    };
    let sqlite_streams = || {
        let started = Instant::now();
        let mut read = 0;
        for stream in &streams {
            read += sqlite.for_each_event(Some(stream), |event| {
                black_box(event);
            });
        }
        assert_eq!(read, events, "SQLite read every event");
        started.elapsed().as_secs_f64()
    };
    let [annals_log, sqlite_log, annals_streams, sqlite_streams] = rounds(
        config.repeat,
        [&annals_log, &sqlite_log, &annals_streams, &sqlite_streams],
        [
            "annals log",
            "SQLite log",
            "annals streams",
            "SQLite streams",
        ],
    );
    drop(sqlite);
    store.close().expect("closing annals");
    let rate = |secs: f64| Value::Rate(events as f64 / secs);
    for (workload, annals, sqlite) in [
        (
            "9. read the log through `Store::read(ReadRequest::all())`, events/s".to_string(),
            annals_log,
            sqlite_log,
        ),
        (
            format!(
                "9. read every stream through `Store::read(ReadRequest::stream(..))` ({} of {}), events/s",
                config.streams,
                events / config.streams
            ),
            annals_streams,
            sqlite_streams,
        ),
    ] {
        let (annals, sqlite) = (rate(annals), rate(sqlite));
        rows.push(Row {
            workload,
            annals: Some(annals),
            sqlite: Some(sqlite),
            raw: None,
            ratios: vec![format!(
                "{:.1}× SQLite (one lazy query)",
                advantage(annals, sqlite)
            )],
            target: "≥ 2× SQLite",
        });
    }
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_OPEN_VAR) {
        child_open(Path::new(&dir));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass
    // nothing useful either: only run when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("compare: run with `cargo bench --bench compare`");
        return;
    }
    let config = Config::from_env();
    fs::create_dir_all(&config.dir).expect("creating bench dir");
    let root = tempfile::Builder::new()
        .prefix("annals-bench-")
        .tempdir_in(&config.dir)
        .expect("creating bench dir");
    log(format!("machine: {}", machine()));
    log(format!("stores in {}", root.path().display()));
    let started = Instant::now();
    let mut rows = Vec::new();

    let needs_written = [1, 4, 5, 6, 8, 9].iter().any(|&w| config.runs(w));
    let written = if needs_written {
        let mut scratch = Vec::new();
        let written = workload_1(&config, root.path(), &mut scratch);
        if config.runs(1) {
            rows.extend(scratch);
        }
        Some(written)
    } else {
        None
    };
    if config.runs(2) {
        workload_2(&config, root.path(), &mut rows);
    }
    if config.runs(3) {
        workload_3(&config, root.path(), &mut rows);
    }
    if let Some(written) = &written {
        if config.runs(4) {
            workload_4(&config, written, &mut rows);
        }
        if config.runs(5) {
            workload_5(&config, written, &mut rows);
        }
        if config.runs(6) {
            workload_6(&config, root.path(), written, &mut rows);
        }
        if config.runs(8) {
            workload_8(&config, written, &mut rows);
        }
        if config.runs(9) {
            workload_9(&config, written, &mut rows);
        }
    }
    if config.runs(7) {
        workload_7(&config, root.path(), &mut rows);
    }
    if config.runs(10) {
        workload_10(&config, root.path(), &mut rows);
    }
    println!("machine: {}", machine());
    println!("SQLite {} (bundled by rusqlite)", rusqlite::version());
    print_table(&rows);
    log(format!(
        "total time {:.0} s",
        started.elapsed().as_secs_f64()
    ));
}
