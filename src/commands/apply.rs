//! `strata apply` and `strata destroy`: confirm, run, report progress and the outcome (rollback included).

use super::*;

pub(super) async fn apply_cmd(
    shell: &Shell,
    ws: &Workspace,
    session: &Session,
    plan_file: Option<PathBuf>,
    flags: &PlanFlags,
    opts: &ApplyFlags,
    destroy: bool,
) -> ops::OpResult<i32> {
    let operation = if destroy { "destroy" } else { "apply" };
    if flags.json {
        output::json_ui::version();
    }
    let (mut planned, _guard) = match &plan_file {
        Some(path) => {
            refuse_planning_flags(flags)?;
            let guard = take_lock(shell, ws, operation, &session.lock)?;
            let planned = ops::load_saved_plan(ws, path).await?;
            // Before the plan is shown: a reader must not review changes
            // that will not be made.
            let state = &planned.state.meta;
            if state.lineage != planned.plan.lineage {
                return Err(OpError::Message(format!(
                    "the saved plan {} was made for another state (lineage {}), not for workspace {:?} (lineage {}):                      select the workspace it was made in, or plan again",
                    path.display(),
                    planned.plan.lineage,
                    ws.name,
                    state.lineage
                )));
            }
            if state.serial != planned.plan.serial {
                return Err(OpError::Message(format!(
                    "the saved plan {} is stale: it was made from state version {} and the state is now at version {} \
                     (another operation changed it since); plan again",
                    path.display(),
                    planned.plan.serial,
                    state.serial
                )));
            }
            (planned, guard)
        }
        None => make_plan(shell, ws, session, flags, opts.parallelism, destroy, operation).await?,
    };
    if flags.json {
        output::json_ui::plan(&planned.plan);
    } else {
        shell.out(&render_plan(shell, &planned.plan, &planned.loaded.schemas));
    }
    if !planned.plan.has_changes() {
        planned.release();
        return Ok(0);
    }
    if plan_file.is_none() && !opts.auto_approve {
        if flags.json {
            return Err(OpError::Message(format!("{operation} -json cannot ask for confirmation: pass -auto-approve, or apply a saved plan")));
        }
        if !session.ui.input {
            return Err(OpError::Message(format!("{operation} needs confirmation and -input=false forbids asking: pass -auto-approve")));
        }
        if !std::io::stdin().is_terminal() {
            return Err(OpError::Message(format!("{operation} needs confirmation: run it on a terminal, or pass -auto-approve")));
        }
        shell.status("Do you want to perform these actions? Only 'yes' will be accepted.");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim() != "yes" {
            shell.status("Apply cancelled.");
            return Ok(1);
        }
    }
    // The block graph's analysis served planning only: freed before the
    // apply, whose values reuse the memory (the peak of a large apply is
    // at its end).
    drop(std::mem::take(&mut planned.loaded.analysis));
    let cancel = CancellationToken::new();
    let in_flight = Arc::new(Mutex::new(BTreeSet::new()));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mode = if flags.json {
        Progress::Json
    } else if shell.interactive() {
        Progress::Live
    } else {
        Progress::Lines
    };
    let printer = tokio::spawn(output::run_progress(mode, rx, output::Expected::of(&planned.plan)));
    let interrupt = spawn_interrupt_handler(cancel.clone(), in_flight.clone(), tx.clone());
    let report = ops::apply(
        ws,
        &planned,
        ops::ApplyOptions { parallelism: opts.parallelism, rollback: !opts.no_rollback, allow_data_loss: opts.allow_data_loss, cancel, in_flight },
        tx,
    )
    .await;
    interrupt.abort();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = printer.await;
            return Err(e);
        }
    };
    let _ = printer.await;
    planned.release();
    Ok(summarize(shell, &report, destroy, flags.json))
}

/// A saved plan already decided what to change: flags that would change
/// the plan are refused rather than silently ignored.
fn refuse_planning_flags(flags: &PlanFlags) -> ops::OpResult<()> {
    if !flags.vars.is_empty() || !flags.var_files.is_empty() {
        return Err(OpError::Message(
            "can't set variables when applying a saved plan: the plan holds the variable values it was made with; \
             plan again with -var/-var-file instead"
                .into(),
        ));
    }
    let given = flags.planning_flags_given();
    if !given.is_empty() {
        return Err(OpError::Message(format!(
            "{} cannot be used when applying a saved plan, which already says exactly what will change; plan again with {}",
            given.join(", "),
            if given.len() == 1 { "it" } else { "them" }
        )));
    }
    Ok(())
}

/// First Ctrl-C: stop starting work. Second: say what is still in flight.
pub(super) fn spawn_interrupt_handler(
    cancel: CancellationToken,
    in_flight: Arc<Mutex<BTreeSet<String>>>,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut count = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            count += 1;
            let list: Vec<String> = in_flight.lock().expect("in-flight lock").iter().cloned().collect();
            if count == 1 {
                cancel.cancel();
                let _ = events.send(Event::Interrupted { in_flight: list });
            } else {
                let _ = events.send(Event::Interrupted { in_flight: list });
            }
        }
    })
}

pub(super) fn summarize(shell: &Shell, report: &ApplyReport, destroy: bool, json: bool) -> i32 {
    if json {
        // Failures were reported as they happened (apply_errored and its
        // diagnostic); the summary closes the stream.
        output::json_ui::apply_report(report, destroy);
        return exit_code(report);
    }
    if report.interrupted {
        shell.error(&format!(
            "apply interrupted after {} operation(s); what finished is recorded in state. Run apply again to continue.",
            report.completed.len()
        ));
        return 130;
    }
    if report.cleanup_failed {
        for (addr, e) in &report.failed {
            shell.error(&format!("{addr}: {e}"));
        }
        shell.error(&format!(
            "the cleanup phase failed: the {} change(s) before it stand and were not rolled back; left to clean up:\n  {}",
            report.completed.len(),
            report.left_to_clean.join("\n  ")
        ));
        return 1;
    }
    if !report.failed.is_empty() {
        for (addr, e) in &report.failed {
            shell.error(&format!("{addr}: {e}"));
        }
        if !report.rolled_back.is_empty() {
            shell.status(&format!("Rolled back {} operation(s): {}", report.rolled_back.len(), report.rolled_back.join(", ")));
        }
        for (addr, why) in &report.not_rolled_back {
            shell.error(&format!("{addr} could not be rolled back: {why}"));
        }
        for what in &report.left_to_clean {
            shell.error(&format!("left to clean up: {what}"));
        }
        return 1;
    }
    for what in &report.left_to_clean {
        shell.error(&format!("left to clean up: {what}"));
    }
    if !report.left_to_clean.is_empty() {
        return 1;
    }
    let verb = if destroy { "Destroy" } else { "Apply" };
    shell.status(&format!("{verb} complete: {} operation(s).", report.completed.len()));
    if !report.outputs.is_empty() && !json {
        let mut text = String::from("\nOutputs:\n\n");
        for (k, v) in &report.outputs {
            text.push_str(&format!("{k} = {}\n", output::render_value(v)));
        }
        shell.out(&text);
    }
    0
}

/// The exit code of an apply: 130 when interrupted, 1 when anything failed
/// or is left to clean up.
fn exit_code(report: &ApplyReport) -> i32 {
    if report.interrupted {
        130
    } else if report.succeeded() {
        0
    } else {
        1
    }
}
