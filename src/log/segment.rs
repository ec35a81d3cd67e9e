//! One segment file: creating it safely, mapping it, and the few ways the
//! writer touches its bytes. Knows nothing of streams or batches.
//!
//! Invariants:
//! - A segment file is created whole (temporary name, real allocation, header
//!   synced, renamed, directory synced), so a file with a segment name always
//!   has a complete, durable header and its full size.
//! - Its mapping is never truncated, remapped or shrunk while it exists.
//! - Bytes below a segment's published end are never written again, so
//!   readers may borrow them while the writer appends after them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::error::{Error, Result};
use crate::format::durable_mark::DurableMark;
use crate::format::footer::SegmentFooter;
use crate::format::header::SegmentHeader;
use crate::format::{self, FOOTER_LEN, SEGMENT_HEADER_LEN};
use crate::hooks::Hooks;

use super::directory::sync_dir;
use super::finding::FindingKind;

/// Suffix of a segment file being created; such files are removed on open.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// A mapped segment file.
pub(crate) struct Segment {
    pub path: PathBuf,
    pub header: SegmentHeader,
    map: MmapRaw,
    writable: bool,
    hooks: Hooks,
    /// Sequence of the newest durable mark in the header (0: none yet).
    /// The file's length when it was opened (or created).
    file_len: u64,
    /// The durable mark's writer state. The lock serializes mark writes
    /// (the sync leader; the writer opening, sealing, closing), and once the
    /// segment is sealed no mark is written: a sync leader that synced this
    /// segment while the writer rolled past it must not touch a sealed file.
    mark: Mutex<MarkWriter>,
    /// The open file; `None` for a segment of an in-memory store.
    file: Option<File>,
}

impl Segment {
    /// Creates a new segment file in `dir`, preallocated in full.
    ///
    /// # Errors
    /// [`Error::NoSpace`] when the disk cannot hold the segment (the
    /// temporary file is removed); [`Error::Io`] otherwise.
    pub fn create(dir: &Path, header: &SegmentHeader, hooks: &Hooks) -> Result<Segment> {
        let name = format::segment_file_name(header.base_position);
        let path = dir.join(&name);
        let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
        let size = header.segment_size_bytes;
        let result = (|| {
            let _ = fs::remove_file(&temp);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(|e| Error::io("creating segment file", &temp, e))?;
            hooks
                .before_allocate(&temp, size)
                .and_then(|()| allocate(&file, size))
                .map_err(|e| match crate::error::is_no_space(&e) {
                    true => Error::NoSpace {
                        path: temp.clone(),
                        bytes: size,
                    },
                    false => Error::io("preallocating segment file", &temp, e),
                })?;
            file.write_all_at(&header.encode(), 0)
                .map_err(|e| Error::io("writing segment header", &temp, e))?;
            file.sync_all()
                .map_err(|e| Error::io("syncing new segment file", &temp, e))?;
            fs::rename(&temp, &path)
                .map_err(|e| Error::io("renaming new segment file", &path, e))?;
            sync_dir(dir)?;
            hooks.after_sync(&path, 0, SEGMENT_HEADER_LEN as u64);
            Ok(file)
        })();
        let file = match result {
            Ok(file) => file,
            Err(error) => {
                let _ = fs::remove_file(&temp);
                return Err(error);
            }
        };
        let map =
            MmapRaw::map_raw(&file).map_err(|e| Error::io("mapping segment file", &path, e))?;
        Ok(Segment {
            path,
            header: header.clone(),
            map,
            writable: true,
            hooks: hooks.clone(),
            file_len: size,
            mark: Mutex::new(MarkWriter::default()),
            file: Some(file),
        })
    }

