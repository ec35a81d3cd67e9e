//! Which events a filtered read or a subscription returns.

/// A filter on event type and stream id prefix (a *category*, such as
/// `"order-"`). An empty filter matches every event. Filtering looks only at
/// the stream id and event type of each record: the data of events that do
/// not match is never copied or decoded.
///
/// ```
/// use annals::Filter;
/// let filter = Filter::default().event_type("Shipped").stream_prefix("order-");
/// assert!(filter.matches("order-7", "Shipped"));
/// assert!(!filter.matches("order-7", "Paid"));
/// assert!(!filter.matches("invoice-7", "Shipped"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Event types to keep; empty keeps every type.
    pub event_types: Vec<String>,
    /// Keep only streams whose id starts with this, if set.
    pub stream_prefix: Option<String>,
}

impl Filter {
    /// Also keeps events of type `event_type`.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Filter {
        self.event_types.push(event_type.into());
        self
    }

    /// Keeps only streams whose id starts with `prefix`.
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Filter {
        self.stream_prefix = Some(prefix.into());
        self
    }

    /// Whether an event of `stream` with type `event_type` passes.
    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && self
                .stream_prefix
                .as_deref()
                .is_none_or(|p| stream.starts_with(p))
    }

    /// Whether the filter keeps every event.
    pub fn is_empty(&self) -> bool {
        self.event_types.is_empty() && self.stream_prefix.is_none()
    }
}
