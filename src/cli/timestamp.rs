//! RFC 3339 timestamps: the library's ([`annals::timestamp`]), the one
//! place for the conversion.

pub use annals::timestamp::{compact_nanos, now_ns, parse_rfc3339_nanos, rfc3339_nanos};