    /// Creates a segment in anonymous memory, for [`crate::Store::in_memory`]:
    /// the same bytes and code paths as a file, with nothing to sync.
    pub fn create_in_memory(header: &SegmentHeader) -> Result<Segment> {
        let path = PathBuf::from(format!(
            "(memory)/{}",
            format::segment_file_name(header.base_position)
        ));
        let size = usize::try_from(header.segment_size_bytes).expect("segment sizes fit in memory");
        let mut map = memmap2::MmapMut::map_anon(size)
            .map_err(|e| Error::io("allocating in-memory segment", &path, e))?;
        map[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
        Ok(Segment {
            path,
            header: header.clone(),
            map: MmapRaw::from(map),
            writable: true,
            hooks: Hooks::default(),
            file_len: header.segment_size_bytes,
            mark: Mutex::new(MarkWriter::default()),
            file: None,
        })
    }

    /// What stays of a segment retired while the store is open: its path
    /// and header over a page of anonymous memory, so that its file's
    /// mapping (and so its disk space) goes once no reader holds the old
    /// [`Segment`]. The index never points into it.
    ///
    /// # Errors
    /// [`Error::Io`] when a page cannot be mapped.
    pub fn retired(&self) -> Result<Segment> {
        let map = memmap2::MmapMut::map_anon(SEGMENT_HEADER_LEN)
            .map_err(|e| Error::io("allocating retired segment's slot", &self.path, e))?;
        Ok(Segment {
            path: self.path.clone(),
            header: self.header.clone(),
            map: MmapRaw::from(map),
            writable: false,
            hooks: Hooks::default(),
            file_len: 0,
            mark: Mutex::new(MarkWriter::default()),
            file: None,
        })
    }

    /// Opens and maps an existing segment file, checking that it is a
    /// regular file and that its header is valid.
    ///
    /// A file shorter than its header says is mapped as far as it goes (read
    /// only; only the newest segment may be short, and the scan decides what
    /// that means): [`Segment::is_short`]. A writable open requires the full
    /// size ([`restore_size`] first). A file longer than its header says is
    /// refused.
    ///
    /// # Errors
    /// [`Error::Corrupt`] with the finding ([`FindingKind::NotARegularFile`],
    /// [`FindingKind::InvalidHeader`], [`FindingKind::WrongFileSize`]);
    /// [`Error::Io`] when the file cannot be opened or read.
    pub fn open(path: &Path, writable: bool, hooks: &Hooks) -> Result<Segment> {
        // O_NONBLOCK: opening a FIFO named like a segment must not wait for
        // a writer to appear; the file type is checked right after.
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .map_err(|e| Error::io("opening segment file", path, e))?;
        let metadata = file
            .metadata()
            .map_err(|e| Error::io("reading segment file metadata", path, e))?;
        if !metadata.file_type().is_file() {
            return Err(Error::found(path, 0, None, FindingKind::NotARegularFile));
        }
        let len = metadata.len();
        let mut header_bytes = [0u8; SEGMENT_HEADER_LEN];
        if len >= SEGMENT_HEADER_LEN as u64 {
            file.read_exact_at(&mut header_bytes, 0)
                .map_err(|e| Error::io("reading segment header", path, e))?;
        }
        let (header, map_len) = check_header(path, &header_bytes, len, writable)?;
        let map = if writable {
            MmapRaw::map_raw(&file)
        } else {
            memmap2::MmapOptions::new()
                .len(map_len)
                .map_raw_read_only(&file)
        }
        .map_err(|e| Error::io("mapping segment file", path, e))?;
        let mark_sequence =
            DurableMark::current(&header_bytes, header.salt).map_or(0, |mark| mark.sequence);
        Ok(Segment {
            path: path.to_path_buf(),
            header,
            map,
            writable,
            hooks: hooks.clone(),
            file: Some(file),
            file_len: len,
            mark: Mutex::new(MarkWriter {
                sequence: mark_sequence,
                sealed: false,
            }),
        })
    }

    /// A segment from bytes read elsewhere (an object in an archive),
    /// judged by the same header and size rules as [`Segment::open`] of a
    /// read-only file of that length, held in anonymous memory. `path`
    /// names where the bytes came from in findings.
    ///
    /// # Errors
    /// As [`Segment::open`]: [`Error::Corrupt`] with
    /// [`FindingKind::InvalidHeader`] or [`FindingKind::WrongFileSize`];
    /// [`Error::Io`] when the memory cannot be mapped.
    #[cfg_attr(not(feature = "object-storage"), allow(dead_code))]
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Segment> {
        let len = bytes.len() as u64;
        let mut header_bytes = [0u8; SEGMENT_HEADER_LEN];
        if let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) {
            header_bytes.copy_from_slice(header);
        }
        let (header, map_len) = check_header(path, &header_bytes, len, false)?;
        let mut map = memmap2::MmapMut::map_anon(map_len.max(1))
            .map_err(|e| Error::io("allocating memory for a segment", path, e))?;
        map[..map_len].copy_from_slice(&bytes[..map_len]);
        let mark_sequence =
            DurableMark::current(&header_bytes, header.salt).map_or(0, |mark| mark.sequence);
        let map = MmapRaw::from(
            map.make_read_only()
                .map_err(|e| Error::io("protecting the memory of a segment", path, e))?,
        );
        Ok(Segment {
            path: path.to_path_buf(),
            header,
            map,
            writable: false,
            hooks: Hooks::default(),
            file: None,
            file_len: len,
            mark: Mutex::new(MarkWriter {
                sequence: mark_sequence,
                sealed: false,
            }),
        })
    }

