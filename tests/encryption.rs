//! Client-side encryption through the CLI: with an `encryption` block, no
//! byte under `.strata/` (state, history, journal, backup) nor of a saved
//! plan holds a marker secret; a wrong or missing key is a clear error that
//! changes no byte; a fallback key rotates (old data read, rewritten under
//! the new key by the next apply); an unencrypted state is encrypted by
//! the next apply once an unencrypted fallback is declared. State files and
//! saved plans are private (0600 in a 0700 directory) with or without it.

mod common;
#[path = "common/encrypted.rs"]
mod encrypted;

use common::*;
use encrypted::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn config(encryption: &str, size: u32) -> String {
    format!(
        r#"
terraform {{
{encryption}
}}
{KEY_VARIABLES}
provider "testing" {{
  dir = "${{path.root}}/world"
}}
resource "testing_object" "disk" {{
  name   = "disk"
  size   = {size}
  secret = var.pw
}}
output "pw" {{
  value     = var.pw
  sensitive = true
}}
"#
    )
}

/// One key, for state and plans.
fn one_key(extra_state: &str) -> String {
    format!(
        r#"  encryption {{
    key_provider "pbkdf2" "main" {{
      passphrase = var.passphrase
      iterations = 1000
    }}
    method "aes_gcm" "main" {{
      keys = key_provider.pbkdf2.main
    }}
    method "unencrypted" "migrate" {{}}
    state {{
      method = method.aes_gcm.main
      {extra_state}
    }}
    plan {{
      method = method.aes_gcm.main
    }}
  }}"#
    )
}

impl Case {
    /// What must not change when a key is refused: every file under
    /// `.strata/` byte for byte, except the database, whose header redb
    /// touches on every writable open; its content is compared instead.
    fn unchanged(&self, passphrase: Option<&str>) -> (BTreeMap<PathBuf, u64>, String, String) {
        let mut files = self.state_files();
        files.remove(&self.dir.join(".strata/state.redb"));
        let pulled = stdout(&self.expect(&["state", "pull"], passphrase, None, 0));
        let history = stdout(&self.expect(&["state", "history"], passphrase, None, 0));
        (files, pulled, history)
    }

    /// Every file under `.strata/` with a hash of its bytes.
    fn state_files(&self) -> BTreeMap<PathBuf, u64> {
        use std::hash::{Hash, Hasher};
        let mut files = BTreeMap::new();
        files_under(&self.dir.join(".strata"), &mut files);
        files
            .into_iter()
            .map(|(p, bytes)| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                (p, h.finish())
            })
            .collect()
    }

    /// Every file under `.strata/` (and `extra`) without the marker secret.
    fn assert_no_secret(&self, extra: &[&Path]) {
        let mut files = BTreeMap::new();
        files_under(&self.dir.join(".strata"), &mut files);
        for p in extra {
            out_insert(&mut files, p);
        }
        assert!(files.keys().any(|p| p.ends_with("state.redb")), "{:?}", files.keys());
        for (path, bytes) in &files {
            for needle in [self.secret.as_bytes(), P1.as_bytes(), P2.as_bytes()] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds {:?} in clear text",
                    path.display(),
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }
}

fn out_insert(files: &mut BTreeMap<PathBuf, Vec<u8>>, p: &Path) {
    files.insert(p.to_owned(), std::fs::read(p).unwrap());
}

fn files_under(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files_under(&e.path(), out);
        } else {
            out_insert(out, &e.path());
        }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn assert_private(dir: &Path, plan: &Path) {
    assert_eq!(mode(&dir.join(".strata")), 0o700);
    let mut files = BTreeMap::new();
    files_under(&dir.join(".strata"), &mut files);
    for path in files.keys() {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(plan), 0o600);
}

