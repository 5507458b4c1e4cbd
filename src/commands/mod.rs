//! The command line: flag parsing and thin wrappers over [`crate::ops`].
//! Each command renders through [`Shell`] and returns an exit code.

use crate::addr::Target;
use crate::apply::{ApplyReport, Event};
use crate::config::vars::VarArg;
use crate::ops::{self, OpError, PlanRequest, Planned, Workspace};
use crate::output::{self, render_plan, Progress, Shell};
use crate::plan::{PlanMode, PlanOptions};
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const EXAMPLES: &str = "\
Examples:
  strata init
  strata plan -out tfplan
  strata apply tfplan
  strata apply -auto-approve -var region=eu
  strata destroy -auto-approve";

/// Declarative infrastructure as code: plan, apply with rollback, no orphans.
#[derive(Parser, Debug)]
#[command(name = "strata", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Run as if started in this directory.
    #[arg(long = "chdir", global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Never print colour.
    #[arg(long = "no-color", global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Prepare the working directory: state store, configuration check.
    #[command(after_help = "Example:\n  strata init")]
    Init,
    /// Check the configuration and report every problem at once.
    #[command(after_help = "Example:\n  strata validate -json")]
    Validate {
        #[arg(long)]
        json: bool,
    },
    /// Rewrite configuration files in the canonical layout.
    #[command(after_help = "Examples:\n  strata fmt\n  strata fmt -check -diff")]
    Fmt {
        /// Exit 3 if any file is not formatted, without writing.
        #[arg(long)]
        check: bool,
        /// Show what would change.
        #[arg(long)]
        diff: bool,
        /// Files or directories (default: the working directory).
        paths: Vec<PathBuf>,
    },
    /// Show what apply would change.
    #[command(after_help = "Examples:\n  strata plan\n  strata plan -out tfplan -var size=3\n  strata plan -destroy -target strata_data.web")]
    Plan {
        #[command(flatten)]
        plan: PlanFlags,
        /// Save the plan to apply it later, exactly.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 0 for no changes, 1 for errors, 2 for changes.
        #[arg(long = "detailed-exitcode")]
        detailed_exitcode: bool,
    },
    /// Make the changes: a saved plan, or plan then confirm.
    #[command(after_help = "Examples:\n  strata apply\n  strata apply tfplan\n  strata apply -auto-approve -parallelism 4 --no-rollback")]
    Apply {
        /// A plan saved with `plan -out`.
        plan_file: Option<PathBuf>,
        #[command(flatten)]
        plan: PlanFlags,
        #[command(flatten)]
        apply: ApplyFlags,
    },
    /// Destroy everything this configuration manages.
    #[command(after_help = "Example:\n  strata destroy -auto-approve")]
    Destroy {
        #[command(flatten)]
        plan: PlanFlags,
        #[command(flatten)]
        apply: ApplyFlags,
    },
    /// Show the state, or a saved plan.
    #[command(after_help = "Examples:\n  strata show\n  strata show -json tfplan")]
    Show {
        plan_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print output values.
    #[command(after_help = "Examples:\n  strata output\n  strata output -raw address\n  strata output -json")]
    Output {
        name: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        raw: bool,
    },
    /// Inspect and edit the state.
    #[command(subcommand)]
    State(StateCommand),
    /// Adopt an existing object into state.
    #[command(after_help = "Example:\n  strata import testing_object.db 0f1e...")]
    Import {
        address: String,
        id: String,
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<VarArg>,
    },
    /// Evaluate expressions against the configuration and state.
    #[command(after_help = "Examples:\n  strata console\n  echo 'cidrsubnet(\"10.0.0.0/16\", 8, 2)' | strata console")]
    Console {
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<VarArg>,
    },
    /// Print the dependency graph of the plan's instances as DOT.
    #[command(after_help = "Example:\n  strata graph | dot -Tsvg > graph.svg")]
    Graph {
        #[command(flatten)]
        plan: PlanFlags,
    },
    /// Break a state lock by its ID.
    #[command(name = "force-unlock", after_help = "Example:\n  strata force-unlock 6f0c...")]
    ForceUnlock { lock_id: String },
    /// Print the version.
    Version,
    /// Print shell completions.
    #[command(after_help = "Example:\n  strata completions bash > /etc/bash_completion.d/strata")]
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// List managed instances.
    List,
    /// Show one instance.
    Show { address: String },
    /// Forget instances without destroying them.
    Rm { addresses: Vec<String> },
    /// Rename an instance in state.
    Mv { from: String, to: String },
    /// List the kept state versions.
    History,
}

