//! A tracing event's fields as one MessagePack map, each value with its own
//! type: integers as integers, floats as floats, booleans, strings, bytes,
//! and anything else (`Debug`, errors, the message) as its text.
//!
//! The encoding is the smallest one for each value, as rmp-serde writes it,
//! so that `annals read` shows such data as JSON without a base64 copy
//! (its rule: bytes that re-encode exactly).

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};

/// The field whose value names the event's stream, when the layer is set
/// up with [`StreamKey::Field`](super::StreamKey::Field).
pub(super) struct StreamField<'a> {
    pub name: &'a str,
    pub value: Option<String>,
}

/// Writes visited fields into `out` as the entries of a map whose header
/// [`FieldWriter::finish`] writes in front of them.
pub(super) struct FieldWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Where the header goes: [`MAP_HEADER_ROOM`] bytes reserved at `start`.
    start: usize,
    entries: u32,
    stream_field: Option<StreamField<'a>>,
}

/// Bytes reserved for the map header (the largest, map32, is 5 bytes).
const MAP_HEADER_ROOM: usize = 5;
/// Bytes reserved for a string header before text of unknown length.
const STR_HEADER_ROOM: usize = 5;

impl<'a> FieldWriter<'a> {
    /// Starts a map at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>, stream_field: Option<StreamField<'a>>) -> FieldWriter<'a> {
        let start = out.len();
        out.extend_from_slice(&[0; MAP_HEADER_ROOM]);
        FieldWriter {
            out,
            start,
            entries: 0,
            stream_field,
        }
    }

    /// Adds one entry whose value `write_value` writes.
    pub fn entry(&mut self, name: &str, write_value: impl FnOnce(&mut Vec<u8>)) {
        write_str(self.out, name);
        write_value(self.out);
        self.entries += 1;
    }

    /// Writes the map header and returns the offset in `out` where the map
    /// starts (the reserved room before it is left unused), and the value
    /// of the stream field, if it was seen.
    pub fn finish(self) -> (usize, Option<String>) {
        let mut room = [0u8; MAP_HEADER_ROOM];
        let header = header_in(&mut room, |out| {
            rmp::encode::write_map_len(out, self.entries)
        });
        let begin = self.start + MAP_HEADER_ROOM - header.len();
        self.out[begin..self.start + MAP_HEADER_ROOM].copy_from_slice(header);
        (begin, self.stream_field.and_then(|field| field.value))
    }

    fn note_stream(&mut self, field: &Field, value: impl FnOnce() -> String) {
        if self.names_stream(field) {
            self.set_stream(value());
        }
    }

    fn names_stream(&self, field: &Field) -> bool {
        self.stream_field
            .as_ref()
            .is_some_and(|stream_field| stream_field.name == field.name())
    }

    fn set_stream(&mut self, value: String) {
        if let Some(stream_field) = &mut self.stream_field {
            stream_field.value = Some(value);
        }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.note_stream(field, || value.to_string());
        self.entry(field.name(), |out| {
            rmp::encode::write_sint(out, value).expect("a Vec grows");
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.note_stream(field, || value.to_string());
        self.entry(field.name(), |out| {
            rmp::encode::write_uint(out, value).expect("a Vec grows");
        });
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(value) => self.record_i64(field, value),
            Err(_) => match u64::try_from(value) {
                Ok(value) => self.record_u64(field, value),
                // MessagePack has no wider integer: keep every digit as text.
                Err(_) => self.record_debug(field, &value),
            },
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(value) => self.record_u64(field, value),
            Err(_) => self.record_debug(field, &value),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.note_stream(field, || value.to_string());
        self.entry(field.name(), |out| {
            rmp::encode::write_f64(out, value).expect("a Vec grows");
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.note_stream(field, || value.to_string());
        self.entry(field.name(), |out| {
            rmp::encode::write_bool(out, value).expect("a Vec grows");
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.note_stream(field, || value.to_string());
        self.entry(field.name(), |out| write_str(out, value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.entry(field.name(), |out| {
            rmp::encode::write_bin(out, value).expect("a Vec grows");
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = 0..0;
        self.entry(field.name(), |out| text = write_debug(out, value));
        if self.names_stream(field) {
            // The text just written names the stream: read it back rather
            // than format it twice.
            let value = String::from_utf8_lossy(&self.out[text]).into_owned();
            self.set_stream(value);
        }
    }
}

/// Writes `value` as a MessagePack string with the smallest header.
fn write_str(out: &mut Vec<u8>, value: &str) {
    rmp::encode::write_str(out, value).expect("a Vec grows");
}

/// Writes `value`'s `Debug` text as a MessagePack string, formatting it
/// straight into `out` (no temporary string): room for the largest header
/// is reserved, then the text is moved back behind the smallest one.
/// Returns where the text lies in `out`.
fn write_debug(out: &mut Vec<u8>, value: &dyn fmt::Debug) -> std::ops::Range<usize> {
    let header_at = out.len();
    out.extend_from_slice(&[0; STR_HEADER_ROOM]);
    let text_at = out.len();
    write!(Utf8Sink(out), "{value:?}").expect("formatting into a Vec does not fail");
    let text_len = out.len() - text_at;
    let mut room = [0u8; STR_HEADER_ROOM];
    // A Debug text longer than u32::MAX bytes cannot be a field value: the
    // store's event size limit refuses it first.
    let len = u32::try_from(text_len).unwrap_or(u32::MAX);
    let header = header_in(&mut room, |out| rmp::encode::write_str_len(out, len));
    out[header_at..header_at + header.len()].copy_from_slice(header);
    let moved_to = header_at + header.len();
    out.copy_within(text_at.., moved_to);
    out.truncate(moved_to + text_len);
    moved_to..moved_to + text_len
}

/// Writes a MessagePack header with `write` into `room` (on the stack: no
/// allocation per event) and returns the bytes written.
fn header_in<E: fmt::Debug>(
    room: &mut [u8; 5],
    write: impl FnOnce(&mut &mut [u8]) -> Result<rmp::Marker, E>,
) -> &[u8] {
    let mut free: &mut [u8] = &mut room[..];
    write(&mut free).expect("a MessagePack header takes at most 5 bytes");
    let written = 5 - free.len();
    &room[..written]
}

/// `fmt::Write` into a byte vector (Debug text is UTF-8).
struct Utf8Sink<'a>(&'a mut Vec<u8>);

impl fmt::Write for Utf8Sink<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debug text is written behind a reserved header and moved back: at
    /// each length where the header's size changes, the bytes are exactly
    /// rmp-serde's for the same string.
    #[test]
    fn debug_text_gets_the_smallest_header_at_every_size_boundary() {
        for len in [0, 1, 31, 32, 255, 256, 65_535, 65_536] {
            let text = "x".repeat(len);
            let mut out = vec![0xEE]; // something before, kept
            let range = write_debug(&mut out, &format_args!("{text}"));
            let expected = rmp_serde::to_vec(&text).unwrap();
            assert_eq!(out[0], 0xEE);
            assert_eq!(&out[1..], &expected[..], "length {len}");
            assert_eq!(&out[range], text.as_bytes());
        }
    }

    /// The map header is the smallest for the number of entries, right
    /// before them, whatever the count.
    #[test]
    fn map_headers_are_the_smallest() {
        for entries in [0u32, 1, 15, 16, 65_535, 65_536] {
            let mut out = Vec::new();
            let mut writer = FieldWriter::new(&mut out, None);
            for _ in 0..entries {
                writer.entry("", |out| out.push(0xC0)); // "" => nil
            }
            let (start, _) = writer.finish();
            let mut expected = Vec::new();
            rmp::encode::write_map_len(&mut expected, entries).unwrap();
            for _ in 0..entries {
                expected.extend_from_slice(&[0xA0, 0xC0]);
            }
            assert_eq!(&out[start..], &expected[..], "{entries} entries");
        }
    }
}
