//! The `tracing_subscriber::Layer`: turns each event (and, when asked, each
//! span's opening and closing) into a [`Record`] on the calling thread, and
//! hands it to the non-blocking [`Writer`].
//!
//! The calling thread does only what needs the event itself: it encodes the
//! fields (they borrow from the caller's stack), picks the stream and type,
//! and reads the span's ids. Everything else (event ids, timestamps,
//! checksums, the copy into the log) happens on the writer thread.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use tracing_core::span::{Attributes, Id};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::fields::{FieldWriter, StreamField};
use super::queue::{FlushError, Record, Stats, StreamName, Writer};
use super::{FALLBACK_STREAM, FlushGuard};
use crate::system_streams::is_system_stream;

/// Bytes reserved for an event's fields before they are encoded: most
/// log events fit, so most need one allocation.
const DATA_CAPACITY_BYTES: usize = 128;

/// The layer; see [`crate::tracing`] for what it writes and
/// [`Builder`](super::Builder) for its options.
pub struct AnnalsLayer {
    pub(super) writer: Arc<Writer>,
    pub(super) stream: StreamChoice,
    pub(super) spans: bool,
    /// The store's `Limits::max_stream_id_bytes`: a longer stream name
    /// from a field goes to [`FALLBACK_STREAM`] instead of being refused.
    pub(super) max_stream_id_bytes: usize,
}