#[derive(Args, Debug, Clone, Default)]
pub struct PlanFlags {
    /// Set a variable (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Load variables from a file (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Only these instances and what they depend on.
    #[arg(long, value_name = "ADDR")]
    pub target: Vec<Target>,
    /// Everything but these instances and what depends on them.
    #[arg(long, value_name = "ADDR")]
    pub exclude: Vec<Target>,
    /// Replace these instances even if unchanged.
    #[arg(long, value_name = "ADDR")]
    pub replace: Vec<Target>,
    /// Plan to destroy everything.
    #[arg(long)]
    pub destroy: bool,
    /// Only record what changed outside Strata.
    #[arg(long = "refresh-only")]
    pub refresh_only: bool,
    /// Read the real objects first (`-refresh=false` to skip).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub refresh: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ApplyFlags {
    /// Do not ask for confirmation.
    #[arg(long = "auto-approve")]
    pub auto_approve: bool,
    /// Operations in flight at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Keep what succeeded when something fails (Terraform's behaviour).
    #[arg(long = "no-rollback")]
    pub no_rollback: bool,
    /// Allow changes classed data-loss (e.g. shrinking a disk).
    #[arg(long = "allow-data-loss")]
    pub allow_data_loss: bool,
}

impl PlanFlags {
    fn request(&self, force_destroy: bool) -> PlanRequest {
        let mut vars: Vec<VarArg> = self.var_files.iter().cloned().map(VarArg::File).collect();
        for v in &self.vars {
            match v.parse() {
                Ok(v) => vars.push(v),
                Err(_) => vars.push(VarArg::Pair(v.clone(), String::new())),
            }
        }
        let mode = if self.destroy || force_destroy {
            PlanMode::Destroy
        } else if self.refresh_only {
            PlanMode::RefreshOnly
        } else {
            PlanMode::Normal
        };
        PlanRequest {
            vars,
            options: PlanOptions { mode, targets: self.target.clone(), excludes: self.exclude.clone(), replace: self.replace.clone() },
            refresh: self.refresh,
        }
    }
}

/// Terraform users write `-auto-approve`; clap wants `--auto-approve`.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let single_dash_long = a.starts_with('-') && !a.starts_with("--") && a.len() > 2 && a.as_bytes()[1].is_ascii_alphabetic();
            if i > 0 && single_dash_long { format!("-{a}") } else { a }
        })
        .collect()
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let json = matches!(&cli.command, Command::Plan { plan, .. } | Command::Apply { plan, .. } | Command::Destroy { plan, .. } if plan.json)
        || matches!(&cli.command, Command::Validate { json: true } | Command::Show { json: true, .. } | Command::Output { json: true, .. });
    let shell = Shell::new(cli.no_color, json);
    let dir = match &cli.chdir {
        Some(d) => d.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let ws = Workspace::open(&dir);
    let result = match cli.command {
        Command::Init => init(&shell, &ws),
        Command::Validate { json } => validate(&shell, &ws, json),
        Command::Fmt { check, diff, paths } => fmt(&shell, &dir, check, diff, paths),
        Command::Plan { plan, out, detailed_exitcode } => plan_cmd(&shell, &ws, &plan, out, detailed_exitcode).await,
        Command::Apply { plan_file, plan, apply } => apply_cmd(&shell, &ws, plan_file, &plan, &apply, false).await,
        Command::Destroy { plan, apply } => apply_cmd(&shell, &ws, None, &plan, &apply, true).await,
        Command::Show { plan_file, json } => show(&shell, &ws, plan_file, json),
        Command::Output { name, json, raw } => output_cmd(&shell, &ws, name, json, raw),
        Command::State(cmd) => state_cmd(&shell, &ws, cmd),
        Command::Import { address, id, vars } => import(&shell, &ws, &address, &id, &vars).await,
        Command::Graph { plan } => graph(&shell, &ws, &plan).await,
        Command::Console { vars } => console(&shell, &ws, &vars),
        Command::ForceUnlock { lock_id } => ws
            .store
            .force_unlock(&lock_id)
            .map(|holder| {
                shell.status(&format!("Lock {lock_id} held by {holder} was removed."));
                0
            })
            .map_err(OpError::from),
        Command::Version => {
            shell.out(&format!("strata {}", env!("CARGO_PKG_VERSION")));
            Ok(0)
        }
        Command::Completions { shell: sh } => {
            let mut script = Vec::new();
            clap_complete::generate(sh, &mut Cli::command(), "strata", &mut script);
            shell.raw(&String::from_utf8_lossy(&script));
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&shell, e);
            1
        }
    }
}

