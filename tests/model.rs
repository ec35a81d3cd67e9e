//! Model-based test: random sequences of appends (every expected-version
//! kind, with and without command ids; to one stream and atomically to
//! several, with conditions on streams not written), the four read paths, snapshots
//! (save and load), a subscription polled as the log grows (and resumed from
//! its checkpoint after a reopen), and close + reopen, run against the store
//! and against a plain in-memory model; every result must match. proptest
//! shrinks a failing sequence to a minimal one.
//!
//! `cargo test --test model` runs 256 sequences; `cargo test --test model --
//! --ignored` runs 2,000 (or set `PROPTEST_CASES`).

mod crashkit;

use std::collections::HashMap;

use annals::{
    AppendResult, Durability, Error, EventData, ExpectedVersion, Options, RecordedEvent, Store,
    Uuid,
};
use proptest::prelude::*;

const STREAMS: u8 = 4;

/// An expected version, some relative to the stream's version when the
/// append runs (so that both matches and conflicts are common).
#[derive(Debug, Clone, Copy)]
enum Expected {
    Any,
    NoStream,
    StreamExists,
    /// `Exact(actual + delta)`, at least 0.
    ExactNear(i8),
    /// `Exact(n)`, whatever the stream's version.
    Exact(u64),
}

#[derive(Debug, Clone)]
struct NewEvent {
    event_type: u8,
    data_len: usize,
    with_id: bool,
    with_metadata: bool,
    correlation: Option<u8>,
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: u8,
        expected: Expected,
        events: Vec<NewEvent>,
        command: Option<u8>,
    },
    ReadStream {
        stream: u8,
        from: Option<u16>,
        max: usize,
    },
    ReadStreamBackward {
        stream: u8,
        from: Option<u16>,
        max: usize,
    },
    ReadAll {
        from: Option<u16>,
        max: usize,
    },
    ReadAllBackward {
        from: Option<u16>,
        max: usize,
    },
    /// Saves a snapshot of `stream` at a version derived from `at` (0 and
    /// past the stream's end included, which must be refused).
    SaveSnapshot {
        stream: u8,
        at: u16,
    },
    LoadSnapshot {
        stream: u8,
    },
    /// `append_multi`: the streams of `writes` (the first of each number
    /// only: a stream is written once), then a condition on `condition`'s
    /// stream unless it is written.
    AppendMulti {
        writes: Vec<(u8, Expected, Vec<NewEvent>)>,
        condition: Option<(u8, Expected)>,
        command: Option<u8>,
    },
    /// Takes every event the subscription has so far, without waiting.
    PollSubscription,
    Reopen,
}

fn expected_strategy() -> impl Strategy<Value = Expected> {
    prop_oneof![
        3 => Just(Expected::Any),
        1 => Just(Expected::NoStream),
        1 => Just(Expected::StreamExists),
        4 => (-1i8..=1).prop_map(Expected::ExactNear),
        1 => (0u64..5).prop_map(Expected::Exact),
    ]
}

fn event_strategy() -> impl Strategy<Value = NewEvent> {
    (
        0u8..3,
        prop_oneof![2 => 0usize..64, 2 => 64usize..4_000, 2 => 4_000usize..12_000],
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(0u8..3),
    )
        .prop_map(
            |(event_type, data_len, with_id, with_metadata, correlation)| NewEvent {
                event_type,
                data_len,
                with_id,
                with_metadata,
                correlation,
            },
        )
}

fn max_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0usize..6, 1 => Just(usize::MAX)]
}

