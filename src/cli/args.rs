//! The command line grammar (clap derive). Every command takes the store
//! directory as its first argument.

use std::path::PathBuf;

use annals::{Durability, ExpectedVersion};
use clap::{Args, Parser, Subcommand, ValueEnum};

use super::store_dir::Creation;

/// Milliseconds between background syncs under `--durability periodic`.
pub const PERIODIC_INTERVAL_MS: u64 = 100;

/// annals: an embedded event store (append-only segmented log).
///
/// Exit codes: 0 success, 1 other errors, 2 usage, 3 wrong expected version,
/// 4 corruption found, 5 the store is locked by another writer, 6 the
/// stream was deleted, 7 `erase` of an unknown or already erased subject.
#[derive(Debug, Parser)]
#[command(name = "annals", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Open the store by reading and checking every segment and rebuilding
    /// its index from the log, ignoring the index checkpoint and index
    /// files (a writer then writes them anew). Without it, open loads the
    /// checkpoint and reads only the log after it.
    #[arg(long, global = true)]
    pub rebuild_index: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Append one event to a stream (creates the store in an empty or new directory).
    Append(AppendArgs),
    /// Append JSON lines read from stdin, one atomic append per line, acknowledging each.
    #[command(after_long_help = IMPORT_LONG_HELP)]
    Import(ImportArgs),
    /// Print events of a stream or of the whole log as JSON lines (or human lines with --pretty).
    Read(ReadArgs),
    /// Print events as JSON lines (or human lines with --pretty) and keep following new ones until interrupted.
    Tail(TailArgs),
    /// Check every checksum, batch, position, version and the hash chain (changes nothing).
    Verify(VerifyArgs),
    /// Print counts, sizes and the time range of a store.
    Stats(StatsArgs),
    /// Write every event as JSON lines, in log order, in the format `import` reads.
    Export(ExportArgs),
    /// Measure append, read and open speed on this machine.
    Bench(BenchArgs),
    /// Erase a data subject: record the erasure in `$erasures`, then destroy its key (crypto-shredding).
    Erase(EraseArgs),
    /// Find the first damaged spot of a store and say what cutting it would remove (cut with --yes).
    Repair(RepairArgs),
    /// Retire whole sealed segments before a date or position, deleting or archiving them (with --yes; a dry run without).
    Retire(RetireArgs),
    /// Hide a stream's events before a version from stream reads, for good (an event in the log records it).
    Truncate(TruncateArgs),
    /// Delete a stream for good: reading, appending to or recreating it fails from now on (a tombstone event in the log records it).
    DeleteStream(DeleteStreamArgs),
    /// Create an Ed25519 key pair for signing checkpoints (the signer key in FILE, mode 0600; the verifier key in FILE.pub).
    Keygen(KeygenArgs),
    /// Sign a checkpoint (C2SP signed note: origin, tree size, Merkle root) of the store's log now.
    Checkpoint(CheckpointArgs),
    /// Print an inclusion or consistency proof of the store's Merkle tree as JSON.
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Check a proof against signed checkpoints and a verifier key, offline (no store): exit 0 when it holds, 4 when it does not.
    CheckProof(CheckProofArgs),
    /// Publish events, in log order, to a NATS JetStream stream, exactly once across restarts (feature `nats`).
    #[cfg(feature = "nats")]
    Ship(ShipArgs),
    /// Rebuild a store from a JetStream stream filled by `ship` (feature `nats`).
    #[cfg(feature = "nats")]
    Receive(ReceiveArgs),
    /// Archive sealed segments to object storage, write-once, or restore them (feature `object-storage`).
    #[cfg(feature = "object-storage")]
    #[command(subcommand)]
    Archive(ArchiveCommand),
}

#[cfg(feature = "object-storage")]
#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Upload every sealed segment not yet archived, oldest first, with create-only puts (safe to interrupt and rerun).
    Push(ArchivePushArgs),
    /// Restore the archived segments into a directory that annals opens read-only.
    Pull(ArchivePullArgs),
}

