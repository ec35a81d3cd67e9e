//! `annals read --pretty` and `annals tail --pretty` on logs written through
//! `annals::tracing`, end to end: the human line, colour only on a terminal
//! (and never with NO_COLOR), and each filter (`--level`, `--stream-prefix`,
//! `--field`, `--since`, `--until`), for `read` and for a live `tail`.

#[path = "common/run.rs"]
mod run;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use annals::tracing::StreamKey;
use annals::{Options, Store};
use run::{Tail, expect, path};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

/// Writes three phases of logs, a few milliseconds apart so that their
/// timestamps differ: streams are the `tenant` field.
fn write_logs(dir: &Path) {
    let store = Store::open(dir, Options::default()).unwrap();
    let layer = annals::tracing::builder()
        .stream(StreamKey::Field("tenant"))
        .build(store);
    let guard = layer.guard();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(tenant = "acme-eu", user = "ada", n = 1u64, "logged in");
        tracing::debug!(tenant = "acme-us", "cache miss");
        guard.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        tracing::warn!(tenant = "acme-us", user = "bob", n = 2u64, "slow request");
        tracing::error!(
            tenant = "globex",
            user = "ada",
            path = "/pay now",
            "payment failed"
        );
        guard.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        tracing::info!(tenant = "globex", user = "eve", n = 3u64, "logged out");
    });
}

/// The pretty lines of `annals read DIR --pretty ARGS`.
fn pretty(dir: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["read", dir, "--pretty"];
    all.extend_from_slice(args);
    expect(0, &all).stdout.lines().map(str::to_string).collect()
}

/// The messages of pretty lines: the text after the stream.
fn messages(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            let mut words = line.split_whitespace();
            let (_time, _level, _stream) = (words.next(), words.next(), words.next());
            let rest: Vec<&str> = words.take_while(|w| !w.contains('=')).collect();
            rest.join(" ")
        })
        .collect()
}

#[test]
fn read_pretty_prints_one_human_line_per_event() {
    let temp = tempfile::tempdir().unwrap();
    write_logs(temp.path());
    let lines = pretty(path(temp.path()), &[]);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    // TIME LEVEL STREAM MESSAGE FIELDS, fields sorted by key.
    let first = &lines[0];
    let (time, rest) = first.split_once(' ').unwrap();
    assert_eq!(time.len(), "2026-11-30T12:00:00.123Z".len(), "{first}");
    assert!(
        time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{first}"
    );
    assert_eq!(rest, " INFO acme-eu logged in n=1 tenant=acme-eu user=ada");
    assert!(
        lines[3].ends_with("ERROR globex payment failed path=\"/pay now\" tenant=globex user=ada"),
        "{}",
        lines[3]
    );
    // A pipe gets no colour.
    assert!(lines.iter().all(|l| !l.contains('\u{1b}')));
    // JSON stays the default (and --json says so explicitly).
    let d = path(temp.path());
    for args in [&["read", d][..], &["read", d, "--json"][..]] {
        let json = expect(0, args).lines();
        assert_eq!(json.len(), 5);
        assert_eq!(json[0]["data"]["message"], "logged in");
        assert_eq!(json[0]["type"], "INFO");
    }
    expect(2, &["read", d, "--json", "--pretty"]);
}

#[test]
fn each_filter_keeps_only_its_events() {
    let temp = tempfile::tempdir().unwrap();
    write_logs(temp.path());
    let d = path(temp.path());
    let kept = |args: &[&str]| messages(&pretty(d, args));
    assert_eq!(
        kept(&["--level", "warn"]),
        ["slow request", "payment failed"]
    );
    assert_eq!(
        kept(&["--level", "INFO"]),
        ["logged in", "slow request", "payment failed", "logged out"]
    );
    assert_eq!(
        kept(&["--stream-prefix", "acme-"]),
        ["logged in", "cache miss", "slow request"]
    );
    assert_eq!(
        kept(&["--category", "globex"]),
        ["payment failed", "logged out"]
    );
    assert_eq!(
        kept(&["--field", "user=ada"]),
        ["logged in", "payment failed"]
    );
    assert_eq!(kept(&["--field", "n=2"]), ["slow request"]);
    assert_eq!(
        kept(&["--field", "user=ada", "--field", "n=1"]),
        ["logged in"]
    );
    assert_eq!(kept(&["--field", "path=/pay now"]), ["payment failed"]);
    assert!(kept(&["--field", "user=nobody"]).is_empty());
    // Filters combine with each other and with --limit and --backward.
    assert_eq!(
        kept(&["--level", "info", "--field", "user=ada", "--backward"]),
        ["payment failed", "logged in"]
    );
    assert_eq!(kept(&["--level", "info", "--limit", "1"]), ["logged in"]);

    // Time: the second phase starts at the timestamp of its first event,
    // the third at its first event's; --until excludes its own instant.
    let json = expect(0, &["read", d]).lines();
    let time = |i: usize| json[i]["timestamp"].as_str().unwrap().to_string();
    let (second, third) = (time(2), time(4));
    assert_ne!(time(1), second, "the phases have distinct timestamps");
    assert_eq!(
        kept(&["--since", &second]),
        ["slow request", "payment failed", "logged out"]
    );
    assert_eq!(kept(&["--until", &second]), ["logged in", "cache miss"]);
    assert_eq!(
        kept(&["--since", &second, "--until", &third]),
        ["slow request", "payment failed"]
    );
    assert_eq!(
        kept(&["--since", &second, "--until", &third, "--backward"]),
        ["payment failed", "slow request"]
    );
    assert_eq!(
        kept(&["--until", &second, "--backward"]),
        ["cache miss", "logged in"]
    );
    // An age: everything was logged in the last hour, nothing in the future.
    assert_eq!(kept(&["--since", "1h"]).len(), 5);
    assert!(kept(&["--since", "2500-01-01T00:00:00Z"]).is_empty());
    assert!(kept(&["--until", "1h"]).is_empty());
}

