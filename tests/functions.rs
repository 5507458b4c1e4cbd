//! Data-driven tests of the built-in functions.
//!
//! Each `tests/functions/*.txt` file holds one case per line:
//!
//! ```text
//! cidrsubnet("10.1.2.0/24", 4, 15) => "10.1.2.240/28"
//! cidrsubnet("10.1.2.0/24", 4, 16) => error: does not accommodate a subnet numbered 16
//! timestamp() => unknown
//! ```
//!
//! Both sides are HCL expressions evaluated by the real evaluator; `error:`
//! expects the left side to fail with a message containing the text.
//! Blank lines and lines starting with `#` are ignored. Paths in the
//! filesystem cases are relative to the crate root (the tests' working
//! directory).
//!
//! Cases that need several lines (heredocs) are in `tests/functions/*.hcl`,
//! one attribute per case holding `[EXPR, EXPECTED]`:
//!
//! ```text
//! flush = [<<-EOT
//!     a
//!   EOT
//! , "  a\n"]
//! ```

use strata::config::eval::{eval, EvalError, NoNames, Resolver, Scope};
use strata::config::unify::same_type;
use strata_provider::Value;

fn evaluate(src: &str, resolver: &dyn Resolver) -> Result<Value, EvalError> {
    let expr = strata::config::parse::parse_expr(src)
        .map_err(|e| EvalError { message: format!("cannot parse {src:?}: {e}"), range: None })?;
    eval(&expr, &Scope::new(resolver))
}

/// Checks one case; `None` when it passes.
fn check(line: &str, resolver: &dyn Resolver) -> Option<String> {
    let Some((lhs, rhs)) = line.rsplit_once(" => ") else {
        return Some("malformed case: expected `EXPR => RESULT`".into());
    };
    let actual = evaluate(lhs.trim(), resolver);
    let rhs = rhs.trim();
    match (actual, rhs.strip_prefix("error:")) {
        (Err(e), Some(expected)) if e.message.contains(expected.trim()) => None,
        (Err(e), Some(expected)) => Some(format!("expected an error containing {:?}, got error {:?}", expected.trim(), e.message)),
        (Ok(v), Some(expected)) => Some(format!("expected an error containing {:?}, got {v}", expected.trim())),
        (Err(e), None) => Some(format!("unexpected error: {}", e.message)),
        (Ok(v), None) if rhs == "unknown" => (v != Value::Unknown).then(|| format!("expected unknown, got {v}")),
        (Ok(v), None) => match evaluate(rhs, &NoNames) {
            Ok(expected) if expected == v && same_type(&expected, &v) => None,
            Ok(expected) => Some(format!("expected {expected:?}\n       got {v:?}")),
            Err(e) => Some(format!("cannot evaluate the expected result: {}", e.message)),
        },
    }
}

#[test]
fn documented_examples() {
    let mut files: Vec<_> = std::fs::read_dir("tests/functions")
        .expect("tests/functions exists")
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files found");
    let (mut total, mut failures) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable case file");
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            total += 1;
            if let Some(problem) = check(line, &NoNames) {
                failures.push(format!("{}:{}: {line}\n    {problem}", file.display(), n + 1));
            }
        }
    }
    eprintln!("{total} cases, {} failed", failures.len());
    assert!(failures.is_empty(), "{} of {total} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn multi_line_cases() {
    let mut files: Vec<_> = std::fs::read_dir("tests/functions")
        .expect("tests/functions exists")
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hcl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files found");
    let (mut total, mut failures) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable case file");
        let body = hcl::edit::parser::parse_body(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for attr in body.attributes() {
            total += 1;
            let name = attr.key.as_str();
            let hcl::edit::expr::Expression::Array(pair) = &attr.value else {
                failures.push(format!("{}: {name}: expected [EXPR, EXPECTED]", file.display()));
                continue;
            };
            let [got, want] = [pair.get(0), pair.get(1)].map(|e| e.expect("two elements"));
            let [got, want] = [got, want].map(strata::config::parse::model_expr);
            let got = eval(&got, &Scope::new(&NoNames));
            let want = eval(&want, &Scope::new(&NoNames)).expect("the expected side evaluates");
            let expected_error = want.as_str().and_then(|w| w.strip_prefix("error: "));
            let problem = match (got, expected_error) {
                (Err(e), Some(text)) if e.message.contains(text) => None,
                (Err(e), _) => Some(format!("unexpected error: {}", e.message)),
                (Ok(v), Some(text)) => Some(format!("expected an error containing {text:?}, got {v:?}")),
                (Ok(v), None) if v == want => None,
                (Ok(v), None) => Some(format!("expected {want:?}\n       got {v:?}")),
            };
            if let Some(problem) = problem {
                failures.push(format!("{}: {name}\n    {problem}", file.display()));
            }
        }
    }
    eprintln!("{total} multi-line cases, {} failed", failures.len());
    assert!(failures.is_empty(), "{} of {total} cases failed:\n{}", failures.len(), failures.join("\n"));
}

/// A resolver for the apply phase, where `timestamp()` and `uuid()` are known.
struct Applying;

impl Resolver for Applying {
    fn variable(&self, _: &str) -> Option<Value> {
        None
    }
    fn local(&self, name: &str) -> Result<Value, String> {
        Err(format!("no local {name}"))
    }
    fn resource(&self, addr: &strata::addr::ResourceAddr, _: Option<&strata::addr::InstanceKey>) -> Result<Value, String> {
        Err(format!("no resource {addr}"))
    }
    fn path(&self, _: &str) -> Option<Value> {
        None
    }
    fn functions(&self) -> strata::config::functions::FunctionContext {
        strata::config::functions::FunctionContext { base_dir: "tests/functions/files".into(), apply: true }
    }
}

#[test]
fn timestamp_and_uuid_are_known_during_apply() {
    let ts = evaluate("timestamp()", &Applying).unwrap();
    let re = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").unwrap();
    assert!(re.is_match(ts.as_str().unwrap()), "{ts}");
    let id = evaluate("uuid()", &Applying).unwrap();
    assert!(uuid::Uuid::parse_str(id.as_str().unwrap()).is_ok(), "{id}");
    assert_ne!(id, evaluate("uuid()", &Applying).unwrap());
}

#[test]
fn relative_paths_start_at_the_base_directory() {
    assert_eq!(evaluate(r#"file("hello.txt")"#, &Applying).unwrap(), Value::from("Hello World\n"));
    assert_eq!(evaluate(r#"fileexists("hello.txt")"#, &Applying).unwrap(), Value::Bool(true));
}
