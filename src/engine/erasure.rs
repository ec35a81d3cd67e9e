//! Subjects and erasure (crypto-shredding): sealing the data of events that
//! name a subject, opening it for readers, and erasing a subject.
//!
//! Which subjects are erased is what the `$erasures` stream says, not
//! whether a key is missing: erasing appends (durably) the erasure event
//! first and destroys the key second, so after a crash between the two the
//! event is there and the key may be too. Every opener reads `$erasures`
//! (through the index: O(erasures), never a scan of the log) and treats its
//! subjects as erased, so all openers agree; the next writable open
//! destroys the keys such a crash left behind.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{AppendResult, EventDataRef, ExpectedVersion, Payload};
use crate::format::body::EventBody;
use crate::format::sealed_data::{self, NONCE_LEN, SealedFor};
use crate::keys::{SubjectKeys, validate_subject};
use crate::system_streams::{ERASURES_STREAM, SUBJECT_ERASED_EVENT_TYPE};

use super::read_events::with_event_at;
use super::writer::{AppendRequest, StreamWrite, event_fields_bytes};
use super::{Engine, State};

/// The data of an erasure event (`$subject-erased` in `$erasures`),
/// MessagePack with field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErasureRecord {
    /// The erased subject.
    pub subject: String,
    /// Why (free text from the caller).
    pub reason: String,
}

/// The store's keys and what `$erasures` says.
pub(crate) struct Subjects {
    pub keys: Arc<dyn SubjectKeys>,
    erased: RwLock<Erased>,
    /// Salvage's rule: it reads a damaged log without its index, so it
    /// cannot look `$erasures` up first, and takes a subject without a key
    /// as erased (a completed erasure destroyed it).
    missing_key_means_erased: bool,
}

#[derive(Default)]
struct Erased {
    /// Each erased subject, with the position of its erasure event.
    at: HashMap<String, u64>,
    /// Events of `$erasures` read so far (its version when last read).
    read_through: u64,
}

impl Subjects {
    pub fn new(keys: Arc<dyn SubjectKeys>) -> Subjects {
        Subjects {
            keys,
            erased: RwLock::default(),
            missing_key_means_erased: false,
        }
    }

    /// Salvage's subjects: see `missing_key_means_erased`.
    pub fn for_salvage(keys: Arc<dyn SubjectKeys>) -> Subjects {
        Subjects {
            missing_key_means_erased: true,
            ..Subjects::new(keys)
        }
    }

    /// The position of `subject`'s erasure event, if it was erased.
    pub fn erased_at(&self, subject: &str) -> Option<u64> {
        self.erased
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .at
            .get(subject)
            .copied()
    }

    /// Every erased subject with the position of its erasure event.
    pub fn erased_subjects(&self) -> Vec<(String, u64)> {
        let erased = self.erased.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = erased.at.iter().map(|(s, &p)| (s.clone(), p)).collect();
        all.sort_by_key(|&(_, position)| position);
        all
    }

    /// Reads the events of `$erasures` not read yet.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when an indexed record no longer decodes;
    /// [`Error::InvalidArgument`], naming the event's version and position,
    /// when an event of `$erasures` is not an erasure record.
    pub fn read_erasures(&self, state: &State) -> Result<()> {
        let mut erased = self.erased.write().unwrap_or_else(|p| p.into_inner());
        // Erasure events before the cut were retired: the retention
        // manifest recorded their subjects.
        if let Some(anchor) = state.index.anchor() {
            let cut_version = anchor.streams.get(ERASURES_STREAM).copied().unwrap_or(0);
            if erased.read_through < cut_version {
                for (subject, position) in &anchor.erasures {
                    erased.at.entry(subject.clone()).or_insert(*position);
                }
                erased.read_through = cut_version;
            }
        }
        let version = state.index.stream_version(ERASURES_STREAM);
        if version <= erased.read_through {
            return Ok(());
        }
        let locations =
            state
                .index
                .stream_locations(ERASURES_STREAM, erased.read_through + 1, version + 1)?;
        for location in locations {
            let record = with_event_at(state, location, |body| {
                rmp_serde::from_slice::<ErasureRecord>(body.data)
                    .map(|record| (record.subject, body.position))
                    .map_err(|e| {
                        Error::InvalidArgument(format!(
                            "event {} of {ERASURES_STREAM} (position {}) is not an erasure \
                             record: {e}",
                            body.version, body.position
                        ))
                    })
            })??;
            erased.at.entry(record.0).or_insert(record.1);
            erased.read_through += 1;
        }
        Ok(())
    }

