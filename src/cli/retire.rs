//! `annals retire`: retires whole sealed segments from the front of the
//! log, before a time or a position, deleting them or moving them to an
//! archive directory. Without `--yes` it only says what it would retire.
//! The rules are the library's (`Store::retire_segments_before`).

use annals::{Options, RetireOptions, Retirement};

use super::args::RetireArgs;
use super::failure::Failure;
use super::output::{Output, count};
use super::store_dir::{Creation, check_store_to_read, open_writable};
use super::timestamp::{parse_rfc3339_nanos, rfc3339_nanos};

pub fn run(args: &RetireArgs) -> Result<(), Failure> {
    check_store_to_read(&args.dir)?;
    let store = open_writable(&args.dir, Options::default(), Creation::default())?;
    let before = match (&args.before, args.before_position) {
        (Some(time), _) => {
            let time = parse_rfc3339_nanos(time).map_err(|message| Failure {
                code: super::failure::EXIT_USAGE,
                message,
            })?;
            // Events before the time that are in the active segment stay
            // until it is sealed: the cut is at most where it starts.
            store
                .position_at_or_after(time)?
                .unwrap_or_else(|| store.next_position())
                .min(store.active_segment_position())
        }
        (None, Some(position)) => position,
        (None, None) => unreachable!("clap requires --before or --before-position"),
    };
    let mut retirement = if args.yes {
        let options = RetireOptions {
            reason: args.reason.clone(),
            archive: args.archive.clone(),
        };
        retire(&store, before, &options, args)?
    } else {
        store.retirement_plan(before)?
    };
    retirement.archive.clone_from(&args.archive);
    store.close()?;
    let mut out = Output::stdout();
    if args.json {
        out.json_line(&json(&retirement))?;
    } else {
        out.text(&text(&args.dir, &retirement))?;
    }
    out.flush()
}

#[cfg(feature = "object-storage")]
fn retire(
    store: &annals::Store,
    before: u64,
    options: &RetireOptions,
    args: &RetireArgs,
) -> Result<Retirement, Failure> {
    match &args.require_archived {
        Some(url) => {
            let target: annals::archive::ArchiveTarget = url.parse()?;
            Ok(annals::archive::retire_archived(
                store, before, options, &target,
            )?)
        }
        None => Ok(store.retire_segments_before(before, options)?),
    }
}

#[cfg(not(feature = "object-storage"))]
fn retire(
    store: &annals::Store,
    before: u64,
    options: &RetireOptions,
    _args: &RetireArgs,
) -> Result<Retirement, Failure> {
    Ok(store.retire_segments_before(before, options)?)
}

fn text(dir: &std::path::Path, retirement: &Retirement) -> String {
    let mut text = String::new();
    if retirement.segments.is_empty() {
        text += &format!(
            "nothing to retire: no whole sealed segment lies before the position asked for; \
             the log starts at position {}\n",
            retirement.first_retained_position
        );
        return text;
    }
    let verb = if retirement.done {
        "retired"
    } else {
        "would retire"
    };
    text += &format!(
        "{verb} {}, {}, {} bytes; the log {} at position {}\n",
        count(retirement.segments.len() as u64, "segment", "segments"),
        count(retirement.event_count(), "event", "events"),
        retirement.bytes(),
        if retirement.done {
            "starts"
        } else {
            "would start"
        },
        retirement.first_retained_position
    );
    for file in &retirement.segments {
        text += &format!(
            "  {} positions {}..{} ({} bytes{})\n",
            file.path.display(),
            file.base_position,
            file.base_position + file.event_count,
            file.bytes,
            if file.last_timestamp_ns > 0 {
                format!(", last event {}", rfc3339_nanos(file.last_timestamp_ns))
            } else {
                String::new()
            }
        );
    }
    match (&retirement.archive, retirement.done) {
        (Some(archive), true) => {
            text += &format!(
                "moved to {} (copied, synced and checked)\n",
                archive.display()
            );
        }
        (Some(archive), false) => {
            text += &format!("they would be moved to {}\n", archive.display())
        }
        (None, true) => text += "deleted\n",
        (None, false) => text += "they would be deleted (no --archive)\n",
    }
    if !retirement.done {
        text += &format!(
            "dry run: nothing was changed. Run again with --yes to retire ({}).\n",
            dir.display()
        );
    }
    text
}

fn json(retirement: &Retirement) -> serde_json::Value {
    serde_json::json!({
        "done": retirement.done,
        "first_retained_position": retirement.first_retained_position,
        "events": retirement.event_count(),
        "bytes": retirement.bytes(),
        "archive": retirement.archive.as_ref().map(|a| a.display().to_string()),
        "segments": retirement.segments.iter().map(|file| serde_json::json!({
            "file": file.path.display().to_string(),
            "base_position": file.base_position,
            "events": file.event_count,
            "bytes": file.bytes,
            "last_timestamp": (file.last_timestamp_ns > 0).then(|| rfc3339_nanos(file.last_timestamp_ns)),
        })).collect::<Vec<_>>(),
    })
}
