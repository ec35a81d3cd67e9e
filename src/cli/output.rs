//! Where commands print: buffered stdout, and progress bars on stderr only
//! when a person is watching (stderr is a terminal).

use std::io::{BufWriter, IsTerminal, StdoutLock, Write};

use indicatif::{HumanFloatCount, ProgressBar, ProgressState, ProgressStyle};

use super::failure::{Failure, from_stdout_error};

/// Buffered, locked stdout. Call [`Output::flush`] after each line when a
/// consumer waits for it (`tail`, `import` acknowledgements).
pub struct Output {
    out: BufWriter<StdoutLock<'static>>,
}

impl Output {
    pub fn stdout() -> Output {
        Output {
            out: BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
        }
    }

    /// The writer, for `serde_json::to_writer` and friends. Map its errors
    /// with [`from_stdout_error`].
    pub fn writer(&mut self) -> &mut BufWriter<StdoutLock<'static>> {
        &mut self.out
    }

    /// Writes `value` as one JSON line.
    pub fn json_line(&mut self, value: &impl serde::Serialize) -> Result<(), Failure> {
        serde_json::to_writer(&mut self.out, value)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(from_stdout_error)
    }

    /// Writes `text` as is.
    pub fn text(&mut self, text: &str) -> Result<(), Failure> {
        self.out
            .write_all(text.as_bytes())
            .map_err(from_stdout_error)
    }

    pub fn flush(&mut self) -> Result<(), Failure> {
        self.out.flush().map_err(from_stdout_error)
    }
}

/// A progress bar for `total` items on stderr, hidden unless stderr is a
/// terminal (so that logs and pipes get no control characters).
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg:>18} [{bar:40}] {human_pos}/{human_len} ({rate}, eta {eta})",
    )
    .expect("the progress template is valid")
    .progress_chars("=> ")
    .with_key(
        "rate",
        |state: &ProgressState, out: &mut dyn std::fmt::Write| {
            let _ = write!(out, "{:.0}/s", HumanFloatCount(state.per_sec()));
        },
    );
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// A progress bar for `total` bytes on stderr, hidden unless stderr is a
/// terminal.
pub fn progress_bar_bytes(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg:>18} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, eta {eta})",
    )
    .expect("the progress template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// `count` per `seconds`, rounded to a whole number with thousands
/// separators (`12,345`): indicatif's own `{per_sec}` prints four decimals.
pub fn per_second(count: f64, seconds: f64) -> String {
    let rate = if seconds > 0.0 { count / seconds } else { 0.0 };
    format!("{:.0}", HumanFloatCount(rate))
}

/// `1 line`, `2 lines`: a count with its noun, singular or plural.
pub fn count(number: u64, one: &str, many: &str) -> String {
    if number == 1 {
        format!("1 {one}")
    } else {
        format!("{number} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_whole_numbers() {
        assert_eq!(per_second(12_345.678, 1.0), "12,346");
        assert_eq!(per_second(10.0, 3.0), "3");
        assert_eq!(per_second(5.0, 0.0), "0");
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(0, "segment", "segments"), "0 segments");
        assert_eq!(count(1, "batch", "batches"), "1 batch");
        assert_eq!(count(2, "batch", "batches"), "2 batches");
    }
}
