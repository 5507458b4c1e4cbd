//! Input variable values: defaults, `STRATA_VAR_name` environment variables,
//! `strata.stratavars.hcl` / `.json` (Terraform's `terraform.tfvars`), then
//! `*.auto.stratavars.hcl` / `.json` by name, then `-var` and `-var-file` in
//! command-line order, later sources winning (Terraform's precedence).
//! Variable files are HCL, or JSON when their name ends in `.json`. Values are converted
//! to the declared type, checked against `nullable` and `validation` blocks,
//! and marked sensitive where declared.

use super::eval::{eval, Scope};
use super::types::convert;
use super::{config_files, Config, Diagnostic, Diagnostics, Expr, Span, Variable, AUTO_VARS_SUFFIX};
use crate::addr::{InstanceKey, ResourceAddr};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_provider::{Type, Value};

/// A variable given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum VarArg {
    /// `-var name=value`
    Pair(String, String),
    /// `-var-file path`
    File(PathBuf),
}

impl std::str::FromStr for VarArg {
    type Err = String;
    fn from_str(s: &str) -> Result<VarArg, String> {
        // The argument is not quoted back: it may be a secret with a typo.
        let (name, value) = s.split_once('=').ok_or_else(|| "-var expects NAME=VALUE, and the argument has no \"=\"".to_owned())?;
        Ok(VarArg::Pair(name.trim().to_owned(), value.to_owned()))
    }
}

/// Where a value came from, for messages.
enum Origin {
    Raw(String),
    Expr(Expr),
    /// From a JSON variable file.
    Json(Value),
}

/// The variable file loaded without being named, like `terraform.tfvars`.
const DEFAULT_VARS_FILES: [&str; 2] = ["strata.stratavars.hcl", "strata.stratavars.json"];
/// `*.auto.stratavars.json`: the JSON form of the automatic files.
const AUTO_JSON_VARS_SUFFIX: &str = ".auto.stratavars.json";

/// The variable files loaded without being named, in the order they apply.
fn automatic_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = DEFAULT_VARS_FILES.iter().map(|n| dir.join(n)).filter(|p| p.is_file()).collect();
    let mut auto = config_files(dir, AUTO_VARS_SUFFIX).unwrap_or_default();
    auto.extend(config_files(dir, AUTO_JSON_VARS_SUFFIX).unwrap_or_default());
    auto.sort();
    files.extend(auto);
    files
}

/// Resolves every declared variable. Variable files are added to the
/// configuration's sources so that their diagnostics show snippets.
pub fn resolve(config: &mut Config, args: &[VarArg], env: &[(String, String)]) -> (BTreeMap<String, Value>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut given: BTreeMap<String, (Origin, Option<Span>)> = BTreeMap::new();

    for (key, value) in env {
        if let Some(name) = key.strip_prefix("STRATA_VAR_") {
            if config.variables.contains_key(name) {
                given.insert(name.to_owned(), (Origin::Raw(value.clone()), None));
            }
        }
    }
    // Automatic files first, then command-line arguments in order.
    let mut ordered: Vec<Either> = automatic_files(&config.dir).into_iter().map(Either::File).collect();
    for arg in args {
        ordered.push(match arg {
            VarArg::File(p) => Either::File(p.clone()),
            VarArg::Pair(n, v) => Either::Pair(n.clone(), v.clone()),
        });
    }
    for item in ordered {
        match item {
            Either::Pair(name, raw) => {
                if !config.variables.contains_key(&name) {
                    diags.push(Diagnostic::global(format!("-var {name}=...: no variable {name:?} is declared")));
                    continue;
                }
                given.insert(name, (Origin::Raw(raw), None));
            }
            Either::File(path) => load_file(config, &path, &mut given, &mut diags),
        }
    }

    let mut values = BTreeMap::new();
    let vars: Vec<Variable> = config.variables.values().cloned().collect();
    for var in &vars {
        let declared = declaration(config, var);
        let value = match given.remove(&var.name) {
            Some((Origin::Raw(raw), _)) => from_raw(&raw, var.ty.as_ref(), var.sensitive),
            Some((Origin::Json(value), _)) => Ok(value),
            Some((Origin::Expr(expr), _)) => match super::eval::constant(&expr) {
                Ok(v) => Ok(v),
                Err(e) => {
                    diags.push(value_error(config, var, &expr, e, "here"));
                    continue;
                }
            },
            None => match &var.default {
                Some(d) => match super::eval::constant(d) {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        diags.push(value_error(config, var, d, e, "in this default"));
                        continue;
                    }
                },
                None => {
                    diags.push(
                        Diagnostic::error(format!("no value for required variable {:?}", var.name), declared, "declared here without a default")
                            .with_help(format!(
                                "set it with -var {}=..., strata.stratavars.hcl, a *.stratavars.hcl or *.stratavars.json file, or STRATA_VAR_{}",
                                var.name, var.name
                            )),
                    );
                    continue;
                }
            },
        };
        // Marked before conversion, so that a conversion error cannot quote it.
        let value = value.map(|v| if var.sensitive { v.into_sensitive() } else { v });
        let value = match value.and_then(|v| match &var.ty {
            Some(ty) => convert(&v, ty),
            None => Ok(v),
        }) {
            Ok(v) => v,
            Err(e) => {
                diags.push(Diagnostic::error(format!("invalid value for variable {:?}: {e}", var.name), declared, "declared here"));
                continue;
            }
        };
        if value.is_null() && !var.nullable {
            diags.push(Diagnostic::error(format!("variable {:?} must not be null", var.name), declared, "declared with nullable = false"));
            continue;
        }
        validate(var, &value, &mut diags);
        values.insert(var.name.clone(), value);
    }
    (values, diags)
}

