//! The one output channel. Everything Strata prints goes through [`Shell`]:
//! results to stdout, diagnostics and progress to stderr, colour only on a
//! terminal (and never with `-no-color`), JSON when asked.

mod diff;
pub mod json_ui;
pub mod log;
mod plan;
mod progress;
pub mod tf_json;

pub use plan::render_plan;
pub use plan::render_value;
pub use progress::{run as run_progress, Expected, Progress};

use crate::config::{Diagnostics, Severity, Sources};
use anstyle::{AnsiColor, Style};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// The first write to stdout or stderr that failed (a full disk, a closed
/// pipe): the process must not report success for output nobody got.
static WRITE_FAILURE: Mutex<Option<WriteFailure>> = Mutex::new(None);

/// Output that did not reach its reader.
#[derive(Debug, Clone)]
pub struct WriteFailure {
    pub message: String,
    /// The reader closed the pipe (EPIPE): nothing is wrong but that.
    pub broken_pipe: bool,
}

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Remembers a failed write to `stream`; the first failure wins.
fn check_write(stream: &str, result: std::io::Result<()>) {
    if let Err(e) = result {
        let mut failure = WRITE_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert_with(|| WriteFailure {
            message: format!("cannot write to {stream}: {e}"),
            broken_pipe: e.kind() == std::io::ErrorKind::BrokenPipe,
        });
    }
}

fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    check_write("stdout", out.write_all(bytes).and_then(|()| out.flush()));
}

fn write_stderr(bytes: &[u8]) {
    let mut err = std::io::stderr().lock();
    check_write("stderr", err.write_all(bytes).and_then(|()| err.flush()));
}

/// Flushes stdout and stderr and says whether any output was lost on the
/// way, with the first error. `main` calls it last, to exit non-zero then.
pub fn finish() -> Result<(), WriteFailure> {
    check_write("stdout", std::io::stdout().flush());
    check_write("stderr", std::io::stderr().flush());
    match WRITE_FAILURE.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

pub struct Shell {
    color: bool,
    pub json: bool,
    /// Terraform's machine-readable UI (`plan -json`, `apply -json`):
    /// warnings and errors become `diagnostic` messages on stdout.
    pub ui: bool,
    stderr_tty: bool,
}

impl Shell {
    pub fn new(no_color: bool, json: bool) -> Shell {
        let tty = std::io::stdout().is_terminal();
        let color = !no_color && tty && std::env::var_os("NO_COLOR").is_none();
        Shell { color, json, ui: false, stderr_tty: std::io::stderr().is_terminal() }
    }

    /// This shell, speaking the machine-readable UI when `ui` is set.
    pub fn with_ui(mut self, ui: bool) -> Shell {
        self.ui = ui;
        self
    }

    pub fn color(&self) -> bool {
        self.color
    }

    pub fn interactive(&self) -> bool {
        self.stderr_tty && !self.json
    }

    /// A result on stdout.
    pub fn out(&self, text: &str) {
        if text.ends_with('\n') {
            write_stdout(text.as_bytes());
        } else {
            write_stdout(format!("{text}\n").as_bytes());
        }
    }

    /// Text on stdout exactly as given (`output -raw`).
    pub fn raw(&self, text: &str) {
        write_stdout(text.as_bytes());
    }

    /// A progress or status line on stderr.
    pub fn status(&self, text: &str) {
        write_stderr(format!("{text}\n").as_bytes());
    }

    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }

    pub fn warn(&self, text: &str) {
        if self.ui {
            json_ui::message_diagnostic(false, text, None);
            return;
        }
        let label = self.paint(AnsiColor::Yellow.on_default().bold(), "warning:");
        self.status(&format!("{label} {text}"));
    }

    pub fn error(&self, text: &str) {
        if self.ui {
            json_ui::message_diagnostic(true, text, None);
            return;
        }
        if self.json {
            self.status(&serde_json::json!({"type": "error", "message": text}).to_string());
            return;
        }
        let label = self.paint(AnsiColor::Red.on_default().bold(), "error:");
        self.status(&format!("{label} {text}"));
    }

    /// Every diagnostic, each with its snippet, then a count.
    pub fn diagnostics(&self, sources: &Sources, diags: &Diagnostics) {
        if self.ui {
            for d in diags.iter() {
                json_ui::diagnostic(Some(sources), d);
            }
            return;
        }
        if self.json {
            for d in diags.iter() {
                self.status(&tf_json::diagnostic(Some(sources), d).to_string());
            }
            return;
        }
        let handler = miette::GraphicalReportHandler::new_themed(if self.color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        });
        let mut text = String::new();
        for d in diags.iter() {
            let report = d.to_report(sources);
            let _ = handler.render_report(&mut text, report.as_ref());
            text.push('\n');
        }
        let errors = diags.errors();
        let warnings = diags.iter().filter(|d| d.severity == Severity::Warning).count();
        if errors > 0 {
            text.push_str(&format!("{errors} error(s){}\n", if warnings > 0 { format!(", {warnings} warning(s)") } else { String::new() }));
        }
        write_stderr(text.as_bytes());
    }
}