fn report_error(shell: &Shell, e: OpError) {
    match e {
        OpError::Config(sources, diags) => shell.diagnostics(&sources, &diags),
        OpError::State(e) => shell.error(&e.to_string()),
        OpError::Message(m) => shell.error(&m),
    }
}

fn init(shell: &Shell, ws: &Workspace) -> ops::OpResult<i32> {
    let diags = ops::validate(ws)?;
    let snap = ws.store.snapshot()?;
    if !diags.0.is_empty() {
        shell.diagnostics(&Default::default(), &diags);
    }
    for (address, dir) in ops::modules(ws) {
        shell.status(&format!("- {address} from {}", dir.display()));
    }
    shell.status(&format!(
        "Strata is initialized in {} (state version {}, lineage {}).\nKeep .strata/ out of git: it is this directory's state.",
        ws.dir.display(),
        snap.meta.serial,
        snap.meta.lineage
    ));
    Ok(0)
}

fn validate(shell: &Shell, ws: &Workspace, json: bool) -> ops::OpResult<i32> {
    match ops::validate(ws) {
        Ok(_) => {
            if json {
                shell.out(&serde_json::json!({"valid": true, "error_count": 0}).to_string());
            } else {
                shell.out("The configuration is valid.");
            }
            Ok(0)
        }
        Err(OpError::Config(sources, diags)) if json => {
            let list: Vec<_> = diags
                .iter()
                .map(|d| serde_json::json!({"severity": if d.is_error() {"error"} else {"warning"}, "message": d.message, "location": d.location(&sources)}))
                .collect();
            shell.out(&serde_json::json!({"valid": false, "error_count": diags.errors(), "diagnostics": list}).to_string());
            Ok(1)
        }
        Err(e) => Err(e),
    }
}

fn fmt(shell: &Shell, dir: &std::path::Path, check: bool, diff: bool, paths: Vec<PathBuf>) -> ops::OpResult<i32> {
    let mut files = Vec::new();
    for p in if paths.is_empty() { vec![dir.to_owned()] } else { paths } {
        if p.is_dir() {
            files.extend(crate::config::config_files(&p, crate::config::CONFIG_SUFFIX).map_err(|e| format!("{}: {e}", p.display()))?);
            files.extend(crate::config::config_files(&p, crate::config::VARS_SUFFIX).map_err(|e| format!("{}: {e}", p.display()))?);
        } else {
            files.push(p);
        }
    }
    let mut unformatted = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let formatted = crate::config::fmt::format_source(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        if formatted == text {
            continue;
        }
        unformatted += 1;
        shell.out(&f.display().to_string());
        if diff {
            let d = similar::TextDiff::from_lines(&text, &formatted);
            shell.out(&d.unified_diff().header(&f.display().to_string(), &f.display().to_string()).to_string());
        }
        if !check {
            std::fs::write(&f, formatted).map_err(|e| format!("{}: {e}", f.display()))?;
        }
    }
    Ok(if check && unformatted > 0 { 3 } else { 0 })
}

async fn make_plan(shell: &Shell, ws: &Workspace, flags: &PlanFlags, destroy: bool, operation: &str) -> ops::OpResult<(Planned, ops::LockGuard)> {
    let (guard, warning) = ops::lock(ws, operation)?;
    if let Some(w) = warning {
        shell.warn(&w);
    }
    let planned = ops::plan(ws, &flags.request(destroy)).await?;
    for line in &planned.reconciled {
        shell.warn(&format!("crash recovery: {line}"));
    }
    let mut warnings = planned.loaded.warnings.clone();
    warnings.extend(planned.warnings.clone());
    if !warnings.0.is_empty() {
        shell.diagnostics(&planned.loaded.config.sources, &warnings);
    }
    Ok((planned, guard))
}

async fn plan_cmd(shell: &Shell, ws: &Workspace, flags: &PlanFlags, out: Option<PathBuf>, detailed: bool) -> ops::OpResult<i32> {
    let (planned, _guard) = make_plan(shell, ws, flags, false, "plan").await?;
    if flags.json {
        shell.out(&plan_json(&planned.plan).to_string());
    } else {
        shell.out(&render_plan(shell, &planned.plan));
    }
    if let Some(path) = out {
        ops::save_plan(&planned.plan, &path)?;
        if !flags.json {
            shell.status(&format!("Saved the plan to {}. Apply exactly this plan with: strata apply {}", path.display(), path.display()));
        }
    }
    Ok(if detailed && planned.plan.has_changes() { 2 } else { 0 })
}

