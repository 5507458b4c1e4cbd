//! Client-side encryption on the PostgreSQL backend, through the CLI
//! against the real server (`scripts/postgres-up.sh`): a `pg_dump` of the
//! database holds neither a marker secret nor the passphrases (not in clear,
//! hex or base64), during an interrupted apply too (intents, apply record
//! and undo steps at rest); a wrong or missing key is a clear error that
//! changes no row; a fallback key rotates every payload of every version;
//! and `init -migrate-state` moves an encrypted state with all its
//! workspaces from the local store to PostgreSQL and back.

mod common;
#[path = "common/pg.rs"]
mod pg_server;
#[path = "common/encrypted.rs"]
mod encrypted;

use base64::Engine as _;
use common::*;
use encrypted::*;
use pg_server::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WRONG: &str = "a wrong passphrase, long enough";

/// Four objects that carry the secret, on the pg backend of `schema` (or
/// the local one when `schema` is `None`), with `encryption` in the
/// terraform block.
fn config(schema: Option<&str>, encryption: &str) -> String {
    let backend = match schema {
        Some(schema) => format!("backend \"pg\" {{\n    schema_name = \"{schema}\"\n  }}"),
        None => "backend \"local\" {}".into(),
    };
    format!(
        r#"
terraform {{
  {backend}
{encryption}
}}
{KEY_VARIABLES}
variable "gen" {{
  type    = number
  default = 0
}}
variable "latency" {{
  type    = number
  default = 0
}}
provider "testing" {{
  # One world per workspace: each manages objects of its own.
  dir        = terraform.workspace == "default" ? "${{path.root}}/world" : "${{path.root}}/world-${{terraform.workspace}}"
  latency_ms = var.latency
}}
resource "testing_object" "disk" {{
  count  = 4
  name   = "disk-${{count.index}}"
  value  = "gen-${{var.gen}}"
  secret = var.pw
}}
output "pw" {{
  value     = var.pw
  sensitive = true
}}
"#
    )
}

/// One key for the state.
const ONE_KEY: &str = r#"  encryption {
    key_provider "pbkdf2" "main" {
      passphrase = var.passphrase
      iterations = 1000
    }
    method "aes_gcm" "main" {
      keys = key_provider.pbkdf2.main
    }
    state {
      method = method.aes_gcm.main
    }
  }"#;

impl Case {
    /// The marker and both passphrases, in clear, hex (as `pg_dump` shows
    /// bytea) and base64 (at each of the three byte alignments).
    fn needles(&self) -> Vec<String> {
        let mut needles = Vec::new();
        for clear in [self.secret.as_str(), P1, P2] {
            needles.push(clear.to_owned());
            needles.push(clear.bytes().map(|b| format!("{b:02x}")).collect());
            for skip in 0..3 {
                let bytes = &clear.as_bytes()[skip..];
                let whole = &bytes[..bytes.len() / 3 * 3];
                needles.push(base64::engine::general_purpose::STANDARD.encode(whole));
            }
        }
        needles
    }

    fn assert_clean(&self, what: &str, text: &[u8]) {
        for needle in self.needles() {
            assert!(
                !text.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes())),
                "{what} holds {needle:?} (a secret, in clear or encoded)"
            );
        }
    }
}

