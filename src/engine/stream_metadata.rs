//! How the engine learns streams' metadata (truncation, deletion) from the
//! log: the newest `$metadata` event of each metadata stream that got
//! events, read through the index. Open, a follower's refresh and an
//! append all end here, so there is one rule for what counts.
//!
//! The rule: a stream's metadata is the data of the newest event of type
//! [`METADATA_EVENT_TYPE`] in its metadata stream `$$<stream>`; events of
//! other types there are skipped (annals writes none; a store written
//! before `$` was reserved might hold some). Each metadata event holds the
//! whole metadata, so no older one is read. One that does not decode, or
//! cannot be read, makes the metadata [`MetadataState::Invalid`]: stream
//! reads and appends then fail with `Error::InvalidStreamMetadata`, never
//! a panic and never the stream shown as if it had no metadata.
//!
//! Cost: one indexed read per metadata stream at open (not a scan of the
//! history), and one per batch appended to or followed into a metadata
//! stream; nothing for other batches.

use crate::format::stream_metadata;
use crate::index::MetadataState;
use crate::system_streams::METADATA_EVENT_TYPE;

use super::State;
use super::read_events::with_event_at;

/// Reads the metadata of every metadata stream that got events since the
/// last call, and records it in the index.
pub(crate) fn learn(state: &mut State) {
    if !state.index.has_changed_metadata_streams() {
        return;
    }
    for metadata_stream in state.index.take_changed_metadata_streams() {
        let metadata = newest_metadata(state, &metadata_stream);
        state.index.set_metadata(&metadata_stream, metadata);
    }
}

/// What the newest `$metadata` event of `metadata_stream` says; `None`
/// when it has none.
fn newest_metadata(state: &State, metadata_stream: &str) -> Option<MetadataState> {
    let newest = state.index.stream_version(metadata_stream);
    match newest_metadata_data(state, metadata_stream, newest) {
        Ok(None) => None,
        Ok(Some((metadata_version, data))) => Some(match stream_metadata::decode(&data) {
            Ok(metadata) => MetadataState::Known(metadata),
            Err(detail) => MetadataState::Invalid {
                metadata_version,
                detail,
            },
        }),
        Err((metadata_version, detail)) => Some(MetadataState::Invalid {
            metadata_version,
            detail,
        }),
    }
}

/// A metadata event found: its version in the metadata stream and its data.
pub(crate) type MetadataEvent = (u64, Vec<u8>);

/// The version and data of the newest `$metadata` event of
/// `metadata_stream` at or before version `newest`; `None` when it has
/// none. Where the log was cut before that event, the data the retention
/// manifest recorded at the cut (its version then unknown: 0).
///
/// # Errors
/// The version and what went wrong, when an event cannot be read.
pub(crate) fn newest_metadata_data(
    state: &State,
    metadata_stream: &str,
    newest: u64,
) -> Result<Option<MetadataEvent>, (u64, String)> {
    // Newest first; in a store annals wrote, the newest event is the one.
    for version in (1..=newest).rev() {
        let location = match state
            .index
            .stream_locations(metadata_stream, version, version + 1)
        {
            Ok(locations) => match locations.first() {
                Some(&location) => location,
                // Retired, and every version before it too.
                None => break,
            },
            Err(error) => return Err((version, format!("could not be read: {error}"))),
        };
        let data = with_event_at(state, location, |event| {
            (event.event_type == METADATA_EVENT_TYPE).then(|| event.data.to_vec())
        })
        .map_err(|error| (version, format!("could not be read: {error}")))?;
        if let Some(data) = data {
            return Ok(Some((version, data)));
        }
    }
    Ok(state
        .index
        .metadata_at_cut(metadata_stream)
        .map(|data| (0, data.to_vec())))
}
