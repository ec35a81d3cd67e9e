//! "Refuses at open or on read": a default open checks a sealed segment's
//! header, chain link and footer against the index checkpoint, not every
//! byte of its records; a record damaged there is refused when a read
//! reaches it (`Error::Corrupt`, `ChangedAfterOpen`), never returned wrong.
//! Full-check opens (`Options::rebuild_index`,
//! `Store::open_read_only_rebuilding_index`) still refuse it at open.
#![allow(dead_code)]

use std::ops::Range;
use std::path::Path;

use annals::{Error, Finding, Store};

/// Where a default open refused damage.
#[derive(Debug)]
pub enum Refusal {
    /// The open itself refused.
    AtOpen(Error),
    /// The open succeeded; reading the log refused.
    OnRead(Error),
}

impl Refusal {
    pub fn error(&self) -> &Error {
        match self {
            Refusal::AtOpen(error) | Refusal::OnRead(error) => error,
        }
    }

    /// The finding (every refusal is `Error::Corrupt`).
    pub fn finding(&self) -> &Finding {
        self.error().finding().expect("a refusal is corruption")
    }
}

/// Opens with `open`, then reads the whole log (`read_all` from position 0)
/// and each stream of `streams` in full. The first corruption is the
/// refusal; `None` when the open and every read succeed. Any error that is
/// not corruption fails the test.
pub fn refusal(open: impl FnOnce() -> annals::Result<Store>, streams: &[&str]) -> Option<Refusal> {
    let store = match open() {
        Ok(store) => store,
        Err(error) if error.is_corruption() => return Some(Refusal::AtOpen(error)),
        Err(error) => panic!("open failed with an error that is not corruption: {error}"),
    };
    let mut reads = vec![store.read_all(0, usize::MAX).map(drop)];
    for stream in streams {
        reads.push(store.read_stream(stream, 1, usize::MAX).map(drop));
    }
    for read in reads {
        match read {
            Ok(()) => {}
            Err(error) if error.is_corruption() => return Some(Refusal::OnRead(error)),
            Err(error) => panic!("a read failed with an error that is not corruption: {error}"),
        }
    }
    None
}

/// Asserts that `open` refuses the damage in `file`, at open or on reading
/// the whole log (and `streams`): `Error::Corrupt` whose finding and
/// message name `file`, at an offset within `offsets` when given.
pub fn assert_refused_at_open_or_on_read(
    what: &str,
    open: impl FnOnce() -> annals::Result<Store>,
    streams: &[&str],
    file: &Path,
    offsets: Option<Range<u64>>,
) -> Refusal {
    let refusal = refusal(open, streams)
        .unwrap_or_else(|| panic!("{what}: opened and read the damaged store without an error"));
    let finding = refusal.finding();
    assert_eq!(finding.path, file, "{what}: {refusal:?}");
    let message = refusal.error().to_string();
    assert!(
        message.contains(&file.display().to_string())
            && message.contains(&format!("offset {}", finding.offset)),
        "{what}: the message does not name the file and offset: {message}"
    );
    if let Some(offsets) = offsets {
        assert!(
            offsets.contains(&finding.offset),
            "{what}: offset {} is not in the damaged {offsets:?}: {message}",
            finding.offset
        );
    }
    refusal
}
