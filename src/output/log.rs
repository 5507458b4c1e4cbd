//! Debug logging, off by default: `STRATA_LOG` turns it on at a level
//! (`error`, `warn`, `info`, `debug`, `trace`, any letter case, as
//! Terraform's `TF_LOG` takes them; or a `tracing` filter such as
//! `strata=debug,strata::ovsdb=trace`), `STRATA_LOG_PATH` appends it
//! to a file (created 0600) instead of stderr.
//!
//! What is logged: every provider call with its duration (`ops::logged`),
//! the request each provider made (libvirt calls and XML, OVSDB
//! transactions, `rbd`/`ceph` command lines), state commits and locking.
//! Values are logged only as redacted renderings, and every line passes
//! through [`crate::redact::scrub_log`] before it is written, which removes
//! every sensitive string the engine has seen: providers see values without
//! their marks, so what they log is scrubbed here.
//!
//! When logging is off no subscriber is installed and every `tracing`
//! macro costs one relaxed load of a static.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Where log lines go.
#[derive(Clone)]
enum Sink {
    Stderr,
    File(Arc<Mutex<File>>),
}

/// Hands the formatter one buffer per event; the event is scrubbed and
/// written whole when the buffer is dropped, so lines of concurrent events
/// never interleave.
#[derive(Clone)]
struct ScrubbingWriter {
    sink: Sink,
}

struct Line {
    sink: Sink,
    buffer: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let clean = crate::redact::scrub_log(&text);
        // Logging is best effort: a log that cannot be written must not
        // change what the command does or reports.
        let _ = match &self.sink {
            Sink::Stderr => std::io::stderr().lock().write_all(clean.as_bytes()),
            Sink::File(file) => file.lock().unwrap_or_else(|p| p.into_inner()).write_all(clean.as_bytes()),
        };
    }
}

impl<'a> MakeWriter<'a> for ScrubbingWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { sink: self.sink.clone(), buffer: Vec::with_capacity(256) }
    }
}

/// The filter `STRATA_LOG` asks for: `None` when logging is off.
fn filter(setting: &str) -> Result<Option<EnvFilter>, String> {
    let setting = setting.trim();
    let level = setting.to_ascii_lowercase();
    match level.as_str() {
        "" | "off" | "0" | "false" => Ok(None),
        "error" | "warn" | "info" | "debug" | "trace" => Ok(Some(EnvFilter::new(level))),
        _ if setting.contains('=') => EnvFilter::try_new(setting)
            .map(Some)
            .map_err(|e| format!("STRATA_LOG={setting:?} is not a valid tracing filter: {e}; logging stays off")),
        _ => Err(format!("STRATA_LOG={setting:?} is not a level (error, warn, info, debug, trace or off); logging stays off")),
    }
}

/// Opens the log file for appending, creating it private (0600).
fn open_log_file(path: &str) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open STRATA_LOG_PATH {path:?}: {e}; logging to stderr instead"))
}

/// Installs the logger `STRATA_LOG` and `STRATA_LOG_PATH` ask for, and
/// warns on stderr about a setting it could not honour.
pub fn init() {
    if let Some(warning) = install() {
        super::write_stderr(format!("warning: {warning}\n").as_bytes());
    }
}

fn install() -> Option<String> {
    let setting = std::env::var("STRATA_LOG").unwrap_or_default();
    let filter = match filter(&setting) {
        Ok(Some(filter)) => filter,
        Ok(None) => return None,
        Err(warning) => return Some(warning),
    };
    let mut warning = None;
    let sink = match std::env::var("STRATA_LOG_PATH") {
        Ok(path) if !path.is_empty() => match open_log_file(&path) {
            Ok(file) => Sink::File(Arc::new(Mutex::new(file))),
            Err(e) => {
                warning = Some(e);
                Sink::Stderr
            }
        },
        _ => Sink::Stderr,
    };
    crate::redact::start_collecting_log_secrets();
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ScrubbingWriter { sink })
        .with_ansi(false)
        .try_init();
    if let Err(e) = installed {
        warning = Some(format!("cannot start logging: {e}"));
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), level = %setting, "strata logging started");
    warning
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_read_as_terraform_reads_tf_log() {
        for on in ["trace", "TRACE", "Debug", " info ", "WARN", "error", "strata=debug"] {
            assert!(matches!(filter(on), Ok(Some(_))), "{on}");
        }
        for off in ["", "off", "OFF", "0"] {
            assert!(matches!(filter(off), Ok(None)), "{off}");
        }
        assert!(filter("verbose").is_err());
    }
}
