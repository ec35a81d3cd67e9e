//! `annals import`: JSON lines on stdin, one atomic append per line, each
//! acknowledged on stdout once it is appended and as durable as the chosen
//! durability promises.
//!
//! Under `--durability always` (the default) the lines are synced in
//! groups: the store is opened without syncs of its own
//! ([`annals::Durability::None`]), and a second thread, the acknowledger,
//! calls [`Store::flush`] once per group and only then prints the group's
//! acknowledgements. Every line keeps its own batch, expected version and
//! error; only the syncs are shared, so a bulk load runs at disk speed
//! instead of one sync per line, and an acknowledged line is on disk.
//!
//! A group ends after `--sync-every-lines` lines, `--sync-every-ms` after
//! its first line, at the end of the input, or as soon as the input has
//! nothing more to read right now: a producer that waits for each
//! acknowledgement gets it after one sync, not after a timeout.
//!
//! With `--import-id ID`, each line without a command id of its own is
//! appended idempotently with the command id `ID:LINE` (its line number), so
//! that running the same input again after an interruption appends every
//! line exactly once, including a line committed but never acknowledged.
//! The line format is in `import_line` and `docs/cli.md`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal, StdinLock};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use annals::{AppendResult, Durability, Store};
use indicatif::{HumanCount, ProgressBar, ProgressState, ProgressStyle};

use super::append::Appended;
use super::args::{DurabilityArg, ImportArgs};
use super::failure::Failure;
use super::import_line::parse_line;
use super::output::{Output, count, per_second};
use super::store_dir::open_writable;

/// Bytes read from stdin at a time.
const INPUT_BUFFER_BYTES: usize = 1 << 16;

/// Most appended lines the reading thread passes on at once: one message
/// (and one wake-up of the acknowledger) per chunk rather than per line.
const CHUNK_LINES: usize = 256;

/// How the acknowledger groups lines, and whether it syncs each group.
#[derive(Debug, Clone, Copy)]
struct Grouping {
    max_lines: usize,
    max_wait: Duration,
    /// Sync each group before acknowledging it (`--durability always`).
    sync: bool,
}

/// What the reading thread tells the acknowledger: lines appended (in the
/// page cache, not yet synced), in order.
struct Chunk {
    lines: Vec<Acknowledgement>,
    /// The input has nothing more to read right now: end the group.
    input_idle: bool,
}

/// A line appended and waiting for its acknowledgement.
struct Acknowledgement {
    line: u64,
    stream: String,
    result: AppendResult,
    /// Input bytes up to the end of this line (for the progress bar).
    input_bytes: u64,
}

/// What the import did, for the summary on stderr.
#[derive(Debug, Default)]
struct Counts {
    /// Lines appended with new events.
    appended: u64,
    /// Lines already in the store (an idempotent repeat): nothing written.
    already_there: u64,
    events: u64,
}

pub fn run(args: &ImportArgs) -> Result<(), Failure> {
    if args.sync_every_lines == 0 {
        return Err(Failure::other("--sync-every-lines must be at least 1"));
    }
    if args.import_id.as_deref() == Some("") {
        return Err(Failure::other("--import-id must not be empty"));
    }
    let grouping = Grouping {
        max_lines: args.sync_every_lines,
        max_wait: Duration::from_millis(args.sync_every_ms),
        sync: args.writer.durability == DurabilityArg::Always,
    };
    let mut options = args.writer.options();
    if grouping.sync {
        // The acknowledger syncs each group itself.
        options = options.durability(Durability::None);
    }
    #[cfg(feature = "cqrs-es")]
    if args.postgres_es {
        return import_postgres_es(args);
    }
    let store = open_writable(&args.dir, options, args.writer.creation())?;
    let started = Instant::now();
    let outcome = import_lines(&store, args.import_id.as_deref(), grouping);
    // Flushes whatever was appended, even after a failure.
    let closed = store.close();
    let (counts, syncs, outcome) = outcome;
    summarize(&counts, syncs, grouping.sync, started.elapsed());
    outcome?;
    Ok(closed?)
}

/// `import --postgres-es`: a postgres-es `events` table from stdin, through
/// the library (`annals::cqrs::import_postgres_es_events`), durable at the
/// end (the rerun skips what an interrupted run imported).
#[cfg(feature = "cqrs-es")]
fn import_postgres_es(args: &ImportArgs) -> Result<(), Failure> {
    let options = args.writer.options().durability(Durability::None);
    let store = open_writable(&args.dir, options, args.writer.creation())?;
    let outcome = annals::cqrs::import_postgres_es_events(&store, std::io::stdin().lock());
    // Durable whatever happened: what was appended stays imported.
    let closed = store.close();
    let done = match outcome {
        Ok(done) => done,
        Err(error) => {
            let code = super::failure::exit_code(&error.error);
            return Err(Failure {
                code,
                message: error.to_string(),
            });
        }
    };
    closed?;
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "annals: imported {} postgres-es rows: {} events appended in {} appends, {} already in the store\n",
            done.lines, done.events_appended, done.appends, done.events_already_present
        ),
    );
    Ok(())
}