#[cfg(feature = "object-storage")]
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("retain").args(["retain_until", "retain_years"])))]
pub struct ArchivePushArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// The archive: `s3://BUCKET/PREFIX` (credentials and endpoint from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT_URL, AWS_ALLOW_HTTP) or `file:///DIR`.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Object lock retention (COMPLIANCE mode) until this time
    /// (`YYYY-MM-DDTHH:MM:SSZ`, UTC); the bucket must have object lock enabled.
    #[arg(long, value_name = "TIME")]
    pub retain_until: Option<String>,
    /// Object lock retention (COMPLIANCE mode) for this many years of 365.25 days from now.
    #[arg(long, value_name = "N")]
    pub retain_years: Option<u32>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "object-storage")]
#[derive(Debug, Args)]
pub struct ArchivePullArgs {
    /// The archive: `s3://BUCKET/PREFIX` or `file:///DIR`.
    pub from: String,
    /// The directory to restore the segments into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key's name: usually the log's origin (for example `example.com/log`).
    #[arg(long)]
    pub name: String,
    /// Where to write the signer key (a secret, mode 0600); the verifier
    /// key goes to the same path with `.pub` added. Neither may exist.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The store directory (opened read-only).
    pub dir: PathBuf,
    /// The signer key file written by `keygen`.
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
    /// The log's name in the checkpoint (for example `example.com/log`).
    #[arg(long)]
    pub origin: String,
    /// Write the note to this file (replacing it) and print a JSON summary,
    /// instead of printing the note.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Prove that the event at a position is in the tree of a checkpoint (or the current tree).
    Inclusion(ProveInclusionArgs),
    /// Prove that the tree of a newer checkpoint extends the tree of an older one.
    Consistency(ProveConsistencyArgs),
}

#[derive(Debug, Args)]
pub struct ProveInclusionArgs {
    /// The store directory (opened read-only).
    pub dir: PathBuf,
    /// The event's global position.
    #[arg(long)]
    pub position: u64,
    /// A signed checkpoint of the store: the proof is for its tree size.
    /// Without it, the current tree's.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// The directory the store's retired segments were archived into
    /// (`retire --archive`): read when the proof needs retired events (a
    /// retired position, or a checkpoint older than the retention cut).
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProveConsistencyArgs {
    /// The store directory (opened read-only).
    pub dir: PathBuf,
    /// The older signed checkpoint.
    #[arg(long, value_name = "OLD_CHECKPOINT")]
    pub from: PathBuf,
    /// The newer signed checkpoint.
    #[arg(long, value_name = "NEW_CHECKPOINT")]
    pub to: PathBuf,
    /// The directory the store's retired segments were archived into
    /// (`retire --archive`): read when the older checkpoint is older than
    /// the retention cut.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckProofArgs {
    /// The proof JSON (from `prove`).
    #[arg(long, value_name = "FILE")]
    pub proof: PathBuf,
    /// The signed checkpoint: of the inclusion proof's tree, or the newer
    /// one of a consistency proof.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// The older signed checkpoint: given, the proof is a consistency proof.
    #[arg(long, value_name = "FILE")]
    pub old_checkpoint: Option<PathBuf>,
    /// The log's verifier key file (`keygen`'s FILE.pub).
    #[arg(long, value_name = "PUBFILE")]
    pub key: PathBuf,
}

/// Options of commands that open the store for writing.
#[derive(Debug, Args)]
pub struct WriterOptions {
    /// When appends are durable: `always` (acknowledged only once on disk),
    /// `periodic` (a background sync every 100 ms) or `none` (the page
    /// cache; survives a crash of this process, not of the machine).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Always)]
    pub durability: DurabilityArg,
    /// Size of segment files this command creates (a multiple of 4096
    /// between 64 KiB and 2 GiB). Existing segments keep their size.
    /// Without it (or at the default) an existing store keeps the size it
    /// was created with; another size is recorded for later writers.
    #[arg(long, default_value_t = annals::Options::default().segment_size_bytes)]
    pub segment_size_bytes: u64,
    /// Create the store directory and any missing parent directories.
    /// Without it, a new store is created only in an empty directory or in
    /// a missing one whose parent exists.
    #[arg(long)]
    pub create: bool,
}

impl WriterOptions {
    pub fn options(&self) -> annals::Options {
        annals::Options::default()
            .durability(self.durability.into())
            .segment_size_bytes(self.segment_size_bytes)
    }

