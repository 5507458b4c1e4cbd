//! Filesystem functions. Relative paths start at the module directory
//! (`FunctionContext::base_dir`), except `abspath`, which resolves against
//! the working directory as in Terraform. Paths are returned with `/`.

use super::{arity, map, one, str_value, string, Args, Function, FunctionContext, Result, Table};
use crate::addr::{InstanceKey, ResourceAddr};
use crate::config::eval::{Resolver, Scope};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use strata_provider::Value;

pub(super) const FUNCTIONS: Table = &[
    ("abspath", Function::Pure(abspath)),
    ("basename", Function::Pure(basename)),
    ("dirname", Function::Pure(dirname)),
    ("file", Function::WithContext(file)),
    ("filebase64", Function::WithContext(filebase64)),
    ("filebase64sha256", Function::WithContext(|a, cx| file_digest::<sha2::Sha256>(a, cx, Digest::Base64))),
    ("filebase64sha512", Function::WithContext(|a, cx| file_digest::<sha2::Sha512>(a, cx, Digest::Base64))),
    ("filemd5", Function::WithContext(|a, cx| file_digest::<md5::Md5>(a, cx, Digest::Hex))),
    ("filesha1", Function::WithContext(|a, cx| file_digest::<sha1::Sha1>(a, cx, Digest::Hex))),
    ("filesha256", Function::WithContext(|a, cx| file_digest::<sha2::Sha256>(a, cx, Digest::Hex))),
    ("filesha512", Function::WithContext(|a, cx| file_digest::<sha2::Sha512>(a, cx, Digest::Hex))),
    ("fileexists", Function::WithContext(fileexists)),
    ("fileset", Function::WithContext(fileset)),
    ("pathexpand", Function::Pure(pathexpand)),
    ("templatefile", Function::WithContext(templatefile)),
    ("templatestring", Function::WithContext(templatestring)),
];

/// Lexically simplifies a `/`-separated path, as Go's `filepath.Clean`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn slashes(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

fn abspath(args: Args) -> Result {
    let p = string(&one(args)?)?;
    let path = Path::new(&p);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| format!("cannot determine the working directory: {e}"))?.join(path)
    };
    str_value(clean(&slashes(&abs)))
}

/// The last element of the path, as Go's `filepath.Base`.
fn basename(args: Args) -> Result {
    let p = string(&one(args)?)?;
    if p.is_empty() {
        return str_value(".");
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return str_value("/");
    }
    str_value(trimmed.rsplit('/').next().unwrap_or(trimmed))
}

/// Everything but the last element, as Go's `filepath.Dir`.
fn dirname(args: Args) -> Result {
    let p = string(&one(args)?)?;
    match p.rfind('/') {
        Some(i) => str_value(clean(&p[..=i])),
        None => str_value("."),
    }
}

fn resolve(cx: &FunctionContext, path: &str) -> Result<PathBuf> {
    let expanded = expand_home(path)?;
    Ok(cx.base_dir.join(expanded))
}

fn read(cx: &FunctionContext, path: &str) -> Result<Vec<u8>> {
    let full = resolve(cx, path)?;
    std::fs::read(&full).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "no file exists at {path:?}; this function works only with files that are distributed as part of the configuration source code"
        ),
        _ => format!("failed to read {path:?}: {e}"),
    })
}

fn file(args: Args, cx: &FunctionContext) -> Result {
    let path = string(&one(args)?)?;
    String::from_utf8(read(cx, &path)?).map(Value::String).map_err(|_| {
        format!("contents of {path:?} are not valid UTF-8; use the filebase64 function to obtain the Base64 encoded contents")
    })
}

fn filebase64(args: Args, cx: &FunctionContext) -> Result {
    let path = string(&one(args)?)?;
    str_value(STANDARD.encode(read(cx, &path)?))
}

enum Digest {
    Hex,
    Base64,
}

/// A hash of a file's bytes (`filesha256(p)` is `sha256(file(p))` for a
/// text file, and works for any file).
fn file_digest<D: sha2::Digest>(args: Args, cx: &FunctionContext, form: Digest) -> Result {
    let path = string(&one(args)?)?;
    let hash = D::digest(read(cx, &path)?);
    str_value(match form {
        Digest::Hex => hash.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Digest::Base64 => STANDARD.encode(hash),
    })
}