    /// Whether the file is shorter than its header says (only ever
    /// accepted for the newest segment, opened read-only).
    pub fn is_short(&self) -> bool {
        (self.len() as u64) < self.header.segment_size_bytes
    }

    /// The ranges of `from..to` that may hold bytes other than zero: all
    /// of it, less what the file system reports as holes (`SEEK_DATA` /
    /// `SEEK_HOLE`: ranges never written, or preallocated and unwritten
    /// with nothing in the page cache, which read as zeroes). Where the
    /// file system cannot say, the whole range.
    pub fn data_ranges(&self, from: usize, to: usize) -> Vec<std::ops::Range<usize>> {
        use rustix::fs::{SeekFrom, seek};
        // One range, the whole span (not the numbers from..to).
        #[allow(clippy::single_range_in_vec_init)]
        let whole = vec![from..to];
        let Some(file) = &self.file else {
            return whole;
        };
        let mut ranges = Vec::new();
        let mut at = from as u64;
        while at < to as u64 {
            let data = match seek(file, SeekFrom::Data(at)) {
                Ok(data) => data,
                // No data from `at` to the end of the file.
                Err(rustix::io::Errno::NXIO) => break,
                Err(_) => return whole,
            };
            if data >= to as u64 {
                break;
            }
            let hole = match seek(file, SeekFrom::Hole(data)) {
                Ok(hole) => hole.min(to as u64),
                Err(_) => return whole,
            };
            if hole <= data {
                return whole;
            }
            ranges.push(data as usize..hole as usize);
            at = hole;
        }
        ranges
    }

    /// The file's length when it was opened: the mapped length, or for a
    /// short file, up to 7 bytes more (a short file maps whole words only).
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Size of the whole file in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Offset where the data area ends and the footer begins; for a short
    /// file, where its mapped bytes end.
    pub fn data_end(&self) -> usize {
        let full = self.header.segment_size_bytes as usize - FOOTER_LEN;
        full.min(self.len())
    }

    /// The first `end` bytes of the file.
    ///
    /// Callers pass an `end` at or below the published end (or the whole
    /// length when no writer of this process can be writing), so the borrowed
    /// bytes are never written by this process while borrowed. A read-only
    /// store following a writer in another process borrows the whole file
    /// while that process appends to it: it trusts only frames whose header
    /// word it loaded with acquire ordering and whose checksum matches (see
    /// `format::frame::load_header_word`), and never the bytes after them.
    pub fn bytes(&self, end: usize) -> &[u8] {
        assert!(
            end <= self.len(),
            "slice end {end} past segment length {}",
            self.len()
        );
        // SAFETY: the mapping is valid for `len()` bytes for as long as
        // `self` lives, and by the invariant above nothing writes them while
        // the slice exists.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), end) }
    }

    /// The footer area; `None` for a short file, which has none.
    pub fn footer_bytes(&self) -> Option<&[u8]> {
        if self.is_short() {
            return None;
        }
        Some(&self.bytes(self.len())[self.len() - FOOTER_LEN..])
    }

    /// The durable mark in the header right now: how far the data was
    /// known to be durable. `None` for a version-1 segment or before the
    /// first mark. Read with acquire ordering after the slot bytes, pairing
    /// with the release fence in [`Segment::write_durable_mark`], so a
    /// reader that sees a mark sees the data below it.
    pub fn durable_mark(&self) -> Option<DurableMark> {
        let mark = DurableMark::current(self.bytes(SEGMENT_HEADER_LEN), self.header.salt);
        std::sync::atomic::fence(Ordering::Acquire);
        mark.filter(|_| self.header.format_version >= 2)
    }