    /// How the store may be created.
    pub fn creation(&self) -> Creation {
        Creation {
            create_parents: self.create,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    Always,
    Periodic,
    None,
}

impl From<DurabilityArg> for Durability {
    fn from(value: DurabilityArg) -> Durability {
        match value {
            DurabilityArg::Always => Durability::Always,
            DurabilityArg::Periodic => Durability::Periodic {
                interval_ms: PERIODIC_INTERVAL_MS,
            },
            DurabilityArg::None => Durability::None,
        }
    }
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// The stream to append to.
    #[arg(long)]
    pub stream: String,
    /// The event type.
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: String,
    /// The event data as JSON (`-5`, `'{"total": 12}'`), or `@FILE` to read
    /// it from a file (`@-`: from stdin); stored as MessagePack (content
    /// type "msgpack").
    #[arg(long, allow_hyphen_values = true)]
    pub data: String,
    /// `any`, `no-stream`, `exists`, or the stream's current version N.
    #[arg(long, default_value = "any", value_parser = parse_expected_version)]
    pub expected_version: ExpectedVersion,
    /// Make the append idempotent: if an append with this command id is
    /// already in the log, nothing is written and its result is printed.
    #[arg(long)]
    pub command_id: Option<String>,
    /// The correlation id: what ties this event to the others of one
    /// request or workflow (stored as is; `read` filters do not use it).
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// The causation id: the id of the command or event that caused this
    /// one (stored as is).
    #[arg(long)]
    pub causation_id: Option<String>,
    /// Metadata as JSON, or `@FILE` (`@-`: stdin); stored as its compact
    /// JSON text.
    #[arg(long, allow_hyphen_values = true)]
    pub metadata: Option<String>,
    /// The event id (a UUID); generated when absent.
    #[arg(long)]
    pub id: Option<String>,
    /// The data subject (a pseudonymous id): the data is sealed with the
    /// subject's key, and `annals erase --subject` makes it unreadable.
    #[arg(long)]
    pub subject: Option<String>,
    #[command(flatten)]
    pub writer: WriterOptions,
}

#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// The data subject to erase (as named on its events).
    #[arg(long)]
    pub subject: String,
    /// Why, recorded in the erasure event (for example a request number).
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub writer: WriterOptions,
}

#[derive(Debug, Args)]
pub struct TruncateArgs {
    /// The store directory (an existing store).
    pub dir: PathBuf,
    /// The stream to truncate (it must exist).
    pub stream: String,
    /// Stream reads start at this version from now on; from 1 to the
    /// stream's version + 1 (which hides every event so far), and not
    /// below a point it is already truncated at.
    #[arg(long, value_name = "VERSION")]
    pub before: u64,
    /// When the metadata event is durable (as for `append`).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Always)]
    pub durability: DurabilityArg,
}

#[derive(Debug, Args)]
pub struct DeleteStreamArgs {
    /// The store directory (an existing store).
    pub dir: PathBuf,
    /// The stream to delete (it must exist). Deletion is permanent: the
    /// name can never be used again.
    pub stream: String,
    /// `any`, `no-stream`, `exists`, or the stream's current version N:
    /// the deletion happens only if the stream is there.
    #[arg(long, default_value = "any", value_parser = parse_expected_version)]
    pub expected_version: ExpectedVersion,
    /// When the tombstone is durable (as for `append`).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Always)]
    pub durability: DurabilityArg,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The store directory (a new store is created in an empty or new
    /// directory).
    pub dir: PathBuf,
    #[command(flatten)]
    pub writer: WriterOptions,
    /// Under `--durability always`: lines share one sync per group of about
    /// N lines. Each line is acknowledged after the sync that covers it.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub sync_every_lines: usize,
    /// Under `--durability always`: sync at the latest MS milliseconds
    /// after a line was appended. (A group also ends when the input has
    /// nothing more to read right now.)
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub sync_every_ms: u64,
    /// Make the import resumable: each line without its own `command_id` is
    /// appended idempotently with the command id `ID:LINE`, so that running
    /// the same input again with the same ID appends every line exactly
    /// once (lines already in the store are acknowledged, not repeated).
    /// Costs about 130 bytes of memory per line in every later open of
    /// the store (the store keeps every command id).
    #[arg(long, value_name = "ID")]
    pub import_id: Option<String>,
    /// Read a postgres-es `events` table instead (JSON lines of its seven
    /// columns; see docs/cqrs-es.md, "Migrating from postgres-es"): each
    /// aggregate's rows become its stream, appended in order; a rerun skips
    /// the rows already imported. Needs the cargo feature `cqrs-es`.
    #[cfg(feature = "cqrs-es")]
    #[arg(long)]
    pub postgres_es: bool,
}

/// The line format and durability notes of `annals import --help`.
const IMPORT_LONG_HELP: &str = r#"Input: one JSON object per line (blank lines are skipped), each one atomic append:

