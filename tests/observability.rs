//! Logging and progress through the binary: `STRATA_LOG=trace` with
//! `STRATA_LOG_PATH` logs every provider call with its duration, state
//! commits and locking, and never a canary secret (not even where the
//! testing provider logs its whole input, or where its error echoes it);
//! without a terminal, long operations print Terraform's `Still
//! creating... [Ns elapsed]` lines and `Creation complete after Ns [id=...]`.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

/// A canary no other text contains, in mixed case with punctuation.
fn canary() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("LoG-cAnArY-{:x}{nanos:x}-q(z", std::process::id())
}

fn config(dir: &Path, fail: bool, latency_ms: u64) -> String {
    format!(
        r#"variable "pw" {{
  type      = string
  sensitive = true
}}

provider "testing" {{
  dir        = "{}/world"
  latency_ms = {latency_ms}
}}

resource "testing_object" "holder" {{
  name   = "holder"
  secret = var.pw
  value  = "tagged-${{sha256(var.pw)}}"
  fail   = {fail}
}}

resource "testing_object" "after" {{
  name  = "after-${{testing_object.holder.id}}"
  value = "plain"
}}
"#,
        dir.display()
    )
}

fn run_logged(dir: &Path, args: &[&str], secret: &str, log: Option<&Path>, level: &str) -> Output {
    let mut cmd = command(dir, args);
    cmd.env("STRATA_VAR_pw", secret).env("STRATA_LOG", level);
    if let Some(log) = log {
        cmd.env("STRATA_LOG_PATH", log);
    }
    cmd.output().expect("run strata")
}

fn assert_no_canary(what: &str, text: &str, secret: &str) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    for needle in [secret.to_lowercase(), b64.to_lowercase()] {
        assert!(!text.to_lowercase().contains(&needle), "{what} holds the canary ({needle}):\n{text}");
    }
}

#[test]
fn a_trace_log_has_every_provider_call_with_its_duration_and_never_a_secret() {
    let root = scratch();
    let dir = root.path();
    let log = dir.join("strata.log");
    let secret = canary();
    write(dir, "main.strata.hcl", &config(dir, false, 0));
    let mut printed = String::new();

    let out = run_logged(dir, &["apply", "-auto-approve"], &secret, Some(&log), "TRACE");
    assert!(out.status.success(), "{}", stderr(&out));
    printed.push_str(&(stdout(&out) + &stderr(&out)));
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600, "the log is private");
    // The provider's update error echoes its whole input, the secret too.
    write(dir, "main.strata.hcl", &config(dir, true, 0));
    let out = run_logged(dir, &["apply", "-auto-approve"], &secret, Some(&log), "trace");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("refuses to be updated"), "{}", stderr(&out));
    printed.push_str(&(stdout(&out) + &stderr(&out)));
    let out = run_logged(dir, &["destroy", "-auto-approve"], &secret, Some(&log), "trace");
    assert!(out.status.success(), "{}", stderr(&out));
    printed.push_str(&(stdout(&out) + &stderr(&out)));

    let text = std::fs::read_to_string(&log).unwrap();
    assert_no_canary("the log file", &text, &secret);
    assert_no_canary("what strata printed", &printed, &secret);
    assert!(!printed.contains("provider call"), "with STRATA_LOG_PATH the log goes to the file only:\n{printed}");

    // The sweep is not vacuous: the testing provider logged its input, and
    // the failed call its error, each with the secret replaced.
    let request = text.lines().find(|l| l.contains("create request") && l.contains("name = \"holder\"")).expect("the provider logs its input");
    assert!(request.contains("secret = \"(sensitive value)\""), "{request}");
    let failed = text.lines().find(|l| l.contains("provider call failed") && l.contains("call=\"update\"")).expect("the failed update is logged");
    assert!(failed.contains("refuses to be updated") && failed.contains("(sensitive value)"), "{failed}");

    // Every provider call with its duration; the apply's calls in order.
    for call in ["configure", "plan", "read", "name_is_free", "create", "prepare_undo", "update", "delete"] {
        let line = text
            .lines()
            .find(|l| l.contains("provider=testing") && l.contains(&format!("call=\"{call}\"")) && !l.contains("request"))
            .unwrap_or_else(|| panic!("no {call} call in the log:\n{text}"));
        let duration = line.split("duration=").nth(1).unwrap_or_else(|| panic!("{call} without a duration: {line}"));
        assert!(duration.starts_with(|c: char| c.is_ascii_digit()), "{line}");
    }
    assert!(text.lines().any(|l| l.contains("state commit") && l.contains("writes=") && l.contains("duration=")), "{text}");
    assert!(text.lines().any(|l| l.contains("state lock acquired") && l.contains("operation=\"apply\"")), "{text}");
    assert!(text.lines().any(|l| l.contains("operation complete") && l.contains("testing_object.after")), "{text}");
    assert_eq!(text.matches("strata logging started").count(), 3, "appended, one start per run");
}