fn from_strategy() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![4 => any::<u16>().prop_map(Some), 1 => Just(None)]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            0..STREAMS,
            expected_strategy(),
            proptest::collection::vec(event_strategy(), 1..5),
            proptest::option::weighted(0.3, 0u8..6),
        )
            .prop_map(|(stream, expected, events, command)| Op::Append {
                stream,
                expected,
                events,
                command,
            }),
        4 => (
            proptest::collection::vec(
                (
                    0..STREAMS,
                    expected_strategy(),
                    proptest::collection::vec(event_strategy(), 1..4),
                ),
                1..4,
            ),
            proptest::option::of((0..STREAMS, expected_strategy())),
            proptest::option::weighted(0.3, 0u8..4),
        )
            .prop_map(|(mut writes, condition, command)| {
                let mut seen = Vec::new();
                writes.retain(|(stream, _, _)| {
                    let new = !seen.contains(stream);
                    seen.push(*stream);
                    new
                });
                let condition = condition.filter(|(stream, _)| !seen.contains(stream));
                Op::AppendMulti {
                    writes,
                    condition,
                    command,
                }
            }),
        2 => (0..STREAMS, from_strategy(), max_strategy())
            .prop_map(|(stream, from, max)| Op::ReadStream { stream, from, max }),
        2 => (0..STREAMS, from_strategy(), max_strategy())
            .prop_map(|(stream, from, max)| Op::ReadStreamBackward { stream, from, max }),
        2 => (from_strategy(), max_strategy()).prop_map(|(from, max)| Op::ReadAll { from, max }),
        2 => (from_strategy(), max_strategy())
            .prop_map(|(from, max)| Op::ReadAllBackward { from, max }),
        1 => (0..STREAMS, any::<u16>()).prop_map(|(stream, at)| Op::SaveSnapshot { stream, at }),
        1 => (0..STREAMS).prop_map(|stream| Op::LoadSnapshot { stream }),
        2 => Just(Op::PollSubscription),
        1 => Just(Op::Reopen),
    ]
}

/// The model: the log as a vector, command ids as a map.
#[derive(Default)]
struct Model {
    log: Vec<RecordedEvent>,
    commands: HashMap<String, AppendResult>,
    /// Command ids of appends to several streams (their own names, so
    /// that the two kinds never share one): the streams and results.
    multi_commands: HashMap<String, Vec<(String, AppendResult)>>,
    next_id: u64,
}

/// What the model says an append to several streams returns.
#[derive(Debug)]
enum MultiOutcome {
    Written(Vec<(String, AppendResult)>),
    /// The first stream (write, then condition) whose version did not match.
    Conflict(String, ExpectedVersion, u64),
    /// The command id was used for other streams.
    OtherStreams,
}

/// The model's own reading of an expected version (not the store's
/// `ExpectedVersion::matches`, which is under test).
fn model_matches(expected: ExpectedVersion, actual: u64) -> bool {
    match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => actual == 0,
        ExpectedVersion::StreamExists => actual != 0,
        ExpectedVersion::Exact(version) => version == actual,
    }
}

impl Model {
    fn version(&self, stream: &str) -> u64 {
        self.log.iter().filter(|e| e.stream == stream).count() as u64
    }

    fn expected(&self, stream: &str, expected: Expected) -> ExpectedVersion {
        match expected {
            Expected::Any => ExpectedVersion::Any,
            Expected::NoStream => ExpectedVersion::NoStream,
            Expected::StreamExists => ExpectedVersion::StreamExists,
            Expected::ExactNear(delta) => {
                ExpectedVersion::Exact(self.version(stream).saturating_add_signed(i64::from(delta)))
            }
            Expected::Exact(n) => ExpectedVersion::Exact(n),
        }
    }

    /// What an append to several streams must return, applied to the model.
    fn append_multi(
        &mut self,
        writes: &[(String, ExpectedVersion, Vec<EventData>)],
        condition: Option<&(String, ExpectedVersion)>,
        command: Option<&str>,
    ) -> MultiOutcome {
        let streams: Vec<&str> = writes.iter().map(|(s, _, _)| s.as_str()).collect();
        if let Some(results) = command.and_then(|c| self.multi_commands.get(c)) {
            // `append_multi` repeats only with the same streams.
            let recorded: Vec<&str> = results.iter().map(|(s, _)| s.as_str()).collect();
            return if recorded == streams {
                MultiOutcome::Written(results.clone())
            } else {
                MultiOutcome::OtherStreams
            };
        }
        let checks = writes
            .iter()
            .map(|(stream, expected, _)| (stream, *expected))
            .chain(condition.map(|(stream, expected)| (stream, *expected)));
        for (stream, expected) in checks {
            let actual = self.version(stream);
            if !model_matches(expected, actual) {
                return MultiOutcome::Conflict(stream.clone(), expected, actual);
            }
        }
        let mut results = Vec::new();
        for (stream, _, events) in writes {
            let result = self
                .append(stream, ExpectedVersion::Any, events, None)
                .expect("any version matches");
            results.push((stream.clone(), result));
        }
        if let Some(command) = command {
            self.multi_commands
                .insert(command.to_string(), results.clone());
        }
        MultiOutcome::Written(results)
    }

