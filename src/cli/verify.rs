//! `annals verify`: checks every header, footer, checksum, batch, position,
//! stream version and the hash chain, without changing the store (see
//! `annals::verify`). Exit 0 when all is well, 4 on any corruption.

use super::args::VerifyArgs;
use super::failure::{EXIT_CORRUPTION, Failure};
use super::output::{Output, progress_bar_bytes};

pub fn run(args: &VerifyArgs) -> Result<(), Failure> {
    super::store_dir::check_store_to_read(&args.dir)?;
    let mut options = annals::VerifyOptions::default();
    if let Some(head) = &args.expect_head {
        let head: annals::ExpectedHead = head.parse().map_err(|e: annals::Error| Failure {
            code: super::failure::EXIT_USAGE,
            message: e.to_string(),
        })?;
        options = options.expect_head(head);
    }
    let bar = progress_bar_bytes(0, "verifying");
    let report = annals::verify::verify_with_progress(&args.dir, &options, &mut |progress| {
        bar.set_length(progress.bytes_total);
        bar.set_position(progress.bytes_done);
    })?;
    bar.finish_and_clear();
    let mut out = Output::stdout();
    if args.json {
        out.json_line(&summary_json(&report))?;
    } else {
        out.text(&format!("{report}\n"))?;
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

/// The report as one JSON object: the summary, the head, and every problem
/// with its file and offset.
fn summary_json(report: &annals::VerifyReport) -> serde_json::Value {
    let s = &report.summary;
    serde_json::json!({
        "ok": report.is_ok(),
        "segments": s.segments,
        "sealed_segments": s.sealed_segments,
        "batches": s.batches,
        "events": s.events,
        "streams": s.streams,
        "bytes": s.bytes,
        "first_position": s.first_position,
        "last_position": s.last_position,
        "first_timestamp_ns": s.first_timestamp_ns,
        "last_timestamp_ns": s.last_timestamp_ns,
        "head": s.head_hex(),
        "head_position": s.head_position,
        "expected_head": report.head_check.as_ref().map(|c| c.to_string()),
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