/// Where a diagnostic about the variable points: its block, or for a
/// sensitive variable only the block's first line, since the snippet of the
/// whole block would show its default.
fn declaration(config: &Config, var: &Variable) -> Span {
    let span = var.span.clone();
    if !var.sensitive {
        return span;
    }
    let text = config.sources.text(span.file);
    let start = span.range.start.min(text.len());
    let end = text[start..].find('\n').map_or(span.range.end, |n| (start + n).min(span.range.end));
    Span { file: span.file, range: start..end }
}

/// An error in the expression that gives a variable its value (in a
/// variable file or its default). For a sensitive variable it names the
/// place without a snippet and without the evaluator's message, both of
/// which would show the literal secret.
fn value_error(config: &Config, var: &Variable, expr: &Expr, e: super::eval::EvalError, label: &str) -> Diagnostic {
    if !var.sensitive {
        return Diagnostic::error(e.message, Span::new(expr.file, e.range), label);
    }
    let offset = e.range.map_or(0, |r| r.start);
    let (line, col) = config.sources.line_col(expr.file, offset);
    Diagnostic::global(format!(
        "invalid value for the sensitive variable {:?} ({}:{line}:{col}); the details are not shown because they could reveal the value",
        var.name,
        config.sources.path(expr.file).display(),
    ))
}

enum Either {
    File(PathBuf),
    Pair(String, String),
}

fn load_file(config: &mut Config, path: &Path, given: &mut BTreeMap<String, (Origin, Option<Span>)>, diags: &mut Diagnostics) {
    let display = path.strip_prefix(&config.dir).map(Path::to_path_buf).unwrap_or_else(|_| path.to_owned());
    let Some(file) = super::read_source(path, display, &mut config.sources, diags) else { return };
    let text = config.sources.text(file).to_owned();
    if path.extension().is_some_and(|e| e == "json") {
        load_json(config, file, &text, given, diags);
        return;
    }
    let body = match super::parse::parse_body(&text) {
        Ok(b) => b,
        Err(e) => {
            diags.push(super::syntax_error(file, &e));
            return;
        }
    };
    use hcl::edit::Span as _;
    let mut undeclared = 0;
    let mut names = super::lower::expr::Names::default();
    for attr in body.attributes() {
        let name = attr.key.as_str().to_owned();
        let span = Span::new(file, attr.span());
        if !config.variables.contains_key(&name) {
            undeclared += 1;
            if undeclared <= MAX_UNDECLARED_SHOWN {
                diags.push(
                    Diagnostic::error(format!("value for undeclared variable {name:?}"), span, "no such variable").warning(),
                );
            }
            continue;
        }
        let expr = super::lower::expr::node(&attr.value, &mut names);
        given.insert(name, (Origin::Expr(Expr { expr, file }), Some(span)));
    }
    if undeclared > MAX_UNDECLARED_SHOWN {
        diags.push(
            Diagnostic::global(format!(
                "{} more values for undeclared variables in {}",
                undeclared - MAX_UNDECLARED_SHOWN,
                config.sources.path(file).display()
            ))
            .warning(),
        );
    }
}