    /// What a reader gets of `body`'s data: as stored, opened with its
    /// subject's key, or erased. The one place sealed data is opened.
    ///
    /// # Errors
    /// [`Error::SealedData`] when the subject is not erased but its key is
    /// missing or does not open the data; the key store's errors.
    pub fn payload<'a>(&self, body: &EventBody<'a>) -> Result<Payload<'a>> {
        let Some(subject) = body.subject else {
            return Ok(Payload::Plain(body.data));
        };
        if self.erased_at(subject).is_some() {
            return Ok(Payload::Erased);
        }
        let sealed_data_error = |detail: &'static str| Error::SealedData {
            subject: subject.to_string(),
            position: body.position,
            detail,
        };
        let Some(key) = self.keys.get(subject)? else {
            if self.missing_key_means_erased {
                return Ok(Payload::Erased);
            }
            return Err(sealed_data_error(
                "the subject has no key and was not erased (is this the store's key file?)",
            ));
        };
        let sealed_for = SealedFor {
            id: body.id,
            stream: body.stream,
            subject,
        };
        sealed_data::open(&key, &sealed_for, body.data)
            .map(Payload::Opened)
            .map_err(|e| sealed_data_error(e.as_str()))
    }

    /// Seals `data` for the event with `id` in `stream` with `subject`'s key
    /// (created if it has none, durably); appends it to `out`.
    ///
    /// # Errors
    /// [`Error::SubjectErased`] when the subject was erased; the key store's
    /// errors.
    pub fn seal(&self, out: &mut Vec<u8>, sealed_for: &SealedFor<'_>, data: &[u8]) -> Result<()> {
        if let Some(erased_at) = self.erased_at(sealed_for.subject) {
            return Err(Error::SubjectErased {
                subject: sealed_for.subject.to_string(),
                erased_at,
            });
        }
        let key = self.keys.get_or_create(sealed_for.subject)?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Error::Io {
            action: "drawing a random nonce for the data of subject",
            path: sealed_for.subject.into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        sealed_data::seal(out, &key, &nonce, sealed_for, data);
        Ok(())
    }

    /// Destroys the keys of erased subjects that are still there (an
    /// erasure interrupted between its event and the key's destruction).
    /// A writer's open calls it.
    ///
    /// # Errors
    /// The key store's errors.
    pub fn finish_erasures(&self) -> Result<()> {
        for (subject, _) in self.erased_subjects() {
            if self.keys.get(&subject)?.is_some() {
                self.keys.destroy(&subject)?;
            }
        }
        Ok(())
    }

    fn note_erased(&self, subject: &str, position: u64) {
        let mut erased = self.erased.write().unwrap_or_else(|p| p.into_inner());
        erased.at.entry(subject.to_string()).or_insert(position);
        erased.read_through += 1;
    }
}

impl Engine {
    /// Erases `subject`: appends its erasure event to `$erasures` and makes
    /// it durable, then destroys its key. Holds the writer lock throughout,
    /// so no append seals data for the subject in between.
    ///
    /// # Errors
    /// [`Error::UnknownSubject`] when it has no key and was never erased;
    /// [`Error::SubjectErased`] when it was erased already; the append's,
    /// the sync's and the key store's errors.
    pub fn erase_subject(&self, subject: &str, reason: &str) -> Result<AppendResult> {
        validate_subject(subject)?;
        let Some(writer) = &self.writer else {
            return Err(Error::ReadOnly {
                dir: self.dir.clone(),
            });
        };
        let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(erased_at) = self.subjects.erased_at(subject) {
            return Err(Error::SubjectErased {
                subject: subject.to_string(),
                erased_at,
            });
        }
        if self.subjects.keys.get(subject)?.is_none() {
            return Err(Error::UnknownSubject {
                subject: subject.to_string(),
            });
        }
        let record = ErasureRecord {
            subject: subject.to_string(),
            reason: reason.to_string(),
        };
        let data = rmp_serde::to_vec_named(&record).map_err(|e| Error::Codec {
            message: e.to_string(),
        })?;
        let events =
            [EventDataRef::new(SUBJECT_ERASED_EVENT_TYPE, &data).with_content_type("msgpack")];
        let write = StreamWrite {
            stream: ERASURES_STREAM,
            expected: ExpectedVersion::Any,
            events: &events,
        };
        let request = AppendRequest::one(&write, None);
        let fields_bytes = event_fields_bytes(ERASURES_STREAM, &events[0]);
        if fields_bytes > self.options.limits.max_event_bytes as u64 {
            return Err(Error::LimitExceeded {
                limit: "Limits::max_event_bytes (the erasure event: subject and reason)",
                actual: fields_bytes,
                max: self.options.limits.max_event_bytes as u64,
            });
        }
        let appended = writer.append(self, &request, fields_bytes)?;
        if let Some(end) = appended.end {
            // Whatever the durability mode: the key goes only once the
            // record of its going is durable.
            self.durability.sync_through(self, end)?;
        }
        self.subjects
            .note_erased(subject, appended.results[0].first_position);
        self.subjects.keys.destroy(subject)?;
        Ok(appended.results[0])
    }
}