#[test]
fn bad_filter_arguments_are_usage_errors() {
    let temp = tempfile::tempdir().unwrap();
    write_logs(temp.path());
    let d = path(temp.path());
    for (flag, value, says) in [
        ("--level", "loud", "is not a level"),
        ("--field", "novalue", "is not KEY=VALUE"),
        ("--field", "=x", "is not KEY=VALUE"),
        ("--since", "yesterday", "neither a time"),
        ("--until", "10 m", "neither a time"),
    ] {
        for command in ["read", "tail"] {
            let run = expect(2, &[command, d, flag, value]);
            assert!(
                run.stderr.contains(says),
                "{command} {flag} {value}: {}",
                run.stderr
            );
        }
    }
}

/// Runs `annals ARGS` with stdout a pseudo-terminal; returns what it drew.
fn on_a_terminal(args: &[&str], no_color: Option<&str>) -> String {
    let (controller, terminal) = run::pseudo_terminal();
    let mut command = Command::new(env!("CARGO_BIN_EXE_annals"));
    command.args(args).stdout(terminal).stderr(Stdio::inherit());
    command.env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let mut child = command.spawn().unwrap();
    // The command holds a copy of the terminal: drop it, or reading would
    // never end.
    drop(command);
    let drawn = run::read_screen(controller);
    assert!(child.wait().unwrap().success());
    drawn.join().unwrap()
}

#[test]
fn colour_on_a_terminal_only_without_no_color() {
    let temp = tempfile::tempdir().unwrap();
    write_logs(temp.path());
    let d = path(temp.path());
    let args = ["read", d, "--pretty", "--level", "error"];
    let coloured = on_a_terminal(&args, None);
    assert!(
        coloured.contains("\u{1b}[31mERROR\u{1b}[0m"),
        "{coloured:?}"
    );
    // An empty NO_COLOR does not count (no-color.org).
    assert!(on_a_terminal(&args, Some("")).contains('\u{1b}'));
    let plain = on_a_terminal(&args, Some("1"));
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    assert!(plain.contains("ERROR globex payment failed"), "{plain:?}");
}

#[test]
fn tail_pretty_follows_a_live_logger_through_its_filters() {
    let temp = tempfile::tempdir().unwrap();
    let d = path(temp.path());
    let store = Store::open(temp.path(), Options::default()).unwrap();
    let layer = annals::tracing::builder()
        .stream(StreamKey::Field("tenant"))
        .build(store);
    let guard = layer.guard();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let log = |f: &dyn Fn()| {
        tracing::dispatcher::with_default(&dispatch, f);
        guard.flush().unwrap();
    };
    log(&|| tracing::error!(tenant = "acme", "before the tail"));
    // From the start of the log (the event above is filtered out).
    let tail = Tail::start(&[
        d,
        "--pretty",
        "--level",
        "warn",
        "--stream-prefix",
        "acme",
        "--field",
        "user=ada",
    ]);
    log(&|| {
        tracing::warn!(tenant = "acme", user = "bob", "other user");
        tracing::info!(tenant = "acme", user = "ada", "too low");
        tracing::error!(tenant = "globex", user = "ada", "other stream");
        tracing::error!(tenant = "acme", user = "ada", n = 1u64, "kept");
    });
    let first = tail.next_line();
    assert!(
        first.contains(" ERROR acme kept n=1 tenant=acme user=ada"),
        "{first}"
    );
    // Logged after the tail printed: it follows the live writer.
    log(&|| tracing::warn!(tenant = "acme-2", user = "ada", "also kept"));
    let second = tail.next_line();
    assert!(
        second.contains("  WARN acme-2 also kept tenant=acme-2 user=ada"),
        "{second}"
    );
    assert!(
        tail.line_within(Duration::from_millis(300)).is_none(),
        "nothing else"
    );
}

#[test]
fn tail_ends_at_until_and_starts_at_since() {
    let temp = tempfile::tempdir().unwrap();
    write_logs(temp.path());
    let d = path(temp.path());
    let json = expect(0, &["read", d]).lines();
    let time = |i: usize| json[i]["timestamp"].as_str().unwrap().to_string();
    // The third phase is in the log: tail stops there by itself, exit 0.
    let run = expect(
        0,
        &[
            "tail",
            d,
            "--pretty",
            "--since",
            &time(2),
            "--until",
            &time(4),
        ],
    );
    assert_eq!(
        messages(&run.stdout.lines().map(str::to_string).collect::<Vec<_>>()),
        ["slow request", "payment failed"]
    );
    // JSON lines by default, also for tail.
    let lines = expect(0, &["tail", d, "--since", &time(2), "--until", &time(4)]).lines();
    let messages: Vec<&Value> = lines.iter().map(|l| &l["data"]["message"]).collect();
    assert_eq!(messages, ["slow request", "payment failed"]);
}
