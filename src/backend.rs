//! Backend selection: the one place in the engine that names the state
//! backends. Everything else sees only `strata_state::StateStore`.
//!
//! A working directory's backend comes from `terraform { backend "NAME" {
//! ... } }` (default `local`), its settings from that block overlaid by the
//! ones `strata init -backend-config=KEY=VALUE` saved in
//! `.strata/backend.json` (0600, never with a password), and, for `pg`, a
//! connection string from `STRATA_PG_CONN_STR` when neither gives one, so
//! credentials stay out of git.

use crate::config::Backend as BackendBlock;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_state::{
    Access, ApplyLog, Backend, BrokenLock, Encryption, Intent, LocalBackend, LockInfo, Result, Snapshot, StateError, StateStore, VersionInfo, Write,
};

/// The backends this build knows.
pub const KNOWN: [&str; 2] = ["local", "pg"];

/// Where `strata init` keeps the backend settings given on its command line.
const SAVED_FILE: &str = "backend.json";

/// The environment variable with the pg backend's connection string.
pub const PG_CONN_ENV: &str = "STRATA_PG_CONN_STR";

/// A backend and its settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Choice {
    pub name: String,
    pub settings: BTreeMap<String, String>,
}

impl Choice {
    /// The local default.
    pub fn local() -> Choice {
        Choice { name: "local".into(), settings: BTreeMap::new() }
    }

    /// The backend the configuration names, with the settings `strata
    /// init` saved for it on top.
    pub fn for_dir(dir: &Path, block: Option<&BackendBlock>) -> Choice {
        let mut choice = match block {
            Some(b) => Choice { name: b.name.clone(), settings: b.settings.clone() },
            None => Choice::local(),
        };
        if let Some(saved) = saved(dir).filter(|s| s.name == choice.name) {
            choice.settings.extend(saved.settings);
        }
        choice
    }

    /// The same backend with no credential in its settings: what is saved,
    /// and what two choices are compared by.
    pub fn without_password(&self) -> Choice {
        Choice { name: self.name.clone(), settings: self.settings.iter().map(|(k, v)| (k.clone(), strip_password(v))).collect() }
    }

    /// Says which state this is, without any credential.
    pub fn describe(&self, dir: &Path) -> String {
        match self.name.as_str() {
            "pg" => format!(
                "PostgreSQL (schema {})",
                self.settings.get("schema_name").map(String::as_str).unwrap_or(strata_state_pg::DEFAULT_SCHEMA)
            ),
            _ => format!("the local store in {}", local_dir(dir, self).display()),
        }
    }
}

fn local_dir(dir: &Path, choice: &Choice) -> PathBuf {
    match choice.settings.get("path") {
        Some(path) => dir.join(path),
        None => dir.join(".strata"),
    }
}

/// What `strata init` saved: the `-backend-config` settings of a backend,
/// and the whole backend it initialized (so that the next init sees a
/// change of backend and can migrate the state).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub name: String,
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub last: Option<Choice>,
}

