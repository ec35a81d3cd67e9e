//! The settings a store keeps (`annals.settings`, `format::settings`): the
//! segment size and limits chosen when it was created, used by every later
//! writer unless its options change them. A writer's options change a
//! setting by giving a value other than the built-in default; the changed
//! settings are recorded for the writers after it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::settings::{SETTINGS_LEN, StoreSettings};
use crate::log::directory;
use crate::log::finding::FindingKind;
use crate::options::{Limits, Options};

/// Name of the settings file in the store directory.
pub const SETTINGS_FILE_NAME: &str = "annals.settings";

/// The recorded settings of the store in `dir`, if it has a settings file.
///
/// # Errors
/// [`Error::Corrupt`] ([`FindingKind::InvalidSettings`]) when the file does
/// not decode or holds values no writer may use; [`Error::Io`] when it
/// cannot be read.
pub(crate) fn read(dir: &Path) -> Result<Option<StoreSettings>> {
    let path = dir.join(SETTINGS_FILE_NAME);
    let invalid =
        |detail: String| Error::found(&path, 0, None, FindingKind::InvalidSettings { detail });
    let metadata = match fs::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading store settings", &path, e)),
    };
    // Checked before reading: never read an amount a file says.
    if !metadata.file_type().is_file() || metadata.len() != SETTINGS_LEN as u64 {
        return Err(invalid(format!(
            "not a regular file of {SETTINGS_LEN} bytes ({} bytes)",
            metadata.len()
        )));
    }
    let bytes = fs::read(&path).map_err(|e| Error::io("reading store settings", &path, e))?;
    let settings = StoreSettings::decode(&bytes).map_err(|e| invalid(e.to_string()))?;
    apply(&Options::default(), &settings)
        .validate()
        .map_err(|e| invalid(format!("the recorded values are not allowed: {e}")))?;
    Ok(Some(settings))
}

/// Records `settings` durably: temporary file, sync, rename, directory sync.
pub(crate) fn write(dir: &Path, settings: &StoreSettings) -> Result<()> {
    let path = dir.join(SETTINGS_FILE_NAME);
    let temp = dir.join(format!("{SETTINGS_FILE_NAME}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(|e| Error::io("writing store settings", &temp, e))?;
    file.write_all(&settings.encode())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("writing store settings", &temp, e))?;
    drop(file);
    fs::rename(&temp, &path).map_err(|e| Error::io("renaming store settings", &path, e))?;
    directory::sync_dir(dir)
}

/// The options a writer runs with, and whether they must be recorded: each
/// setting the caller left at its built-in default takes the recorded value
/// (or, for a store from before settings files, the segment size of its
/// newest segment).
pub(crate) fn resolve(
    options: Options,
    recorded: Option<&StoreSettings>,
    newest_segment_size: Option<u64>,
) -> (Options, bool) {
    let defaults = Options::default();
    let base = match recorded {
        Some(recorded) => *recorded,
        None => {
            let mut base = of(&defaults);
            if let Some(size) = newest_segment_size {
                base.segment_size_bytes = size;
            }
            base
        }
    };
    let chosen = of(&options);
    let default = of(&defaults);
    let pick = |chosen: u64, default: u64, base: u64| if chosen != default { chosen } else { base };
    let resolved = StoreSettings {
        segment_size_bytes: pick(
            chosen.segment_size_bytes,
            default.segment_size_bytes,
            base.segment_size_bytes,
        ),
        max_stream_id_bytes: pick(
            chosen.max_stream_id_bytes,
            default.max_stream_id_bytes,
            base.max_stream_id_bytes,
        ),
        max_event_type_bytes: pick(
            chosen.max_event_type_bytes,
            default.max_event_type_bytes,
            base.max_event_type_bytes,
        ),
        max_event_bytes: pick(
            chosen.max_event_bytes,
            default.max_event_bytes,
            base.max_event_bytes,
        ),
        max_batch_events: pick(
            chosen.max_batch_events,
            default.max_batch_events,
            base.max_batch_events,
        ),
        max_snapshot_bytes: pick(
            chosen.max_snapshot_bytes,
            default.max_snapshot_bytes,
            base.max_snapshot_bytes,
        ),
    };
    let changed = recorded != Some(&resolved);
    (apply(&options, &resolved), changed)
}

/// The settings `options` would record.
pub(crate) fn of(options: &Options) -> StoreSettings {
    let limits = &options.limits;
    StoreSettings {
        segment_size_bytes: options.segment_size_bytes,
        max_stream_id_bytes: limits.max_stream_id_bytes as u64,
        max_event_type_bytes: limits.max_event_type_bytes as u64,
        max_event_bytes: limits.max_event_bytes as u64,
        max_batch_events: limits.max_batch_events as u64,
        max_snapshot_bytes: limits.max_snapshot_bytes as u64,
    }
}

/// `options` with the recorded settings in place.
pub(crate) fn apply(options: &Options, settings: &StoreSettings) -> Options {
    // Values from disk are validated by the caller (`Options::validate`),
    // which also bounds each within usize.
    let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
    Options {
        segment_size_bytes: settings.segment_size_bytes,
        limits: Limits {
            max_stream_id_bytes: size(settings.max_stream_id_bytes),
            max_event_type_bytes: size(settings.max_event_type_bytes),
            max_event_bytes: size(settings.max_event_bytes),
            max_batch_events: size(settings.max_batch_events),
            max_snapshot_bytes: size(settings.max_snapshot_bytes),
        },
        ..options.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_takes_the_recorded_value_and_a_change_is_recorded() {
        let small = Options::default().segment_size_bytes(64 * 1024);
        let (first, changed) = resolve(small.clone(), None, None);
        assert!(changed, "a new store records its settings");
        let recorded = of(&first);
        let (later, changed) = resolve(Options::default(), Some(&recorded), None);
        assert_eq!(later.segment_size_bytes, 64 * 1024);
        assert!(!changed);
        let (bigger, changed) = resolve(
            Options::default().segment_size_bytes(128 * 1024),
            Some(&recorded),
            None,
        );
        assert_eq!(bigger.segment_size_bytes, 128 * 1024);
        assert!(changed);
        // A store from before settings files: its newest segment's size.
        let (legacy, changed) = resolve(Options::default(), None, Some(1 << 20));
        assert_eq!(legacy.segment_size_bytes, 1 << 20);
        assert!(changed);
    }
}
