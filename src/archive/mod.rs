//! Archiving sealed segments to object storage (feature `object-storage`):
//! S3 and S3-compatible servers (`s3://BUCKET/PREFIX`), or a local
//! directory (`file:///DIR`, for tests and NAS-style archives).
//!
//! - [`push`] uploads every sealed segment not yet archived, oldest first,
//!   with create-only puts (an object is never overwritten), optionally
//!   under object lock retention ([`ObjectLock`], COMPLIANCE mode), and
//!   records its progress in the store (`annals.archive`); it is safe to
//!   interrupt and rerun at any point.
//! - [`verify_archive`] checks an archive alone, from genesis, reading each
//!   segment object into memory (nothing is written to disk) and judging
//!   it with the same walk and checks as `verify` of a store;
//!   [`verify_with_archive`] checks a store whose first segments were
//!   retired, with those read from the archive.
//! - [`pull`] restores the archived segments into a directory that annals
//!   opens read-only.
//! - [`retire_archived`] retires segments only once each is in the archive,
//!   unchanged (read back and compared).
//!
//! Credentials and endpoint come from the usual environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`). The layout of an
//! archive, what exactly-once rests on and what an auditor runs are in
//! `docs/archiving.md`.
//!
//! ```
//! use annals::archive::{self, ArchiveTarget, PushOptions};
//! use annals::{EventData, ExpectedVersion, Options, Store, VerifyOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), Options::default().segment_size_bytes(64 * 1024))?;
//! for _ in 0..100 {
//!     store.append("log", ExpectedVersion::Any, &[EventData::new("Line", vec![0; 2000])])?;
//! }
//! store.close()?;
//!
//! let archive = tempfile::tempdir()?;
//! let target: ArchiveTarget = format!("file://{}", archive.path().display()).parse()?;
//! let pushed = archive::push(dir.path(), &target, &PushOptions::default(), &mut |_| {})?;
//! assert!(!pushed.uploaded.is_empty());
//! let again = archive::push(dir.path(), &target, &PushOptions::default(), &mut |_| {})?;
//! assert!(again.uploaded.is_empty());
//!
//! let report = archive::verify_archive(&target, &VerifyOptions::default(), &mut |_| {})?;
//! assert!(report.is_ok(), "{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod checkpoint;
mod layout;
mod push;
mod remote;
mod target;

pub use layout::{ArchiveRecord, RECORD_FORMAT};
pub use push::{PushOptions, PushProgress, PushReport, PushedSegment, push};
pub use remote::{PullReport, pull, retire_archived, verify_archive, verify_with_archive};
pub use target::{ArchiveTarget, ObjectLock};

use crate::log::archived::sha256_hex;