    fn stream(&self, stream: &str) -> Vec<&RecordedEvent> {
        self.log.iter().filter(|e| e.stream == stream).collect()
    }

    /// What an append must return, applied to the model.
    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
        command: Option<&str>,
    ) -> Result<AppendResult, (ExpectedVersion, u64)> {
        if let Some(result) = command.and_then(|c| self.commands.get(c)) {
            return Ok(*result);
        }
        let actual = self.version(stream);
        if !model_matches(expected, actual) {
            return Err((expected, actual));
        }
        let first_position = self.log.len() as u64;
        for (i, event) in events.iter().enumerate() {
            self.log.push(RecordedEvent {
                stream: stream.to_string(),
                version: actual + 1 + i as u64,
                position: first_position + i as u64,
                id: event.id.unwrap_or(Uuid::nil()),
                event_type: event.event_type.clone(),
                timestamp_ns: 0,
                correlation_id: event.correlation_id.clone(),
                causation_id: event.causation_id.clone(),
                content_type: event.content_type.clone(),
                metadata: event.metadata.clone(),
                data: event.data.clone(),
                subject: event.subject.clone(),
                erased: false,
            });
        }
        let n = events.len() as u64;
        let result = AppendResult {
            first_version: actual + 1,
            last_version: actual + n,
            first_position,
            last_position: first_position + n - 1,
        };
        if let Some(command) = command {
            self.commands.insert(command.to_string(), result);
        }
        Ok(result)
    }
}

/// Compares events read from the store with the model's (ids only where the
/// model chose them; timestamps never go backward instead of being equal).
fn same_events(
    read: &[RecordedEvent],
    model: &[&RecordedEvent],
    what: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(read.len(), model.len(), "{}: lengths differ", what);
    for (got, want) in read.iter().zip(model) {
        let mut got_comparable = got.clone();
        got_comparable.timestamp_ns = 0;
        if want.id.is_nil() {
            got_comparable.id = Uuid::nil();
        }
        prop_assert_eq!(&got_comparable, *want, "{}", what);
    }
    Ok(())
}

fn stream_name(stream: u8) -> String {
    format!("stream-{stream}")
}

fn from_version(from: Option<u16>, len: usize) -> u64 {
    // Around the interesting range: 0, 1, inside, the end, past the end.
    from.map_or(u64::MAX, |f| u64::from(f) % (len as u64 + 3))
}

fn make_events(new: &[NewEvent], model: &mut Model) -> Vec<EventData> {
    new.iter()
        .map(|e| {
            model.next_id += 1;
            let data: Vec<u8> = (0..e.data_len)
                .map(|i| (i as u64 ^ model.next_id) as u8)
                .collect();
            let mut event = EventData::new(format!("Type{}", e.event_type), data);
            if e.with_id {
                event = event.with_id(Uuid::from_u64_pair(0xA11A15, model.next_id));
            }
            if e.with_metadata {
                event = event.with_metadata(format!("meta-{}", model.next_id).into_bytes());
            }
            if let Some(c) = e.correlation {
                event = event
                    .with_correlation_id(format!("corr-{c}"))
                    .with_causation_id(format!("cause-{}", model.next_id));
            }
            event
        })
        .collect()
}