/// Where the layer's events go: [`StreamKey`](super::StreamKey), checked.
#[derive(Debug, Clone)]
pub(super) enum StreamChoice {
    Target,
    Field(&'static str),
    Fixed(StreamName),
}

/// What the layer keeps in each span's extensions.
struct SpanIds {
    /// This span's id: unique across the store's history (a UUID v7),
    /// unlike tracing's span ids, which are reused once a span closes.
    own: Arc<str>,
    /// The id of the root of this span's tree: the correlation id.
    root: Arc<str>,
    /// With [`StreamKey::Field`](super::StreamKey::Field): the stream this span's field (or its
    /// nearest ancestor's) names, for events inside it without the field.
    field_stream: Option<StreamName>,
    /// When it opened, with span recording on (for `elapsed_ns` at close).
    opened: Option<Instant>,
}

impl AnnalsLayer {
    /// A guard that flushes (appends everything queued, then syncs the
    /// store) when dropped: keep it alive until the service shuts down.
    pub fn guard(&self) -> FlushGuard {
        FlushGuard {
            writer: Arc::clone(&self.writer),
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> Stats {
        self.writer.stats()
    }

    /// Appends everything queued before this call and syncs the store.
    ///
    /// # Errors
    /// See [`FlushError`].
    pub fn flush(&self) -> Result<(), FlushError> {
        self.writer.flush()
    }

    /// The stream named by a field value, or [`FALLBACK_STREAM`] if the
    /// store would refuse it.
    fn field_stream(&self, name: String) -> StreamName {
        if is_valid_stream(&name, self.max_stream_id_bytes) {
            StreamName::Shared(Arc::from(name))
        } else {
            StreamName::Static(FALLBACK_STREAM)
        }
    }

    /// Encodes the fields `record` visits into a new buffer; with
    /// [`StreamKey::Field`](super::StreamKey::Field), also returns the stream that field names.
    fn encode(
        &self,
        record: impl FnOnce(&mut FieldWriter<'_>),
    ) -> (Vec<u8>, usize, Option<StreamName>) {
        let mut data = Vec::with_capacity(DATA_CAPACITY_BYTES);
        let stream_field = match &self.stream {
            StreamChoice::Field(name) => Some(StreamField { name, value: None }),
            _ => None,
        };
        let mut writer = FieldWriter::new(&mut data, stream_field);
        record(&mut writer);
        let (start, field_value) = writer.finish();
        (data, start, field_value.map(|v| self.field_stream(v)))
    }

    /// The stream of an event or span: the configured key, falling back to
    /// the enclosing span's field stream, then to the target.
    fn stream_of(
        &self,
        metadata: &'static Metadata<'static>,
        field_stream: Option<StreamName>,
        inherited: Option<&StreamName>,
    ) -> StreamName {
        let target = || {
            let target = metadata.target();
            StreamName::Static(if is_valid_stream(target, self.max_stream_id_bytes) {
                target
            } else {
                FALLBACK_STREAM
            })
        };
        match &self.stream {
            StreamChoice::Target => target(),
            StreamChoice::Fixed(name) => name.clone(),
            StreamChoice::Field(_) => field_stream
                .or_else(|| inherited.cloned())
                .unwrap_or_else(target),
        }
    }

    fn send(
        &self,
        stream: StreamName,
        event_type: Cow<'static, str>,
        (data, data_start): (Vec<u8>, usize),
        ids: Option<&SpanIds>,
    ) {
        self.writer.send(Record {
            stream,
            event_type,
            data,
            data_start,
            correlation_id: ids.map(|ids| Arc::clone(&ids.root)),
            causation_id: ids.map(|ids| Arc::clone(&ids.own)),
        });
    }
}

/// Whether the store takes `name` as a stream to append to: not empty, not
/// a system stream (`$`), not longer than `max_stream_id_bytes`. A name
/// that fails goes to [`FALLBACK_STREAM`] instead:
/// a log event is never lost for its stream's name.
pub(super) fn is_valid_stream(name: &str, max_stream_id_bytes: usize) -> bool {
    !name.is_empty() && !is_system_stream(name) && name.len() <= max_stream_id_bytes
}

/// The event type of a log event: its level (`"INFO"`), followed by its
/// name when the event was given one (`tracing::info!(name: "login", ..)`);
/// tracing names other events `event FILE:LINE`, which says nothing the
/// level does not.
fn event_type(metadata: &'static Metadata<'static>) -> Cow<'static, str> {
    let level = level_name(metadata.level());
    if metadata.name().starts_with("event ") {
        Cow::Borrowed(level)
    } else {
        Cow::Owned(format!("{level} {}", metadata.name()))
    }
}

/// The event type of a span's opening or closing: `"INFO span.open NAME"`,
/// `"INFO span.close NAME"`.
fn span_type(metadata: &'static Metadata<'static>, what: &str) -> Cow<'static, str> {
    Cow::Owned(format!(
        "{} span.{what} {}",
        level_name(metadata.level()),
        metadata.name()
    ))
}

/// The level as the first word of an event type: `annals read --pretty`
/// reads it back from there (`src/cli/pretty.rs`).
fn level_name(level: &Level) -> &'static str {
    level.as_str()
}

impl<S> Layer<S> for AnnalsLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let Some(span) = context.span(id) else {
            return;
        };
        let parent = span.parent();
        let parent_ids = parent.as_ref().map(|parent| {
            let extensions = parent.extensions();
            extensions
                .get::<SpanIds>()
                .map(|ids| (Arc::clone(&ids.root), ids.field_stream.clone()))
        });
        let (root, inherited) = match parent_ids.flatten() {
            Some((root, stream)) => (Some(root), stream),
            None => (None, None),
        };
        let own: Arc<str> = Arc::from(crate::event::Uuid::now_v7().hyphenated().to_string());
        let needs_fields = self.spans || matches!(self.stream, StreamChoice::Field(_));
        let (data, data_start, field_stream) = if needs_fields {
            self.encode(|writer| attributes.record(writer))
        } else {
            (Vec::new(), 0, None)
        };
        let ids = SpanIds {
            root: root.unwrap_or_else(|| Arc::clone(&own)),
            own,
            field_stream: field_stream.or(inherited),
            opened: self.spans.then(Instant::now),
        };
        if self.spans {
            let metadata = span.metadata();
            let stream = self.stream_of(metadata, None, ids.field_stream.as_ref());
            let event_type = span_type(metadata, "open");
            self.send(stream, event_type, (data, data_start), Some(&ids));
        }
        span.extensions_mut().insert(ids);
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let metadata = event.metadata();
        let (data, data_start, field_stream) = self.encode(|writer| event.record(writer));
        let span = context.event_span(event);
        let extensions = span.as_ref().map(SpanRef::extensions);
        let ids = extensions.as_ref().and_then(|e| e.get::<SpanIds>());
        let stream = self.stream_of(
            metadata,
            field_stream,
            ids.and_then(|ids| ids.field_stream.as_ref()),
        );
        self.send(stream, event_type(metadata), (data, data_start), ids);
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        if !self.spans {
            return;
        }
        let Some(span) = context.span(&id) else {
            return;
        };
        let extensions = span.extensions();
        let Some(ids) = extensions.get::<SpanIds>() else {
            return;
        };
        let elapsed_ns = ids.opened.map_or(0, |opened| {
            u64::try_from(opened.elapsed().as_nanos()).unwrap_or(u64::MAX)
        });
        let mut data = Vec::with_capacity(24);
        let mut writer = FieldWriter::new(&mut data, None);
        writer.entry("elapsed_ns", |out| {
            rmp::encode::write_uint(out, elapsed_ns).expect("a Vec grows");
        });
        let (data_start, _) = writer.finish();
        let metadata = span.metadata();
        let stream = self.stream_of(metadata, None, ids.field_stream.as_ref());
        self.send(
            stream,
            span_type(metadata, "close"),
            (data, data_start),
            Some(ids),
        );
    }
}
