//! The recovery decision table of `docs/design.md`, as one function: for a
//! finding and the role of the segment it is in, what every reader of the
//! log does about it. Writable open, read-only open, the live follower,
//! `verify` and `repair` all call [`verdict`]; none decides on its own.

use super::finding::FindingKind;

/// Where in the log a finding is, which decides what it can mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentRole {
    /// A segment with a valid footer, or one that another segment follows:
    /// every byte of it is final and was synced.
    Sealed,
    /// The newest segment, unsealed, with no writer appending (a writer's
    /// open, a read-only open, `verify`, `repair`).
    Newest,
    /// The newest segment, unsealed, read while a writer in another process
    /// may be appending to it (a follower's refresh).
    Live,
    /// Not a segment: a file of the store directory.
    Directory,
}

/// What to do about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Damage to data that was durable, or a log that does not hold
    /// together: every opener refuses (`Error::Corrupt`), `verify` reports
    /// corruption, `repair` plans a cut here.
    Refuse,
    /// What a crash leaves and nothing acknowledged depends on (a torn tail,
    /// a torn footer, a newest file cut short above its durable end): a
    /// writer's open discards it and reports it; a reader stops before it;
    /// `verify` warns.
    Discard,
    /// Not written yet as far as a live follower can tell: a batch or a
    /// footer being written right now. Look again later; not reported.
    Wait,
    /// A leftover file that is not part of the log: a writer removes it,
    /// readers ignore it, `verify` warns.
    Remove,
    /// Derived data (an index file, the index checkpoint) that is missing,
    /// stale or damaged: every opener rebuilds what it describes from the
    /// log and reports it (a writer also writes it anew); `verify` warns.
    /// The log itself is fine.
    Rebuild,
}

/// The decision table. Each arm is a row of the table in `docs/design.md`.
pub fn verdict(kind: &FindingKind, role: SegmentRole) -> Verdict {
    use FindingKind as K;
    use SegmentRole as R;
    match (kind, role) {
        // Beside a live writer, a temporary file is a segment being created.
        (K::TemporaryFile, R::Live) => Verdict::Wait,
        (K::TemporaryFile, _) => Verdict::Remove,
        // A live writer publishes a batch's first word last and writes its
        // footer after its data: a follower sees them "torn" while they are
        // being written.
        (K::TornTail { .. } | K::TornFooter { .. }, R::Live) => Verdict::Wait,
        // Never durable, never acknowledged as durable: a crash's leftovers.
        (
            K::TornTail { .. } | K::TornFooter { .. } | K::ShortFile { .. } | K::TornDurableMark,
            R::Newest | R::Live,
        ) => Verdict::Discard,
        // Derived data is never trusted over the log: rebuilt from it.
        (K::IndexFile { .. } | K::IndexCheckpoint { .. }, _) => Verdict::Rebuild,
        // Retired by a manifest already durable: what a crash between
        // writing it and removing the files leaves.
        (K::RetiredSegment { recorded: true, .. }, _) => Verdict::Remove,
        // Anything else, and anything at all in a sealed segment, is damage
        // that no crash of the writer can cause.
        _ => Verdict::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_segment_can_hold_what_a_crash_leaves() {
        let torn = FindingKind::TornTail {
            bytes: 8,
            detail: String::new(),
        };
        assert_eq!(verdict(&torn, SegmentRole::Sealed), Verdict::Refuse);
        assert_eq!(verdict(&torn, SegmentRole::Newest), Verdict::Discard);
        assert_eq!(verdict(&torn, SegmentRole::Live), Verdict::Wait);
        let short = FindingKind::ShortFile {
            len: 4096,
            expected: 65536,
        };
        assert_eq!(verdict(&short, SegmentRole::Sealed), Verdict::Refuse);
        assert_eq!(verdict(&short, SegmentRole::Newest), Verdict::Discard);
    }

    #[test]
    fn damage_to_durable_data_is_refused_everywhere() {
        let lost = FindingKind::DurableDataLost {
            durable_end: 4096,
            log_end: 128,
            evidence: crate::log::finding::DurableEvidence::DurableMark,
            detail: String::new(),
        };
        for role in [SegmentRole::Sealed, SegmentRole::Newest, SegmentRole::Live] {
            assert_eq!(verdict(&lost, role), Verdict::Refuse, "{role:?}");
        }
    }
}
