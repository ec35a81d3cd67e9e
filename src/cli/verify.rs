//! `annals verify`: checks every header, footer, checksum, batch, position,
//! stream version and the hash chain, computes the Merkle tree, and checks
//! it against a signed checkpoint when one is given, without changing the
//! store (see `annals::verify`). Exit 0 when all is well, 4 on any
//! corruption or a checkpoint that does not match or is not signed by the
//! key; 1 for a key or checkpoint file that is not one.

use super::args::VerifyArgs;
use super::failure::{EXIT_CORRUPTION, Failure};
use super::output::{Output, count, progress_bar_bytes};
use super::timestamp::rfc3339_nanos;

pub fn run(args: &VerifyArgs) -> Result<(), Failure> {
    let archive_url = |path: &std::path::Path| {
        path.to_str()
            .filter(|text| annals_archive_url(text))
            .map(str::to_string)
    };
    let dir_url = archive_url(&args.dir);
    if dir_url.is_none() {
        super::store_dir::check_store_to_read(&args.dir)?;
    }
    let mut options = annals::VerifyOptions::default();
    if let Some(head) = &args.expect_head {
        let head: annals::ExpectedHead = head.parse().map_err(|e: annals::Error| Failure {
            code: super::failure::EXIT_USAGE,
            message: e.to_string(),
        })?;
        options = options.expect_head(head);
    }
    let archive = args.archive.as_deref().and_then(archive_url);
    if let (Some(archive), None) = (&args.archive, &archive) {
        options = options.archive(archive);
    }
    if let (Some(checkpoint), Some(key)) = (&args.checkpoint, &args.key) {
        let note = super::proofs::read_note(checkpoint, "checkpoint")?;
        let key = super::proofs::read_key(key, "verifier key file")?;
        options = options.checkpoint(note, key);
    }
    let bar = progress_bar_bytes(0, "verifying");
    let mut progress = |progress: annals::verify::Progress| {
        bar.set_length(progress.bytes_total);
        bar.set_position(progress.bytes_done);
    };
    let report = match (dir_url, archive) {
        (None, None) => annals::verify::verify_with_progress(&args.dir, &options, &mut progress)?,
        (dir_url, archive) => {
            verify_archived(&args.dir, dir_url, archive, &options, &mut progress)?
        }
    };
    bar.finish_and_clear();
    let mut out = Output::stdout();
    if args.json {
        out.json_line(&summary_json(&report))?;
    } else {
        out.text(&report_text(&report))?;
    }
    out.flush()?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_CORRUPTION,
            message: String::new(),
        })
    }
}

/// Whether `text` names an archive rather than a directory.
#[cfg(feature = "object-storage")]
fn annals_archive_url(text: &str) -> bool {
    annals::archive::ArchiveTarget::is_url(text)
}

#[cfg(not(feature = "object-storage"))]
fn annals_archive_url(_text: &str) -> bool {
    false
}

/// Verifies an archive alone (`dir_url`), or a store with its retired
/// segments in an archive (`archive`).
#[cfg(feature = "object-storage")]
fn verify_archived(
    dir: &std::path::Path,
    dir_url: Option<String>,
    archive: Option<String>,
    options: &annals::VerifyOptions,
    progress: &mut dyn FnMut(annals::verify::Progress),
) -> Result<annals::VerifyReport, Failure> {
    use annals::archive::{ArchiveTarget, verify_archive, verify_with_archive};
    if let Some(url) = dir_url {
        if archive.is_some() {
            return Err(Failure {
                code: super::failure::EXIT_USAGE,
                message: "--archive is for a store directory, not an archive URL".into(),
            });
        }
        let target: ArchiveTarget = url.parse()?;
        return Ok(verify_archive(&target, options, progress)?);
    }
    let target: ArchiveTarget = archive.unwrap_or_default().parse()?;
    super::store_dir::check_store_to_read(dir)?;
    Ok(verify_with_archive(dir, &target, options, progress)?)
}

#[cfg(not(feature = "object-storage"))]
fn verify_archived(
    _dir: &std::path::Path,
    _dir_url: Option<String>,
    _archive: Option<String>,
    _options: &annals::VerifyOptions,
    _progress: &mut dyn FnMut(annals::verify::Progress),
) -> Result<annals::VerifyReport, Failure> {
    unreachable!("archive URLs are recognized only with the feature object-storage")
}

