//! `annals::verify`: tamper evidence. Each test edits a store the way an
//! attacker (or a disk) might, keeping whatever checksums the edit would
//! break valid where the test says so, and checks that verify names the
//! place where the log stops being the one that was written.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use annals::format::body::COMMIT_CHAIN_PREFIX_LEN;
use annals::format::chain::{self, GENESIS};
use annals::format::footer::{self, FooterState, SegmentFooter};
use annals::format::frame::{self, FRAME_HEADER_LEN};
use annals::format::header::SegmentHeader;
use annals::format::scan::{self, BatchRead};
use annals::format::{FOOTER_LEN, SEGMENT_HEADER_LEN};
use annals::verify::{HeadCheck, Problem, ProblemKind, Progress, Severity};
use annals::{
    Durability, Error, EventData, ExpectedHead, ExpectedVersion, Options, Store, VerifyOptions,
    VerifyReport, verify,
};

const SEGMENT_SIZE: u64 = 64 * 1024;

fn small() -> Options {
    Options::default()
        .segment_size_bytes(SEGMENT_SIZE)
        .durability(Durability::None)
}

/// Appends `batches` batches of 1 to 3 events to 5 streams, some with a
/// command id, metadata or a correlation id; returns the store's chain head.
fn build_store(dir: &Path, batches: u64) -> ExpectedHead {
    let store = Store::open(dir, small()).unwrap();
    for i in 0..batches {
        let stream = format!("stream-{}", i % 5);
        let events: Vec<EventData> = (0..=(i % 3))
            .map(|j| {
                let mut event = EventData::new(
                    format!("Type{}", j),
                    vec![(i % 251) as u8; 100 + (i as usize * 7) % 150],
                );
                if i % 4 == 0 {
                    event = event.with_metadata(format!("meta-{i}").into_bytes());
                }
                if i % 3 == 0 {
                    event = event.with_correlation_id(format!("corr-{i}"));
                }
                event
            })
            .collect();
        if i % 10 == 0 {
            store
                .append_idempotent(&format!("cmd-{i}"), &stream, ExpectedVersion::Any, &events)
                .unwrap();
        } else {
            store
                .append(&stream, ExpectedVersion::Any, &events)
                .unwrap();
        }
    }
    store.close().unwrap();
    // After close: the head includes the sync marker close appended.
    ExpectedHead::from(Store::open_read_only(dir).unwrap().chain_head())
}

/// A store with at least `min_segments` segments and its head.
fn store_with_segments(min_segments: usize) -> (tempfile::TempDir, ExpectedHead) {
    let dir = tempfile::tempdir().unwrap();
    let batches = 260 * min_segments as u64;
    let head = build_store(dir.path(), batches);
    assert!(
        segment_paths(dir.path()).len() >= min_segments,
        "the test needs {min_segments} segments"
    );
    (dir, head)
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    paths.sort();
    paths
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap()
}

/// Writes a segment file, first making it writable (sealed segments are
/// read-only), as an attacker with access to the files would.
fn write(path: &Path, bytes: &[u8]) {
    let mut permissions = fs::metadata(path).unwrap().permissions();
    permissions.set_mode(0o644);
    fs::set_permissions(path, permissions).unwrap();
    fs::write(path, bytes).unwrap();
}

fn check(dir: &Path) -> VerifyReport {
    verify(dir, &VerifyOptions::default()).unwrap()
}

fn check_head(dir: &Path, head: ExpectedHead) -> VerifyReport {
    verify(dir, &VerifyOptions::default().expect_head(head)).unwrap()
}

fn of_kind(report: &VerifyReport, kind: ProblemKind) -> Vec<&Problem> {
    report.problems.iter().filter(|p| p.kind == kind).collect()
}

/// One batch of a segment, as found by the format's own scanner. A sync
/// marker (written on close) has no events: its `last_position` is that of
/// the event before it.
#[derive(Debug, Clone)]
struct Batch {
    start: usize,
    commit_offset: usize,
    end: usize,
    first_position: u64,
    last_position: u64,
    event_offsets: Vec<usize>,
    chain: [u8; 32],
}

fn header_of(bytes: &[u8]) -> SegmentHeader {
    SegmentHeader::decode(bytes).unwrap()
}