  {"stream":"order-1","type":"Placed","data":{"total":12}}
  {"stream":"order-1","events":[{"type":"Paid","data":12},{"type":"Shipped","data":null}],"expected_version":1}

Keys of a line: stream (required); type and data (one event) or events (a
batch: a list of objects with type and data); expected_version ("any",
"no-stream", "exists" or a number; default "any"); command_id (idempotent
append). Keys of an event (or of the line, for one event): data_base64 (exact
bytes, instead of data), content_type, metadata or metadata_base64,
correlation_id, causation_id, id (a UUID), timestamp (RFC 3339, UTC). Lines
written by `annals export` also carry version and position: such a line
expects its stream at version - 1, so importing an export twice is safe.
Unknown keys are refused. Full reference: docs/cli.md.

Output: one acknowledgement per line, once it is appended and durable:
  {"line":1,"stream":"order-1","first_version":1,"last_version":1,"position":0,"last_position":0}
The first failing line stops the import (stderr: "line N: ..."; exit 1, or 3
for a wrong expected version); every line before it stays committed.

Durability for bulk loads: under `always` (the default) each line is its own
append, but lines share syncs: one per --sync-every-lines lines or
--sync-every-ms milliseconds, and each acknowledgement is printed only after
the sync that covers it, so a bulk load runs near disk speed and every
acknowledged line survives a power cut. `periodic` acknowledges at once and
syncs every 100 ms (up to 100 ms of acknowledged lines can be lost in a power
cut); `none` leaves syncing to the end of the import (acknowledged lines
survive a crash of this process, not of the machine).

Resuming: lines carrying their event's version and id (an export) or a
command_id are recognized when imported again. For other lines, pass
--import-id: rerun the same input with the same ID after an interruption and
each line is appended exactly once, even one that was committed but never
acknowledged."#;

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// Read this stream (by version) instead of the whole log (by position).
    #[arg(long)]
    pub stream: Option<String>,
    /// First version (with --stream) or position to read; by default the
    /// first event, or the newest with --backward.
    #[arg(long)]
    pub from: Option<u64>,
    /// Read newest first.
    #[arg(long)]
    pub backward: bool,
    /// Print at most this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Only events of this type (repeat for several types).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this prefix.
    #[arg(long, visible_alias = "stream-prefix")]
    pub category: Option<String>,
    #[command(flatten)]
    pub view: LogViewArgs,
}

/// How `read` and `tail` print events, and the filters for logs.
#[derive(Debug, Args)]
pub struct LogViewArgs {
    /// One human line per event: time, level, stream, message, fields;
    /// coloured when stdout is a terminal (unless NO_COLOR is set).
    #[arg(long, conflicts_with = "json")]
    pub pretty: bool,
    /// JSON lines, one per event (the default).
    #[arg(long)]
    pub json: bool,
    /// Only log events at this level or a more severe one (trace, debug,
    /// info, warn, error): events whose type starts with a level, as
    /// `annals::tracing` writes them.
    #[arg(long, value_parser = parse_level)]
    pub level: Option<LogLevel>,
    /// Only events whose data (a map) has this field with this value: text
    /// as is, other values as JSON (`n=3`, `ok=true`). Repeat: all must match.
    #[arg(long = "field", value_name = "KEY=VALUE", value_parser = parse_field)]
    pub fields: Vec<(String, String)>,
    /// Only events at or after this time: RFC 3339 in UTC
    /// (2026-11-30T12:00:00Z) or an age (30s, 10m, 2h, 1d). Found with the
    /// timestamp index.
    #[arg(long, value_name = "TIME|AGE", value_parser = parse_time_or_age)]
    pub since: Option<u64>,
    /// Only events before this time (RFC 3339 in UTC, or an age); `tail`
    /// ends when it reaches it.
    #[arg(long, value_name = "TIME|AGE", value_parser = parse_time_or_age)]
    pub until: Option<u64>,
}

/// Log levels, least severe first (their order is the filter's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    /// The level's name as the first word of an event type (`"INFO"`).
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

fn parse_level(text: &str) -> Result<LogLevel, String> {
    LogLevel::ALL
        .into_iter()
        .find(|level| level.name().eq_ignore_ascii_case(text))
        .ok_or_else(|| format!("{text:?} is not a level: use trace, debug, info, warn or error"))
}

fn parse_field(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn parse_time_or_age(text: &str) -> Result<u64, String> {
    super::timestamp::parse_time_or_age(text, super::timestamp::now_ns())
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// Start at this global position (default 0: the whole log, then new events).
    #[arg(long, conflicts_with = "from_end")]
    pub from: Option<u64>,
    /// Print only events appended from now on.
    #[arg(long)]
    pub from_end: bool,
    /// Only events of this type (repeat for several types).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this prefix.
    #[arg(long, visible_alias = "stream-prefix")]
    pub category: Option<String>,
    #[command(flatten)]
    pub view: LogViewArgs,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// Write to this file instead of stdout (the file must not exist).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Export every event that can still be verified, also from a store
    /// that refuses to open: damaged ranges are skipped and listed on stderr
    /// (exit 4 when there were any). Events after a gap keep their original
    /// positions and versions.
    #[arg(long)]
    pub salvage: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where to create the benchmark store: an empty or missing directory,
    /// kept afterwards. Default: a temporary directory, removed afterwards.
    pub dir: Option<PathBuf>,
    /// Events to append.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Bytes of data per event.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// Streams the events are spread over (round robin, one batch at a time).
    #[arg(long, default_value_t = 1_000)]
    pub streams: u64,
    /// Events per append (one atomic batch).
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Durability of the appends. The default, `periodic`, keeps the default
    /// run short; `always` measures one sync per append (group commit does
    /// not help a single appender).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Periodic)]
    pub durability: DurabilityArg,
    /// Size of the segment files.
    #[arg(long, default_value_t = annals::Options::default().segment_size_bytes)]
    pub segment_size_bytes: u64,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Measure `annals import` instead: this program imports a file of
    /// --events one-event lines (--payload-bytes of padding each, over
    /// --streams streams) under each durability, the modes taking turns for
    /// --rounds rounds, and prints each mode's median time and its ratio to
    /// `none`.
    #[arg(long)]
    pub import: bool,
    /// Rounds of --import (the median is reported).
    #[arg(long, default_value_t = 3, requires = "import")]
    pub rounds: u64,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The store directory, or (feature `object-storage`) an archive URL
    /// (`s3://BUCKET/PREFIX`, `file:///DIR`) to verify alone, from genesis.
    pub dir: PathBuf,
    /// A head digest recorded earlier (`HEX` or `HEX@POSITION`, as verify
    /// and stats print it): the log must still contain, unchanged,
    /// everything up to it.
    #[arg(long, value_name = "HEX[@POSITION]")]
    pub expect_head: Option<String>,
    /// A directory holding the segments retired from the store (`retire
    /// --archive`), or (feature `object-storage`) an archive URL: the whole
    /// chain is then checked from genesis.
    #[arg(long, value_name = "DIR|URL")]
    pub archive: Option<PathBuf>,
    /// A signed checkpoint (`annals checkpoint`): the Merkle tree over the
    /// log's first SIZE events must have the root it signs.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub checkpoint: Option<PathBuf>,
    /// The verifier key file (`FILE.pub` of `annals keygen`) that must have
    /// signed --checkpoint.
    #[arg(long, value_name = "PUBFILE", requires = "checkpoint")]
    pub key: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("cut").required(true).args(["before", "before_position"])))]
pub struct RetireArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// Retire the sealed segments whose events are all older than this
    /// time (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`, UTC). Events before it that
    /// are in the active segment stay until that segment is sealed.
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    /// Retire the sealed segments whose events all lie before this
    /// position. A position inside the active segment is refused.
    #[arg(long, value_name = "POSITION")]
    pub before_position: Option<u64>,
    /// Move the segments to this directory (copied, synced and checked
    /// there first) instead of deleting them: `verify --archive` then
    /// checks the whole history.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// Retire only segments that the archive at this URL holds, unchanged
    /// (each read back and its SHA-256 compared first; feature
    /// `object-storage`). The retention manifest records the URL.
    #[cfg(feature = "object-storage")]
    #[arg(long, value_name = "URL", conflicts_with = "archive")]
    pub require_archived: Option<String>,
    /// Why, recorded in the store's retention manifest.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Retire. Without it, only say what would be retired.
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The store directory.
    pub dir: PathBuf,
    /// Cut the damaged data (after copying it to a backup directory).
    /// Without it, repair only says what it would cut.
    #[arg(long)]
    pub yes: bool,
}