/// False when nothing is there; an error when something other than a
/// regular file is.
fn fileexists(args: Args, cx: &FunctionContext) -> Result {
    let path = string(&one(args)?)?;
    match std::fs::metadata(resolve(cx, &path)?) {
        Ok(m) if m.is_file() => Ok(Value::Bool(true)),
        Ok(_) => Err(format!("{path:?} exists but is not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Bool(false)),
        Err(e) => Err(format!("failed to stat {path:?}: {e}")),
    }
}

/// Files (not directories) under `path` matching `pattern`, relative to
/// `path`, sorted. Deviation: `{a,b}` alternatives are not supported.
/// Files under `base` matching `pattern`, as Terraform's doublestar
/// patterns: `*`, `?`, `[ab]`, `**` for any number of directories, and
/// `{a,b}` alternatives (within one path component).
fn fileset(args: Args, cx: &FunctionContext) -> Result {
    let [base, pattern] = arity(args)?;
    let (base, pattern) = (string(&base)?, string(&pattern)?);
    let root = resolve(cx, &base)?;
    let failed = |e: String| format!("failed to glob pattern {pattern:?}: {e}");
    let mut out = Vec::new();
    for mut alternative in expand_braces(&pattern).map_err(failed)? {
        // A final `**` matches files too in doublestar; in glob only directories.
        if alternative == "**" || alternative.ends_with("/**") {
            alternative.push_str("/*");
        }
        let full = format!("{}/{}", glob::Pattern::escape(&slashes(&root)), alternative);
        for entry in glob::glob(&full).map_err(|e| failed(e.to_string()))? {
            let p = entry.map_err(|e| failed(e.to_string()))?;
            if p.is_file() {
                let rel = p.strip_prefix(&root).unwrap_or(&p);
                out.push(slashes(rel));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(Value::set(out.into_iter().map(Value::String).collect()))
}

/// `a{b,c{d,e}}f` as `abf`, `acdf`, `acef`. The glob crate has no braces.
fn expand_braces(pattern: &str) -> std::result::Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_owned()]);
    };
    let (mut depth, mut close, mut commas) = (0, None, Vec::new());
    for (i, c) in pattern[open..].char_indices().map(|(i, c)| (open + i, c)) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let close = close.ok_or("unclosed {")?;
    let bounds: Vec<usize> = std::iter::once(open).chain(commas).chain(std::iter::once(close)).collect();
    let mut out = Vec::new();
    for pair in bounds.windows(2) {
        let alternative = &pattern[pair[0] + 1..pair[1]];
        if alternative.contains('/') {
            return Err("a {} alternative cannot hold a /".into());
        }
        let joined = format!("{}{alternative}{}", &pattern[..open], &pattern[close + 1..]);
        out.extend(expand_braces(&joined)?);
    }
    Ok(out)
}

fn expand_home(path: &str) -> Result<String> {
    let rest = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return Ok(path.to_owned()),
    };
    let home = std::env::var("HOME").map_err(|_| "cannot expand ~: HOME is not set".to_owned())?;
    Ok(format!("{home}{rest}"))
}

fn pathexpand(args: Args) -> Result {
    str_value(expand_home(&string(&one(args)?)?)?)
}

/// Templates see only their variables (bound names) and functions.
struct TemplateScope<'a> {
    cx: &'a FunctionContext,
}

impl Resolver for TemplateScope<'_> {
    fn variable(&self, _: &str) -> Option<Value> {
        None
    }
    fn local(&self, name: &str) -> Result {
        Err(format!("local.{name} is not available in a template"))
    }
    fn resource(&self, addr: &ResourceAddr, _: Option<&InstanceKey>) -> Result {
        Err(format!("{addr} is not available in a template; pass it as a template variable"))
    }
    fn path(&self, _: &str) -> Option<Value> {
        None
    }
    fn functions(&self) -> FunctionContext {
        self.cx.clone()
    }
}

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Renders a template file with the given variables, which the template
/// reads as bare names. Deviation: recursive `templatefile` calls are not
/// rejected up front (Terraform forbids them).
fn templatefile(args: Args, cx: &FunctionContext) -> Result {
    let [path, vars] = arity(args)?;
    let path = string(&path)?;
    let source = String::from_utf8(read(cx, &path)?).map_err(|_| format!("contents of {path:?} are not valid UTF-8"))?;
    render_template(&source, &vars, cx).map_err(|e| format!("{path}: {e}"))
}

/// `templatefile` with the template given as a string. Deviation: Terraform
/// insists that the first argument be a reference to a named value (so that
/// a template is not built from untrusted parts); Strata takes any string.
fn templatestring(args: Args, cx: &FunctionContext) -> Result {
    let [template, vars] = arity(args)?;
    render_template(&string(&template)?, &vars, cx)
}

fn render_template(source: &str, vars: &Value, cx: &FunctionContext) -> Result {
    let vars = map(vars).map_err(|_| "the vars argument must be a map or an object".to_owned())?;
    let template = hcl::edit::parser::parse_template(source).map_err(|e| format!("failed to parse the template: {e}"))?;
    let template = crate::config::lower::template::file(&template);
    let resolver = TemplateScope { cx };
    let mut scope = Scope::new(&resolver);
    for (name, value) in vars {
        if !valid_identifier(name) {
            return Err(format!(
                "invalid template variable name {name:?}: must start with a letter, followed by zero or more letters, digits, and underscores"
            ));
        }
        scope = scope.with_bound(name, value.clone());
    }
    crate::config::template::render(&template, &scope).map_err(|e| e.message)
}
