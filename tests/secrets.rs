//! Secrets stay secret: a canary secret (sensitive variables with unique
//! values) is fed through every built-in function in every argument
//! position, through the testing provider's validation and create/update
//! errors (which echo their whole input), through map keys built from it,
//! `for_each`, bad `-var` and variable-file values, and through plan,
//! apply, show, state show, console and output. Every byte Strata prints
//! and every file it writes under the working directory or its TMPDIR is
//! searched for it; the state database and the saved plan, which hold
//! values by design, must be private (0600 in a 0700 directory) instead.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A scratch workspace whose every output is kept for the final search.
struct Harness {
    _root: tempfile::TempDir,
    work: PathBuf,
    world: PathBuf,
    tmp: PathBuf,
    /// The sensitive string; it breaks most parsers (`-`, `(`, mixed case).
    secret: String,
    /// The sensitive number: eight digits that occur nowhere else.
    pin: String,
    transcript: String,
    /// Files the test itself wrote (configuration, variable files).
    inputs: BTreeSet<PathBuf>,
}

impl Harness {
    fn new() -> Harness {
        let root = scratch();
        let (work, world, tmp) = (root.path().join("work"), root.path().join("world"), root.path().join("tmp"));
        for d in [&work, &tmp] {
            std::fs::create_dir(d).unwrap();
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let unique = format!("{:x}{:x}", std::process::id(), nanos);
        Harness {
            secret: format!("cAnArY-{unique}-q(z"),
            pin: format!("{}", 90_000_000 + (nanos % 9_000_000) + std::process::id() % 1000),
            _root: root,
            work,
            world,
            tmp,
            transcript: String::new(),
            inputs: BTreeSet::new(),
        }
    }

    fn write(&mut self, name: &str, text: &str) {
        write(&self.work, name, text);
        self.inputs.insert(self.work.join(name));
    }

    /// Runs strata with the secrets in its environment (never in its
    /// arguments, unless a test means to put them there).
    fn run_with(&mut self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = command(&self.work, args);
        cmd.env("STRATA_VAR_pw", &self.secret).env("STRATA_VAR_pin", &self.pin).env("TMPDIR", &self.tmp);
        let out = match stdin {
            None => cmd.output().expect("run strata"),
            Some(text) => {
                use std::io::Write as _;
                let mut child = cmd
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn strata");
                // Fed from a thread: the output pipes fill while it reads.
                let mut input = child.stdin.take().unwrap();
                let text = text.to_owned();
                let feeder = std::thread::spawn(move || input.write_all(text.as_bytes()));
                let out = child.wait_with_output().unwrap();
                feeder.join().unwrap().expect("feed strata's stdin");
                out
            }
        };
        // The command line is the test's own doing: not searched.
        let shown = args.join(" ").replace(&self.secret, "<secret>");
        self.transcript.push_str(&format!("$ strata {shown}\n{}{}\n", stdout(&out), stderr(&out)));
        out
    }

    fn run(&mut self, args: &[&str], code: i32) -> String {
        let out = self.run_with(args, None);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(code), "strata {args:?}:\n{text}");
        text
    }

    fn hcl_world(&self) -> String {
        format!("provider \"testing\" {{\n  dir = \"{}\"\n}}\n", self.world.display())
    }

