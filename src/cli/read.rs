//! `annals read`: a stream by version, or the whole log by position, as JSON
//! lines (or `--pretty` lines); forward or backward, with type and category
//! filters and the log filters of `log_view`.

use annals::{Filter, RecordedEvent, Store};

use super::args::ReadArgs;
use super::failure::{Failure, from_stdout_error};
use super::log_view::{Judgement, LogView};
use super::output::Output;
use super::store_dir::open_read_only;

/// Events read from the store per call, bounding memory whatever the limit.
const PAGE_EVENTS: usize = 1024;

/// The filter that `--type` (repeatable) and `--category` ask for.
pub fn filter_of(event_types: &[String], category: Option<&str>) -> Filter {
    let mut filter = Filter::default();
    for event_type in event_types {
        filter = filter.event_type(event_type.as_str());
    }
    if let Some(prefix) = category {
        filter = filter.stream_prefix(prefix);
    }
    filter
}

pub fn run(args: &ReadArgs) -> Result<(), Failure> {
    let store = open_read_only(&args.dir)?;
    let filter = filter_of(&args.event_types, args.category.as_deref());
    let view = LogView::new(&args.view);
    let mut out = Output::stdout();
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    let Some(start) = start(&store, args, &view)? else {
        return out.flush(); // nothing in the time range
    };
    let mut pages = Pages {
        store: &store,
        stream: args.stream.as_deref(),
        backward: args.backward,
        filter: &filter,
        next: start,
        done: false,
    };
    'pages: while remaining > 0 {
        let Some(page) = pages.next_page()? else {
            break;
        };
        for event in page
            .iter()
            .filter(|e| filter.matches(&e.stream, &e.event_type))
        {
            match view.judge(event, args.backward) {
                Judgement::Show => {}
                Judgement::Skip => continue,
                Judgement::Stop => break 'pages,
            }
            view.write(out.writer(), event).map_err(from_stdout_error)?;
            remaining -= 1;
            if remaining == 0 {
                break;
            }
        }
    }
    out.flush()
}

/// Where the read starts: `--from`, or for the whole log, the first
/// position in the time range (found with the timestamp index);
/// `Ok(None)` when the range holds no event.
fn start(store: &Store, args: &ReadArgs, view: &LogView) -> Result<Option<Option<u64>>, Failure> {
    if args.stream.is_some() {
        return Ok(Some(args.from));
    }
    if args.backward {
        // Backward from the last event before --until.
        return Ok(match args.view.until {
            None => Some(args.from),
            Some(until) => match store.position_at_or_after(until)? {
                None => Some(args.from),
                Some(0) => None,
                Some(first_after) => Some(Some(
                    args.from
                        .map_or(first_after - 1, |from| from.min(first_after - 1)),
                )),
            },
        });
    }
    Ok(view
        .start_position(store, args.from.unwrap_or(0))?
        .map(Some))
}

/// Walks the store page by page in the requested order. Forward reads of
/// the whole log filter in the library (`read_all_filtered`); the other
/// orders read every event and the caller filters.
struct Pages<'a> {
    store: &'a Store,
    stream: Option<&'a str>,
    backward: bool,
    filter: &'a Filter,
    /// The next version (stream) or position (log) to read; `None` for the default start.
    next: Option<u64>,
    done: bool,
}

impl Pages<'_> {
    fn next_page(&mut self) -> Result<Option<Vec<RecordedEvent>>, Failure> {
        if self.done {
            return Ok(None);
        }
        let store = self.store;
        let page = match (self.stream, self.backward) {
            (Some(stream), false) => {
                if self
                    .filter
                    .stream_prefix
                    .as_deref()
                    .is_some_and(|p| !stream.starts_with(p))
                {
                    Vec::new()
                } else {
                    store.read_stream(stream, self.next.unwrap_or(1), PAGE_EVENTS)?
                }
            }
            (Some(stream), true) => {
                store.read_stream_backward(stream, self.next.unwrap_or(u64::MAX), PAGE_EVENTS)?
            }
            (None, false) => {
                store.read_all_filtered(self.next.unwrap_or(0), PAGE_EVENTS, self.filter)?
            }
            (None, true) => store.read_all_backward(self.next.unwrap_or(u64::MAX), PAGE_EVENTS)?,
        };
        let Some(last) = page.last() else {
            self.done = true;
            return Ok(None);
        };
        let cursor = if self.stream.is_some() {
            last.version
        } else {
            last.position
        };
        self.next = if self.backward {
            // Versions start at 1 and positions at 0: stop below the first.
            match cursor.checked_sub(1) {
                Some(next) if next > 0 || self.stream.is_none() => Some(next),
                _ => None,
            }
        } else {
            cursor.checked_add(1)
        };
        if self.next.is_none() {
            self.done = true;
        }
        Ok(Some(page))
    }
}
