//! `strata init`: set up the state backend (saving `-backend-config`
//! settings, migrating the state when the backend changed) and check the
//! configuration.

use super::*;
use std::collections::BTreeMap;
use std::path::Path;

pub(super) fn init(shell: &Shell, dir: &Path, lock: &LockFlags, backend_config: &[String], migrate: bool) -> ops::OpResult<i32> {
    let mut settings = BTreeMap::new();
    for pair in backend_config {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(OpError::Message(format!("-backend-config wants KEY=VALUE, got {:?}", backend::strip_password(pair))));
        };
        settings.insert(key.trim().to_owned(), value.to_owned());
    }
    let backend = ops::init_backend(dir, settings, migrate)?;
    for warning in &backend.warnings {
        shell.warn(warning);
    }
    if let Some(migrated) = &backend.migrated {
        shell.status(&format!("Migrated: {migrated}."));
    }
    let ws = Workspace::open(dir)?;
    // Nothing to change under the lock yet; taking it checks nobody else
    // holds it, as Terraform's init does with -lock and -lock-timeout.
    drop(take_lock(shell, &ws, "init", lock)?);
    let diags = ops::validate(&ws)?;
    let snap = ws.store.snapshot()?;
    if !diags.0.is_empty() {
        shell.diagnostics(&Default::default(), &diags);
    }
    for (address, dir) in ops::modules(&ws) {
        shell.status(&format!("- {address} from {}", dir.display()));
    }
    shell.status(&format!(
        "Strata is initialized in {} with {} (state version {}, lineage {}).\nKeep .strata/ out of git: it is this directory's state.",
        ws.dir.display(),
        backend.describe,
        snap.meta.serial,
        snap.meta.lineage
    ));
    Ok(0)
}
