//! Bounded retries: a session that lost the server is started again after a
//! growing pause, until the server has been out of reach for longer than
//! `give_up_after`.

use std::time::{Duration, Instant};

use super::error::ShipError;

/// First pause after a failed attempt; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Sessions in a row that reach the server but ship (or receive) nothing
/// before the shipper gives up with [`ShipError::Stalled`].
pub const MAX_STALLED_SESSIONS: u32 = 20;

/// Why a session stopped before its work was done.
#[derive(Debug)]
pub enum Interruption {
    /// Retrying cannot help (bad options, a foreign stream, corruption…).
    Fatal(ShipError),
    /// The server is out of reach, or the JetStream stream moved under the
    /// shipper: start again from the server's state.
    Retry {
        /// What happened, for the progress report and the final error.
        reason: String,
        /// Whether the session reached the server at all (it read the
        /// stream or had a publish acknowledged): that resets the clock.
        contact: bool,
    },
}

impl From<ShipError> for Interruption {
    fn from(error: ShipError) -> Interruption {
        Interruption::Fatal(error)
    }
}

impl From<crate::Error> for Interruption {
    fn from(error: crate::Error) -> Interruption {
        Interruption::Fatal(ShipError::Store(error))
    }
}

/// Counts failed attempts since the server was last reached.
#[derive(Debug)]
pub struct Retries {
    give_up_after: Duration,
    out_of_reach_since: Option<Instant>,
    attempts: u32,
    stalled: u32,
}

impl Retries {
    /// Gives up once the server has been out of reach for `give_up_after`.
    pub fn new(give_up_after: Duration) -> Retries {
        Retries {
            give_up_after,
            out_of_reach_since: None,
            attempts: 0,
            stalled: 0,
        }
    }

    /// Records how a session that reached the server ended: with progress
    /// (`true`) or none. Too many in a row without is an error.
    pub fn session_ended(
        &mut self,
        stream: &str,
        progress: bool,
        reason: &str,
    ) -> Result<(), ShipError> {
        self.stalled = if progress { 0 } else { self.stalled + 1 };
        if self.stalled >= MAX_STALLED_SESSIONS {
            return Err(ShipError::Stalled {
                stream: stream.to_string(),
                sessions: self.stalled,
                last_error: reason.to_string(),
            });
        }
        Ok(())
    }

    /// Records a failed attempt. Returns the pause before the next one and
    /// the attempt's number, or the error to give up with.
    pub fn failed(
        &mut self,
        url: &str,
        reason: String,
        contact: bool,
    ) -> Result<(Duration, u32), ShipError> {
        let now = Instant::now();
        if contact {
            self.out_of_reach_since = None;
            self.attempts = 0;
        }
        let since = *self.out_of_reach_since.get_or_insert(now);
        self.attempts += 1;
        let waited = now - since;
        if waited >= self.give_up_after && !contact {
            return Err(ShipError::ServerUnavailable {
                url: url.to_string(),
                waited,
                attempts: self.attempts,
                last_error: reason,
            });
        }
        let exponent = self.attempts.saturating_sub(1).min(16);
        let pause = (FIRST_BACKOFF * 2u32.pow(exponent))
            .min(MAX_BACKOFF)
            .min(self.give_up_after.saturating_sub(waited));
        Ok((pause, self.attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_contact_resets_them() {
        let mut retries = Retries::new(Duration::from_secs(3600));
        let pauses: Vec<Duration> = (0..6)
            .map(|_| retries.failed("u", "x".into(), false).unwrap().0)
            .collect();
        assert_eq!(pauses[0], FIRST_BACKOFF);
        assert_eq!(pauses[1], FIRST_BACKOFF * 2);
        assert_eq!(pauses[5], MAX_BACKOFF);
        let (pause, attempt) = retries.failed("u", "x".into(), true).unwrap();
        assert_eq!((pause, attempt), (FIRST_BACKOFF, 1));
    }

    #[test]
    fn sessions_that_reach_the_server_but_make_no_progress_are_bounded() {
        let mut retries = Retries::new(Duration::from_secs(3600));
        for _ in 1..MAX_STALLED_SESSIONS {
            retries.session_ended("S", false, "conflict").unwrap();
        }
        retries.session_ended("S", true, "conflict").unwrap();
        for _ in 1..MAX_STALLED_SESSIONS {
            retries.session_ended("S", false, "conflict").unwrap();
        }
        let error = retries.session_ended("S", false, "conflict").unwrap_err();
        assert!(error.to_string().contains("no progress"), "{error}");
    }

    #[test]
    fn it_gives_up_after_the_window_naming_the_server() {
        let mut retries = Retries::new(Duration::ZERO);
        let error = retries
            .failed("nats://127.0.0.1:1", "connection refused".into(), false)
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("nats://127.0.0.1:1"), "{message}");
        assert!(message.contains("connection refused"), "{message}");
    }
}