    /// Records in the header that every byte below `durable_end` is
    /// durable. Call only after a sync covering those bytes returned: the
    /// mark is not synced here, but travels to disk with the next sync (or
    /// the kernel's write-back), so on disk it never claims more than was
    /// durable. Does nothing for a version-1 segment (its header has no
    /// room) or when the mark would not advance.
    ///
    /// Does nothing once the segment is sealed (the seal wrote the last one).
    pub fn write_durable_mark(&self, durable_end: usize) {
        let mut state = self.mark.lock().unwrap_or_else(|p| p.into_inner());
        if state.sealed {
            return;
        }
        self.write_durable_mark_locked(&mut state, durable_end);
    }

    fn write_durable_mark_locked(&self, state: &mut MarkWriter, durable_end: usize) {
        if self.header.format_version < 2 || !self.writable {
            return;
        }
        assert!(
            durable_end >= SEGMENT_HEADER_LEN && durable_end <= self.data_end(),
            "durable mark {durable_end} outside the data area"
        );
        if self
            .durable_mark()
            .is_some_and(|mark| mark.durable_end as usize >= durable_end)
        {
            return;
        }
        let sequence = state.sequence.wrapping_add(1);
        let mark = DurableMark {
            sequence,
            durable_end: durable_end as u32,
        };
        // The data below `durable_end` was published before; a reader that
        // sees this mark must see it too.
        std::sync::atomic::fence(Ordering::Release);
        // SAFETY: the slot lies in the header, which no reader of this
        // process borrows as data; another process may read it torn, which
        // its checksum detects (the other slot then holds the older mark).
        unsafe {
            self.write_unchecked(
                DurableMark::slot_offset(sequence),
                &mark.encode(self.header.salt),
            )
        };
        state.sequence = sequence;
    }

