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