/// Every batch of a segment, sync markers included.
fn all_batches_of(bytes: &[u8]) -> Vec<Batch> {
    let salt = header_of(bytes).salt;
    let data_end = bytes.len() - FOOTER_LEN;
    let mut events = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN;
    let mut out = Vec::new();
    while let BatchRead::Batch(batch) = scan::read_batch(
        bytes,
        salt,
        header_of(bytes).format_version,
        offset,
        data_end,
        &mut events,
    ) {
        let first_position = batch.commit.first_position;
        out.push(Batch {
            start: batch.start,
            commit_offset: batch.commit_offset,
            end: batch.end,
            first_position,
            last_position: (first_position + batch.commit.event_count).saturating_sub(1),
            event_offsets: events.iter().map(|e| e.offset).collect(),
            chain: batch.commit.chain,
        });
        offset = batch.end;
    }
    out
}

/// The batches of a segment that hold events (sync markers left out).
fn batches_of(bytes: &[u8]) -> Vec<Batch> {
    all_batches_of(bytes)
        .into_iter()
        .filter(|b| !b.event_offsets.is_empty())
        .collect()
}

/// Recomputes the checksum of the frame at `offset`.
fn recompute_frame_crc(bytes: &mut [u8], salt: u64, offset: usize) {
    let body_len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    let body = &bytes[offset + FRAME_HEADER_LEN..offset + FRAME_HEADER_LEN + body_len];
    let crc = frame::frame_crc(salt, &word, body);
    bytes[offset + 8..offset + 12].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites a sealed segment's footer to agree with its (edited) data:
/// counts, last position, data length, contents checksum, chain_end and
/// footer checksum, as an attacker covering their tracks would.
fn reseal(bytes: &mut [u8]) {
    let len = bytes.len();
    let FooterState::Sealed(old) = SegmentFooter::decode(&bytes[len - FOOTER_LEN..]) else {
        panic!("reseal needs a sealed segment");
    };
    let header = header_of(bytes);
    let batches = all_batches_of(bytes);
    let last = batches.last().unwrap();
    let footer = SegmentFooter {
        event_count: batches.iter().map(|b| b.event_offsets.len() as u64).sum(),
        batch_count: batches.len() as u64,
        last_position: last.last_position,
        data_len: (last.end - SEGMENT_HEADER_LEN) as u64,
        contents_crc: footer::contents_crc(header.salt, &bytes[SEGMENT_HEADER_LEN..last.end]),
        chain_end: last.chain,
        sealed_unix_ns: old.sealed_unix_ns,
    };
    bytes[len - FOOTER_LEN..].copy_from_slice(&footer.encode());
}

/// Recomputes the whole hash chain of the store from genesis (every commit
/// record's value and checksum, every header's chain_start, every footer):
/// the most an attacker with write access can do. Returns the new head.
fn rechain(dir: &Path) -> [u8; 32] {
    let mut previous = GENESIS;
    for path in segment_paths(dir) {
        let mut bytes = read(&path);
        let mut header = header_of(&bytes);
        header.chain_start = previous;
        bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
        for batch in all_batches_of(&bytes) {
            let body_start = batch.commit_offset + FRAME_HEADER_LEN;
            let body_len = u32::from_le_bytes(
                bytes[batch.commit_offset..batch.commit_offset + 4]
                    .try_into()
                    .unwrap(),
            ) as usize;
            let value = chain::next_chain(
                &previous,
                &bytes[batch.start..batch.commit_offset],
                &bytes[body_start + COMMIT_CHAIN_PREFIX_LEN..body_start + body_len],
            );
            bytes[body_start + 3..body_start + COMMIT_CHAIN_PREFIX_LEN].copy_from_slice(&value);
            recompute_frame_crc(&mut bytes, header.salt, batch.commit_offset);
            previous = value;
        }
        let len = bytes.len();
        if matches!(
            SegmentFooter::decode(&bytes[len - FOOTER_LEN..]),
            FooterState::Sealed(_)
        ) {
            reseal(&mut bytes);
        }
        write(&path, &bytes);
    }
    previous
}

/// Changes one payload byte of the second event of a batch in the middle of
/// the second segment, then recomputes the frame checksum and (when
/// `reseal_footer`) the footer. Returns the edited batch.
fn edit_payload(dir: &Path, reseal_footer: bool) -> (PathBuf, Batch) {
    let path = segment_paths(dir)[1].clone();
    let mut bytes = read(&path);
    let salt = header_of(&bytes).salt;
    let batches = batches_of(&bytes);
    let batch = batches
        .iter()
        .skip(batches.len() / 2)
        .find(|b| b.event_offsets.len() >= 2)
        .unwrap()
        .clone();
    let frame_at = batch.event_offsets[1];
    let body_len = u32::from_le_bytes(bytes[frame_at..frame_at + 4].try_into().unwrap()) as usize;
    // The last payload byte: the body ends with the data, then (format
    // version 3) the subject, nil here, one byte.
    assert_eq!(bytes[frame_at + FRAME_HEADER_LEN + body_len - 1], 0xC0);
    bytes[frame_at + FRAME_HEADER_LEN + body_len - 2] ^= 0x01;
    recompute_frame_crc(&mut bytes, salt, frame_at);
    if reseal_footer {
        reseal(&mut bytes);
    }
    write(&path, &bytes);
    (path, batch)
}

#[test]
fn a_clean_store_verifies_and_its_head_is_the_stores() {
    let (dir, head) = store_with_segments(4);
    let store = Store::open_read_only(dir.path()).unwrap();
    let all = store.read_all(0, usize::MAX).unwrap();
    let streams = store.stream_count() as u64;
    drop(store);

    let mut calls: Vec<Progress> = Vec::new();
    let report = annals::verify::verify_with_progress(
        dir.path(),
        &VerifyOptions::default().expect_head(head),
        &mut |p| calls.push(p),
    )
    .unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.problems.is_empty(), "{report}");
    let summary = &report.summary;
    let segments = segment_paths(dir.path()).len() as u64;
    assert_eq!(summary.segments, segments);
    assert_eq!(summary.sealed_segments, segments - 1);
    assert_eq!(summary.events, all.len() as u64);
    // One batch per append, and the one sync marker the close wrote, apart.
    assert_eq!(summary.batches, 260 * 4);
    assert_eq!(summary.sync_markers, 1);
    assert!(
        report
            .to_string()
            .contains("1040 batches and 1 sync marker,"),
        "{report}"
    );
    assert_eq!(summary.streams, streams);
    assert_eq!(summary.bytes, segments * SEGMENT_SIZE);
    assert_eq!(summary.first_position, Some(0));
    assert_eq!(summary.last_position, Some(all.len() as u64 - 1));
    assert_eq!(summary.first_timestamp_ns, Some(all[0].timestamp_ns));
    assert_eq!(
        summary.last_timestamp_ns,
        Some(all.last().unwrap().timestamp_ns)
    );
    assert_eq!(summary.expected_head(), head);
    assert_eq!(summary.head_hex(), chain::to_hex(&head.digest));
    assert_eq!(
        report.head_check,
        Some(HeadCheck::Matched {
            position: head.position
        })
    );

    // Progress starts at 0, never goes back, and ends at the total.
    assert_eq!(calls.first().unwrap().bytes_done, 0);
    assert!(calls.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
    let last = calls.last().unwrap();
    assert_eq!(last.bytes_done, last.bytes_total);
    assert_eq!(last.bytes_total, segments * SEGMENT_SIZE);

    // Without a position, some batch's value matches; an earlier head too.
    let no_position = ExpectedHead {
        position: None,
        ..head
    };
    let report = check_head(dir.path(), no_position);
    assert_eq!(
        report.head_check,
        Some(HeadCheck::Matched {
            position: head.position
        })
    );
    assert!(report.is_ok());
}

#[test]
fn an_earlier_head_still_matches_after_more_appends() {
    let dir = tempfile::tempdir().unwrap();
    let early = build_store(dir.path(), 300);
    let store = Store::open(dir.path(), small()).unwrap();
    for i in 0..500 {
        store
            .append(
                "later",
                ExpectedVersion::Any,
                &[EventData::new("T", vec![i as u8; 200])],
            )
            .unwrap();
    }
    store.close().unwrap();
    let report = check_head(dir.path(), early);
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.head_check,
        Some(HeadCheck::Matched {
            position: early.position
        })
    );
    // The genesis head of an empty log matches any log.
    let report = check_head(dir.path(), ExpectedHead::from((GENESIS, None)));
    assert_eq!(
        report.head_check,
        Some(HeadCheck::Matched { position: None })
    );
}