/// Options of `ship` and `receive` about waiting for the server.
#[cfg(feature = "nats")]
#[derive(Debug, Args)]
pub struct NatsWaitOptions {
    /// Give up when the server has been out of reach this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    pub give_up_after: f64,
    /// Print progress as JSON lines on stdout (on every change, and at most
    /// once a second while running).
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "nats")]
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// The store directory (opened read-only: a writer may be appending).
    pub dir: PathBuf,
    /// The NATS server, nats://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The JetStream stream to publish into (one store per stream).
    #[arg(long)]
    pub stream: String,
    /// First subject token(s): events go to PREFIX.<category>.<stream id>.
    #[arg(long, default_value = "annals")]
    pub subject_prefix: String,
    /// Position to start at when the JetStream stream holds nothing of this
    /// store yet (default 0); otherwise shipping resumes after its last message.
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// Only events of this type (repeat for several types).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this prefix.
    #[arg(long)]
    pub category: Option<String>,
    /// Ship what the store holds now, then exit (instead of following it).
    #[arg(long)]
    pub once: bool,
    /// Publishes awaiting acknowledgement at most.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Create the JetStream stream (subjects PREFIX.>, file storage) if missing.
    #[arg(long)]
    pub create_stream: bool,
    /// Replicas of a stream created by --create-stream.
    #[arg(long, default_value_t = 1, requires = "create_stream")]
    pub replicas: usize,
    #[command(flatten)]
    pub wait: NatsWaitOptions,
}

