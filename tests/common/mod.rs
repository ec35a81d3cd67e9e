//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use annals::{Durability, EventData, ExpectedVersion, Options, RecordedEvent, Store};

/// Options with small (64 KiB) segments and no syncs: many rolls, fast tests.
pub fn small_segments() -> Options {
    Options::default()
        .segment_size_bytes(64 * 1024)
        .durability(Durability::None)
}

/// An event whose data says which stream, batch and index it is.
pub fn event(stream: &str, batch: u64, index: u64, size: usize) -> EventData {
    let mut data = format!("{stream}/{batch}/{index}/").into_bytes();
    data.resize(size.max(data.len()), b'.');
    EventData::new(format!("Type{}", index % 3), data)
}

/// Appends `batches` batches of `per_batch` events to streams `s-0..s-{streams}`,
/// round robin; returns every event as (stream, data) in log order.
pub fn fill(
    store: &Store,
    batches: u64,
    per_batch: u64,
    streams: u64,
    size: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut written = Vec::new();
    for batch in 0..batches {
        let stream = format!("s-{}", batch % streams);
        let events: Vec<EventData> = (0..per_batch)
            .map(|i| event(&stream, batch, i, size))
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .unwrap();
        written.extend(events.into_iter().map(|e| (stream.clone(), e.data)));
    }
    written
}

/// A store in `dir` of several sealed segments (small ones) and an active
/// one; returns where the active segment starts.
pub fn filled_with_sealed_segments(dir: &Path) -> u64 {
    let store = Store::open(dir, small_segments()).unwrap();
    fill(&store, 60, 4, 5, 2000);
    let sealed = store.active_segment_position();
    store.close().unwrap();
    sealed
}

/// Every event of the store, in log order.
pub fn all_events(store: &Store) -> Vec<RecordedEvent> {
    store.read_all(0, usize::MAX).unwrap()
}

/// Segment files of a store directory, in order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

/// Writes `bytes` at `offset` of `path` (making the file writable first: sealed
/// segments are read-only on disk).
pub fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::{FileExt, PermissionsExt};
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

/// Reads `len` bytes at `offset` of `path`.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut out = vec![0u8; len];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut out, offset)
        .unwrap();
    out
}

/// One frame of a segment file, found by walking the frame headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameAt {
    /// Offset of the frame's header word in the file.
    pub offset: u64,
    /// Bytes the frame occupies, padding included (`align8(12 + body_len)`).
    pub len: u64,
    /// 1 = event, 2 = commit.
    pub kind: u8,
    pub body_len: u32,
}

impl FrameAt {
    /// Offset of the frame's body (after length, kind, flags, reserved, crc).
    pub fn body_offset(&self) -> u64 {
        self.offset + 12
    }

    /// Offset of the next frame.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// The frames of a segment file, walked by hand from offset 128 (after the
/// header) until a zero header word or the footer area. Checks no checksum:
/// use it on a healthy file, before damaging it.
pub fn frames(path: &Path) -> Vec<FrameAt> {
    let bytes = std::fs::read(path).unwrap();
    let data_end = bytes.len() as u64 - 128;
    let mut out = Vec::new();
    let mut offset = 128u64;
    while offset + 8 <= data_end {
        let at = offset as usize;
        let word = &bytes[at..at + 8];
        if word.iter().all(|&b| b == 0) {
            break;
        }
        let body_len = u32::from_le_bytes(word[0..4].try_into().unwrap());
        let len = (12 + u64::from(body_len)).next_multiple_of(8);
        out.push(FrameAt {
            offset,
            len,
            kind: word[4],
            body_len,
        });
        offset += len;
    }
    out
}

/// One batch of a segment file: event frames and the commit frame that ends
/// it (a sync marker is a batch of no events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchAt {
    /// Offset of its first frame.
    pub start: u64,
    /// Offset after its commit frame.
    pub end: u64,
    /// Its event frames.
    pub events: Vec<FrameAt>,
    /// Offset of its commit frame.
    pub commit_offset: u64,
    /// The commit body's `synced_offset`: every byte below it was durable
    /// before this batch was written.
    pub synced_offset: u64,
}

/// The batches of a healthy segment file, in order (see [`frames`]).
pub fn batches(path: &Path) -> Vec<BatchAt> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut events = Vec::new();
    for frame in frames(path) {
        match frame.kind {
            1 => events.push(frame),
            2 => {
                let body = &bytes[frame.body_offset() as usize..][..frame.body_len as usize];
                let commit = annals::format::body::decode_commit(body).unwrap();
                out.push(BatchAt {
                    start: events.first().map_or(frame.offset, |e: &FrameAt| e.offset),
                    end: frame.end(),
                    events: std::mem::take(&mut events),
                    commit_offset: frame.offset,
                    synced_offset: commit.synced_offset,
                });
            }
            kind => panic!(
                "{}: frame of kind {kind} at {}",
                path.display(),
                frame.offset
            ),
        }
    }
    out
}

/// A sealed segment's footer `data_len` (footer bytes 32..40): its batches
/// end at `128 + data_len`.
pub fn footer_data_len(path: &Path) -> u64 {
    let len = std::fs::metadata(path).unwrap().len();
    u64::from_le_bytes(read_at(path, len - 128 + 32, 8).try_into().unwrap())
}

/// Inverts every bit of the byte at `offset` of `path` (making the file
/// writable first).
pub fn flip_byte(path: &Path, offset: u64) {
    let byte = read_at(path, offset, 1)[0];
    overwrite(path, offset, &[!byte]);
}

/// Runs `$body` (a `fn(&Store)`) against a file store and an in-memory
/// store, each opened with the calling file's `options()`.
#[allow(unused_macros)]
macro_rules! for_both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn file_store() {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path(), options()).unwrap();
                ($body)(&store);
            }

            #[test]
            fn memory_store() {
                let store = Store::in_memory(options()).unwrap();
                ($body)(&store);
            }
        }
    };
}

/// Copies the files of `from` (not recursively) into `to`, created if
/// missing: a store directory as it is now.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