#[test]
fn a_changed_payload_with_recomputed_checksums_breaks_the_chain_there() {
    let (dir, head) = store_with_segments(3);
    let (path, batch) = edit_payload(dir.path(), true);

    let report = check(dir.path());
    assert!(!report.is_ok(), "{report}");
    // Every checksum is valid: only the chain notices.
    assert_eq!(report.corruption_count, 1, "{report}");
    let broken = report.first_chain_break.as_ref().expect("a chain break");
    assert_eq!(broken.path, path);
    assert_eq!(broken.offset, batch.start as u64);
    assert_eq!(broken.commit_offset, batch.commit_offset as u64);
    assert_eq!(broken.first_position, batch.first_position);
    assert_eq!(broken.last_position, batch.last_position);
    assert_eq!(broken.stored, batch.chain);
    let problems = of_kind(&report, ProblemKind::ChainBroken);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, path);
    assert_eq!(problems[0].offset, batch.start as u64);
    assert_eq!(problems[0].position, Some(batch.first_position));

    // The recorded head shows the history was rewritten.
    let report = check_head(dir.path(), head);
    assert!(matches!(
        report.head_check,
        Some(HeadCheck::RewrittenHistory { position, found: Some(_) }) if position == head.position
    ));
}

#[test]
fn open_relies_on_checksums_for_sealed_segments_and_verify_on_the_chain() {
    // An edit that keeps the frame checksum valid but not the footer's
    // contents checksum: an open that reads every byte refuses, naming the
    // footer.
    let (dir, _) = store_with_segments(3);
    let (path, batch) = edit_payload(dir.path(), false);
    match Store::open(dir.path(), small().rebuild_index(true)) {
        Err(Error::Corrupt(finding)) => {
            assert_eq!(finding.path, path);
            assert_eq!(finding.offset, SEGMENT_SIZE - FOOTER_LEN as u64);
            assert!(
                finding.kind.to_string().contains("contents_crc"),
                "{finding}"
            );
        }
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("open accepted a sealed segment whose contents changed"),
    }
    let refused = Store::open_read_only_rebuilding_index(dir.path()).err();
    assert_eq!(
        refused
            .as_ref()
            .and_then(|e| e.finding())
            .map(|f| (&f.path, f.offset)),
        Some((&path, SEGMENT_SIZE - FOOTER_LEN as u64)),
        "{refused:?}"
    );
    // A default open checks the footer against the index checkpoint, not the
    // data against the footer, and each read checks its frame's checksum,
    // which the edit kept valid: it opens and reads the edited event; verify
    // is what catches it.
    let store = Store::open_read_only(dir.path()).expect("a default open checks the footer only");
    let edited = store.read_all(batch.first_position + 1, 1).unwrap();
    assert_eq!(edited.len(), 1);
    drop(store);
    let report = check(dir.path());
    assert_eq!(of_kind(&report, ProblemKind::Footer).len(), 1, "{report}");
    assert_eq!(
        of_kind(&report, ProblemKind::ChainBroken).len(),
        1,
        "{report}"
    );

    // An edit that also recomputes the footer: open does not recompute the
    // hash chain (docs/compliance.md, "What open checks"), so it opens,
    // even one that reads every byte; verify is what catches it.
    let (dir, _) = store_with_segments(3);
    let (path, batch) = edit_payload(dir.path(), true);
    let store = Store::open(dir.path(), small().rebuild_index(true))
        .expect("open does not recompute the chain");
    store.close().unwrap();
    let report = check(dir.path());
    let broken = report
        .first_chain_break
        .as_ref()
        .expect("verify recomputes the chain");
    assert_eq!(
        (broken.path.clone(), broken.offset),
        (path, batch.start as u64)
    );
}

