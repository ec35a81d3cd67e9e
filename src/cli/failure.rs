//! How a command fails: a message for stderr and an exit code. The mapping
//! from [`annals::Error`] to exit codes lives here and nowhere else.

use std::fmt;

/// Exit code of a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code of every failure without a code of its own.
pub const EXIT_OTHER: u8 = 1;
/// Exit code of a command line that does not parse (clap's own default).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of an append whose expected version did not match.
pub const EXIT_WRONG_EXPECTED_VERSION: u8 = 3;
/// Exit code when damaged data was found (opening a store, reading, repair's dry run).
pub const EXIT_CORRUPTION: u8 = 4;
/// Exit code when another process holds the store's writer lock.
pub const EXIT_LOCKED: u8 = 5;
/// Exit code when the stream read or written was deleted.
pub const EXIT_STREAM_DELETED: u8 = 6;
/// Exit code of `erase` for a subject that no event names, or that was
/// erased already: nothing was written.
pub const EXIT_SUBJECT: u8 = 7;

/// Why a command stopped.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What to print on stderr; empty prints nothing.
    pub message: String,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn other(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_OTHER,
            message: message.into(),
        }
    }

    /// The reader of stdout went away (`annals read | head`): stop quietly,
    /// as other command-line tools do.
    pub fn stdout_closed() -> Failure {
        Failure {
            code: EXIT_OK,
            message: String::new(),
        }
    }

    /// Puts `context` (for example "line 7") before the message, keeping the code.
    pub fn context(self, context: impl fmt::Display) -> Failure {
        Failure {
            code: self.code,
            message: format!("{context}: {}", self.message),
        }
    }
}

/// The exit code for a library error.
pub fn exit_code(error: &annals::Error) -> u8 {
    match error {
        annals::Error::WrongExpectedVersion { .. } => EXIT_WRONG_EXPECTED_VERSION,
        annals::Error::Corrupt { .. } | annals::Error::ArchiveMismatch { .. } => EXIT_CORRUPTION,
        annals::Error::Locked { .. } => EXIT_LOCKED,
        annals::Error::StreamDeleted { .. } => EXIT_STREAM_DELETED,
        annals::Error::UnknownSubject { .. } | annals::Error::SubjectErased { .. } => EXIT_SUBJECT,
        _ => EXIT_OTHER,
    }
}

impl From<annals::Error> for Failure {
    fn from(error: annals::Error) -> Failure {
        Failure {
            code: exit_code(&error),
            message: error.to_string(),
        }
    }
}

/// Writing to stdout failed: a closed pipe ends the command quietly, any
/// other error is reported.
pub fn from_stdout_error(error: std::io::Error) -> Failure {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::stdout_closed()
    } else {
        Failure::other(format!("writing to stdout: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use annals::ExpectedVersion;

    #[test]
    fn library_errors_map_to_their_exit_codes() {
        let conflict = annals::Error::WrongExpectedVersion {
            stream: "s".into(),
            expected: ExpectedVersion::NoStream,
            actual: 3,
        };
        assert_eq!(exit_code(&conflict), EXIT_WRONG_EXPECTED_VERSION);
        let corrupt = annals::Error::Corrupt(Box::new(annals::Finding {
            kind: annals::FindingKind::BytesAfterSealedData,
            path: "x.seg".into(),
            offset: 8,
            position: None,
        }));
        assert_eq!(exit_code(&corrupt), EXIT_CORRUPTION);
        let locked = annals::Error::Locked { dir: "d".into() };
        assert_eq!(exit_code(&locked), EXIT_LOCKED);
        let deleted = annals::Error::StreamDeleted { stream: "s".into() };
        assert_eq!(exit_code(&deleted), EXIT_STREAM_DELETED);
        let invalid = annals::Error::InvalidArgument("x".into());
        assert_eq!(exit_code(&invalid), EXIT_OTHER);
    }
}