    /// Copies `bytes` to `offset` without publishing them.
    ///
    /// # Safety
    /// The range must lie beyond every published byte, and no reader may be
    /// borrowing it.
    pub unsafe fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(
            offset >= SEGMENT_HEADER_LEN,
            "data writes never touch the header"
        );
        // SAFETY: as the caller guarantees.
        unsafe { self.write_unchecked(offset, bytes) }
    }

    /// [`Segment::write`] without the check that the header is spared.
    ///
    /// # Safety
    /// As [`Segment::write`].
    unsafe fn write_unchecked(&self, offset: usize, bytes: &[u8]) {
        assert!(self.writable, "write to a read-only segment mapping");
        assert!(
            offset + bytes.len() <= self.len(),
            "write past the end of the segment"
        );
        // SAFETY: in bounds (checked above), the mapping is writable, and the
        // caller guarantees nobody reads or writes the range concurrently.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(offset),
                bytes.len(),
            )
        };
    }

    /// Populates the pages of `from..to` for writing
    /// (`MADV_POPULATE_WRITE`), taking their page faults now, without
    /// changing a byte: see `engine::prefault`. Safe beside readers and the
    /// writer: the kernel faults pages in, it writes nothing to them.
    ///
    /// # Errors
    /// As `madvise`: `InvalidInput` when the kernel does not know the
    /// advice (before Linux 5.14).
    pub fn populate_for_writing(&self, from: usize, to: usize) -> io::Result<()> {
        assert!(self.writable, "populating a read-only segment mapping");
        assert!(
            from <= to && to <= self.len(),
            "populating {from}..{to} of a mapping of {} bytes",
            self.len()
        );
        #[cfg(target_os = "linux")]
        {
            self.map
                .advise_range(memmap2::Advice::PopulateWrite, from, to - from)
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(io::ErrorKind::InvalidInput.into())
        }
    }

    /// Stores the 8-byte header word of a frame at `offset` with release
    /// ordering: a reader that loads it with acquire ordering sees every byte
    /// written before.
    pub fn publish_word(&self, offset: usize, word: [u8; 8]) {
        assert!(self.writable, "publish to a read-only segment mapping");
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len(),
            "misplaced header word at {offset}"
        );
        // SAFETY: in bounds and 8-byte aligned (the mapping is page-aligned),
        // and no reader holds a slice over this word yet.
        let atomic = unsafe { &*(self.map.as_mut_ptr().add(offset) as *const AtomicU64) };
        atomic.store(u64::from_le_bytes(word), Ordering::Release);
    }

    /// Makes the byte range durable, with `fdatasync` on the file (which
    /// may write back more than the range: every dirty page of the file).
    ///
    /// Not msync: on Linux, `msync(MS_SYNC)` is only an fsync of the range,
    /// and only for a mapping of a file opened for writing (`VM_SHARED`). A
    /// sealed segment is opened and mapped read-only, and msync of that
    /// mapping does nothing, silently. `fdatasync` alone is enough for a
    /// writable mapping too: the kernel write-protects the clean pages of a
    /// shared file mapping and marks a page dirty in the page cache at the
    /// first write to it, so writeback sees bytes written through the mapping
    /// like bytes written with `write`.
    pub fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if len == 0 {
            return Ok(());
        }
        self.hooks
            .before_sync(&self.path, offset as u64, len as u64)?;
        file.sync_data()?;
        self.hooks.after_sync(&self.path, offset as u64, len as u64);
        Ok(())
    }

    /// Makes `from..to` durable together with the header, whose durable
    /// mark may have changed since the last sync, in one sync: the hooks see
    /// the two ranges.
    pub fn sync_data_and_mark(&self, from: usize, to: usize) -> io::Result<()> {
        assert!(from <= to && to <= self.len());
        let Some(file) = &self.file else {
            return Ok(());
        };
        let len = (to - from) as u64;
        self.hooks.before_sync(&self.path, from as u64, len)?;
        // fdatasync writes back every dirty page of the file: the header's
        // and the data's, in one sync (see `Segment::sync`).
        file.sync_data()?;
        self.hooks
            .after_sync(&self.path, 0, SEGMENT_HEADER_LEN as u64);
        if len > 0 {
            self.hooks.after_sync(&self.path, from as u64, len);
        }
        Ok(())
    }

    /// Zeroes the durable mark slot at header offset `at` (a slot torn by a
    /// crash) and syncs the header. Only during open, before any reader.
    pub fn clear_durable_mark_slot(&self, at: usize) -> Result<()> {
        assert!(crate::format::durable_mark::DURABLE_MARK_SLOTS.contains(&at));
        // SAFETY: the header is never borrowed as data; no reader exists yet.
        unsafe {
            self.write_unchecked(
                at,
                &[0u8; crate::format::durable_mark::DURABLE_MARK_SLOT_LEN],
            )
        };
        self.sync(0, SEGMENT_HEADER_LEN)
            .map_err(|e| Error::io("syncing the durable mark of", &self.path, e))
    }

    /// Zeroes `from..to` (a torn tail or a torn footer) and syncs it.
    pub fn zero_and_sync(&self, from: usize, to: usize) -> Result<()> {
        assert!(from <= to && to <= self.len());
        let zeroes = vec![0u8; to - from];
        // SAFETY: only called during open, before any reader exists.
        unsafe { self.write(from, &zeroes) };
        self.sync(from, to - from)
            .map_err(|e| Error::io("syncing zeroed torn tail of", &self.path, e))
    }

    /// Syncs the data, then writes and syncs the footer, and makes the file
    /// read-only on disk.
    ///
    /// # Errors
    /// An error means a sync failed: what is durable is unknown, and the
    /// caller must poison the store. Once the footer is durable the segment
    /// is sealed whatever happens next, so a failure to make the file
    /// read-only is not an error here but [`Sealed::StillWritable`]: the
    /// permission is a guard against stray writes by other programs, not
    /// part of the format (openers judge a segment by its footer), and
    /// nothing about durability is in doubt.
    pub fn seal(&self, footer: &SegmentFooter) -> Result<Sealed> {
        let offset = self.data_end();
        // The data must be durable before the footer can be: with one sync
        // for both, a power loss could keep the footer page and lose data
        // pages before it, leaving a sealed segment that fails its checks.
        self.sync(0, offset)
            .map_err(|e| Error::io("syncing segment data before sealing", &self.path, e))?;
        // The durable mark covers all the data too, so that if the footer
        // is ever lost (zeroed, or the file cut), no byte of the data can go
        // unnoticed: the segment reads as an active one whose every batch was
        // durable. It is made durable before the footer is written: a valid
        // footer on disk then always sits over a whole mark, so a torn mark
        // slot in a sealed segment is damage, never a crash's leftover.
        let data_end = SEGMENT_HEADER_LEN + footer.data_len as usize;
        {
            let mut state = self.mark.lock().unwrap_or_else(|p| p.into_inner());
            self.write_durable_mark_locked(&mut state, data_end);
            state.sealed = true;
        }
        self.sync_data_and_mark(data_end, data_end)
            .map_err(|e| Error::io("syncing the durable mark before sealing", &self.path, e))?;
        // SAFETY: the footer area is never part of the published data, and
        // readers of this process only read published data.
        unsafe { self.write(offset, &footer.encode()) };
        self.sync(offset, FOOTER_LEN)
            .map_err(|e| Error::io("syncing sealed segment", &self.path, e))?;
        if self.file.is_none() {
            return Ok(Sealed::ReadOnly);
        }
        let made_read_only = fs::metadata(&self.path).and_then(|metadata| {
            let mut permissions = metadata.permissions();
            permissions.set_mode(permissions.mode() & !0o222);
            self.hooks
                .before_make_read_only(&self.path)
                .and_then(|()| fs::set_permissions(&self.path, permissions))
        });
        Ok(match made_read_only {
            Ok(()) => Sealed::ReadOnly,
            Err(e) => Sealed::StillWritable(Error::io(
                "making read-only the sealed, durable segment",
                &self.path,
                e,
            )),
        })
    }
}