#[test]
fn a_removed_batch_with_the_rest_shifted_breaks_the_chain_at_the_next_batch() {
    let (dir, _) = store_with_segments(3);
    let path = segment_paths(dir.path())[1].clone();
    let mut bytes = read(&path);
    let batches = batches_of(&bytes);
    let removed = batches[batches.len() / 2].clone();
    let next = batches[batches.len() / 2 + 1].clone();
    let data_end = batches.last().unwrap().end;
    let removed_len = removed.end - removed.start;
    // Shift everything after the removed batch down over it, zero the space
    // freed at the end, and make the footer agree. Frame checksums do not
    // depend on offsets, and with Durability::None every commit claims
    // only the header was synced, so every record stays valid.
    bytes.copy_within(removed.end..data_end, removed.start);
    bytes[data_end - removed_len..data_end].fill(0);
    reseal(&mut bytes);
    write(&path, &bytes);

    let report = check(dir.path());
    assert!(!report.is_ok());
    assert!(of_kind(&report, ProblemKind::Record).is_empty(), "{report}");
    assert!(of_kind(&report, ProblemKind::Footer).is_empty(), "{report}");
    let broken = report.first_chain_break.as_ref().expect("a chain break");
    assert_eq!(broken.path, path);
    assert_eq!(broken.offset, removed.start as u64);
    assert_eq!(broken.first_position, next.first_position);
    let gaps = of_kind(&report, ProblemKind::Sequence);
    assert!(
        gaps.iter().any(|p| p.position == Some(next.first_position)
            && p.message
                .contains(&format!("expected {}", removed.first_position))),
        "{report}"
    );
}