/// A JSON variable file: one object, a member per variable, whose values
/// are taken as JSON (then converted to the declared type).
fn load_json(config: &Config, file: super::FileId, text: &str, given: &mut BTreeMap<String, (Origin, Option<Span>)>, diags: &mut Diagnostics) {
    let members: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => {
            diags.push(Diagnostic::error("a JSON variable file must hold one object, a member per variable", Span { file, range: 0..text.len().min(1) }, "here"));
            return;
        }
        Err(e) => {
            let offset = offset_of(text, e.line(), e.column());
            // The message of serde_json names no value, only the syntax.
            diags.push(Diagnostic::error(format!("invalid JSON: {e}"), Span { file, range: offset..(offset + 1).min(text.len()) }, "here"));
            return;
        }
    };
    let mut undeclared = 0;
    for (name, value) in members {
        let quoted = serde_json::to_string(&name).expect("strings serialize");
        let start = text.find(&quoted).unwrap_or(0);
        let span = Span { file, range: start..start + quoted.len() };
        if !config.variables.contains_key(&name) {
            undeclared += 1;
            if undeclared <= MAX_UNDECLARED_SHOWN {
                diags.push(Diagnostic::error(format!("value for undeclared variable {name:?}"), span, "no such variable").warning());
            }
            continue;
        }
        given.insert(name, (Origin::Json(Value::from_json(value)), Some(span)));
    }
    if undeclared > MAX_UNDECLARED_SHOWN {
        diags.push(
            Diagnostic::global(format!(
                "{} more values for undeclared variables in {}",
                undeclared - MAX_UNDECLARED_SHOWN,
                config.sources.path(file).display()
            ))
            .warning(),
        );
    }
}

/// The byte offset of a 1-based line and column (serde_json's report).
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// Undeclared names of one variable file shown one by one; the rest are
/// counted (as Terraform does), so a file of many does not bury the output.
const MAX_UNDECLARED_SHOWN: usize = 3;

/// A raw string from `-var` or the environment: taken as is for string (or
/// untyped) variables, parsed as an HCL expression otherwise. For a
/// sensitive variable, errors do not quote the text.
fn from_raw(raw: &str, ty: Option<&Type>, sensitive: bool) -> Result<Value, String> {
    match ty {
        None | Some(Type::String) => Ok(Value::from(raw)),
        Some(ty) => {
            let parsed = super::parse::parse_expr(raw)
                .map_err(|e| format!("cannot parse {raw:?}: {}", e.message))
                .and_then(|expr| eval(&expr, &Scope::new(&super::eval::NoNames)).map_err(|e| e.message));
            parsed.map_err(|e| {
                if sensitive {
                    format!("the value given is not an expression of type {ty} (the details are not shown because the variable is sensitive)")
                } else {
                    e
                }
            })
        }
    }
}

/// Runs the variable's `validation` blocks, which may only use the variable.
fn validate(var: &Variable, value: &Value, diags: &mut Diagnostics) {
    struct OnlyThis<'a>(&'a str, &'a Value);
    impl super::eval::Resolver for OnlyThis<'_> {
        fn variable(&self, name: &str) -> Option<Value> {
            (name == self.0).then(|| self.1.clone())
        }
        fn local(&self, name: &str) -> Result<Value, String> {
            Err(format!("a validation may only refer to the variable itself, not local.{name}"))
        }
        fn resource(&self, addr: &ResourceAddr, _: Option<&InstanceKey>) -> Result<Value, String> {
            Err(format!("a validation may only refer to the variable itself, not {addr}"))
        }
        fn path(&self, _: &str) -> Option<Value> {
            None
        }
    }
    let names = OnlyThis(&var.name, value);
    for v in &var.validations {
        let scope = Scope::new(&names);
        match eval(&v.condition.expr, &scope) {
            Ok(ok) if ok.as_bool() == Some(true) || ok.is_unknown() => {}
            Ok(ok) if ok.as_bool() == Some(false) => {
                let message = eval(&v.error_message.expr, &scope)
                    .ok()
                    .and_then(|m| if m.is_sensitive() { None } else { m.as_str().map(str::to_owned) })
                    .unwrap_or_else(|| "validation failed".into());
                diags.push(Diagnostic::error(
                    format!("invalid value for variable {:?}: {message}", var.name),
                    v.condition.span(),
                    "this validation failed",
                ));
            }
            Ok(other) => diags.push(Diagnostic::error(
                format!("a validation condition must be a bool, found {}", other.kind()),
                v.condition.span(),
                "here",
            )),
            Err(e) => diags.push(Diagnostic::error(e.message, Span::new(v.condition.file, e.range), "here")),
        }
    }
}