/// The plan as JSON, with sensitive values redacted.
fn plan_json(plan: &crate::plan::Plan) -> serde_json::Value {
    let changes: Vec<_> = plan
        .changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "address": c.address,
                "type": c.type_name,
                "provider": c.provider,
                "action": c.action,
                "disruption": c.disruption,
                "attribute_disruptions": c.attribute_disruptions,
                "replace_because": c.replace_because,
                "reason": c.reason,
                "before": c.prior.as_ref().map(|v| v.to_redacted_json()),
                "after": c.planned.as_ref().map(|v| v.to_redacted_json()),
                "after_unknown": c.planned.as_ref().map(unknown_paths),
            })
        })
        .collect();
    let outputs: serde_json::Map<String, serde_json::Value> = plan
        .outputs
        .iter()
        .map(|(k, o)| (k.clone(), serde_json::json!({"sensitive": o.sensitive, "value": o.after.to_redacted_json(), "unknown": o.after.contains_unknown()})))
        .collect();
    serde_json::json!({
        "format_version": plan.format_version,
        "mode": plan.mode,
        "state_serial": plan.serial,
        "resource_changes": changes,
        "output_changes": outputs,
        "drift": plan.drift.iter().map(|d| d.address.clone()).collect::<Vec<_>>(),
        "has_changes": plan.has_changes(),
    })
}

fn unknown_paths(v: &strata_provider::Value) -> Vec<String> {
    v.as_map().map(|m| m.iter().filter(|(_, v)| v.contains_unknown()).map(|(k, _)| k.clone()).collect()).unwrap_or_default()
}

async fn apply_cmd(shell: &Shell, ws: &Workspace, plan_file: Option<PathBuf>, flags: &PlanFlags, opts: &ApplyFlags, destroy: bool) -> ops::OpResult<i32> {
    let (planned, _guard) = match &plan_file {
        Some(path) => {
            let (guard, warning) = ops::lock(ws, "apply")?;
            if let Some(w) = warning {
                shell.warn(&w);
            }
            (ops::load_saved_plan(ws, path).await?, guard)
        }
        None => make_plan(shell, ws, flags, destroy, if destroy { "destroy" } else { "apply" }).await?,
    };
    if !flags.json {
        shell.out(&render_plan(shell, &planned.plan));
    }
    if !planned.plan.has_changes() {
        return Ok(0);
    }
    if plan_file.is_none() && !opts.auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(OpError::Message("apply needs confirmation: run it on a terminal, or pass -auto-approve".into()));
        }
        shell.status("Do you want to perform these actions? Only 'yes' will be accepted.");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim() != "yes" {
            shell.status("Apply cancelled.");
            return Ok(1);
        }
    }
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
    let printer = tokio::spawn(output::run_progress(mode, rx));
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
    Ok(summarize(shell, &report, destroy, flags.json))
}