#[test]
fn swapped_segments_break_the_chain_at_the_first_moved_batch() {
    let (dir, _) = store_with_segments(4);
    let paths = segment_paths(dir.path());
    let (a, b) = (read(&paths[1]), read(&paths[2]));
    write(&paths[1], &b);
    write(&paths[2], &a);

    let report = check(dir.path());
    assert!(!report.is_ok());
    let broken = report.first_chain_break.as_ref().expect("a chain break");
    assert_eq!(broken.path, paths[1]);
    assert_eq!(broken.offset, SEGMENT_HEADER_LEN as u64);
    let links = of_kind(&report, ProblemKind::ChainLink);
    assert!(
        links.iter().any(|p| p.path == paths[1] && p.offset == 48),
        "{report}"
    );
    let layout = of_kind(&report, ProblemKind::Layout);
    assert!(layout.iter().any(|p| p.path == paths[1]), "{report}");
}

#[test]
fn a_missing_segment_is_named() {
    let (dir, head) = store_with_segments(4);
    let paths = segment_paths(dir.path());
    let missing_base = header_of(&read(&paths[1])).base_position;
    let after_base = header_of(&read(&paths[2])).base_position;
    fs::remove_file(&paths[1]).unwrap();

    let report = check_head(dir.path(), head);
    assert!(!report.is_ok());
    let layout = of_kind(&report, ProblemKind::Layout);
    assert_eq!(layout.len(), 1, "{report}");
    assert_eq!(layout[0].path, paths[2]);
    assert!(
        layout[0].message.contains(&format!(
            "positions {missing_base} to {} are missing",
            after_base - 1
        )),
        "{report}"
    );
    assert_eq!(report.first_chain_break.as_ref().unwrap().path, paths[2]);
    // The chain after the hole differs from the one the head was taken on.
    assert!(matches!(
        report.head_check,
        Some(HeadCheck::RewrittenHistory { .. })
    ));
}

#[test]
fn a_truncated_log_is_caught_against_the_expected_head() {
    // Whole segments removed from the end: what is left is a valid log
    // (a crash right after sealing leaves the same), so only a head kept
    // elsewhere can tell.
    let (dir, head) = store_with_segments(4);
    let paths = segment_paths(dir.path());
    let kept_end = header_of(&read(&paths[paths.len() - 2])).base_position - 1;
    fs::remove_file(&paths[paths.len() - 1]).unwrap();
    fs::remove_file(&paths[paths.len() - 2]).unwrap();
    assert!(check(dir.path()).is_ok(), "a shorter log is still valid");
    let report = check_head(dir.path(), head);
    assert!(!report.is_ok());
    assert_eq!(
        report.head_check,
        Some(HeadCheck::Truncated {
            position: head.position.unwrap(),
            log_end: Some(kept_end)
        })
    );
    let problems = of_kind(&report, ProblemKind::ExpectedHead);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.contains(&format!(
            "log truncated before position {}",
            head.position.unwrap()
        )),
        "{report}"
    );

    // The last batches cut from the newest segment (zeroed).
    let (dir, head) = store_with_segments(2);
    let newest = segment_paths(dir.path()).pop().unwrap();
    let mut bytes = read(&newest);
    let batches = batches_of(&bytes);
    let cut = &batches[batches.len() - 3];
    // Up to the end of everything written, sync marker included.
    let end = all_batches_of(&bytes).last().unwrap().end;
    bytes[cut.start..end].fill(0);
    write(&newest, &bytes);
    // Since format version 2, the durable mark in the header shows that the
    // zeroed batches had been synced: the cut is damage on its own.
    let report = check(dir.path());
    assert!(!report.is_ok(), "{report}");
    assert!(
        of_kind(&report, ProblemKind::Record)
            .iter()
            .any(|p| p.path == newest && p.message.contains("durable data lost")),
        "{report}"
    );
    let report = check_head(dir.path(), head);
    assert_eq!(
        report.head_check,
        Some(HeadCheck::Truncated {
            position: head.position.unwrap(),
            log_end: Some(cut.first_position - 1)
        })
    );
    assert!(!report.is_ok());
}

