//! Streams the store writes itself, and the rule that reserves their names.
//!
//! What the store does on purpose to a stream or a subject (truncate it,
//! delete it, erase a subject's data) is recorded as an event in the log,
//! like any other change, so that it is covered by the hash chain and an
//! auditor can see it. Those events go to *system streams*, whose names
//! start with `$` (as in KurrentDB): applications cannot append to them
//! directly, only through the calls that write them
//! ([`crate::Store::append`] refuses such a name with
//! `Error::ReservedStream`).
//!
//! ```
//! use annals::system_streams::{is_system_stream, metadata_stream_of, stream_of_metadata_stream};
//!
//! assert!(is_system_stream("$$orders-1"));
//! assert!(!is_system_stream("orders-1"));
//! assert_eq!(metadata_stream_of("orders-1"), "$$orders-1");
//! assert_eq!(stream_of_metadata_stream("$$orders-1"), Some("orders-1"));
//! assert_eq!(stream_of_metadata_stream("orders-1"), None);
//! ```

/// Every system stream's name starts with this.
pub const SYSTEM_STREAM_PREFIX: &str = "$";

/// A stream's metadata stream is named this prefix and then the stream's
/// name (`$$orders-1` for `orders-1`, KurrentDB's convention). Its events
/// say how the stream was truncated or deleted.
pub const METADATA_STREAM_PREFIX: &str = "$$";

/// The event type of a stream's metadata events.
pub const METADATA_EVENT_TYPE: &str = "$metadata";

/// The stream recording each erasure of a subject's data.
pub const ERASURES_STREAM: &str = "$erasures";

/// The event type of an erasure record.
pub const SUBJECT_ERASED_EVENT_TYPE: &str = "$subject-erased";

/// Whether `stream` is a system stream (its name starts with `$`), which
/// applications cannot append to directly.
pub fn is_system_stream(stream: &str) -> bool {
    stream.starts_with(SYSTEM_STREAM_PREFIX)
}

/// The name of `stream`'s metadata stream.
pub fn metadata_stream_of(stream: &str) -> String {
    format!("{METADATA_STREAM_PREFIX}{stream}")
}

/// The stream whose metadata stream is `name`, if `name` is one.
pub fn stream_of_metadata_stream(name: &str) -> Option<&str> {
    name.strip_prefix(METADATA_STREAM_PREFIX)
}