/// Imports stdin: this thread reads and appends, a second one syncs and
/// acknowledges. Returns what was done and the first failure, if any (the
/// acknowledger's first: a failed sync or a closed stdout explains why the
/// reading stopped).
fn import_lines(
    store: &Store,
    import_id: Option<&str>,
    grouping: Grouping,
) -> (Counts, u64, Result<(), Failure>) {
    let stdin = std::io::stdin().lock();
    let progress = Progress::start(input_bytes(&stdin));
    // Room for a whole group while the previous one syncs.
    let (sender, receiver) = sync_channel(grouping.max_lines.div_ceil(CHUNK_LINES).max(4));
    let (counts, appended, acknowledged) = std::thread::scope(|scope| {
        let acknowledger = scope.spawn(|| acknowledge(store, grouping, receiver, &progress));
        let mut counts = Counts::default();
        let mut chunks = Chunks {
            sender,
            lines: Vec::with_capacity(CHUNK_LINES),
        };
        let appended = append_lines(store, import_id, stdin, &mut chunks, &mut counts);
        // Whatever the outcome, the lines appended so far are acknowledged.
        chunks.send(false);
        drop(chunks);
        let acknowledged = acknowledger
            .join()
            .expect("the acknowledger does not panic");
        (counts, appended, acknowledged)
    });
    progress.bar.finish_and_clear();
    let (syncs, acknowledged) = acknowledged;
    (counts, syncs, acknowledged.and(appended))
}

/// Reads, parses and appends every line, passing each result on to the
/// acknowledger. Stops at the first failing line, or when the acknowledger
/// has stopped.
fn append_lines(
    store: &Store,
    import_id: Option<&str>,
    stdin: StdinLock<'static>,
    acknowledger: &mut Chunks,
    counts: &mut Counts,
) -> Result<(), Failure> {
    let mut input = BufReader::with_capacity(INPUT_BUFFER_BYTES, stdin);
    let mut text = String::new();
    let mut number = 0u64;
    let mut input_bytes = 0u64;
    loop {
        // About to wait for the producer: let the acknowledger end its group.
        let idle = input.buffer().is_empty() && !input_ready(input.get_ref());
        if idle && !acknowledger.send(true) {
            return Ok(());
        }
        text.clear();
        number += 1;
        let at_line = |failure: Failure| failure.context(format_args!("line {number}"));
        let read = input
            .read_line(&mut text)
            .map_err(|e| at_line(Failure::other(format!("reading stdin: {e}"))))?;
        if read == 0 {
            return Ok(());
        }
        input_bytes += read as u64;
        if text.trim().is_empty() {
            continue;
        }
        let append = parse_line(&text).map_err(|message| at_line(Failure::other(message)))?;
        let command_id = match (&append.command_id, import_id) {
            (Some(own), _) => Some(own.clone()),
            (None, Some(import_id)) => Some(format!("{import_id}:{number}")),
            (None, None) => None,
        };
        let before = store.next_position();
        let result = match &command_id {
            Some(command_id) => {
                store.append_idempotent(command_id, &append.stream, append.expected, &append.events)
            }
            None => store.append(&append.stream, append.expected, &append.events),
        }
        .map_err(|e| at_line(Failure::from(e)))?;
        // One writer (this one): positions moved only if this append wrote.
        let written = store.next_position() - before;
        if written == 0 {
            counts.already_there += 1;
        } else {
            counts.appended += 1;
            counts.events += written;
        }
        let acknowledgement = Acknowledgement {
            line: number,
            stream: append.stream,
            result,
            input_bytes,
        };
        if !acknowledger.push(acknowledgement) {
            return Ok(());
        }
    }
}

/// Appended lines on their way to the acknowledger, in chunks.
struct Chunks {
    sender: SyncSender<Chunk>,
    lines: Vec<Acknowledgement>,
}

impl Chunks {
    /// Adds a line, sending the chunk when it is full. Returns false when
    /// the acknowledger has stopped.
    fn push(&mut self, line: Acknowledgement) -> bool {
        self.lines.push(line);
        self.lines.len() < CHUNK_LINES || self.send(false)
    }

    /// Sends the lines gathered so far (if any, or if `input_idle`).
    /// Returns false when the acknowledger has stopped.
    fn send(&mut self, input_idle: bool) -> bool {
        if self.lines.is_empty() && !input_idle {
            return true;
        }
        let lines = std::mem::replace(&mut self.lines, Vec::with_capacity(CHUNK_LINES));
        self.sender.send(Chunk { lines, input_idle }).is_ok()
    }
}