/// The report as text: what was checked, the head, every problem with its
/// file and offset, and `OK` or `FAILED`. (The command line's own wording of
/// `VerifyReport`'s `Display`: dates in RFC 3339, counts in the singular
/// when there is one.)
fn report_text(report: &annals::VerifyReport) -> String {
    let s = &report.summary;
    let mut text = format!(
        "{}: {} ({} sealed), {}, {}, {}, {} bytes\n",
        report.dir.display(),
        count(s.segments, "segment", "segments"),
        s.sealed_segments,
        count(s.batches, "batch", "batches"),
        count(s.events, "event", "events"),
        count(s.streams, "stream", "streams"),
        s.bytes
    );
    if let (Some(first), Some(last)) = (s.first_position, s.last_position) {
        // The notation `verify` has always used (and tests and scripts read).
        text += &format!("positions {first}..={last}\n");
    }
    if let (Some(first), Some(last)) = (s.first_timestamp_ns, s.last_timestamp_ns) {
        text += &format!(
            "timestamps {} to {}\n",
            rfc3339_nanos(first),
            rfc3339_nanos(last)
        );
    }
    match s.head_position {
        Some(position) => text += &format!("head {}@{position}\n", s.head_hex()),
        None => text += &format!("head {} (empty log)\n", s.head_hex()),
    }
    match &s.tree {
        Some(tree) => {
            text += &format!(
                "tree {}, root {}\n",
                count(tree.size, "event", "events"),
                tree.root_hex()
            )
        }
        None => text += "tree cannot be computed (see the problems)\n",
    }
    if let Some(retired) = &report.retired {
        text += &format!(
            "positions 0..{} retired ({}): {}\n",
            retired.first_retained_position,
            count(retired.retirements as u64, "retirement", "retirements"),
            if retired.archive_checked {
                "read from the archive, the chain checked from genesis".to_string()
            } else {
                format!(
                    "the chain checked from the value recorded at the cut, {}",
                    retired.chain_at_cut_hex()
                )
            }
        );
    }
    if let Some(check) = &report.head_check {
        text += &format!("expected head: {check}\n");
    }
    if let Some(check) = &report.tree_check {
        text += &format!("checkpoint: {check}\n");
    }
    for problem in &report.problems {
        text += &format!("{problem}\n");
    }
    if report.problems_not_listed > 0 {
        text += &format!(
            "... and {} more\n",
            count(report.problems_not_listed, "problem", "problems")
        );
    }
    text += &format!(
        "{}: {} corruption, {}\n",
        if report.is_ok() { "OK" } else { "FAILED" },
        report.corruption_count,
        count(report.warning_count, "warning", "warnings")
    );
    text
}

/// The report as one JSON object: the summary, the head, and every problem
/// with its file and offset.
fn summary_json(report: &annals::VerifyReport) -> serde_json::Value {
    let s = &report.summary;
    serde_json::json!({
        "ok": report.is_ok(),
        "segments": s.segments,
        "sealed_segments": s.sealed_segments,
        "batches": s.batches,
        "sync_markers": s.sync_markers,
        "events": s.events,
        "streams": s.streams,
        "bytes": s.bytes,
        "first_position": s.first_position,
        "last_position": s.last_position,
        "first_timestamp": s.first_timestamp_ns.map(rfc3339_nanos),
        "last_timestamp": s.last_timestamp_ns.map(rfc3339_nanos),
        "first_timestamp_ns": s.first_timestamp_ns,
        "last_timestamp_ns": s.last_timestamp_ns,
        "head": s.head_hex(),
        "head_position": s.head_position,
        "expected_head": report.head_check.as_ref().map(|c| c.to_string()),
        "tree_size": s.tree.map(|t| t.size),
        "tree_root": s.tree.map(|t| t.root_hex()),
        "checkpoint": report.tree_check.as_ref().map(|c| serde_json::json!({
            "matched": matches!(c, annals::verify::TreeCheck::Matched { .. }),
            "outcome": c.to_string(),
        })),
        "retired": report.retired.as_ref().map(|r| serde_json::json!({
            "first_retained_position": r.first_retained_position,
            "retirements": r.retirements,
            "chain_at_cut": r.chain_at_cut_hex(),
            "archive_checked": r.archive_checked,
        })),
        "corruption": report.corruption_count,
        "warnings": report.warning_count,
        "problems": report.problems.iter().map(|p| serde_json::json!({
            "severity": format!("{:?}", p.severity),
            "file": p.path.display().to_string(),
            "offset": p.offset,
            "position": p.position,
            "message": p.message,
        })).collect::<Vec<_>>(),
    })
}