#[cfg(feature = "nats")]
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// The store directory to append to (created if empty or missing).
    pub dir: PathBuf,
    /// The NATS server, nats://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The JetStream stream that `annals ship` filled.
    #[arg(long)]
    pub stream: String,
    /// Receive what the stream holds now, then exit (instead of following it).
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub wait: NatsWaitOptions,
}

/// Parses a non-negative number of seconds.
#[cfg(feature = "nats")]
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && (0.0..=1e9).contains(&seconds) => Ok(seconds),
        _ => Err(format!("{text:?} is not a number of seconds")),
    }
}

/// Parses `any`, `no-stream`, `exists` or a version number.
pub fn parse_expected_version(text: &str) -> Result<ExpectedVersion, String> {
    match text {
        "any" => Ok(ExpectedVersion::Any),
        "no-stream" | "no_stream" => Ok(ExpectedVersion::NoStream),
        "exists" | "stream-exists" | "stream_exists" => Ok(ExpectedVersion::StreamExists),
        _ => text
            .parse::<u64>()
            .map(ExpectedVersion::Exact)
            .map_err(|_| {
                format!(
                    "{text:?} is not an expected version: use any, no-stream, exists or a number"
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn expected_versions_parse() {
        assert_eq!(parse_expected_version("any"), Ok(ExpectedVersion::Any));
        assert_eq!(
            parse_expected_version("no-stream"),
            Ok(ExpectedVersion::NoStream)
        );
        assert_eq!(
            parse_expected_version("exists"),
            Ok(ExpectedVersion::StreamExists)
        );
        assert_eq!(parse_expected_version("7"), Ok(ExpectedVersion::Exact(7)));
        assert!(parse_expected_version("-1").is_err());
    }
}
