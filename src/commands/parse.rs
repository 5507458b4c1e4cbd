//! Parsing the command line: Terraform's single-dash flags, and the order
//! of `-var` and `-var-file`, which clap keeps in two lists.

use super::*;
use clap::{ArgMatches, FromArgMatches};

impl Command {
    fn plan_flags_mut(&mut self) -> Option<&mut PlanFlags> {
        match self {
            Command::Plan { plan, .. } | Command::Apply { plan, .. } | Command::Destroy { plan, .. } | Command::Graph { plan } => Some(plan),
            _ => None,
        }
    }
}

/// Parses the command line (Terraform's single-dash flags included) and
/// records the order of `-var` and `-var-file`, which clap keeps apart.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, clap::Error> {
    let matches = Cli::command().try_get_matches_from(normalize_args(args))?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Some((_, sub)), Some(flags)) = (matches.subcommand(), cli.command.plan_flags_mut()) {
        flags.ordered_vars = ordered_vars(sub, flags);
    }
    Ok(cli)
}

fn ordered_vars(matches: &ArgMatches, flags: &PlanFlags) -> Vec<VarArg> {
    let mut items: Vec<(usize, VarArg)> = Vec::new();
    if let Some(indices) = matches.indices_of("vars") {
        items.extend(indices.zip(&flags.vars).map(|(i, v)| (i, var_pair(v))));
    }
    if let Some(indices) = matches.indices_of("var_files") {
        items.extend(indices.zip(&flags.var_files).map(|(i, p)| (i, VarArg::File(p.clone()))));
    }
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().map(|(_, v)| v).collect()
}

pub(super) fn var_pair(text: &str) -> VarArg {
    text.parse().unwrap_or_else(|_| VarArg::Pair(text.to_owned(), String::new()))
}
