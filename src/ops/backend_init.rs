//! `strata init`'s backend part: saving `-backend-config` settings, noticing
//! that the backend changed, and moving the state with its whole history
//! from the old backend to the new one (`-migrate-state`).

use super::*;
use crate::backend::{self, Choice, Saved};
use strata_state::Encryption;

/// What `init` did to the backend.
pub struct BackendInit {
    /// Which state the directory now uses (no credentials).
    pub describe: String,
    /// What a migration moved, if one ran.
    pub migrated: Option<String>,
    pub warnings: Vec<String>,
}

/// Resolves the backend for `dir` with the command line's settings, saves
/// them, and migrates the state when the backend changed.
pub fn init_backend(dir: &Path, cli_settings: BTreeMap<String, String>, migrate: bool) -> OpResult<BackendInit> {
    let (config, _) = Config::load(dir);
    let saved = backend::saved(dir);
    let name = config.backend.as_ref().map(|b| b.name.clone()).unwrap_or_else(|| "local".into());
    let mut settings = saved.as_ref().filter(|s| s.name == name).map(|s| s.settings.clone()).unwrap_or_default();
    settings.extend(cli_settings);
    let mut new = Choice { name: name.clone(), settings: config.backend.as_ref().map(|b| b.settings.clone()).unwrap_or_default() };
    new.settings.extend(settings.clone());
    let previous = saved.as_ref().and_then(|s| s.last.clone()).unwrap_or_else(Choice::local);
    // One configuration, one `encryption` block: the old backend's records
    // are opened and the new backend's sealed with the same cipher (its
    // fallback reads what an older key, or no key, wrote).
    let cipher = super::encryption::ciphers(&config)?.state;

    let mut migrated = None;
    if previous.without_password() != new.without_password() {
        migrated = migrate_workspaces(dir, &previous, &new, &cipher, migrate)?;
    }
    let warnings = backend::save(dir, &Saved { name, settings, last: Some(new.clone()) })?;
    Ok(BackendInit { describe: new.describe(dir), migrated, warnings })
}

/// Moves every workspace of the old backend that holds a state to the new
/// one, as `terraform init -migrate-state` does between two backends with
/// workspaces (`-migrate-state` is the consent Terraform would ask for).
/// Every target workspace is checked to be empty before the first moves;
/// empty workspaces are created on the new backend so that none is lost.
fn migrate_workspaces(dir: &Path, previous: &Choice, new: &Choice, cipher: &Arc<Encryption>, migrate: bool) -> OpResult<Option<String>> {
    // Looked at read-only: an absent local state is not created here.
    let old_backend = backend::open(dir, previous, cipher.clone());
    let mut holding = Vec::new();
    let mut empty = Vec::new();
    for workspace in old_backend.workspaces()? {
        let state = old_backend.open(&workspace, Access::ReadOnly)?.snapshot()?;
        if state.meta.serial > 0 || !state.instances.is_empty() {
            holding.push((workspace, state.meta.serial, state.instances.len()));
        } else {
            empty.push(workspace);
        }
    }
    if holding.is_empty() {
        return Ok(None);
    }
    let describe = |list: &[(String, u64, usize)]| {
        list.iter().map(|(w, serial, n)| format!("workspace {w:?} at version {serial} ({n} instances)")).collect::<Vec<_>>().join(", ")
    };
    if !migrate {
        return Err(OpError::Message(format!(
            "the backend changed from {} to {}, and the old one holds state: {}.\n\
             Run `strata init -migrate-state` to move every workspace's state with its history to the new backend.",
            previous.describe(dir),
            new.describe(dir),
            describe(&holding)
        )));
    }
    let new_backend = backend::open(dir, new, cipher.clone());
    for (workspace, ..) in &holding {
        let there = new_backend.open(workspace, Access::ReadOnly)?.snapshot()?;
        if there.meta.serial > 0 || !there.instances.is_empty() {
            return Err(OpError::Message(format!(
                "workspace {workspace:?} of {} already holds a state (version {}, {} instances); nothing was migrated. \
                 Migration only fills empty workspaces",
                new.describe(dir),
                there.meta.serial,
                there.instances.len()
            )));
        }
    }
    let mut moved = Vec::new();
    for (workspace, ..) in &holding {
        let from = old_backend.open(workspace, Access::ReadWrite)?;
        let to = new_backend.open(workspace, Access::ReadWrite)?;
        let from_name = format!("workspace {workspace:?} of {}", previous.describe(dir));
        let to_name = new.describe(dir);
        match migrate_state(from.as_ref(), to.as_ref(), &from_name, &to_name) {
            Ok(done) => moved.push(done),
            Err(OpError::Message(why)) if !moved.is_empty() => {
                return Err(OpError::Message(format!("{why}\n(already migrated: {})", moved.join("; "))))
            }
            Err(e) => return Err(e),
        }
    }
    for workspace in empty.iter().filter(|w| w.as_str() != strata_state::DEFAULT_WORKSPACE) {
        match new_backend.create_workspace(workspace) {
            Ok(()) | Err(strata_state::StateError::WorkspaceExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(moved.join(";\n")))
}

/// Copies every version of `from` into the empty `to`, checks the copy, and
/// retires `from`. Both are locked throughout.
pub fn migrate_state(from: &dyn StateStore, to: &dyn StateStore, from_name: &str, to_name: &str) -> OpResult<String> {
    let info = LockInfo::for_this_process("init -migrate-state");
    from.lock(&info)?;
    let result = (|| {
        to.lock(&info)?;
        let result = copy_versions(from, to, from_name, to_name);
        let _ = to.unlock(&info);
        result
    })();
    let _ = from.unlock(&info);
    result
}

fn copy_versions(from: &dyn StateStore, to: &dyn StateStore, from_name: &str, to_name: &str) -> OpResult<String> {
    if !from.pending_intents()?.is_empty() || from.apply_log()?.is_some() {
        return Err(OpError::Message(format!(
            "{from_name} holds an interrupted apply; run `strata plan` (which recovers it) before migrating"
        )));
    }
    let current = from.snapshot()?;
    let mut history = from.history()?;
    if history.last().map(|v| v.serial) != Some(current.meta.serial) {
        // A state written before versions were kept: the current one only.
        history.push(strata_state::VersionInfo {
            serial: current.meta.serial,
            created_at: 0,
            operation: "migrated".into(),
            user: String::new(),
            instances: current.instances.len(),
        });
    }
    let mut versions = Vec::with_capacity(history.len());
    for info in history {
        let snapshot = if info.serial == current.meta.serial { current.clone() } else { from.version(info.serial)? };
        versions.push((info, snapshot));
    }
    to.import_versions(&versions)?;
    // Check the copy before the original goes.
    let copied = to.snapshot()?;
    let copied_history: Vec<u64> = to.history()?.iter().map(|v| v.serial).collect();
    let wanted_history: Vec<u64> = versions.iter().map(|(v, _)| v.serial).collect();
    if copied.instances != current.instances || copied.meta != current.meta || copied_history != wanted_history {
        return Err(OpError::Message(format!(
            "the state copied to {to_name} does not read back as it was written; {from_name} was left as it is"
        )));
    }
    let retired = from.retire()?;
    Ok(format!(
        "moved state version {} ({} instances, {} versions of history, lineage {}) from {from_name} to {to_name}; {retired}",
        current.meta.serial,
        current.instances.len(),
        versions.len(),
        current.meta.lineage
    ))
}