#[test]
fn a_rewritten_history_with_a_recomputed_chain_is_caught_only_by_the_head() {
    let (dir, head) = store_with_segments(3);
    edit_payload(dir.path(), true);
    let new_head = rechain(dir.path());
    // Every checksum and every chain value is consistent again.
    let report = check(dir.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.summary.head, new_head);
    // Only the head kept elsewhere shows it.
    let report = check_head(dir.path(), head);
    assert!(!report.is_ok());
    assert_eq!(
        report.head_check,
        Some(HeadCheck::RewrittenHistory {
            position: head.position,
            found: Some(new_head)
        })
    );
    let problem = &of_kind(&report, ProblemKind::ExpectedHead)[0];
    assert!(problem.message.contains("rewritten history"), "{problem}");
    // Without a position, no batch has the old value.
    let report = check_head(
        dir.path(),
        ExpectedHead {
            position: None,
            ..head
        },
    );
    assert_eq!(
        report.head_check,
        Some(HeadCheck::RewrittenHistory {
            position: None,
            found: None
        })
    );
}

#[test]
fn a_head_position_inside_a_batch_is_rewritten_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    let events = vec![EventData::new("T", b"x".to_vec()); 3];
    store.append("s", ExpectedVersion::Any, &events).unwrap();
    let (digest, _) = store.chain_head();
    store.close().unwrap();
    let report = check_head(
        dir.path(),
        ExpectedHead {
            digest,
            position: Some(1),
        },
    );
    assert_eq!(
        report.head_check,
        Some(HeadCheck::RewrittenHistory {
            position: Some(1),
            found: None
        })
    );
    assert!(!report.is_ok());
}

#[test]
fn a_changed_chain_start_is_a_broken_link() {
    let (dir, _) = store_with_segments(3);
    let path = segment_paths(dir.path())[2].clone();
    let mut bytes = read(&path);
    let mut header = header_of(&bytes);
    header.chain_start[0] ^= 1;
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
    write(&path, &bytes);
    let report = check(dir.path());
    let links = of_kind(&report, ProblemKind::ChainLink);
    assert_eq!(links.len(), 1, "{report}");
    assert_eq!((links[0].path.clone(), links[0].offset), (path, 48));
    // The batches themselves are unchanged: the chain over them holds.
    assert!(report.first_chain_break.is_none(), "{report}");
    assert_eq!(report.corruption_count, 1);
}

#[test]
fn damage_in_two_segments_is_reported_twice_and_verification_goes_on() {
    let (dir, head) = store_with_segments(4);
    let paths = segment_paths(dir.path());
    let mut damaged = Vec::new();
    for path in [&paths[1], &paths[2]] {
        let mut bytes = read(path);
        let batch = batches_of(&bytes)[5].clone();
        bytes[batch.event_offsets[0] + 20] ^= 0xFF;
        write(path, &bytes);
        damaged.push((path.clone(), batch));
    }
    let total_events = {
        let report = check(dir.path());
        assert!(!report.is_ok());
        for (path, batch) in &damaged {
            assert!(
                report.problems.iter().any(|p| p.kind == ProblemKind::Record
                    && &p.path == path
                    && p.offset == batch.event_offsets[0] as u64),
                "{report}"
            );
        }
        // Verification resumed after each damaged batch: only its events
        // are missing from the count, and every later segment was read.
        assert_eq!(report.summary.segments, paths.len() as u64);
        assert!(report.first_chain_break.is_none(), "{report}");
        report.summary.events
    };
    let lost: u64 = damaged
        .iter()
        .map(|(_, b)| b.event_offsets.len() as u64)
        .sum();
    assert_eq!(total_events + lost, head.position.unwrap() + 1);
    // The chain cannot be recomputed through the damage: the head is unverifiable.
    let report = check_head(dir.path(), head);
    assert_eq!(report.head_check, Some(HeadCheck::Unverifiable));
}

