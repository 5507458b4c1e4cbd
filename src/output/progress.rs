//! Live apply progress: on a terminal, a spinner line per operation in
//! flight above an `N/M done [elapsed]` line; without one, Terraform's plain
//! lines (`ADDR: Creating...`, `ADDR: Still creating... [10s elapsed]` every
//! ten seconds of a long operation, `ADDR: Creation complete after 12s
//! [id=...]`); or Terraform's machine-readable UI (`super::json_ui`).

use crate::apply::Event;
use crate::plan::Action;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Live,
    Lines,
    Json,
}

/// What the apply is about to do: how many operations it reports, and the
/// identity each instance will have (shown as `[id=...]`).
#[derive(Debug, Default, Clone)]
pub struct Expected {
    pub operations: usize,
    pub ids: HashMap<String, String>,
}

impl Expected {
    pub fn of(plan: &crate::plan::Plan) -> Expected {
        Expected {
            operations: crate::apply::operation_count(plan),
            ids: plan.changes.iter().map(|c| (c.address.clone(), c.id.to_string())).collect(),
        }
    }
}

fn verb(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("Creating", "Creation complete"),
        Action::Update => ("Modifying", "Modifications complete"),
        Action::Replace => ("Replacing", "Replacement complete"),
        Action::Delete => ("Destroying", "Destruction complete"),
        Action::Read => ("Reading", "Read complete"),
        Action::NoOp => ("Checking", "Done"),
        Action::Forget => ("Forgetting", "Removed from state"),
    }
}

/// How often a long operation says it is still running without a
/// terminal: every 10 s as Terraform does; `STRATA_PROGRESS_INTERVAL`
/// (seconds, fractions allowed) exists for tests.
fn still_interval() -> Duration {
    std::env::var("STRATA_PROGRESS_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

/// A duration as Terraform prints it: whole seconds, `1m30s`, `1h2m3s`.
fn terraform_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// An operation in flight, for its "Still ..." lines.
struct Running {
    action: Action,
    started: Instant,
    next_report: Instant,
}

/// Consumes apply events until the sender is dropped.
pub async fn run(mode: Progress, mut events: UnboundedReceiver<Event>, expected: Expected) {
    if mode == Progress::Json {
        return super::json_ui::apply_events(events).await;
    }
    let interval = still_interval();
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template");
    let overall = (mode == Progress::Live).then(|| {
        let style = ProgressStyle::with_template("{pos}/{len} done [{elapsed}]").expect("valid template");
        let bar = multi.add(ProgressBar::new(expected.operations as u64).with_style(style));
        bar.enable_steady_tick(Duration::from_millis(500));
        bar
    });
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut running: HashMap<String, Running> = HashMap::new();
    // The operations in flight by when they next say "Still ...", so that
    // the next one due is found without looking at every operation (an
    // apply may have thousands in flight).
    let mut due_at: BTreeSet<(Instant, String)> = BTreeSet::new();
    // The lines of events that arrived together, written in one go when the
    // queue runs dry: a large apply reports 200,000 lines, one write each
    // was a system call per line.
    let mut pending = String::new();
    let line = |multi: &MultiProgress, pending: &mut String, text: String| {
        if mode == Progress::Live {
            let _ = multi.println(text);
        } else {
            push_line(pending, &text);
        }
    };
    loop {
        if events.is_empty() || pending.len() >= PENDING_BYTES {
            flush_lines(&mut pending);
        }
        let next_report = due_at.first().map(|(at, _)| *at);
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => break,
            },
            () = tokio::time::sleep_until(next_report.unwrap_or_else(Instant::now)), if next_report.is_some() => {
                flush_lines(&mut pending);
                let now = Instant::now();
                let mut due = Vec::new();
                while due_at.first().is_some_and(|(at, _)| *at <= now) {
                    due.extend(due_at.pop_first().map(|(_, address)| address));
                }
                due.sort();
                for address in due {
                    let Some(r) = running.get_mut(&address) else { continue };
                    let doing = verb(r.action).0.to_lowercase();
                    eprintln_line(&format!("{address}: Still {doing}... [{} elapsed]", terraform_duration(now - r.started)));
                    r.next_report += interval;
                    due_at.insert((r.next_report, address));
                }
                continue;
            }
        };
        match event {
            Event::Started { address, action } => {
                let text = format!("{address}: {}...", verb(action).0);
                if mode == Progress::Live {
                    let bar = match &overall {
                        Some(overall) => multi.insert_before(overall, ProgressBar::new_spinner()),
                        None => multi.add(ProgressBar::new_spinner()),
                    };
                    let bar = bar.with_style(style.clone()).with_message(text);
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bars.insert(address, bar);
                } else {
                    push_line(&mut pending, &text);
                    let started = Instant::now();
                    due_at.insert((started + interval, address.clone()));
                    running.insert(address, Running { action, started, next_report: started + interval });
                }
            }
            Event::Finished { address, action, elapsed } => {
                if let Some(bar) = bars.remove(&address) {
                    bar.finish_and_clear();
                }
                if let Some(r) = running.remove(&address) {
                    due_at.remove(&(r.next_report, address.clone()));
                }
                if let Some(overall) = &overall {
                    overall.inc(1);
                }
                let id = match (action, expected.ids.get(&address)) {
                    (Action::Delete | Action::Forget | Action::NoOp, _) | (_, None) => String::new(),
                    (_, Some(id)) => format!(" [id={id}]"),
                };
                line(&multi, &mut pending, format!("{address}: {} after {}{id}", verb(action).1, terraform_duration(elapsed)));
            }
            Event::Failed { address, action, error } => {
                if let Some(bar) = bars.remove(&address) {
                    bar.finish_and_clear();
                }
                if let Some(r) = running.remove(&address) {
                    due_at.remove(&(r.next_report, address.clone()));
                }
                line(&multi, &mut pending, format!("{address}: {} failed: {error}", verb(action).0));
            }
            Event::RollingBack { operations } => line(&multi, &mut pending, format!("Rolling back {operations} completed operation(s)...")),
            Event::RolledBack { address, what } => line(&multi, &mut pending, format!("{address}: rolled back ({what})")),
            Event::RollbackFailed { address, error } => line(&multi, &mut pending, format!("{address}: could NOT be rolled back: {error}")),
            Event::Interrupted { in_flight } => line(
                &multi,
                &mut pending,
                format!("Interrupted. Still in flight, finishing: {}", if in_flight.is_empty() { "nothing".into() } else { in_flight.join(", ") }),
            ),
        }
    }
    flush_lines(&mut pending);
    for (_, bar) in bars {
        bar.finish_and_clear();
    }
    if let Some(overall) = overall {
        overall.finish_and_clear();
    }
}

fn eprintln_line(text: &str) {
    super::write_stderr(format!("{text}\n").as_bytes());
}

/// Written before this many bytes of progress wait, even with more events
/// queued.
const PENDING_BYTES: usize = 64 * 1024;

fn push_line(pending: &mut String, text: &str) {
    pending.push_str(text);
    pending.push('\n');
}

fn flush_lines(pending: &mut String) {
    if !pending.is_empty() {
        super::write_stderr(pending.as_bytes());
        pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_terraform_prints_them() {
        assert_eq!(terraform_duration(Duration::from_millis(999)), "0s");
        assert_eq!(terraform_duration(Duration::from_secs(12)), "12s");
        assert_eq!(terraform_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(terraform_duration(Duration::from_secs(3723)), "1h2m3s");
    }
}
