//! What the encryption suites share (local store and PostgreSQL): the two
//! passphrases, an `encryption` block that rotates from one to the other,
//! and a scratch case whose runs carry a marker secret and the keys as
//! variables in the environment, never in arguments.

#![allow(dead_code)]

use super::{command, scratch, stderr, stdout};
use std::path::PathBuf;
use std::process::{Command, Output};

pub const P1: &str = "first passphrase, long enough";
pub const P2: &str = "second passphrase, long enough";

/// The variables a case sets from the environment: both passphrases and
/// the marker secret `pw`.
pub const KEY_VARIABLES: &str = r#"variable "passphrase" {
  type      = string
  sensitive = true
  default   = null
}
variable "old_passphrase" {
  type      = string
  sensitive = true
  default   = null
}
variable "pw" {
  type      = string
  sensitive = true
}"#;

/// A new primary key, the old one as fallback.
pub const ROTATING: &str = r#"  encryption {
    key_provider "pbkdf2" "new" {
      passphrase = var.passphrase
      iterations = 1000
    }
    key_provider "pbkdf2" "old" {
      passphrase = var.old_passphrase
      iterations = 1000
    }
    method "aes_gcm" "new" {
      keys = key_provider.pbkdf2.new
    }
    method "aes_gcm" "old" {
      keys = key_provider.pbkdf2.old
    }
    state {
      method = method.aes_gcm.new
      fallback {
        method = method.aes_gcm.old
      }
    }
  }"#;

/// A scratch directory and a marker secret unique to this run, which the
/// configuration reads as `var.pw`.
pub struct Case {
    _root: tempfile::TempDir,
    pub dir: PathBuf,
    pub secret: String,
}

impl Case {
    pub fn new() -> Case {
        let root = scratch();
        let dir = root.path().to_owned();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        Case { _root: root, dir, secret: format!("mArKeR-{:x}{:x}-secret", std::process::id(), nanos) }
    }

    /// `strata ARGS` with the secret, and the passphrases given, in `STRATA_VAR_*`.
    pub fn command(&self, args: &[&str], passphrase: Option<&str>, old: Option<&str>) -> Command {
        let mut cmd = command(&self.dir, args);
        cmd.env("STRATA_VAR_pw", &self.secret);
        if let Some(p) = passphrase {
            cmd.env("STRATA_VAR_passphrase", p);
        }
        if let Some(p) = old {
            cmd.env("STRATA_VAR_old_passphrase", p);
        }
        cmd
    }

    pub fn expect(&self, args: &[&str], passphrase: Option<&str>, old: Option<&str>, code: i32) -> Output {
        let out = self.command(args, passphrase, old).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "strata {args:?}\nstdout:\n{}\nstderr:\n{}", stdout(&out), stderr(&out));
        out
    }
}