#[test]
fn nothing_at_rest_holds_the_secret_and_rotation_rewrites_under_the_new_key() {
    let case = Case::new();
    let d = &case.dir;
    write(d, "main.strata.hcl", &config(&one_key(""), 1));
    let plan = d.join("p.plan");
    case.expect(&["plan", "-out", "p.plan"], Some(P1), None, 0);
    case.expect(&["apply", "p.plan"], Some(P1), None, 0);
    // Another version (history) and a plan saved over it.
    write(d, "main.strata.hcl", &config(&one_key(""), 2));
    case.expect(&["apply", "-auto-approve"], Some(P1), None, 0);
    write(d, "main.strata.hcl", &config(&one_key(""), 3));
    case.expect(&["plan", "-out", "p.plan"], Some(P1), None, 0);
    assert_eq!(world(d).values().next().unwrap()["secret"], case.secret.as_str(), "the object got the secret");
    case.assert_no_secret(&[&plan]);
    assert_private(d, &plan);
    // It reads back with the key: output, history, the saved plan.
    assert_eq!(stdout(&case.expect(&["output", "-raw", "pw"], Some(P1), None, 0)), case.secret);
    assert!(stdout(&case.expect(&["state", "history"], Some(P1), None, 0)).lines().count() >= 3);
    case.expect(&["show", "p.plan"], Some(P1), None, 0);

    // A wrong key: a clear error, and nothing changes.
    let before = case.unchanged(Some(P1));
    for args in [&["plan"][..], &["apply", "-auto-approve"], &["state", "list"], &["apply", "p.plan"]] {
        let out = case.expect(args, Some("a wrong passphrase, long enough"), None, 1);
        assert!(stderr(&out).contains("cannot be decrypted with method.aes_gcm.main"), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("damaged"), "{}", stderr(&out));
    }
    // No key given, or no encryption configured at all.
    let out = case.expect(&["plan"], None, None, 1);
    assert!(stderr(&out).contains("var.passphrase") || stderr(&out).contains("passphrase"), "{}", stderr(&out));
    write(d, "main.strata.hcl", &config("", 3));
    let out = case.expect(&["plan"], None, None, 1);
    assert!(stderr(&out).contains("is encrypted, but no encryption is configured"), "{}", stderr(&out));
    write(d, "main.strata.hcl", &config(&one_key(""), 3));
    assert_eq!(case.unchanged(Some(P1)), before, "a refused key changed nothing");

    // Rotation: new key primary, old key fallback. The apply rewrites all.
    write(d, "main.strata.hcl", &config(ROTATING, 3));
    case.expect(&["plan", "-detailed-exitcode"], Some(P2), Some(P1), 2);
    case.expect(&["apply", "-auto-approve"], Some(P2), Some(P1), 0);
    // Now the new key alone reads everything, history included; the old one alone reads nothing.
    write(d, "main.strata.hcl", &config(&one_key(""), 3));
    case.expect(&["plan", "-detailed-exitcode"], Some(P2), None, 0);
    let history = stdout(&case.expect(&["state", "history"], Some(P2), None, 0));
    for line in history.lines() {
        let serial = line.split_whitespace().next().unwrap();
        assert!(serial.parse::<u64>().is_ok(), "{history}");
    }
    assert_eq!(stdout(&case.expect(&["output", "-raw", "pw"], Some(P2), None, 0)), case.secret);
    let out = case.expect(&["state", "list"], Some(P1), None, 1);
    assert!(stderr(&out).contains("cannot be decrypted"), "{}", stderr(&out));
    case.assert_no_secret(&[]);
}

#[test]
fn an_unencrypted_state_is_refused_until_a_fallback_allows_migrating_it() {
    let case = Case::new();
    let d = &case.dir;
    write(d, "main.strata.hcl", &config("", 1));
    case.expect(&["plan", "-out", "p.plan"], None, None, 0);
    // Private without encryption too.
    assert_private(d, &d.join("p.plan"));
    case.expect(&["apply", "p.plan"], None, None, 0);
    let plain = std::fs::read(d.join(".strata/state.redb")).unwrap();
    assert!(plain.windows(case.secret.len()).any(|w| w == case.secret.as_bytes()), "without encryption the state holds values");

    // Encryption on, no unencrypted fallback: refused, nothing written.
    let body = one_key("").replace("    method \"unencrypted\" \"migrate\" {}\n", "");
    let before = case.unchanged(None);
    write(d, "main.strata.hcl", &config(&body, 1));
    let out = case.expect(&["plan"], Some(P1), None, 1);
    assert!(stderr(&out).contains("is not encrypted, but encryption is configured without an unencrypted fallback"), "{}", stderr(&out));
    write(d, "main.strata.hcl", &config("", 1));
    assert_eq!(case.unchanged(None), before);

    // With the fallback the next apply encrypts every record.
    write(d, "main.strata.hcl", &config(&one_key("fallback {\n        method = method.unencrypted.migrate\n      }"), 2));
    case.expect(&["apply", "-auto-approve"], Some(P1), None, 0);
    write(d, "main.strata.hcl", &config(&body, 2));
    case.expect(&["plan", "-detailed-exitcode"], Some(P1), None, 0);
    case.expect(&["state", "history"], Some(P1), None, 0);
    assert_eq!(stdout(&case.expect(&["output", "-raw", "pw"], Some(P1), None, 0)), case.secret);
}

#[test]
fn a_saved_plan_of_an_encrypted_configuration_needs_its_key() {
    let case = Case::new();
    let d = &case.dir;
    write(d, "main.strata.hcl", &config(&one_key(""), 1));
    case.expect(&["plan", "-out", "p.plan"], Some(P1), None, 0);
    let bytes = std::fs::read(d.join("p.plan")).unwrap();
    assert!(!bytes.starts_with(b"{"), "the plan is not JSON in clear");
    let out = case.expect(&["apply", "p.plan"], Some("a wrong passphrase, long enough"), None, 1);
    assert!(stderr(&out).contains("cannot be decrypted"), "{}", stderr(&out));
    assert!(world(d).is_empty());
    case.expect(&["apply", "p.plan"], Some(P1), None, 0);
    assert_eq!(world(d).len(), 1);
}

#[test]
fn a_short_passphrase_or_an_unknown_method_is_a_diagnostic() {
    let case = Case::new();
    let d = &case.dir;
    write(d, "main.strata.hcl", &config(&one_key(""), 1));
    let out = case.expect(&["plan"], Some("short"), None, 1);
    assert!(stderr(&out).contains("too short"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("short\""), "the passphrase is not quoted: {}", stderr(&out));
    write(d, "main.strata.hcl", &config(&one_key("").replace("state {\n      method = method.aes_gcm.main", "state {\n      method = method.aes_gcm.nope"), 1));
    let out = case.expect(&["plan"], Some(P1), None, 1);
    assert!(stderr(&out).contains("no method.aes_gcm.nope is declared"), "{}", stderr(&out));
}