#[test]
fn bytes_after_the_sealed_data_are_refused_by_a_full_check_open_and_reported_by_verify() {
    let (dir, _) = store_with_segments(3);
    let path = segment_paths(dir.path())[0].clone();
    let mut bytes = read(&path);
    let end = batches_of(&bytes).last().unwrap().end;
    let at = end + 8;
    assert!(at + 8 < bytes.len() - FOOTER_LEN, "room after the data");
    bytes[at..at + 8].copy_from_slice(b"HIDDEN!!");
    write(&path, &bytes);
    let report = check(dir.path());
    let trailing = of_kind(&report, ProblemKind::TrailingBytes);
    assert_eq!(trailing.len(), 1, "{report}");
    assert_eq!(trailing[0].offset, at as u64);
    assert_eq!(report.corruption_count, 1, "{report}");
    match Store::open(dir.path(), small().rebuild_index(true)) {
        Err(Error::Corrupt(finding)) => {
            assert_eq!((finding.path, finding.offset), (path.clone(), at as u64))
        }
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(_) => panic!("open accepted bytes hidden after the sealed data"),
    }
    let refused = Store::open_read_only_rebuilding_index(dir.path()).err();
    assert_eq!(
        refused
            .as_ref()
            .and_then(|e| e.finding())
            .map(|f| (&f.path, f.offset)),
        Some((&path, at as u64)),
        "{refused:?}"
    );
    // A default open does not read a checkpointed sealed segment's free
    // space, and no read reaches it: every event reads back.
    let store = Store::open_read_only(dir.path()).expect("a default open does not read free space");
    assert_eq!(
        store.read_all(0, usize::MAX).unwrap().len() as u64,
        store.next_position()
    );
}

/// Every file's bytes, mode and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32, std::time::SystemTime)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let meta = fs::metadata(&path).unwrap();
            (
                path.clone(),
                fs::read(&path).unwrap(),
                meta.permissions().mode(),
                meta.modified().unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_torn_tail_is_a_warning_and_verify_changes_nothing() {
    let (dir, head) = store_with_segments(2);
    let newest = segment_paths(dir.path()).pop().unwrap();
    let mut bytes = read(&newest);
    let end = all_batches_of(&bytes).last().unwrap().end;
    // Half a batch: bytes of a frame whose first header word was never published.
    bytes[end + 8..end + 40].fill(0xAB);
    write(&newest, &bytes);
    // A temporary file from an interrupted segment creation.
    fs::write(
        dir.path().join("00000000000000099999.seg.tmp"),
        b"unfinished",
    )
    .unwrap();

    let before = snapshot(dir.path());
    let report = check_head(dir.path(), head);
    assert_eq!(snapshot(dir.path()), before, "verify changed the store");
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.corruption_count, 0);
    assert_eq!(report.warning_count, 2, "{report}");
    let torn = of_kind(&report, ProblemKind::TornTail);
    assert_eq!(torn.len(), 1);
    assert_eq!(torn[0].severity, Severity::Warning);
    assert_eq!(
        (torn[0].path.clone(), torn[0].offset),
        (newest.clone(), end as u64)
    );
    assert!(torn[0].message.contains("40 written bytes"), "{}", torn[0]);
    assert_eq!(of_kind(&report, ProblemKind::StrayFile).len(), 1);

    // Open as a writer repairs what verify only reported.
    Store::open(dir.path(), small()).unwrap().close().unwrap();
    let report = check_head(dir.path(), head);
    assert!(report.problems.is_empty(), "{report}");
}

#[test]
fn verify_runs_while_a_writer_appends() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), small()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            // Appends (rolling segments every few hundred events) until the
            // verifier is done, or a bounded number of appends.
            while !stop.load(Ordering::Relaxed) && i < 30_000 {
                let data = vec![i as u8; 40 + (i % 200) as usize];
                let events = vec![EventData::new("T", data); 1 + (i % 3) as usize];
                store
                    .append(&format!("s{}", i % 11), ExpectedVersion::Any, &events)
                    .unwrap();
                i += 1;
            }
        })
    };
    // At least 20 runs, and on until the log spans a dozen segments.
    let mut runs = 0;
    while runs < 20 || (store.next_position() < 4_000 && !writer.is_finished()) {
        let report = check(dir.path());
        assert_eq!(report.corruption_count, 0, "{report}");
        runs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let head = ExpectedHead::from(store.chain_head());
    let report = check_head(dir.path(), head);
    assert!(report.problems.is_empty(), "{report}");
    assert!(report.is_ok());
}