/// See [`Segment::write_durable_mark`].
#[derive(Debug, Default)]
struct MarkWriter {
    /// Sequence of the newest mark in the header (0: none yet).
    sequence: u32,
    /// Set by the seal: no mark is written after it.
    sealed: bool,
}

/// The one rule for a segment's header and length, whatever holds its
/// bytes: `header_bytes` are its first bytes (zero where the file is
/// shorter), `len` its length. Returns the header and how many bytes to map:
/// a file shorter than its header says maps whole 8-byte words only (so
/// that every frame position can be read as a word); a writable open
/// requires the full size; a longer one is refused.
fn check_header(
    path: &Path,
    header_bytes: &[u8; SEGMENT_HEADER_LEN],
    len: u64,
    writable: bool,
) -> Result<(SegmentHeader, usize)> {
    if len < SEGMENT_HEADER_LEN as u64 {
        return Err(Error::found(
            path,
            len,
            None,
            FindingKind::InvalidHeader {
                detail: format!("the file is only {len} bytes, shorter than a header"),
            },
        ));
    }
    let header = SegmentHeader::decode(header_bytes).map_err(|e| {
        Error::found(
            path,
            0,
            None,
            FindingKind::InvalidHeader {
                detail: e.to_string(),
            },
        )
    })?;
    let size = header.segment_size_bytes;
    if len > size || (writable && len < size) {
        return Err(Error::found(
            path,
            len.min(size),
            None,
            FindingKind::WrongFileSize {
                len,
                expected: size,
            },
        ));
    }
    let map_len = if len < size {
        (len as usize) & !(format::FRAME_ALIGN - 1)
    } else {
        size as usize
    };
    Ok((header, map_len))
}

/// Makes a segment file writable by its owner again (a sealed segment is
/// read-only on disk), for recovery and repair, which change it on purpose.
pub(crate) fn make_writable(path: &Path) -> Result<()> {
    let mut permissions = fs::metadata(path)
        .map_err(|e| Error::io("reading permissions of", path, e))?
        .permissions();
    permissions.set_mode(permissions.mode() | 0o200);
    fs::set_permissions(path, permissions).map_err(|e| Error::io("making writable", path, e))
}

/// Makes a segment file read-only on disk, as a sealed segment is.
pub(crate) fn make_read_only(path: &Path) -> Result<()> {
    let mut permissions = fs::metadata(path)
        .map_err(|e| Error::io("reading permissions of", path, e))?
        .permissions();
    permissions.set_mode(permissions.mode() & !0o222);
    fs::set_permissions(path, permissions).map_err(|e| Error::io("making read-only", path, e))
}

