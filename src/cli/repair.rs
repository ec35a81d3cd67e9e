//! `annals repair`: shows what [`annals::Repair`] would cut, and cuts only
//! with `--yes`, after copying every file it changes or removes to
//! `DIR/repair-backup-<time>/`. The plan, the cut and the rules behind them
//! are the library's (`annals::Repair`, the same walk and decision table
//! as every open); this module only presents them and asks.

use std::path::Path;

use annals::{Cut, Options, Repair, RepairPlan, Store};

use super::args::RepairArgs;
use super::failure::{EXIT_CORRUPTION, Failure};
use super::output::Output;
use super::timestamp::{compact_nanos, now_ns};

/// Prefix of the directory, inside the store directory, that receives what
/// a repair removes.
pub const BACKUP_DIR_PREFIX: &str = "repair-backup-";

/// How many streams the report lists one by one.
const STREAMS_LISTED: usize = 20;

pub fn run(args: &RepairArgs) -> Result<(), Failure> {
    let dir = &args.dir;
    let repair = Repair::lock(dir)?;
    let plan = repair.plan()?;
    let mut out = Output::stdout();
    out.text(&format!("store: {}\n", dir.display()))?;
    for note in &plan.notes {
        out.text(&format!(
            "note: {note}; not damage: a writer's open discards it\n"
        ))?;
    }
    let Some(cut) = &plan.cut else {
        out.text(&format!(
            "no damage found: nothing to cut ({} events in {} segment files)\n",
            plan.kept_events - plan.first_position,
            plan.kept_segments
        ))?;
        return out.flush();
    };
    out.text(&describe(dir, &plan, cut))?;
    if !args.yes {
        out.text(&format!(
            "dry run: nothing was changed. Run `annals repair {} --yes` to cut.\n",
            dir.display()
        ))?;
        out.flush()?;
        return Err(Failure {
            code: EXIT_CORRUPTION,
            message: "damage found (dry run: nothing was changed)".into(),
        });
    }
    out.flush()?;
    let backup = dir.join(format!("{BACKUP_DIR_PREFIX}{}", compact_nanos(now_ns())));
    repair.apply(&plan, &backup)?;
    out.text(&format!(
        "cut. Removed and changed files were copied to {} first.\n",
        backup.display()
    ))?;
    out.flush()?;
    // The writer lock is ours: release it so that Store::open can take it.
    drop(repair);
    let options = match plan.kept_segment_size_bytes {
        Some(size) => Options::default().segment_size_bytes(size),
        None => Options::default(),
    };
    let store = Store::open(dir, options)?;
    let events = store.next_position() - store.log_start_position();
    store.close()?;
    out.text(&format!("the store opens: {events} events.\n"))?;
    out.flush()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The report: what is damaged, what is kept, what would be cut.
fn describe(dir: &Path, plan: &RepairPlan, cut: &Cut) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    if let Some(damage) = &plan.damage {
        let _ = writeln!(text, "damage: {damage}");
    }
    let (first, end) = (plan.first_position, plan.kept_events);
    let kept_range = match end.saturating_sub(first) {
        0 => "no events".to_string(),
        n => format!("{n} events (positions {first} to {})", end - 1),
    };
    if let Some(rewrite) = &cut.rewrite_footer {
        let _ = writeln!(
            text,
            "keep: every event ({kept_range}) and every segment file: no batch is damaged, and \
             the hash chain links across {}",
            file_name(&rewrite.path)
        );
        let _ = writeln!(
            text,
            "mend: {}: rebuild its footer from its {} batches ({} events, up to position {}), \
             zero the bytes after its data, clear its durable mark",
            file_name(&rewrite.path),
            rewrite.batch_count,
            rewrite.event_count,
            rewrite.last_position
        );
        let _ = writeln!(
            text,
            "backup: the segment is first copied to {}/{BACKUP_DIR_PREFIX}<time>/",
            dir.display()
        );
        return text;
    }
    let _ = match &cut.zero {
        Some(zero) => writeln!(
            text,
            "keep: {kept_range}, up to byte offset {} of {}",
            zero.offset,
            file_name(&zero.path)
        ),
        None => writeln!(
            text,
            "keep: {kept_range}, in the {} segment files before {}",
            plan.kept_segments,
            cut.removed
                .first()
                .map_or_else(|| "the damage".to_string(), |(path, _)| file_name(path))
        ),
    };
    let _ = writeln!(text, "cut:");
    if let Some(zero) = &cut.zero {
        let _ = writeln!(
            text,
            "  {}: zero bytes {} to {} (the rest of its data area and its footer) and make it \
             writable; it becomes the newest segment",
            file_name(&zero.path),
            zero.offset,
            zero.len
        );
    }
    for (path, len) in &cut.removed {
        let _ = writeln!(
            text,
            "  {}: remove the whole file ({len} bytes)",
            file_name(path)
        );
    }
    for stale in &plan.stale_snapshots {
        let _ = writeln!(
            text,
            "  {}: remove the snapshot of stream {:?} at version {} (the stream keeps {} events)",
            stale
                .path
                .strip_prefix(dir)
                .unwrap_or(&stale.path)
                .display(),
            stale.stream,
            stale.version,
            stale.kept_version
        );
    }
    let lost = &plan.lost;
    let _ = match (lost.first_position, lost.last_position) {
        (Some(first), Some(last)) => writeln!(
            text,
            "events cut: {} that still decode (positions {first} to {last}) in {} streams, \
             plus whatever the damaged bytes held",
            lost.events,
            lost.streams.len()
        ),
        _ => writeln!(
            text,
            "events cut: none that still decode, plus whatever the damaged bytes held"
        ),
    };
    for (stream, (kept, highest)) in lost.streams.iter().take(STREAMS_LISTED) {
        let keeps = match kept {
            0 => "keeps no event".to_string(),
            kept => format!("keeps versions 1 to {kept}"),
        };
        let _ = writeln!(
            text,
            "  stream {stream:?}: {keeps}, loses versions {} to {highest}",
            kept + 1
        );
    }
    if lost.streams.len() > STREAMS_LISTED {
        let _ = writeln!(
            text,
            "  ... and {} more streams",
            lost.streams.len() - STREAMS_LISTED
        );
    }
    if !lost.uncounted_files.is_empty() {
        let names: Vec<String> = lost.uncounted_files.iter().map(|p| file_name(p)).collect();
        let _ = writeln!(
            text,
            "  (not counted: {} cannot be read as segments)",
            names.join(", ")
        );
    }
    let _ = writeln!(
        text,
        "backup: every file removed or changed is first copied to {}/{BACKUP_DIR_PREFIX}<time>/",
        dir.display()
    );
    text
}