/// First Ctrl-C: stop starting work. Second: say what is still in flight.
fn spawn_interrupt_handler(
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

fn summarize(shell: &Shell, report: &ApplyReport, destroy: bool, json: bool) -> i32 {
    if json {
        shell.out(
            &serde_json::json!({
                "type": "summary",
                "succeeded": report.succeeded(),
                "completed": report.completed.len(),
                "failed": report.failed,
                "rolled_back": report.rolled_back,
                "not_rolled_back": report.not_rolled_back,
                "interrupted": report.interrupted,
            })
            .to_string(),
        );
    }
    if report.interrupted {
        shell.error(&format!(
            "apply interrupted after {} operation(s); what finished is recorded in state. Run apply again to continue.",
            report.completed.len()
        ));
        return 130;
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

fn show(shell: &Shell, ws: &Workspace, plan_file: Option<PathBuf>, json: bool) -> ops::OpResult<i32> {
    if let Some(path) = plan_file {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plan: crate::plan::Plan = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        shell.out(&if json { plan_json(&plan).to_string() } else { render_plan(shell, &plan) });
        return Ok(0);
    }
    let snap = ws.store.snapshot()?;
    if json {
        let resources: Vec<_> = snap
            .instances
            .values()
            .map(|r| serde_json::json!({"address": r.address, "id": r.id, "type": r.type_name, "provider": r.provider, "values": r.attributes.to_redacted_json()}))
            .collect();
        let outputs: serde_json::Map<_, _> = snap.outputs.iter().map(|(k, v)| (k.clone(), v.to_redacted_json())).collect();
        shell.out(&serde_json::json!({"serial": snap.meta.serial, "lineage": snap.meta.lineage, "resources": resources, "outputs": outputs}).to_string());
        return Ok(0);
    }
    if snap.instances.is_empty() {
        shell.out("The state is empty.");
    }
    for r in snap.instances.values() {
        shell.out(&describe_instance(r));
    }
    Ok(0)
}

fn describe_instance(r: &strata_state::InstanceRecord) -> String {
    let mut text = format!("# {}:\nresource {:?} {{  # id {}\n", r.address, r.type_name, r.id);
    if let Some(m) = r.attributes.as_map() {
        let width = m.keys().map(|k| k.len()).max().unwrap_or(0);
        for (k, v) in m {
            if !v.is_null() {
                text.push_str(&format!("    {k:<width$} = {}\n", output::render_value(v)));
            }
        }
    }
    text.push('}');
    text
}

fn output_cmd(shell: &Shell, ws: &Workspace, name: Option<String>, json: bool, raw: bool) -> ops::OpResult<i32> {
    let snap = ws.store.snapshot()?;
    match name {
        Some(name) => {
            let v = snap.outputs.get(&name).ok_or_else(|| format!("no output named {name:?}"))?;
            if raw {
                // -raw prints the value itself, as Terraform does, even if sensitive.
                let s = v.unmarked().to_template_string().ok_or_else(|| "-raw works only with string, number and bool outputs".to_owned())?;
                shell.raw(&s);
            } else if json {
                shell.out(&v.to_redacted_json().to_string());
            } else {
                shell.out(&output::render_value(v));
            }
        }
        None if json => {
            let all: serde_json::Map<_, _> = snap
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!({"sensitive": v.is_sensitive(), "value": v.to_redacted_json()})))
                .collect();
            shell.out(&serde_json::Value::Object(all).to_string());
        }
        None => {
            for (k, v) in &snap.outputs {
                shell.out(&format!("{k} = {}", output::render_value(v)));
            }
        }
    }
    Ok(0)
}

fn state_cmd(shell: &Shell, ws: &Workspace, cmd: StateCommand) -> ops::OpResult<i32> {
    match cmd {
        StateCommand::List => {
            for address in ws.store.snapshot()?.instances.keys() {
                shell.out(address);
            }
        }
        StateCommand::Show { address } => {
            let snap = ws.store.snapshot()?;
            let r = snap.instances.get(&address).ok_or_else(|| format!("{address} is not in state"))?;
            shell.out(&describe_instance(r));
        }
        StateCommand::Rm { addresses } => {
            let (_guard, _) = ops::lock(ws, "state rm")?;
            let targets = addresses.iter().map(|a| a.parse::<Target>()).collect::<Result<Vec<_>, _>>()?;
            for a in ops::state_rm(ws, &targets)? {
                shell.status(&format!("Removed {a} from state (the object itself was not destroyed)"));
            }
        }
        StateCommand::Mv { from, to } => {
            let (_guard, _) = ops::lock(ws, "state mv")?;
            ops::state_mv(ws, &from, &to)?;
            shell.status(&format!("Moved {from} to {to}"));
        }
        StateCommand::History => {
            for v in ws.store.history()? {
                shell.out(&format!("{:>5}  {}  {:<20} {:<10} {} instance(s)", v.serial, v.created_at, v.operation, v.user, v.instances));
            }
        }
    }
    Ok(0)
}

async fn import(shell: &Shell, ws: &Workspace, address: &str, id: &str, vars: &[VarArg]) -> ops::OpResult<i32> {
    let (_guard, _) = ops::lock(ws, "import")?;
    let record = ops::import(ws, vars, address, id).await?;
    shell.status(&format!("Imported {address} (identity {}). Run strata plan to compare it with the configuration.", record.id));
    Ok(0)
}

fn console(shell: &Shell, ws: &Workspace, vars: &[VarArg]) -> ops::OpResult<i32> {
    let console = ops::Console::open(ws, vars)?;
    let interactive = std::io::stdin().is_terminal();
    let mut failed = false;
    loop {
        if interactive {
            shell.raw("> ");
        }
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).map_err(|e| format!("reading input: {e}"))? == 0 {
            break;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "exit" {
            break;
        }
        match console.eval(line) {
            // to_hcl redacts secrets and unknowns wherever they sit.
            Ok(v) => shell.out(&v.to_hcl()),
            Err(e) => {
                failed = true;
                shell.error(&e);
            }
        }
    }
    Ok(if failed && !interactive { 1 } else { 0 })
}

async fn graph(shell: &Shell, ws: &Workspace, flags: &PlanFlags) -> ops::OpResult<i32> {
    let mut flags = flags.clone();
    flags.refresh = false;
    let (planned, _guard) = make_plan(shell, ws, &flags, false, "graph").await?;
    let nodes: Vec<(String, Vec<String>)> = planned.plan.changes.iter().map(|c| (c.address.clone(), c.dependencies.clone())).collect();
    shell.out(&crate::graph::to_dot(&nodes));
    Ok(0)
}
