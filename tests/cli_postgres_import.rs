//! `annals import --postgres-es`: a postgres-es `events` table (JSON lines
//! of its columns) imported through the command line, as a user migrating
//! from postgres-es would run it, and run again after an interruption.

use std::io::Write;
use std::process::{Command, Stdio};

use annals::Store;

fn import(dir: &str, input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["import", dir, "--postgres-es"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn row(aggregate: &str, sequence: u64, event: &str) -> String {
    format!(
        r#"{{"aggregate_type":"account","aggregate_id":"{aggregate}","sequence":{sequence},"event_type":"{event}","event_version":"1.0","payload":{{"{event}":{{}}}},"metadata":{{}}}}"#
    )
}

#[test]
fn a_postgres_es_events_table_imports_once_and_a_rerun_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let d = store_dir.to_str().unwrap();
    let rows = [
        row("ada", 1, "Opened"),
        row("bob", 1, "Opened"),
        row("ada", 2, "Deposited"),
        row("ada", 3, "Withdrawn"),
    ]
    .join("\n");
    let first = import(d, &rows);
    assert!(first.status.success(), "{first:?}");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("4 events appended"), "{stderr}");
    let again = import(d, &rows);
    assert!(again.status.success(), "{again:?}");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("0 events appended") && stderr.contains("4 already"),
        "{stderr}"
    );
    let store = Store::open_read_only(&store_dir).unwrap();
    assert_eq!(store.stream_version("account-ada"), 3);
    assert_eq!(store.stream_version("account-bob"), 1);
    assert_eq!(store.next_position(), 4);
    // A gap in an aggregate's sequences is refused, naming the line.
    let gap = import(d, &row("bob", 3, "Deposited"));
    assert_eq!(gap.status.code(), Some(3), "{gap:?}");
    assert!(
        String::from_utf8_lossy(&gap.stderr).contains("line 1"),
        "{gap:?}"
    );
}