#[test]
fn a_directory_that_is_not_a_store_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        verify(dir.path(), &VerifyOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        verify(dir.path().join("nope"), &VerifyOptions::default()),
        Err(Error::Io { .. })
    ));
}

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_damage_never_panics_and_never_goes_unnoticed() {
    let (dir, head) = store_with_segments(3);
    let paths = segment_paths(dir.path());
    let originals: Vec<Vec<u8>> = paths.iter().map(|p| read(p)).collect();
    let mut random = Random(0x5EED_1234_ABCD_0001);
    for round in 0..300 {
        for (path, original) in paths.iter().zip(&originals) {
            write(path, original);
        }
        let victim = random.below(paths.len());
        let mut bytes = originals[victim].clone();
        let what = random.below(5);
        match what {
            // Flip 1 to 8 random bytes anywhere in the file.
            0 => {
                for _ in 0..1 + random.below(8) {
                    let at = random.below(bytes.len());
                    bytes[at] ^= 1 + random.below(255) as u8;
                }
            }
            // Overwrite a run with random bytes.
            1 => {
                let at = random.below(bytes.len());
                let len = 1 + random.below(512);
                for b in bytes.iter_mut().skip(at).take(len) {
                    *b = random.next() as u8;
                }
            }
            // Truncate or extend the file.
            2 => {
                let len = random.below(bytes.len() + 4096);
                bytes.resize(len, random.next() as u8);
            }
            // Copy a run of bytes from elsewhere (possibly another segment).
            3 => {
                let source = &originals[random.below(originals.len())];
                let from = random.below(source.len() - 600);
                let to = random.below(bytes.len() - 600);
                let len = 8 + random.below(590);
                bytes[to..to + len].copy_from_slice(&source[from..from + len]);
            }
            // Damage a frame header word.
            _ => {
                let batches = batches_of(&originals[victim]);
                let batch = &batches[random.below(batches.len())];
                let at = batch.event_offsets[0] + random.below(8);
                bytes[at] ^= 1 + random.below(255) as u8;
            }
        }
        if bytes == originals[victim] {
            continue;
        }
        write(&paths[victim], &bytes);
        let report = check_head(dir.path(), head);
        // Every byte of a segment file is covered by some check: any change
        // is reported, at least as a warning (a torn tail of the newest segment).
        assert!(
            !report.problems.is_empty(),
            "round {round}: damage of kind {what} to {} went unnoticed",
            paths[victim].display()
        );
        let _ = report.to_string();
    }
}

#[test]
fn an_archive_of_the_sealed_segments_reads_and_verifies_on_its_own() {
    let (dir, _) = store_with_segments(4);
    // The archive: a copy of every sealed segment, from the first on.
    let archive = tempfile::tempdir().unwrap();
    let paths = segment_paths(dir.path());
    let sealed = &paths[..paths.len() - 1];
    for path in sealed {
        let target = archive.path().join(path.file_name().unwrap());
        fs::copy(path, &target).unwrap();
        assert_eq!(
            fs::metadata(path).unwrap().permissions().mode() & 0o222,
            0,
            "the writer made the sealed segment read-only"
        );
    }
    let live = check(dir.path());
    let report = check(archive.path());
    assert!(report.is_ok() && report.problems.is_empty(), "{report}");
    assert_eq!(report.summary.sealed_segments, sealed.len() as u64);
    // The archive's head is a point of the live log's chain.
    let archive_head = report.summary.expected_head();
    let last =
        SegmentFooter::decode(&read(sealed.last().unwrap())[SEGMENT_SIZE as usize - FOOTER_LEN..]);
    let FooterState::Sealed(last) = last else {
        panic!("sealed")
    };
    assert_eq!(archive_head.digest, last.chain_end);
    assert_eq!(archive_head.position, Some(last.last_position));
    assert!(check_head(dir.path(), archive_head).is_ok());
    assert!(live.summary.events > report.summary.events);

    let from_archive = Store::open_read_only(archive.path()).unwrap();
    let from_live = Store::open_read_only(dir.path()).unwrap();
    let archived = from_archive.read_all(0, usize::MAX).unwrap();
    assert_eq!(archived.len() as u64, last.last_position + 1);
    assert_eq!(archived, from_live.read_all(0, archived.len()).unwrap());
    // Nothing was created in the archive directory.
    assert_eq!(fs::read_dir(archive.path()).unwrap().count(), sealed.len());
}
