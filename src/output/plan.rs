//! Human rendering of a plan, in the familiar `+ ~ - -/+` style; the
//! attribute diffs themselves are [`super::diff`]'s.

use super::Shell;
use crate::addr::Mode;
use crate::plan::{Action, Plan, PlanMode, ResourceChange, Schemas};
use anstyle::AnsiColor;
use super::diff::{write_attribute_lines, Markers};
use std::fmt::Write as _;
use strata_provider::{Block, Disruption, Value};

/// The plan for review; `schemas` says which attributes are nested blocks.
pub fn render_plan(shell: &Shell, plan: &Plan, schemas: &Schemas) -> String {
    let mut out = String::new();
    if !plan.drift.is_empty() {
        out.push_str("Objects changed outside of Strata (found by refresh):\n\n");
        for d in &plan.drift {
            match &d.after {
                Some(after) => {
                    let _ = writeln!(out, "  # {} changed", d.address);
                    let schema = plan.changes.iter().find(|c| c.address == d.address).and_then(|c| schema_of(schemas, c));
                    write_attribute_lines(&mut out, "      ", shell, &d.before, after, &Markers::new(), true, schema);
                }
                None => {
                    let _ = writeln!(out, "  # {} was deleted", d.address);
                }
            }
        }
        out.push('\n');
    }
    if plan.mode == PlanMode::RefreshOnly {
        if plan.drift.is_empty() {
            out.push_str("No changes. The state matches the real objects.\n");
        } else {
            out.push_str("Applying this plan records these changes in state; nothing else changes.\n");
        }
        return out;
    }
    let changes: Vec<&ResourceChange> = plan.changes.iter().filter(|c| c.is_change()).collect();
    if changes.is_empty() && !plan.outputs.values().any(|o| o.before.as_ref() != Some(&o.after)) {
        out.push_str("No changes. Your infrastructure matches the configuration.\n");
        return out;
    }
    if !changes.is_empty() {
        out.push_str("Strata will perform the following actions:\n\n");
    }
    for c in &changes {
        render_change(shell, c, schema_of(schemas, c), &mut out);
        out.push('\n');
    }
    let imports = plan.changes.iter().filter(|c| c.details().importing.is_some()).count();
    let moves = plan.changes.iter().filter(|c| c.details().moved_from.is_some()).count();
    let forgets = plan.count(Action::Forget);
    let adds = plan.count(Action::Create) + plan.count(Action::Replace);
    let changes_n = plan.count(Action::Update);
    let destroys = plan.count(Action::Delete) + plan.count(Action::Replace);
    let mut summary = format!("Plan: {adds} to add, {changes_n} to change, {destroys} to destroy.");
    for (n, what) in [(imports, "to import"), (moves, "to move"), (forgets, "to forget")] {
        if n > 0 {
            summary.push_str(&format!(" {n} {what}."));
        }
    }
    let restarts = plan.count_disruption(Disruption::Restart);
    let losses = plan.count_disruption(Disruption::DataLoss);
    if restarts > 0 {
        summary.push_str(&shell.paint(AnsiColor::Yellow.on_default().bold(), &format!(" {restarts} restart(s).")));
    }
    if losses > 0 {
        summary.push_str(&shell.paint(
            AnsiColor::Red.on_default().bold(),
            &format!(" {losses} change(s) DESTROY DATA (needs --allow-data-loss)."),
        ));
    }
    out.push_str(&summary);
    out.push('\n');
    let changed_outputs: Vec<_> = plan.outputs.iter().filter(|(_, o)| o.before.as_ref() != Some(&o.after)).collect();
    if !changed_outputs.is_empty() {
        out.push_str("\nChanges to outputs:\n");
        for (name, o) in changed_outputs {
            let after = render_value(&o.after);
            match &o.before {
                None => {
                    let _ = writeln!(out, "  {} {name} = {after}", shell.paint(AnsiColor::Green.on_default(), "+"));
                }
                Some(before) => {
                    let _ = writeln!(out, "  {} {name} = {} -> {after}", shell.paint(AnsiColor::Yellow.on_default(), "~"), render_value(before));
                }
            }
        }
    }
    out
}

