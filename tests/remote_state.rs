//! `data "strata_remote_state"` through the CLI: a compute stack reads a
//! network stack's outputs from its state, in the workspace it names,
//! through the network stack's own (encrypted) backend, sensitive outputs
//! still marked; a missing stack is a clear error.

mod common;

use common::*;

const NETWORK: &str = r#"
terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = var.net_passphrase
      iterations = 1000
    }
    method "aes_gcm" "m" {
      keys = key_provider.pbkdf2.k
    }
    state {
      method = method.aes_gcm.m
    }
  }
}
variable "net_passphrase" {
  type      = string
  sensitive = true
}
variable "token" {
  type      = string
  sensitive = true
}
output "cidr" {
  value = "198.18.${terraform.workspace == "prod" ? 2 : 1}.0/24"
}
output "token" {
  value     = var.token
  sensitive = true
}
"#;

const COMPUTE: &str = r#"
variable "ws" {
  type    = string
  default = "default"
}
data "strata_remote_state" "net" {
  config    = { path = "../network" }
  workspace = var.ws
  defaults  = { region = "eu" }
}
resource "strata_data" "vm" {
  input = data.strata_remote_state.net.outputs.cidr
}
output "cidr" {
  value = strata_data.vm.output
}
output "region" {
  value = data.strata_remote_state.net.outputs.region
}
output "token" {
  value     = data.strata_remote_state.net.outputs.token
  sensitive = true
}
"#;

const PASS: &str = "network passphrase, long enough";
const TOKEN: &str = "tOkEn-for-remote-state-test";

#[test]
fn a_stack_reads_another_stacks_outputs_through_its_backend() {
    let root = scratch();
    let (net, compute) = (root.path().join("network"), root.path().join("compute"));
    for (d, text) in [(&net, NETWORK), (&compute, COMPUTE)] {
        std::fs::create_dir(d).unwrap();
        write(d, "main.strata.hcl", text);
    }
    let run = |d: &std::path::Path, args: &[&str], env: &[(&str, &str)], code: i32| {
        let mut cmd = command(d, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(code), "strata {args:?}\nstdout:\n{}\nstderr:\n{}", stdout(&out), stderr(&out));
        out
    };
    let keys = [("STRATA_VAR_net_passphrase", PASS), ("STRATA_VAR_token", TOKEN)];
    run(&net, &["apply", "-auto-approve"], &keys, 0);
    run(&net, &["workspace", "new", "prod"], &keys, 0);
    run(&net, &["apply", "-auto-approve"], &keys, 0);

    let with_key = [("STRATA_VAR_net_passphrase", PASS)];
    let out = run(&compute, &["apply", "-auto-approve"], &with_key, 0);
    assert!(!stdout(&out).contains(TOKEN) && !stderr(&out).contains(TOKEN), "the token stays sensitive");
    assert_eq!(stdout(&run(&compute, &["output", "-raw", "cidr"], &[], 0)), "198.18.1.0/24");
    assert_eq!(stdout(&run(&compute, &["output", "-raw", "region"], &[], 0)), "eu", "defaults fill in");
    assert_eq!(stdout(&run(&compute, &["output", "-raw", "token"], &[], 0)), TOKEN);
    assert!(stdout(&run(&compute, &["output"], &[], 0)).contains("token = (sensitive value)"));

    // Another workspace of the network stack.
    run(&compute, &["apply", "-auto-approve", "-var", "ws=prod"], &with_key, 0);
    assert_eq!(stdout(&run(&compute, &["output", "-raw", "cidr"], &[], 0)), "198.18.2.0/24");

    // The network state is encrypted: without its key it cannot be read.
    let out = run(&compute, &["plan"], &[("STRATA_VAR_net_passphrase", "a wrong passphrase, long enough")], 1);
    assert!(stderr(&out).contains("reading data.strata_remote_state.net") && stderr(&out).contains("cannot be decrypted"), "{}", stderr(&out));

    write(&compute, "main.strata.hcl", &COMPUTE.replace("../network", "../nowhere"));
    let out = run(&compute, &["plan"], &with_key, 1);
    assert!(stderr(&out).contains("reading data.strata_remote_state.net") && stderr(&out).contains("is not a directory"), "{}", stderr(&out));
}

#[test]
fn a_backend_named_with_its_settings_is_opened_read_only() {
    let root = scratch();
    let (net, compute) = (root.path().join("network"), root.path().join("compute"));
    std::fs::create_dir(&net).unwrap();
    std::fs::create_dir(&compute).unwrap();
    write(&net, "main.strata.hcl", "output \"cidr\" {\n  value = \"198.18.7.0/24\"\n}\n");
    expect(&net, &["apply", "-auto-approve"], 0);
    let before = std::fs::read(net.join(".strata/state.meta")).unwrap();
    let reader = r#"
data "strata_remote_state" "net" {
  backend = "BACKEND"
  config  = { path = "../network/.strata" }
}
output "cidr" {
  value = data.strata_remote_state.net.outputs.cidr
}
"#;
    write(&compute, "main.strata.hcl", &reader.replace("BACKEND", "local"));
    expect(&compute, &["apply", "-auto-approve"], 0);
    assert_eq!(stdout(&expect(&compute, &["output", "-raw", "cidr"], 0)), "198.18.7.0/24");
    assert_eq!(std::fs::read(net.join(".strata/state.meta")).unwrap(), before, "read-only: the other state is not touched");
    assert!(!net.join(".strata/lock.json").exists());

    write(&compute, "main.strata.hcl", &reader.replace("BACKEND", "s3"));
    let out = expect(&compute, &["plan"], 1);
    assert!(stderr(&out).contains("unknown backend \"s3\""), "{}", stderr(&out));
}
