//! The command line: flag parsing and thin wrappers over [`crate::ops`].
//! Each command renders through [`Shell`] and returns an exit code.

use crate::addr::Target;
use crate::backend;
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

mod apply;
mod ci_flags;
mod console;
mod fmt;
mod force_unlock;
mod graph;
mod import;
mod init;
mod output_cmd;
mod parse;
mod plan;
mod show;
mod state;
mod validate;
mod workspace;

use apply::*;
pub use ci_flags::{parse_duration, LockFlags, UiFlags};
use ci_flags::{take_lock, Session};
use console::*;
use fmt::*;
use force_unlock::*;
use graph::*;
use import::*;
use init::*;
use output_cmd::*;
pub use parse::parse;
use parse::var_pair;
use plan::*;
use show::*;
use state::*;
use validate::*;
use workspace::*;

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
    #[command(
        after_help = "Examples:\n  strata init\n  strata init -backend-config=schema_name=prod\n  strata init -migrate-state"
    )]
    Init {
        #[command(flatten)]
        ui: UiFlags,
        #[command(flatten)]
        lock: LockFlags,
        /// A backend setting (repeatable), e.g. `conn_str=host=db dbname=strata`.
        /// Saved in .strata/ for later commands, never with a password.
        #[arg(long = "backend-config", value_name = "KEY=VALUE")]
        backend_config: Vec<String>,
        /// Move the state, with its history, from the backend used before.
        #[arg(long = "migrate-state")]
        migrate_state: bool,
    },
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
        #[command(flatten)]
        ui: UiFlags,
        #[command(flatten)]
        lock: LockFlags,
        /// Provider calls in flight at once while planning.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
        parallelism: u16,
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
        #[command(flatten)]
        ui: UiFlags,
        #[command(flatten)]
        lock: LockFlags,
    },
    /// Destroy everything this configuration manages.
    #[command(after_help = "Example:\n  strata destroy -auto-approve")]
    Destroy {
        #[command(flatten)]
        plan: PlanFlags,
        #[command(flatten)]
        apply: ApplyFlags,
        #[command(flatten)]
        ui: UiFlags,
        #[command(flatten)]
        lock: LockFlags,
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
        #[command(flatten)]
        ui: UiFlags,
        #[command(flatten)]
        lock: LockFlags,
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
    /// Manage workspaces: separate states of one configuration.
    #[command(subcommand, after_help = "Examples:\n  strata workspace new prod\n  strata workspace select -or-create dev\n  STRATA_WORKSPACE=prod strata plan")]
    Workspace(WorkspaceCommand),
    /// Break a state lock by its ID.
    #[command(name = "force-unlock", after_help = "Examples:\n  strata force-unlock 6f0c...\n  strata force-unlock -force 6f0c...")]
    ForceUnlock {
        lock_id: String,
        /// Do not ask for confirmation, even if the holder may still run.
        #[arg(long)]
        force: bool,
    },
    /// Print the version.
    #[command(after_help = "Examples:\n  strata version\n  strata version -json")]
    Version {
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions.
    #[command(after_help = "Example:\n  strata completions bash > /etc/bash_completion.d/strata")]
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// List managed instances, or those in the given resources and modules.
    #[command(after_help = "Examples:\n  strata state list\n  strata state list module.net testing_object.disk")]
    List { addresses: Vec<Target> },
    /// Show one instance.
    Show { address: String },
    /// Forget instances without destroying them.
    Rm {
        addresses: Vec<String>,
        #[command(flatten)]
        lock: LockFlags,
    },
    /// Rename an instance, a whole resource or a whole module in state.
    #[command(after_help = "Examples:\n  strata state mv testing_object.a testing_object.b\n  strata state mv module.old module.new")]
    Mv {
        from: String,
        to: String,
        #[command(flatten)]
        lock: LockFlags,
    },
    /// List the kept state versions.
    History,
    /// Print the whole state as JSON (values included: keep it private).
    Pull,
    /// Replace the state with one written by `state pull` (`-` reads stdin).
    #[command(after_help = "Examples:\n  strata state pull > s.json\n  strata state push s.json\n  strata state push -force other.json")]
    Push {
        file: PathBuf,
        /// Replace it even if the lineage differs or the serial is older.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        lock: LockFlags,
    },
    /// Replace a damaged state with the backup written before the last change.
    #[command(name = "restore-backup")]
    RestoreBackup {
        #[command(flatten)]
        lock: LockFlags,
    },
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
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub refresh: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// `-var` and `-var-file` in the order the command line gave them (later
    /// ones win); filled by [`parse`].
    #[arg(skip)]
    pub ordered_vars: Vec<VarArg>,
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
        let vars = if self.ordered_vars.len() == self.vars.len() + self.var_files.len() {
            self.ordered_vars.clone()
        } else {
            let mut vars: Vec<VarArg> = self.var_files.iter().cloned().map(VarArg::File).collect();
            vars.extend(self.vars.iter().map(|v| var_pair(v)));
            vars
        };
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
            parallelism: 10,
        }
    }

    /// The planning flags given, which a saved plan has already decided.
    fn planning_flags_given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        for (set, flag) in [
            (!self.target.is_empty(), "-target"),
            (!self.exclude.is_empty(), "-exclude"),
            (!self.replace.is_empty(), "-replace"),
            (self.destroy, "-destroy"),
            (self.refresh_only, "-refresh-only"),
            (!self.refresh, "-refresh=false"),
        ] {
            if set {
                given.push(flag);
            }
        }
        given
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
        || matches!(&cli.command, Command::Validate { json: true } | Command::Show { json: true, .. } | Command::Output { json: true, .. } | Command::Version { json: true });
    // plan/apply/destroy -json speak Terraform's machine-readable UI.
    let ui = matches!(&cli.command, Command::Plan { plan, .. } | Command::Apply { plan, .. } | Command::Destroy { plan, .. } if plan.json);
    let shell = Shell::new(cli.no_color, json).with_ui(ui);
    // Before anything else, as Terraform does, so that every relative path
    // (-out, -var-file, plan files) is inside the directory.
    if let Some(d) = &cli.chdir {
        if let Err(e) = std::env::set_current_dir(d) {
            shell.error(&format!("-chdir={}: {e}", d.display()));
            return 1;
        }
    }
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let reads_only = matches!(
        &cli.command,
        Command::Show { plan_file: None, .. }
            | Command::Output { .. }
            | Command::Console { .. }
            | Command::State(StateCommand::List { .. } | StateCommand::Show { .. } | StateCommand::History | StateCommand::Pull)
            | Command::Workspace(_)
    );
    // Commands that take the lock and plan, but write (almost) nothing.
    let reads_mostly = matches!(&cli.command, Command::Plan { .. } | Command::Validate { .. } | Command::Graph { .. });
    // fmt works on files alone: opening the workspace would parse them all.
    let command = match cli.command {
        Command::Fmt { check, diff, paths } => {
            return fmt(&shell, &dir, check, diff, paths).unwrap_or_else(|e| {
                report_error(&shell, e);
                1
            })
        }
        other => other,
    };
    let opened = if reads_only {
        Workspace::open_read_only(&dir)
    } else if reads_mostly {
        Workspace::open_read_mostly(&dir)
    } else {
        Workspace::open(&dir)
    };
    let ws = match opened {
        Ok(ws) => ws,
        Err(e) => {
            report_error(&shell, e);
            return 1;
        }
    };
    let result = match command {
        Command::Init { ui: _, lock, backend_config, migrate_state } => init(&shell, &dir, &lock, &backend_config, migrate_state),
        Command::Validate { json } => validate(&shell, &ws, json),
        // Handled before the workspace is opened; kept here so the match
        // stays exhaustive without a panic.
        Command::Fmt { check, diff, paths } => fmt(&shell, &dir, check, diff, paths),
        Command::Plan { plan, ui, lock, parallelism, out, detailed_exitcode } => {
            plan_cmd(&shell, &ws, &Session { ui, lock }, &plan, usize::from(parallelism), out, detailed_exitcode).await
        }
        Command::Apply { plan_file, plan, apply, ui, lock } => apply_cmd(&shell, &ws, &Session { ui, lock }, plan_file, &plan, &apply, false).await,
        Command::Destroy { plan, apply, ui, lock } => apply_cmd(&shell, &ws, &Session { ui, lock }, None, &plan, &apply, true).await,
        Command::Show { plan_file, json } => show(&shell, &ws, plan_file, json),
        Command::Output { name, json, raw } => output_cmd(&shell, &ws, name, json, raw),
        Command::State(cmd) => state_cmd(&shell, &ws, cmd),
        Command::Import { address, id, vars, ui: _, lock } => import(&shell, &ws, &lock, &address, &id, &vars).await,
        Command::Graph { plan } => graph(&shell, &ws, &plan).await,
        Command::Console { vars } => console(&shell, &ws, &vars),
        Command::Workspace(cmd) => workspace_cmd(&shell, &ws, cmd),
        Command::ForceUnlock { lock_id, force } => force_unlock(&shell, &ws, &lock_id, force),
        Command::Version { json } => {
            if json {
                shell.out(&output::tf_json::version_document(ws.schemas().0.into_keys()).to_string());
            } else {
                shell.out(&format!("strata {}", env!("CARGO_PKG_VERSION")));
            }
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
