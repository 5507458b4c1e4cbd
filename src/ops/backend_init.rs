//! `strata init`'s backend part: saving `-backend-config` settings, noticing
//! that the backend changed, and moving the state with its whole history
//! from the old backend to the new one (`-migrate-state`).

use super::*;
use crate::backend::{self, Choice, Saved};

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
    // The selected workspace moves (as `terraform init -migrate-state` of one).
    let workspace = selected_workspace(dir)?;

    let mut migrated = None;
    if previous.without_password() != new.without_password() {
        // Looked at read-only: an absent local state is not created here.
        let state = backend::open_store(dir, &previous, &workspace, Access::ReadOnly)?.snapshot()?;
        if state.meta.serial > 0 || !state.instances.is_empty() {
            if !migrate {
                return Err(OpError::Message(format!(
                    "the backend changed from {} to {}, and the old one holds state version {} ({} instances).\n\
                     Run `strata init -migrate-state` to move the state with its history to the new backend.",
                    previous.describe(dir),
                    new.describe(dir),
                    state.meta.serial,
                    state.instances.len()
                )));
            }
            let from = backend::open_store(dir, &previous, &workspace, Access::ReadWrite)?;
            let to = backend::open_store(dir, &new, &workspace, Access::ReadWrite)?;
            migrated = Some(migrate_state(from.as_ref(), to.as_ref(), &previous.describe(dir), &new.describe(dir))?);
        }
    }
    let warnings = backend::save(dir, &Saved { name, settings, last: Some(new.clone()) })?;
    Ok(BackendInit { describe: new.describe(dir), migrated, warnings })
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