#[test]
fn logging_is_off_by_default_and_goes_to_stderr_without_a_path() {
    let root = scratch();
    let dir = root.path();
    let secret = canary();
    write(dir, "main.strata.hcl", &config(dir, false, 0));
    let out = run_logged(dir, &["plan"], &secret, None, "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("provider call"), "{}", stderr(&out));

    let out = run_logged(dir, &["apply", "-auto-approve"], &secret, None, "Debug");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.lines().any(|l| l.contains("DEBUG") && l.contains("call=\"create\"") && l.contains("duration=")), "{err}");
    assert!(!err.contains("TRACE"), "debug leaves trace out:\n{err}");
    assert_no_canary("stderr", &(stdout(&out) + &err), &secret);

    let out = run_logged(dir, &["plan"], &secret, None, "loud");
    assert!(out.status.success(), "a bad level is a warning, not a failure: {}", stderr(&out));
    assert!(stderr(&out).contains("STRATA_LOG=\"loud\" is not a level"), "{}", stderr(&out));
}

#[test]
fn without_a_terminal_long_operations_say_they_are_still_running() {
    let root = scratch();
    let dir = root.path();
    let secret = canary();
    write(dir, "main.strata.hcl", &config(dir, false, 1300));
    let apply = |args: &[&str]| {
        let mut cmd = command(dir, args);
        cmd.env("STRATA_VAR_pw", &secret).env("STRATA_PROGRESS_INTERVAL", "0.4");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let err = apply(&["apply", "-auto-approve"]);
    let holder = world(dir).into_iter().find(|(_, v)| v["name"] == "holder").map(|(id, _)| id).expect("holder exists");
    let still = err.lines().filter(|l| l.starts_with("testing_object.holder: Still creating... [") && l.ends_with("s elapsed]")).count();
    assert!(still >= 2, "a 1.3 s create reports at 0.4, 0.8 and 1.2 s:\n{err}");
    assert!(err.contains(&format!("testing_object.holder: Creation complete after 1s [id={holder}]")), "{err}");
    let order: Vec<&str> = err.lines().filter(|l| l.starts_with("testing_object.holder")).collect();
    assert!(order.first().is_some_and(|l| l.ends_with(": Creating...")), "{order:?}");
    assert!(order.last().is_some_and(|l| l.contains("Creation complete")), "{order:?}");

    write(dir, "main.strata.hcl", &config(dir, false, 1300).replace("value = \"plain\"", "value = \"changed\""));
    let err = apply(&["apply", "-auto-approve"]);
    assert!(err.contains("testing_object.after: Still modifying... ["), "{err}");
    assert!(err.contains("testing_object.after: Modifications complete after 1s [id="), "{err}");

    let err = apply(&["destroy", "-auto-approve"]);
    assert!(err.contains("testing_object.holder: Still destroying... ["), "{err}");
    assert!(err.lines().any(|l| l.starts_with("testing_object.holder: Destruction complete after ") && !l.contains("[id=")), "{err}");
    assert_no_canary("the progress", &err, &secret);
}