/// The settings `strata init` saved, if any.
pub fn saved(dir: &Path) -> Option<Saved> {
    let bytes = std::fs::read(dir.join(".strata").join(SAVED_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Saves `-backend-config` settings for later commands, with any password
/// taken out of a connection string. Returns the warnings to show.
pub fn save(dir: &Path, saved: &Saved) -> std::result::Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let mut kept = saved.clone();
    kept.last = kept.last.map(|c| c.without_password());
    for (key, value) in kept.settings.iter_mut() {
        let stripped = strip_password(value);
        if stripped != *value {
            warnings.push(format!(
                "the password in backend setting {key} was not saved (state files hold no credentials); \
                 give it to each command with PGPASSWORD, or the whole connection string with {PG_CONN_ENV}"
            ));
            *value = stripped;
        }
    }
    let state_dir = dir.join(".strata");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&state_dir)
        .map_err(|e| format!("create {}: {e}", state_dir.display()))?;
    let bytes = serde_json::to_vec_pretty(&kept).map_err(|e| e.to_string())?;
    crate::private_file::write_private(&state_dir.join(SAVED_FILE), &bytes)?;
    Ok(warnings)
}

use std::os::unix::fs::DirBuilderExt as _;

/// A connection string without its password (key/value or URL form).
pub fn strip_password(conn: &str) -> String {
    let key_value = regex::Regex::new(r"(?i)(?:^|\s+)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)").expect("valid regex");
    let url_user = regex::Regex::new(r"^(postgres(?:ql)?://[^:/@?]*):[^@/?]*@").expect("valid regex");
    let url_param = regex::Regex::new(r"([?&])password=[^&]*&?").expect("valid regex");
    let s = key_value.replace_all(conn, "");
    let s = url_user.replace(&s, "$1@");
    url_param.replace_all(&s, "$1").trim().trim_end_matches(['?', '&']).to_owned()
}

/// Opens the backend `choice` describes (connecting on first use).
pub fn open(dir: &Path, choice: &Choice, encryption: Arc<Encryption>) -> Arc<dyn Backend> {
    match open_backend(dir, choice, encryption) {
        Ok(backend) => backend,
        Err(why) => Arc::new(Unavailable(why)),
    }
}

/// One workspace's store of the backend `choice` describes, its records
/// sealed and opened by `encryption`.
pub fn open_store(dir: &Path, choice: &Choice, workspace: &str, access: Access, encryption: Arc<Encryption>) -> Result<Arc<dyn StateStore>> {
    open(dir, choice, encryption).open(workspace, access)
}

fn open_backend(dir: &Path, choice: &Choice, encryption: Arc<Encryption>) -> std::result::Result<Arc<dyn Backend>, String> {
    match choice.name.as_str() {
        "local" => Ok(Arc::new(LocalBackend::new(&local_dir(dir, choice)).with_encryption(encryption))),
        "pg" => {
            let conn_str = match choice.settings.get("conn_str").filter(|s| !s.is_empty()) {
                Some(s) => s.clone(),
                None => std::env::var(PG_CONN_ENV).map_err(|_| {
                    format!(
                        "the pg backend needs a connection string: conn_str in the backend block, \
                         `strata init -backend-config=conn_str=...`, or {PG_CONN_ENV} in the environment"
                    )
                })?,
            };
            let schema = choice.settings.get("schema_name").cloned().unwrap_or_else(|| strata_state_pg::DEFAULT_SCHEMA.into());
            Ok(Arc::new(strata_state_pg::PgBackend::new(&conn_str, &schema).map_err(|e| e.to_string())?.with_encryption(encryption)))
        }
        other => Err(format!("unknown backend {other:?}; the backends are {}", KNOWN.join(", "))),
    }
}

/// A backend that could not be opened (no connection string, say): every
/// use says why. The error waits for a use so that commands that need no
/// state (`fmt`, `validate`) work without it.
struct Unavailable(String);

impl Backend for Unavailable {
    fn kind(&self) -> &'static str {
        "unavailable"
    }
    fn workspaces(&self) -> Result<Vec<String>> {
        self.err()
    }
    fn open(&self, _: &str, _: Access) -> Result<Arc<dyn StateStore>> {
        Ok(Arc::new(Unavailable(self.0.clone())))
    }
    fn create_workspace(&self, _: &str) -> Result<()> {
        self.err()
    }
    fn delete_workspace(&self, _: &str) -> Result<()> {
        self.err()
    }
}

impl Unavailable {
    fn err<T>(&self) -> Result<T> {
        Err(StateError::Database(self.0.clone()))
    }
}

impl StateStore for Unavailable {
    fn lock(&self, _: &LockInfo) -> Result<Option<LockInfo>> {
        self.err()
    }
    fn unlock(&self, _: &LockInfo) -> Result<()> {
        Ok(())
    }
    fn force_unlock(&self, _: &str) -> Result<BrokenLock> {
        self.err()
    }
    fn lock_holder(&self) -> Result<Option<LockInfo>> {
        self.err()
    }
    fn snapshot(&self) -> Result<Snapshot> {
        self.err()
    }
    fn commit(&self, _: Vec<Write>) -> Result<()> {
        self.err()
    }
    fn next_seq(&self, _: u64) -> Result<u64> {
        self.err()
    }
    fn pending_intents(&self) -> Result<Vec<(u64, Intent)>> {
        self.err()
    }
    fn apply_log(&self) -> Result<Option<ApplyLog>> {
        self.err()
    }
    fn begin_version(&self, _: &str, _: &str) -> Result<u64> {
        self.err()
    }
    fn history(&self) -> Result<Vec<VersionInfo>> {
        self.err()
    }
    fn version(&self, _: u64) -> Result<Snapshot> {
        self.err()
    }
}

#[cfg(test)]
mod tests {
    use super::strip_password;

    #[test]
    fn passwords_are_taken_out_of_both_connection_string_forms() {
        assert_eq!(strip_password("host=db password=s3cret user=x"), "host=db user=x");
        assert_eq!(strip_password("host=db password='a b\\' c' user=x"), "host=db user=x");
        assert_eq!(strip_password("postgresql://me:s3cret@db:5432/strata"), "postgresql://me@db:5432/strata");
        assert_eq!(strip_password("postgres://db/strata?password=s3cret&sslmode=require"), "postgres://db/strata?sslmode=require");
        assert_eq!(strip_password("host=db user=x"), "host=db user=x");
    }
}
