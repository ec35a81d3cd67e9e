//! `annals archive push` and `annals archive pull` (feature
//! `object-storage`): the library's `annals::archive`, with a progress bar
//! on a terminal, text or JSON output, and exit codes (1 for an archive
//! that cannot be used, 4 for an archive holding a different object).

use annals::archive::{self, ArchiveTarget, ObjectLock, PushOptions};

use super::args::{ArchiveCommand, ArchivePullArgs, ArchivePushArgs};
use super::failure::{EXIT_USAGE, Failure};
use super::output::{Output, count, progress_bar, progress_bar_bytes};
use super::timestamp::{now_ns, parse_rfc3339_nanos};

/// Nanoseconds in a year of 365.25 days (what `--retain-years` counts).
const NANOS_PER_YEAR: u64 = 31_557_600 * 1_000_000_000;

pub fn run(command: &ArchiveCommand) -> Result<(), Failure> {
    match command {
        ArchiveCommand::Push(args) => push(args),
        ArchiveCommand::Pull(args) => pull(args),
    }
}

fn push(args: &ArchivePushArgs) -> Result<(), Failure> {
    super::store_dir::check_store_to_read(&args.dir)?;
    let target: ArchiveTarget = args.to.parse()?;
    let usage = |message: String| Failure {
        code: EXIT_USAGE,
        message,
    };
    let retain_until_ns = match (&args.retain_until, args.retain_years) {
        (Some(time), _) => Some(parse_rfc3339_nanos(time).map_err(usage)?),
        (None, Some(years)) => Some(
            now_ns()
                .checked_add(u64::from(years) * NANOS_PER_YEAR)
                .ok_or_else(|| usage(format!("--retain-years {years} is too far away")))?,
        ),
        (None, None) => None,
    };
    let mut options = PushOptions::default();
    if let Some(retain_until_ns) = retain_until_ns {
        if retain_until_ns <= now_ns() {
            return Err(usage("the retain-until time is in the past".to_string()));
        }
        options = options.lock(ObjectLock { retain_until_ns });
    }
    let bar = progress_bar_bytes(0, "archiving");
    let report = archive::push(&args.dir, &target, &options, &mut |progress| {
        bar.set_length(progress.bytes_total);
        bar.set_position(progress.bytes_done);
    })?;
    bar.finish_and_clear();
    let mut out = Output::stdout();
    if args.json {
        let segment = |s: &archive::PushedSegment| {
            serde_json::json!({
                "file": s.file_name,
                "base_position": s.base_position,
                "events": s.event_count,
                "bytes": s.bytes,
                "sha256": s.sha256,
            })
        };
        out.json_line(&serde_json::json!({
            "target": report.target,
            "uploaded": report.uploaded.iter().map(segment).collect::<Vec<_>>(),
            "already_archived": report.already_archived.iter().map(segment).collect::<Vec<_>>(),
            "progress_ignored": report.progress_ignored,
            "retain_until_ns": retain_until_ns,
        }))?;
    } else {
        let mut text = String::new();
        if let Some(why) = &report.progress_ignored {
            text += &format!("note: {why}\n");
        }
        for segment in &report.uploaded {
            text += &format!(
                "uploaded {} positions {}..{} ({} bytes, SHA-256 {})\n",
                segment.file_name,
                segment.base_position,
                segment.base_position + segment.event_count,
                segment.bytes,
                segment.sha256
            );
        }
        text += &format!(
            "{}: {} uploaded, {} already archived\n",
            report.target,
            count(report.uploaded.len() as u64, "segment", "segments"),
            report.already_archived.len()
        );
        out.text(&text)?;
    }
    out.flush()
}

fn pull(args: &ArchivePullArgs) -> Result<(), Failure> {
    let target: ArchiveTarget = args.from.parse()?;
    let bar = progress_bar(0, "restoring");
    let report = archive::pull(&target, &args.to, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let mut out = Output::stdout();
    out.text(&format!(
        "{}: {} restored into {}, {} there already; open it read-only (verify, read, stats)\n",
        target,
        count(report.written.len() as u64, "segment", "segments"),
        args.to.display(),
        report.already_there.len()
    ))?;
    out.flush()
}
