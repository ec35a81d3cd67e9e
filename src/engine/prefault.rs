//! Populating the active segment's pages just ahead of the write offset, on
//! a background thread, so that the appending thread does not take the
//! page faults itself.
//!
//! Why: the writer copies each batch into a shared file mapping. The first
//! store to a page of a fresh (preallocated, never written) segment faults,
//! and the kernel allocates and zeroes a page-cache page before the store
//! goes on. Profiled on this project's 2-core machine (batches of 10
//! events of 256 bytes, `Durability::None`), those faults were about a
//! quarter of the appending thread's time (`docs/benchmarks.md`).
//! `MADV_POPULATE_WRITE` (Linux 5.14) takes the same faults from another
//! thread; the writer then finds the pages mapped.
//!
//! What it does not change: no byte of the file. A populated page reads
//! as zeroes ("nothing written here") until the writer writes it, so the
//! log, its recovery and its checks are the same with or without it. It
//! costs page cache for at most [`PREFAULT_WINDOW_BYTES`] ahead of the log's
//! end, and those pages are dirty (the kernel marks a page dirty at a write
//! fault), so a sync may write up to that many zero bytes that a later sync
//! writes again: that is why a store with `Durability::Always`, which syncs
//! after every batch, does not populate ahead (`Writer::start_prefaulting`).
//!
//! It never fails the store: where the kernel does not know the advice
//! (before 5.14) it stops trying, and any other error leaves the faults to
//! the writer, as without it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::format::SEGMENT_HEADER_LEN;
use crate::log::segment::Segment;

/// How far ahead of the write offset pages are populated.
pub(crate) const PREFAULT_WINDOW_BYTES: usize = 2 << 20;

/// How much one request to the kernel populates: small enough that a
/// request for a newer segment is taken up soon.
const PREFAULT_STEP_BYTES: usize = 256 << 10;

/// The background thread and what it was asked for.
pub(crate) struct Prefaulter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The end the writer asked for last in the current segment: it asks
    /// again only when the write offset is within half a window of it, so
    /// that most appends take no lock.
    asked_end: usize,
    /// The segment `asked_end` is in.
    asked_segment: Option<Arc<Segment>>,
}

struct Shared {
    work: Mutex<Work>,
    wake: Condvar,
}

#[derive(Default)]
struct Work {
    /// The segment to populate and the end to populate it to.
    segment: Option<Arc<Segment>>,
    target: usize,
    /// How far `segment` is populated.
    populated: usize,
    /// The kernel refused the advice as unknown: stop trying.
    unsupported: bool,
    stop: bool,
}

impl Prefaulter {
    /// Starts the thread.
    ///
    /// # Errors
    /// When the thread cannot be spawned (the store then appends without).
    pub fn start() -> std::io::Result<Prefaulter> {
        let shared = Arc::new(Shared {
            work: Mutex::new(Work::default()),
            wake: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("annals-prefault".into())
            .spawn(move || run(&thread_shared))?;
        Ok(Prefaulter {
            shared,
            thread: Some(thread),
            asked_end: 0,
            asked_segment: None,
        })
    }

    /// The writer will write `segment` from `write_offset` on: have the
    /// pages up to a window past it populated. Cheap when it asked for
    /// enough already.
    pub fn ahead(&mut self, segment: &Arc<Segment>, write_offset: usize) {
        let same_segment = self
            .asked_segment
            .as_ref()
            .is_some_and(|asked| Arc::ptr_eq(asked, segment));
        if same_segment && write_offset + PREFAULT_WINDOW_BYTES / 2 <= self.asked_end {
            return;
        }
        let target = (write_offset + PREFAULT_WINDOW_BYTES).min(segment.data_end());
        if same_segment && target <= self.asked_end {
            return;
        }
        self.asked_end = target;
        self.asked_segment = Some(Arc::clone(segment));
        let mut work = self.shared.lock();
        if !work
            .segment
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, segment))
        {
            work.segment = Some(Arc::clone(segment));
            work.populated = write_offset.max(SEGMENT_HEADER_LEN);
        }
        work.target = target;
        drop(work);
        self.shared.wake.notify_one();
    }

    /// Waits until everything asked for is populated (or given up): for
    /// tests.
    #[cfg(test)]
    fn wait_idle(&self) -> usize {
        let mut work = self.shared.lock();
        while !work.unsupported && work.segment.is_some() && work.populated < work.target {
            work = self
                .shared
                .wake
                .wait(work)
                .unwrap_or_else(|p| p.into_inner());
        }
        work.populated
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Work> {
        self.work.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Prefaulter {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: populates one step at a time, the newest segment asked for.
fn run(shared: &Shared) {
    let mut work = shared.lock();
    loop {
        if work.stop {
            return;
        }
        let pending = match &work.segment {
            Some(segment) if !work.unsupported && work.populated < work.target => {
                let from = work.populated;
                let to = work.target.min(from + PREFAULT_STEP_BYTES);
                Some((Arc::clone(segment), from, to))
            }
            _ => None,
        };
        let Some((segment, from, to)) = pending else {
            // Idle: say so (to `wait_idle`), then wait for a request.
            shared.wake.notify_all();
            work = shared.wake.wait(work).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        drop(work);
        let result = segment.populate_for_writing(from, to);
        work = shared.lock();
        match result {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::InvalidInput => {
                work.unsupported = true;
            }
            // Memory is short, or the range went away: the writer's own
            // faults do the work, as without this thread.
            Err(_) => {}
        }
        if work
            .segment
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, &segment))
        {
            work.populated = work.populated.max(to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;

    fn segment(dir: &std::path::Path) -> Arc<Segment> {
        let options = Options::default().segment_size_bytes(8 << 20);
        let header =
            crate::engine::writer::new_header(&options, 0, &crate::format::chain::GENESIS).unwrap();
        Arc::new(Segment::create(dir, &header, &Default::default()).unwrap())
    }

    #[test]
    fn populates_a_window_ahead_and_follows_the_newest_segment() {
        let dir = tempfile::tempdir().unwrap();
        let first = segment(dir.path());
        let mut prefaulter = Prefaulter::start().unwrap();
        prefaulter.ahead(&first, SEGMENT_HEADER_LEN);
        let populated = prefaulter.wait_idle();
        assert_eq!(populated, SEGMENT_HEADER_LEN + PREFAULT_WINDOW_BYTES);
        // Within half a window of the end asked for: nothing new is asked.
        prefaulter.ahead(&first, SEGMENT_HEADER_LEN + PREFAULT_WINDOW_BYTES / 4);
        assert_eq!(
            prefaulter.asked_end,
            SEGMENT_HEADER_LEN + PREFAULT_WINDOW_BYTES
        );
        // Past it: the window moves on, never past the data area.
        prefaulter.ahead(&first, first.data_end() - 4096);
        assert_eq!(prefaulter.wait_idle(), first.data_end());
        // Nothing of the file changed: populated pages read as zeroes.
        assert!(
            first.bytes(first.data_end())[SEGMENT_HEADER_LEN..]
                .iter()
                .all(|&b| b == 0)
        );

        std::fs::create_dir(dir.path().join("next")).unwrap();
        let second = segment(&dir.path().join("next"));
        prefaulter.ahead(&second, SEGMENT_HEADER_LEN);
        assert_eq!(
            prefaulter.wait_idle(),
            SEGMENT_HEADER_LEN + PREFAULT_WINDOW_BYTES
        );
    }
}