/// The distinct key-derivation salts of every stored payload of `schema`
/// (bytes 14–29: after the checksum header and the encryption prefix).
fn salts(schema: &str) -> BTreeSet<String> {
    let mut salts = BTreeSet::new();
    for (table, column) in [("instances", "record"), ("versions", "outputs"), ("intents", "intent"), ("undo_steps", "step"), ("applies", "record")]
    {
        let out = psql(&format!("SELECT DISTINCT encode(substring({column} from 14 for 16), 'hex') FROM {schema}.{table}"));
        salts.extend(out.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    }
    salts
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_encryption_pg_dump_shows_the_secret_so_the_check_can_fail() {
    let case = Case::new();
    let schema = fresh_schema("plain_dump");
    write(&case.dir, "main.strata.hcl", &config(Some(&schema), ""));
    case.expect(&["apply", "-auto-approve"], None, None, 0);
    let hex: String = case.secret.bytes().map(|b| format!("{b:02x}")).collect();
    let dump = pg_dump(&schema, &[]);
    assert!(dump.contains(&hex), "an unencrypted pg state holds the secret's bytes (the grep below would see them)");
}

#[test]
fn on_pg_no_secret_is_at_rest_a_wrong_key_changes_nothing_and_rotation_rewrites_every_version() {
    let case = Case::new();
    let d = &case.dir;
    let schema = fresh_schema("enc");
    write(d, "main.strata.hcl", &config(Some(&schema), ONE_KEY));
    // A saved plan applied, then another version (history).
    case.expect(&["plan", "-out", "p.plan"], Some(P1), None, 0);
    case.expect(&["apply", "p.plan"], Some(P1), None, 0);
    case.expect(&["apply", "-auto-approve", "-var", "gen=1"], Some(P1), None, 0);
    assert_eq!(world(d).len(), 4);
    assert!(world(d).values().all(|o| o["secret"] == case.secret.as_str()), "the objects got the secret");

    // An apply killed while its provider calls run leaves intents, the apply
    // record and undo steps at rest.
    let mut child = case
        .command(&["apply", "-auto-approve", "-var", "gen=2", "-var", "latency=3000"], Some(P1), None)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let intents = format!("SELECT count(*) FROM {schema}.intents");
    wait_for("the apply's intents", Duration::from_secs(60), || count(&intents) > 0);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(count(&intents) > 0 && count(&format!("SELECT count(*) FROM {schema}.applies")) == 1);
    assert!(count(&format!("SELECT count(*) FROM {schema}.versions")) >= 3);
    let dump = pg_dump(&schema, &[]);
    assert!(dump.contains("COPY \"") || dump.contains("COPY "), "the dump has the tables' data");
    case.assert_clean("pg_dump during an interrupted apply", dump.as_bytes());
    // The next run recovers with the key.
    case.expect(&["apply", "-auto-approve", "-var", "gen=2"], Some(P1), None, 0);
    assert_eq!(count(&intents), 0);
    assert_eq!(stdout(&case.expect(&["output", "-raw", "pw"], Some(P1), None, 0)), case.secret);
    case.expect(&["state", "history"], Some(P1), None, 0);

    // A wrong key, no key, or no encryption block: a clear error, no row changed.
    let rows = || pg_dump(&schema, &["--data-only", &format!("--exclude-table={schema}.locks")]);
    let before = rows();
    for args in [&["plan"][..], &["apply", "-auto-approve", "-var", "gen=3"], &["state", "list"], &["output", "pw"]] {
        let out = case.expect(args, Some(WRONG), None, 1);
        assert!(stderr(&out).contains("cannot be decrypted with method.aes_gcm.main"), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("damaged"), "{}", stderr(&out));
    }
    let out = case.expect(&["plan"], None, None, 1);
    assert!(stderr(&out).contains("passphrase"), "{}", stderr(&out));
    write(d, "main.strata.hcl", &config(Some(&schema), ""));
    let out = case.expect(&["apply", "-auto-approve", "-var", "gen=3"], None, None, 1);
    assert!(stderr(&out).contains("is encrypted, but no encryption is configured"), "{}", stderr(&out));
    assert!(rows() == before, "a refused key changed no row");
    assert!(world(d).values().all(|o| o["value"] == "gen-2"), "and no object");

    // Rotation: the new key primary, the old one fallback; the next apply
    // rewrites every payload, old versions' too, under the new key.
    let old_salts = salts(&schema);
    assert_eq!(old_salts.len(), 1, "one key, one salt: {old_salts:?}");
    write(d, "main.strata.hcl", &config(Some(&schema), ROTATING));
    case.expect(&["plan", "-detailed-exitcode", "-var", "gen=2"], Some(P2), Some(P1), 0);
    case.expect(&["apply", "-auto-approve", "-var", "gen=3"], Some(P2), Some(P1), 0);
    let new_salts = salts(&schema);
    assert_eq!(new_salts.len(), 1, "every payload under one key: {new_salts:?}");
    assert!(new_salts.is_disjoint(&old_salts), "nothing is left under the old key");
    write(d, "main.strata.hcl", &config(Some(&schema), ONE_KEY));
    case.expect(&["plan", "-detailed-exitcode", "-var", "gen=3"], Some(P2), None, 0);
    assert_eq!(stdout(&case.expect(&["output", "-raw", "pw"], Some(P2), None, 0)), case.secret);
    let out = case.expect(&["state", "list"], Some(P1), None, 1);
    assert!(stderr(&out).contains("cannot be decrypted"), "{}", stderr(&out));
    case.assert_clean("pg_dump after rotation", pg_dump(&schema, &[]).as_bytes());
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files_under(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

#[test]
fn an_encrypted_state_migrates_with_every_workspace_local_to_pg_and_back() {
    let case = Case::new();
    let d = &case.dir;
    let schema = fresh_schema("enc_migrate");
    let local = config(None, ONE_KEY);
    let pg = config(Some(&schema), ONE_KEY);
    write(d, "main.strata.hcl", &local);
    case.expect(&["apply", "-auto-approve"], Some(P1), None, 0);
    case.expect(&["apply", "-auto-approve", "-var", "gen=1"], Some(P1), None, 0);
    case.expect(&["workspace", "new", "dev"], Some(P1), None, 0);
    case.expect(&["apply", "-auto-approve", "-var", "gen=5"], Some(P1), None, 0);
    case.expect(&["workspace", "new", "empty"], Some(P1), None, 0);
    case.expect(&["workspace", "select", "default"], Some(P1), None, 0);
    let in_ws = |ws: &str, args: &[&str]| stdout(&{
        let out = case.command(args, Some(P1), None).env("STRATA_WORKSPACE", ws).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{ws} {args:?}: {}", stderr(&out));
        out
    });
    let before: Vec<(String, String)> =
        ["default", "dev"].iter().map(|ws| (in_ws(ws, &["state", "history"]), in_ws(ws, &["show", "-json"]))).collect();

    write(d, "main.strata.hcl", &pg);
    let out = case.expect(&["init"], Some(P1), None, 1);
    assert!(stderr(&out).contains("\"default\"") && stderr(&out).contains("\"dev\""), "names every workspace: {}", stderr(&out));
    case.expect(&["init", "-migrate-state"], Some(P1), None, 0);
    assert_eq!(psql(&format!("SELECT string_agg(name, ',' ORDER BY name) FROM {schema}.workspaces")), "default,dev,empty");
    for ws in ["default", "dev"] {
        assert_eq!(count(&format!("SELECT count(*) FROM {schema}.instances WHERE workspace = '{ws}' AND until_serial IS NULL")), 4);
    }
    let after: Vec<(String, String)> =
        ["default", "dev"].iter().map(|ws| (in_ws(ws, &["state", "history"]), in_ws(ws, &["show", "-json"]))).collect();
    assert_eq!(after, before, "history and state of both workspaces came along");
    case.assert_clean("pg_dump after migrating in", pg_dump(&schema, &[]).as_bytes());
    in_ws("dev", &["plan", "-detailed-exitcode", "-var", "gen=5"]);
    case.expect(&["apply", "-auto-approve", "-var", "gen=2"], Some(P1), None, 0);
    let before: Vec<(String, String)> =
        ["default", "dev"].iter().map(|ws| (in_ws(ws, &["state", "history"]), in_ws(ws, &["show", "-json"]))).collect();

    write(d, "main.strata.hcl", &local);
    case.expect(&["init", "-migrate-state"], Some(P1), None, 0);
    assert_eq!(count(&format!("SELECT count(*) FROM {schema}.instances")), 0, "the pg workspaces were emptied");
    assert!(d.join(".strata/state.redb").exists() && d.join(".strata/workspaces/dev/state.redb").exists());
    let after: Vec<(String, String)> =
        ["default", "dev"].iter().map(|ws| (in_ws(ws, &["state", "history"]), in_ws(ws, &["show", "-json"]))).collect();
    assert_eq!(after, before);
    assert!(stdout(&case.expect(&["workspace", "list"], Some(P1), None, 0)).contains("empty"));
    let mut files = Vec::new();
    files_under(&d.join(".strata"), &mut files);
    for file in files {
        case.assert_clean(&file.display().to_string(), &std::fs::read(&file).unwrap());
    }
}