fn run(ops: &[Op], durability: Durability) -> Result<(), TestCaseError> {
    let dir = crashkit::ram_dir();
    let options = Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(durability);
    let mut store = Some(Store::open(dir.path(), options.clone()).unwrap());
    let mut model = Model::default();
    // The subscription follows the whole log from position 0; `seen` is how
    // many events it has handed out, which must be a prefix of the log.
    let mut subscription = Some(
        store
            .as_ref()
            .unwrap()
            .subscribe_all(0, annals::Filter::default()),
    );
    let mut seen = 0usize;
    // Snapshots: stream -> (version, data).
    let mut snapshots: HashMap<String, (u64, Vec<u8>)> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        let s = store.as_ref().unwrap();
        let what = format!("step {step}: {op:?}");
        match op {
            Op::Append {
                stream,
                expected,
                events,
                command,
            } => {
                let name = stream_name(*stream);
                let actual = model.version(&name);
                let expected = match *expected {
                    Expected::Any => ExpectedVersion::Any,
                    Expected::NoStream => ExpectedVersion::NoStream,
                    Expected::StreamExists => ExpectedVersion::StreamExists,
                    Expected::ExactNear(delta) => {
                        ExpectedVersion::Exact(actual.saturating_add_signed(i64::from(delta)))
                    }
                    Expected::Exact(n) => ExpectedVersion::Exact(n),
                };
                let command = command.map(|c| format!("command-{c}"));
                let data = make_events(events, &mut model);
                let got = match &command {
                    Some(c) => s.append_idempotent(c, &name, expected, &data),
                    None => s.append(&name, expected, &data),
                };
                let want = model.append(&name, expected, &data, command.as_deref());
                match (got, want) {
                    (Ok(got), Ok(want)) => prop_assert_eq!(got, want, "{}", what),
                    (
                        Err(Error::WrongExpectedVersion {
                            stream: got_stream,
                            expected: got_expected,
                            actual: got_actual,
                        }),
                        Err((want_expected, want_actual)),
                    ) => {
                        prop_assert_eq!(got_stream, name, "{}", what);
                        prop_assert_eq!(got_expected, want_expected, "{}", what);
                        prop_assert_eq!(got_actual, want_actual, "{}", what);
                    }
                    (got, want) => {
                        prop_assert!(false, "{}: store gave {:?}, model {:?}", what, got, want)
                    }
                }
            }
            Op::ReadStream { stream, from, max } => {
                let name = stream_name(*stream);
                let events = model.stream(&name);
                let from = from_version(*from, events.len());
                let start = (from.max(1) - 1).min(events.len() as u64) as usize;
                let want: Vec<_> = events[start..].iter().take(*max).copied().collect();
                let got = s.read_stream(&name, from, *max).unwrap();
                same_events(&got, &want, &what)?;
            }
            Op::ReadStreamBackward { stream, from, max } => {
                let name = stream_name(*stream);
                let events = model.stream(&name);
                let from = from_version(*from, events.len());
                let end = from.min(events.len() as u64) as usize;
                let want: Vec<_> = events[..end].iter().rev().take(*max).copied().collect();
                let got = s.read_stream_backward(&name, from, *max).unwrap();
                same_events(&got, &want, &what)?;
            }
            Op::ReadAll { from, max } => {
                let from = from_version(*from, model.log.len());
                let want: Vec<_> = model
                    .log
                    .iter()
                    .filter(|e| e.position >= from)
                    .take(*max)
                    .collect();
                let got = s.read_all(from, *max).unwrap();
                same_events(&got, &want, &what)?;
                prop_assert!(
                    got.windows(2)
                        .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns)
                );
            }
            Op::ReadAllBackward { from, max } => {
                let from = from_version(*from, model.log.len());
                let want: Vec<_> = model
                    .log
                    .iter()
                    .rev()
                    .filter(|e| e.position <= from)
                    .take(*max)
                    .collect();
                let got = s.read_all_backward(from, *max).unwrap();
                same_events(&got, &want, &what)?;
            }
            Op::SaveSnapshot { stream, at } => {
                let name = stream_name(*stream);
                let actual = model.version(&name);
                let version = u64::from(*at) % (actual + 2);
                let data = format!("snapshot of {name} at {version}, step {step}").into_bytes();
                let got = s.save_snapshot(&name, version, &data, None);
                if version == 0 || version > actual {
                    prop_assert!(
                        matches!(got, Err(Error::InvalidArgument(_))),
                        "{}: {:?}",
                        what,
                        got
                    );
                } else {
                    let newer_kept = snapshots.get(&name).is_some_and(|(v, _)| *v > version);
                    prop_assert_eq!(got.unwrap(), !newer_kept, "{}", what);
                    if !newer_kept {
                        snapshots.insert(name, (version, data));
                    }
                }
            }
            Op::LoadSnapshot { stream } => {
                let name = stream_name(*stream);
                let got = s
                    .load_snapshot(&name)
                    .unwrap()
                    .map(|snap| (snap.version, snap.data));
                prop_assert_eq!(got, snapshots.get(&name).cloned(), "{}", what);
            }
            Op::AppendMulti {
                writes,
                condition,
                command,
            } => {
                let writes: Vec<(String, ExpectedVersion, Vec<EventData>)> = writes
                    .iter()
                    .map(|(stream, expected, events)| {
                        let name = stream_name(*stream);
                        let expected = model.expected(&name, *expected);
                        (name, expected, make_events(events, &mut model))
                    })
                    .collect();
                let condition = condition.map(|(stream, expected)| {
                    let name = stream_name(stream);
                    let expected = model.expected(&name, expected);
                    (name, expected)
                });
                let command = command.map(|c| format!("multi-command-{c}"));
                let mut request = annals::MultiStreamAppend::new();
                for (stream, expected, events) in &writes {
                    request = request.write(stream, *expected, events);
                }
                if let Some((stream, expected)) = &condition {
                    request = request.require(stream, *expected);
                }
                if let Some(command) = &command {
                    request = request.command_id(command);
                }
                let got = s.append_multi(&request);
                let want = model.append_multi(&writes, condition.as_ref(), command.as_deref());
                match (got, want) {
                    (Ok(got), MultiOutcome::Written(want)) => {
                        let got: Vec<(String, AppendResult)> = got
                            .streams
                            .into_iter()
                            .map(|s| (s.stream, s.result))
                            .collect();
                        prop_assert_eq!(got, want, "{}", what);
                    }
                    (
                        Err(Error::WrongExpectedVersion {
                            stream,
                            expected,
                            actual,
                        }),
                        MultiOutcome::Conflict(want_stream, want_expected, want_actual),
                    ) => {
                        prop_assert_eq!(
                            (stream, expected, actual),
                            (want_stream, want_expected, want_actual),
                            "{}",
                            what
                        );
                    }
                    (Err(Error::InvalidArgument(_)), MultiOutcome::OtherStreams) => {}
                    (got, want) => {
                        prop_assert!(false, "{}: store gave {:?}, model {:?}", what, got, want)
                    }
                }
            }
            Op::PollSubscription => {
                let polled = subscription.as_mut().unwrap();
                let mut got = Vec::new();
                while let Some(event) = polled.next_timeout(std::time::Duration::ZERO).unwrap() {
                    got.push(event);
                }
                let want: Vec<_> = model.log[seen..].iter().collect();
                same_events(&got, &want, &what)?;
                seen = model.log.len();
                prop_assert_eq!(polled.checkpoint(), seen as u64, "{}", what);
            }
            Op::Reopen => {
                let checkpoint = subscription.take().unwrap().checkpoint();
                store.take().unwrap().close().unwrap();
                let reopened = Store::open(dir.path(), options.clone()).unwrap();
                let all: Vec<_> = model.log.iter().collect();
                same_events(&reopened.read_all(0, usize::MAX).unwrap(), &all, &what)?;
                // A consumer resumes from its checkpoint.
                subscription = Some(reopened.subscribe_all(checkpoint, annals::Filter::default()));
                store = Some(reopened);
            }
        }
        let s = store.as_ref().unwrap();
        prop_assert_eq!(s.next_position(), model.log.len() as u64, "{}", what);
        for stream in 0..STREAMS {
            let name = stream_name(stream);
            prop_assert_eq!(s.stream_version(&name), model.version(&name), "{}", what);
        }
    }
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn the_store_behaves_like_the_model(
        ops in proptest::collection::vec(op_strategy(), 1..80),
        always in any::<bool>(),
    ) {
        run(&ops, if always { Durability::Always } else { Durability::None })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2_000)))]

    #[test]
    #[ignore = "long: 2,000 sequences"]
    fn the_store_behaves_like_the_model_long(
        ops in proptest::collection::vec(op_strategy(), 1..120),
        always in any::<bool>(),
    ) {
        run(&ops, if always { Durability::Always } else { Durability::None })?;
    }
}