/// The schema of the change's resource type, if its provider is known.
fn schema_of<'s>(schemas: &'s Schemas, c: &ResourceChange) -> Option<&'s Block> {
    let provider = c.provider.split('.').next().unwrap_or_default();
    schemas.resource(provider, if c.data { Mode::Data } else { Mode::Managed }, &c.type_name)
}

fn render_change(shell: &Shell, c: &ResourceChange, schema: Option<&Block>, out: &mut String) {
    let what = match c.action {
        Action::Create => "will be created".to_owned(),
        Action::Update => format!("will be updated in place ({})", c.disruption.unwrap_or(Disruption::Live)),
        Action::Replace if !c.details().replace_because.is_empty() => {
            format!("must be replaced ({} forces replacement)", c.details().replace_because.join(", "))
        }
        Action::Replace => "must be replaced".to_owned(),
        Action::Delete => "will be destroyed".to_owned(),
        Action::Forget => "will be removed from state; the object itself stays".to_owned(),
        Action::Read => "will be read during apply".to_owned(),
        Action::NoOp => "is unchanged".to_owned(),
    };
    let _ = write!(out, "  # {} {what}", c.address);
    if let Some(reason) = &c.details().reason {
        let _ = write!(out, " ({reason})");
    }
    if let Some(from) = &c.details().moved_from {
        let _ = write!(out, "\n  # (moved from {from})");
    }
    if let Some(id) = &c.details().importing {
        let _ = write!(out, "\n  # (imported from {id:?})");
    }
    if c.disruption == Some(Disruption::DataLoss) {
        out.push_str(&shell.paint(AnsiColor::Red.on_default().bold(), " — DATA LOSS"));
    }
    out.push('\n');
    for note in &c.details().notes {
        let _ = writeln!(out, "  # note: {note}");
    }
    if let Some(why) = &c.details().irreversible {
        let warning = format!("  # rollback cannot restore this: {why}");
        let _ = writeln!(out, "{}", shell.paint(AnsiColor::Red.on_default(), &warning));
    }
    let style = match c.action {
        Action::Create => AnsiColor::Green,
        Action::Update => AnsiColor::Yellow,
        Action::Replace | Action::Delete => AnsiColor::Red,
        _ => AnsiColor::Cyan,
    };
    let kind = if c.data { "data" } else { "resource" };
    let name = c.resource.rsplit('.').next().unwrap_or(&c.resource);
    let symbol = shell.paint(style.on_default(), c.action.symbol());
    let _ = writeln!(out, "{symbol:>width$} {kind} {:?} {name:?} {{", c.type_name, width = if shell.color() { 3 + 9 } else { 3 });
    let empty = Value::Map(Default::default());
    let (before, after) = match c.action {
        Action::Create | Action::Read => (&empty, c.planned.as_ref().unwrap_or(&empty)),
        Action::Delete => (c.prior.as_ref().unwrap_or(&empty), &empty),
        _ => (c.prior.as_ref().unwrap_or(&empty), c.planned.as_ref().unwrap_or(&empty)),
    };
    let hide_unchanged = matches!(c.action, Action::Update | Action::Replace | Action::NoOp);
    write_attribute_lines(out, "      ", shell, before, after, &markers(c), hide_unchanged, schema);
    out.push_str("    }\n");
}

/// Per changed attribute, what its change does, where it is more than a
/// live change (the header names the resource's overall disruption).
fn markers(c: &ResourceChange) -> Markers {
    let mut markers: Markers = c
        .details()
        .attribute_disruptions
        .iter()
        .filter(|(_, d)| matches!(d, Disruption::Restart | Disruption::DataLoss))
        .map(|(name, d)| (name.clone(), d.to_string()))
        .collect();
    for name in &c.details().replace_because {
        markers.insert(name.clone(), "forces replacement".into());
    }
    markers
}

/// A value as the plan shows it: unknowns and secrets are never printed.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::Unknown => "(known after apply)".into(),
        Value::Sensitive(_) => "(sensitive value)".into(),
        other => other.to_hcl(),
    }
}