/// The acknowledger: gathers appended lines into groups, syncs each group
/// (under `always`) and only then prints its acknowledgements. Returns how
/// many syncs it made, and its failure if any.
fn acknowledge(
    store: &Store,
    grouping: Grouping,
    chunks: Receiver<Chunk>,
    progress: &Progress,
) -> (u64, Result<(), Failure>) {
    let mut out = Output::stdout();
    let mut group: Vec<Acknowledgement> = Vec::with_capacity(grouping.max_lines.min(1 << 16));
    let mut syncs = 0;
    let mut input_ended = false;
    while !input_ended {
        // The first lines of a group: wait as long as it takes.
        let Ok(first) = chunks.recv() else { break };
        group.extend(first.lines);
        if group.is_empty() {
            continue;
        }
        let mut input_idle = first.input_idle;
        let deadline = Instant::now() + grouping.max_wait;
        while !input_idle && group.len() < grouping.max_lines {
            match chunks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(next) => {
                    group.extend(next.lines);
                    input_idle = next.input_idle;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    input_ended = true;
                    break;
                }
            }
        }
        if grouping.sync {
            // Covers every line of the group: each was appended before it
            // was sent here.
            if let Err(error) = store.flush() {
                let lines = format!(
                    "syncing lines {} to {} (not acknowledged)",
                    group[0].line,
                    group[group.len() - 1].line
                );
                return (syncs, Err(Failure::from(error).context(lines)));
            }
            syncs += 1;
        }
        let printed = print_group(&mut out, &group);
        if let Err(failure) = printed {
            return (syncs, Err(failure));
        }
        let last = &group[group.len() - 1];
        progress.acknowledged(group.len() as u64, last.input_bytes);
        group.clear();
    }
    (syncs, Ok(()))
}

fn print_group(out: &mut Output, group: &[Acknowledgement]) -> Result<(), Failure> {
    for ack in group {
        out.json_line(&Appended::new(Some(ack.line), &ack.stream, &ack.result))?;
    }
    out.flush()
}

/// Whether a read of stdin would return at once (data, end of input or an
/// error) rather than wait for a producer.
fn input_ready(stdin: &StdinLock<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let fd = stdin.as_fd();
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // If poll itself fails, reading will tell.
    !matches!(poll(&mut fds, Some(&now)), Ok(0))
}

/// The bytes left to read on stdin when it is a regular file.
fn input_bytes(stdin: &StdinLock<'_>) -> Option<u64> {
    let stat = rustix::fs::fstat(stdin.as_fd()).ok()?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let offset = rustix::fs::tell(stdin.as_fd()).ok()?;
    (stat.st_size as u64).checked_sub(offset)
}

/// The progress bar on stderr, shown only when stderr is a terminal:
/// acknowledged lines and lines per second, and the share of the input
/// read when stdin is a file.
struct Progress {
    bar: ProgressBar,
    lines: Arc<AtomicU64>,
}

impl Progress {
    fn start(input_bytes: Option<u64>) -> Progress {
        let lines = Arc::new(AtomicU64::new(0));
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
                lines,
            };
        }
        let (bar, template) = match input_bytes {
            Some(total) => (
                ProgressBar::new(total),
                "{msg} [{bar:30}] {percent:>3}% {lines} lines ({lines_per_sec}, eta {eta})",
            ),
            None => (
                ProgressBar::no_length(),
                "{spinner} {msg} {lines} lines ({lines_per_sec}, {elapsed})",
            ),
        };
        let count = Arc::clone(&lines);
        let rate = Arc::clone(&lines);
        let style = ProgressStyle::with_template(template)
            .expect("the progress template is valid")
            .progress_chars("=> ")
            .with_key(
                "lines",
                move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{}", HumanCount(count.load(Ordering::Relaxed)));
                },
            )
            .with_key(
                "lines_per_sec",
                move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let lines = rate.load(Ordering::Relaxed) as f64;
                    let seconds = state.elapsed().as_secs_f64();
                    let _ = write!(out, "{} lines/s", per_second(lines, seconds));
                },
            );
        bar.set_style(style);
        bar.set_message("importing, acknowledged");
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar, lines }
    }

    fn acknowledged(&self, lines: u64, input_bytes: u64) {
        self.lines.fetch_add(lines, Ordering::Relaxed);
        if self.bar.length().is_some() {
            self.bar.set_position(input_bytes);
        } else {
            self.bar.tick();
        }
    }
}

/// One line on stderr: what was imported, and how.
fn summarize(counts: &Counts, syncs: u64, synced_groups: bool, elapsed: Duration) {
    let lines = counts.appended + counts.already_there;
    let seconds = elapsed.as_secs_f64();
    let mut text = format!(
        "imported {}: {} appended ({}), {} already in the store; {:.2} s, {} lines/s",
        count(lines, "line", "lines"),
        counts.appended,
        count(counts.events, "event", "events"),
        counts.already_there,
        seconds,
        per_second(lines as f64, seconds),
    );
    if synced_groups {
        let _ = write!(text, ", {}", count(syncs, "sync", "syncs"));
    }
    let _ = std::io::Write::write_all(
        &mut std::io::stderr().lock(),
        format!("annals: {text}\n").as_bytes(),
    );
}
