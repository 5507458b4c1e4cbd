//! Live apply progress: a spinner line per operation in flight on a terminal,
//! one plain line per event otherwise, or Terraform's machine-readable UI
//! (`super::json_ui`).

use crate::apply::Event;
use crate::plan::Action;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Live,
    Lines,
    Json,
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

/// Consumes apply events until the sender is dropped.
pub async fn run(mode: Progress, mut events: UnboundedReceiver<Event>) {
    if mode == Progress::Json {
        return super::json_ui::apply_events(events).await;
    }
    let multi = MultiProgress::new();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let style = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template");
    let line = |multi: &MultiProgress, text: String| {
        if mode == Progress::Live {
            let _ = multi.println(text);
        } else {
            eprintln_line(&text);
        }
    };
    while let Some(event) = events.recv().await {
        match event {
            Event::Started { address, action } => {
                let text = format!("{address}: {}...", verb(action).0);
                if mode == Progress::Live {
                    let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()).with_message(text));
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bars.insert(address, bar);
                } else {
                    eprintln_line(&text);
                }
            }
            Event::Finished { address, action, elapsed } => {
                if let Some(bar) = bars.remove(&address) {
                    bar.finish_and_clear();
                }
                line(&multi, format!("{address}: {} after {:.1}s", verb(action).1, elapsed.as_secs_f64()));
            }
            Event::Failed { address, action, error } => {
                if let Some(bar) = bars.remove(&address) {
                    bar.finish_and_clear();
                }
                line(&multi, format!("{address}: {} failed: {error}", verb(action).0));
            }
            Event::RollingBack { operations } => line(&multi, format!("Rolling back {operations} completed operation(s)...")),
            Event::RolledBack { address, what } => line(&multi, format!("{address}: rolled back ({what})")),
            Event::RollbackFailed { address, error } => line(&multi, format!("{address}: could NOT be rolled back: {error}")),
            Event::Interrupted { in_flight } => line(
                &multi,
                format!("Interrupted. Still in flight, finishing: {}", if in_flight.is_empty() { "nothing".into() } else { in_flight.join(", ") }),
            ),
        }
    }
    for (_, bar) in bars {
        bar.finish_and_clear();
    }
}

fn eprintln_line(text: &str) {
    super::write_stderr(format!("{text}\n").as_bytes());
}