/// Extends a segment file that was cut short back to its full `size` with
/// real, zeroed blocks, and syncs it. Only for the newest segment, when the
/// cut lies above every byte known to be durable.
///
/// # Errors
/// [`Error::NoSpace`] when the disk cannot hold it; [`Error::Io`] otherwise.
pub(crate) fn restore_size(path: &Path, size: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("opening short segment file", path, e))?;
    allocate(&file, size).map_err(|e| match crate::error::is_no_space(&e) {
        true => Error::NoSpace {
            path: path.to_path_buf(),
            bytes: size,
        },
        false => Error::io("restoring the size of a short segment file", path, e),
    })?;
    file.sync_all()
        .map_err(|e| Error::io("syncing restored segment file", path, e))
}

/// What [`Segment::seal`] did, once the footer was durable.
#[must_use]
pub(crate) enum Sealed {
    /// The segment is sealed and read-only on disk.
    ReadOnly,
    /// The segment is sealed and durable, but making the file read-only
    /// failed with this error.
    StillWritable(Error),
}

/// Reserves `size` bytes of real disk blocks for `file`, so that a later
/// write through the mapping cannot hit a full disk (which would kill the
/// process with SIGBUS instead of returning an error).
fn allocate(file: &File, size: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, size) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => {
            // The file system cannot preallocate: write zeroes, which
            // allocates just as really, only slower.
            let chunk = vec![0u8; 1 << 20];
            let mut offset = 0u64;
            while offset < size {
                let n = chunk.len().min((size - offset) as usize);
                file.write_all_at(&chunk[..n], offset)?;
                offset += n as u64;
            }
            Ok(())
        }
        Err(errno) => Err(errno.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;
    use crate::format::chain::GENESIS;
    use crate::options::Options;

    const PAGE_BYTES: usize = 4096;

    /// Skipping the holes of a segment's tail must never skip a written
    /// byte, whether written through the mapping (still in the page cache)
    /// or through another open file, synced or not: every nonzero byte lies
    /// in a reported range, and the ranges ascend within the asked range.
    #[test]
    fn data_ranges_cover_every_written_byte() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default().segment_size_bytes(1 << 20);
        let header = crate::engine::writer::new_header(&options, 0, &GENESIS).unwrap();
        let hooks = Hooks::default();
        let segment = Segment::create(dir.path(), &header, &hooks).unwrap();
        let written = [5000usize, 300_000, 700_008];
        for &at in &written[..2] {
            // SAFETY: nothing reads this new segment.
            unsafe { segment.write(at, &[0xCD; 16]) };
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segment.path)
            .unwrap()
            .write_all_at(&[0xEF; 8], written[2] as u64)
            .unwrap();
        let from = SEGMENT_HEADER_LEN;
        let to = segment.data_end();
        let ranges = segment.data_ranges(from, to);
        for pair in ranges.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{ranges:?}");
        }
        for range in &ranges {
            assert!(from <= range.start && range.end <= to, "{ranges:?}");
        }
        let bytes = segment.bytes(segment.len());
        for (at, byte) in bytes.iter().enumerate().take(to).skip(from) {
            if *byte != 0 {
                assert!(
                    ranges.iter().any(|r| r.contains(&at)),
                    "byte {at} is written but outside {ranges:?}"
                );
            }
        }
        // What was written is found, through the ranges, by the tail check.
        let tail = crate::format::scan::classify_tail_in(
            bytes,
            header.salt,
            from,
            to,
            segment.data_ranges(from, to),
        );
        assert_eq!(
            tail,
            crate::format::scan::TailState::Torn {
                last_nonzero_end: written[2] + 8
            }
        );
    }

    /// A sync leader that synced a segment while the writer rolled past it
    /// wrote its durable mark into the sealed segment's header after the
    /// seal's last sync: a dirty page of a sealed file that nothing syncs,
    /// which a power loss could tear, making the sealed segment refuse to
    /// open (found by `crash_power_loss::power_loss_long`).
    #[test]
    fn no_durable_mark_is_written_after_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default().segment_size_bytes(64 * 1024);
        let header = crate::engine::writer::new_header(&options, 0, &GENESIS).unwrap();
        let segment = Segment::create(dir.path(), &header, &Hooks::default()).unwrap();
        let footer = SegmentFooter {
            event_count: 1,
            batch_count: 1,
            last_position: 0,
            data_len: 64,
            contents_crc: 0,
            chain_end: GENESIS,
            sealed_unix_ns: 0,
        };
        let _ = segment.seal(&footer).unwrap();
        let sealed_header = segment.bytes(SEGMENT_HEADER_LEN).to_vec();
        assert_eq!(
            segment.durable_mark().map(|m| m.durable_end),
            Some((SEGMENT_HEADER_LEN + 64) as u32),
            "the seal records the data's end"
        );
        // The late sync leader.
        segment.write_durable_mark(SEGMENT_HEADER_LEN + 128);
        assert_eq!(segment.bytes(SEGMENT_HEADER_LEN), &sealed_header[..]);
    }

    /// Whether the page-cache page holding byte `offset` of the file at
    /// `path` is dirty (written but not yet written back), read from
    /// `/proc/self/pagemap` and `/proc/kpageflags`. `None` when this process
    /// may not read page frame numbers (they need CAP_SYS_ADMIN) or the
    /// files are missing.
    fn page_is_dirty(path: &Path, offset: usize) -> Option<bool> {
        const PRESENT: u64 = 1 << 63;
        const FRAME_NUMBER: u64 = (1 << 55) - 1;
        const KPF_DIRTY: u64 = 1 << 4;
        let file = File::open(path).ok()?;
        // SAFETY: a read-only mapping of a file no other code truncates.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        // Fault the page in so that it has a frame in this address space.
        // SAFETY: in bounds of the mapping.
        unsafe { std::ptr::read_volatile(map.as_ptr().add(offset)) };
        let virtual_page = (map.as_ptr() as usize + offset) / PAGE_BYTES;
        let mut entry = [0u8; 8];
        File::open("/proc/self/pagemap")
            .ok()?
            .read_exact_at(&mut entry, virtual_page as u64 * 8)
            .ok()?;
        let entry = u64::from_le_bytes(entry);
        let frame = entry & FRAME_NUMBER;
        if entry & PRESENT == 0 || frame == 0 {
            return None;
        }
        let mut flags = [0u8; 8];
        File::open("/proc/kpageflags")
            .ok()?
            .read_exact_at(&mut flags, frame * 8)
            .ok()?;
        Some(u64::from_le_bytes(flags) & KPF_DIRTY != 0)
    }

    /// Caught: `Segment::sync` used msync alone. A sealed segment is read-only
    /// on disk and is opened and mapped read-only, and Linux's msync does
    /// nothing for a mapping of a file opened read-only (such a mapping is not
    /// `VM_SHARED`), so `Engine::open_writable`'s sync of a newest sealed
    /// segment (whose footer a crashed writer may have left in the page cache
    /// only) never reached the disk. Observed through the page's dirty flag;
    /// skipped where that cannot be read (not root) or where syncing does not
    /// clean pages (tmpfs).
    #[test]
    fn syncing_a_read_only_mapped_segment_writes_its_dirty_pages_back() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default().segment_size_bytes(64 * 1024);
        let header = crate::engine::writer::new_header(&options, 0, &GENESIS).unwrap();
        let hooks = Hooks::default();
        let segment = Segment::create(dir.path(), &header, &hooks).unwrap();
        // Calibrate on another file: its written page must show as dirty,
        // and as clean once synced.
        let control = dir.path().join("control");
        let control_file = File::create(&control).unwrap();
        control_file.write_all_at(&[0xAB; PAGE_BYTES], 0).unwrap();
        if page_is_dirty(&control, 0) != Some(true) {
            eprintln!("skipped: page flags are not readable here");
            return;
        }
        control_file.sync_data().unwrap();
        if page_is_dirty(&control, 0) != Some(false) {
            eprintln!("skipped: syncing does not clean pages on this file system");
            return;
        }
        let probe = PAGE_BYTES;
        // SAFETY: nothing reads this new segment.
        unsafe { segment.write(probe, &[0xAB; PAGE_BYTES]) };
        assert_eq!(page_is_dirty(&segment.path, probe), Some(true));
        let read_only = Segment::open(&segment.path, false, &hooks).unwrap();
        assert!(!read_only.writable);
        read_only.sync(0, read_only.len()).unwrap();
        assert_eq!(
            page_is_dirty(&segment.path, probe),
            Some(false),
            "the sync of a read-only mapped segment left a written page unsynced"
        );
    }
}