    /// Where the canary shows, in any letter case or base64-encoded.
    fn leaks(&self, text: &str) -> Option<String> {
        use base64::Engine as _;
        let lower = text.to_lowercase();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.secret);
        [self.secret.to_lowercase(), self.pin.clone(), b64.clone(), b64.to_lowercase()]
            .into_iter()
            .find(|c| lower.contains(c.as_str()) || text.contains(c.as_str()))
    }

    fn assert_no_leak_in_output(&self) {
        if let Some(found) = self.leaks(&self.transcript) {
            let at = self.transcript.to_lowercase().find(&found.to_lowercase()).unwrap_or(0);
            let start = self.transcript[..at].rfind("$ strata").unwrap_or(0);
            panic!("the canary {found:?} was printed:\n{}", &self.transcript[start..(at + 200).min(self.transcript.len())]);
        }
    }

    /// Every file Strata wrote under the working directory and TMPDIR: no
    /// canary, except in the state database and saved plans, which must be
    /// private instead.
    fn assert_no_leak_in_files(&self, holding_values: &[&Path]) {
        let mut files = Vec::new();
        walk(&self.work, &mut files);
        walk(&self.tmp, &mut files);
        assert!(files.iter().any(|f| f.ends_with(".strata/state.redb")), "the search sees the state: {files:?}");
        for f in files.iter().filter(|f| !self.inputs.contains(*f)) {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            if holding_values.iter().any(|h| f.ends_with(h)) {
                assert_eq!(mode, 0o600, "{} holds values: it must be private", f.display());
                continue;
            }
            let bytes = std::fs::read(f).unwrap();
            if let Some(found) = self.leaks(&String::from_utf8_lossy(&bytes)) {
                panic!("{} holds the canary {found:?}", f.display());
            }
        }
        let strata_dir = self.work.join(".strata");
        assert_eq!(std::fs::metadata(&strata_dir).unwrap().permissions().mode() & 0o777, 0o700, ".strata is private");
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            walk(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

const VARIABLES: &str = r#"
variable "pw" {
  type      = string
  sensitive = true
}

variable "pin" {
  type      = number
  sensitive = true
}
"#;

/// Argument lists each function is called with: `S` is the secret string,
/// `N` the secret number, in every position functions take.
const SHAPES: &[&str] = &[
    "S", "N", "S, S", "S, N", "N, S", "S, 1", "S, \"x\"", "\"x\", S", "1, S", "\"x\", N", "N, 1", "1, N",
    "S, 8, 1", "\"10.0.0.0/8\", S", "\"10.0.0.0/8\", N", "\"10.0.0.0/8\", 8, N", "\"10.0.0.0/8\", S, 1",
    "[S]", "[N]", "[S], 1", "[1], N", "[1, 2], S", "{k = S}", "{(S) = 1}", "{}, S", "{a = 1}, S", "{k = S}, \"nope\"",
    "S, S, S", "\"%d\", S", "\"%s %q\", S", "\"%q\", [S]", "\"YYYY\", S", "S, \"1h\"", "\"2024-01-01T00:00:00Z\", S",
    "\"t.tpl\", {pw = S}", "\"bad.tpl\", {pw = S}", "\"t.tpl\", {pw = N}", "[S, S]", "[[S]]", "[{k = S}]", "S...",
    "sensitive([S])...",
];

#[test]
fn no_function_quotes_a_sensitive_argument_in_an_error() {
    let mut h = Harness::new();
    h.write("main.strata.hcl", VARIABLES);
    h.write("t.tpl", "pw is ${pw}\n");
    h.write("bad.tpl", "${pw + 1} and ${tonumber(pw)}\n");
    // `nonsensitive` reveals by design.
    let mut lines = Vec::new();
    for f in strata::config::functions::names().filter(|f| *f != "nonsensitive") {
        for shape in SHAPES {
            let args = shape.replace('S', "var.pw").replace('N', "var.pin");
            lines.push(format!("{f}({args})"));
        }
    }
    // Operators, indexing, conversions and templates too.
    for e in [
        "var.pw + 1", "-var.pw", "!var.pw", "var.pw ? 1 : 2", "{a = 1}[var.pw]", "[1, 2][var.pin]", "[1][var.pw]",
        "{a = 1}[var.pin]", "var.pw.attr", "var.pw[0]", "\"${[var.pw]}\"", "\"%{ if var.pw }x%{ endif }\"",
        "{for k, v in {x = var.pw, y = var.pw} : v => k}", "[for k, v in {x = var.pw} : v + 1]",
        "{for k, v in {x = var.pw} : v => k}", "[for k, v in sensitive({(var.pw) = 1}) : k]",
        "keys({for k, v in {x = var.pw} : v => k})", "{(var.pw) = 1}", "try(tonumber(var.pw), var.pw + 1)",
        "try(tonumber(var.pw))", "can(tonumber(var.pw))", "tomap({(var.pw) = 1})", "[for x in [var.pw] : x if x]",
    ] {
        lines.push(e.to_owned());
    }
    let input = lines.join("\n") + "\n";
    let out = h.run_with(&["console"], Some(&input));
    let (printed, errors) = (stdout(&out), stderr(&out));
    h.assert_no_leak_in_output();

    // The sweep is not vacuous: the calls known to have quoted the secret
    // fail, name themselves, and say why their error is not shown.
    for f in ["tonumber", "tobool", "abs", "parseint", "base64decode", "file", "templatefile", "lookup", "timeadd", "uuidv5", "cidrsubnet", "regex", "jsondecode"] {
        assert!(
            errors.contains(&format!("{f}: the call failed; its error is not shown because argument")),
            "{f} fails on the secret and withholds its error:\n{errors}"
        );
    }
    assert!(errors.contains("no element with this sensitive key"), "{errors}");
    assert!(errors.contains("the sensitive index is out of range"), "{errors}");
    let withheld = errors.matches("is not shown because").count();
    assert!(withheld > 200, "only {withheld} calls failed on the secret:\n{errors}");
    assert!(printed.matches("(sensitive value)").count() > 200, "results are marked: {printed}");
}

#[test]
fn a_canary_secret_appears_nowhere_strata_writes() {
    let mut h = Harness::new();
    let world = h.hcl_world();
    let base = format!(
        r#"{VARIABLES}
{world}
resource "testing_object" "keys" {{
  name  = "keys"
  # A map keyed by the secret: sensitive as a whole.
  value = {{ for k, v in {{ x = var.pw }} : v => k }}
}}

resource "testing_object" "victim" {{
  name   = "victim"
  # The schema marks `secret` even when the value is not marked.
  secret = nonsensitive(var.pw)
  value  = var.pin
  fail   = FAIL
}}

output "keys" {{
  value     = testing_object.keys.value
  sensitive = true
}}

output "names" {{
  value     = keys(testing_object.keys.value)
  sensitive = true
}}
"#
    );
    h.write("main.strata.hcl", &base.replace("FAIL", "false"));
    let plan = h.run(&["plan"], 0);
    assert!(plan.contains("value      = (sensitive value)"), "the map keyed by the secret is redacted:\n{plan}");
    h.run(&["plan", "-out", "saved.plan"], 0);
    h.run(&["show", "saved.plan"], 0);
    h.run(&["apply", "saved.plan"], 0);
    h.run(&["show"], 0);
    h.run(&["show", "-json"], 0);
    h.run(&["state", "list"], 0);
    h.run(&["state", "show", "testing_object.keys"], 0);
    h.run(&["state", "show", "testing_object.victim"], 0);
    h.run(&["output"], 0);
    h.run(&["output", "-json"], 0);
    h.run(&["output", "keys"], 0);
    let console = "testing_object.keys.value\nkeys(testing_object.keys.value)\ntesting_object.victim.secret\ntesting_object.victim\n";
    let out = h.run_with(&["console"], Some(console));
    assert!(out.status.success(), "{}", stderr(&out));

    // The provider's update error echoes its input, the secret included.
    h.write("main.strata.hcl", &base.replace("FAIL", "true"));
    let failed = h.run(&["apply", "-auto-approve"], 1);
    assert!(failed.contains("refuses to be updated"), "{failed}");
    assert!(failed.contains("\"secret\":\"(sensitive value)\""), "the secret is scrubbed from the echo:\n{failed}");

    // A create that fails, and a provider validation error, quoting the secret.
    h.write(
        "main.strata.hcl",
        &format!(
            "{VARIABLES}\n{world}\nresource \"testing_object\" \"new\" {{\n  name = var.pw\n  fail = true\n}}\n"
        ),
    );
    let failed = h.run(&["apply", "-auto-approve"], 1);
    assert!(failed.contains("refuses to be created"), "{failed}");
    h.write("main.strata.hcl", &format!("{VARIABLES}\n{world}\nresource \"testing_object\" \"bad\" {{\n  name = \"${{var.pw}}/x\"\n}}\n"));
    let invalid = h.run(&["plan"], 1);
    assert!(invalid.contains("must not contain '/'"), "{invalid}");

    // for_each over keys made from the secret is refused, as over the secret.
    for for_each in ["{ for k, v in { x = var.pw } : v => k }", "[var.pw]", "toset([var.pw])", "{ (var.pw) = 1 }"] {
        h.write(
            "main.strata.hcl",
            &format!(
                "{VARIABLES}\n{world}\nresource \"testing_object\" \"each\" {{\n  for_each = {for_each}\n  name     = each.key\n}}\n"
            ),
        );
        let refused = h.run(&["plan"], 1);
        assert!(refused.contains("for_each cannot use a sensitive value"), "{for_each}:\n{refused}");
    }

    // Bad values for sensitive variables: on the command line, in the
    // environment, in a variable file, as a default.
    h.write("main.strata.hcl", &format!("{VARIABLES}\n{world}"));
    let pin_bad = format!("pin={}", h.secret);
    let bad = h.run(&["plan", "-var", &pin_bad], 1);
    assert!(bad.contains("invalid value for variable \"pin\""), "{bad}");
    let call = format!("pin=tonumber(\"{}\")", h.secret);
    h.run(&["plan", "-var", &call], 1);
    let file = format!("pin = \"{}\" + 1\n", h.secret);
    h.write("bad.stratavars.hcl", &file);
    let bad = h.run(&["plan", "-var-file", "bad.stratavars.hcl"], 1);
    assert!(bad.contains("invalid value for the sensitive variable \"pin\""), "{bad}");
    let default = format!(
        "variable \"pw\" {{\n  type      = number\n  sensitive = true\n  default   = \"{}\"\n}}\nvariable \"pin\" {{\n  type      = number\n  sensitive = true\n  default   = tonumber(\"{}\")\n}}\n",
        h.secret, h.secret
    );
    h.write("main.strata.hcl", &default);
    let mut cmd = command(&h.work, &["plan"]);
    cmd.env("TMPDIR", &h.tmp);
    let out = cmd.output().unwrap();
    h.transcript.push_str(&format!("$ strata plan (defaults)\n{}{}\n", stdout(&out), stderr(&out)));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    h.assert_no_leak_in_output();
    h.assert_no_leak_in_files(&[Path::new(".strata/state.redb"), Path::new(".strata/state.redb.backup"), Path::new("saved.plan")]);
}

#[test]
fn a_saved_plan_never_writes_through_an_existing_file_or_symlink() {
    let root = scratch();
    let dir = root.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    let victim = root.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    write(&dir, "main.strata.hcl", &format!("provider \"testing\" {{\n  dir = \"{}/world\"\n}}\nresource \"testing_object\" \"a\" {{\n  name = \"a\"\n}}\n", root.path().display()));
    // Every name an earlier version used for the temporary file, and the
    // plan's own name, point at the victim.
    for name in ["plan.tmp", "plan.out.tmp", "plan.out"] {
        std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("other.tmp"), "mine").unwrap();
    expect(&dir, &["plan", "-out", "plan.out"], 0);

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "the symlinks' target is untouched");
    let plan = std::fs::symlink_metadata(dir.join("plan.out")).unwrap();
    assert!(plan.file_type().is_file(), "the plan replaced the symlink with a file of its own");
    assert_eq!(plan.permissions().mode() & 0o777, 0o600);
    for name in ["plan.tmp", "plan.out.tmp"] {
        assert!(std::fs::symlink_metadata(dir.join(name)).unwrap().file_type().is_symlink(), "{name} is left alone");
    }
    assert_eq!(std::fs::read_to_string(dir.join("other.tmp")).unwrap(), "mine");
    let names: BTreeSet<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let expected: BTreeSet<String> =
        [".strata", "main.strata.hcl", "other.tmp", "plan.out", "plan.out.tmp", "plan.tmp"].map(String::from).into();
    assert_eq!(names, expected, "no temporary file is left behind");
    expect(&dir, &["apply", "plan.out"], 0);
}

#[test]
fn the_state_directory_and_its_files_are_private() {
    let root = scratch();
    let dir = root.path();
    write(dir, "main.strata.hcl", &format!("provider \"testing\" {{\n  dir = \"{}/world\"\n  latency_ms = 1500\n}}\nresource \"testing_object\" \"a\" {{\n  name = \"a\"\n}}\n", dir.display()));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The lock file, while an apply holds it.
    let mut apply = spawn(dir, &["apply", "-auto-approve"]);
    let lock = dir.join(".strata/lock.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !lock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(mode(&lock), 0o600, "lock.json");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let leftovers: Vec<_> = std::fs::read_dir(dir.join(".strata"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "the lock's temporary file is gone: {leftovers:?}");
    assert!(apply.wait().unwrap().success());
    assert_eq!(mode(&dir.join(".strata")), 0o700);
    assert_eq!(mode(&dir.join(".strata/state.redb")), 0o600);

    // A state left world-readable by an earlier version is tightened by the
    // next command that writes it (read-only commands change nothing).
    std::fs::set_permissions(dir.join(".strata"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join(".strata/state.redb"), std::fs::Permissions::from_mode(0o644)).unwrap();
    expect(dir, &["apply", "-auto-approve"], 0);
    assert_eq!(mode(&dir.join(".strata")), 0o700);
    assert_eq!(mode(&dir.join(".strata/state.redb")), 0o600);
}
