//! The configuration language: loading `*.strata.hcl` files, lowering them
//! into a typed model that keeps every expression unevaluated with its place in
//! the source, evaluating expressions, and input variables.
//!
//! Everything here returns results plus [`Diagnostics`]; nothing stops at the
//! first problem, so `strata validate` reports every problem at once.

pub mod ast;
pub mod diag;
pub mod eval;
pub mod fmt;
pub mod functions;
mod lower;
pub mod parse;
pub(crate) mod pieces;
pub mod refs;
mod template;
pub mod types;
pub mod unify;
pub mod vars;

pub use diag::{Diagnostic, Diagnostics, FileId, Severity, Sources, Span};

use crate::addr::{Mode, ResourceAddr};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_provider::Type;

/// Configuration files end with this, so they can sit beside Terraform's `.tf`.
pub const CONFIG_SUFFIX: &str = ".strata.hcl";
/// Variable files end with this; `*.auto.stratavars.hcl` load automatically.
pub const VARS_SUFFIX: &str = ".stratavars.hcl";
pub const AUTO_VARS_SUFFIX: &str = ".auto.stratavars.hcl";

/// An unevaluated expression and the file it came from.
#[derive(Debug, Clone)]
pub struct Expr {
    pub expr: ast::Node,
    pub file: FileId,
}

impl Expr {
    pub fn span(&self) -> Span {
        Span::new(self.file, self.expr.span())
    }
}

/// An attribute inside a resource, provider or nested block.
#[derive(Debug, Clone)]
pub struct AttrExpr {
    pub name: String,
    pub expr: Expr,
    /// The span of the whole `name = value`.
    pub span: Span,
}

/// The attributes and nested blocks of a body, unevaluated.
#[derive(Debug, Clone, Default)]
pub struct BodyExprs {
    pub attrs: Vec<AttrExpr>,
    pub blocks: Vec<NestedBlockExpr>,
}

impl BodyExprs {
    /// Frees the room left by pushing: a body is kept for the whole run,
    /// and a vector grown by one push holds four (issue 12).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.attrs.shrink_to_fit();
        self.blocks.shrink_to_fit();
    }

    pub fn attr(&self, name: &str) -> Option<&AttrExpr> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct NestedBlockExpr {
    pub name: String,
    pub body: BodyExprs,
    pub span: Span,
    /// Set for `dynamic "name" { for_each = ..., content { ... } }`: `body`
    /// is the content, generated once per element.
    pub dynamic: Option<Dynamic>,
}

#[derive(Debug, Clone)]
pub struct Dynamic {
    pub for_each: Expr,
    /// The name the content uses for the element (`iterator`, or the block
    /// name): `NAME.key`, `NAME.value`.
    pub iterator: String,
}

/// `terraform { backend "NAME" { ... } }`.
#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    pub path: Option<String>,
    /// Every setting of the block (string literals), `path` included.
    pub settings: std::collections::BTreeMap<String, String>,
    pub span: Span,
}

/// `terraform { encryption { ... } }`: client-side encryption of the state
/// and of saved plans, as OpenTofu has it.
#[derive(Debug, Clone, Default)]
pub struct EncryptionConfig {
    pub key_providers: Vec<KeyProviderConfig>,
    pub methods: Vec<MethodConfig>,
    pub state: Option<EncryptionTarget>,
    pub plan: Option<EncryptionTarget>,
    pub span: Span,
}

/// `key_provider "pbkdf2" "NAME" { passphrase = ..., iterations = ... }`.
#[derive(Debug, Clone)]
pub struct KeyProviderConfig {
    pub kind: String,
    pub name: String,
    pub body: BodyExprs,
    pub span: Span,
}

/// `method "aes_gcm" "NAME" { keys = key_provider.pbkdf2.K }` or `method "unencrypted" "NAME" {}`.
#[derive(Debug, Clone)]
pub struct MethodConfig {
    pub kind: String,
    pub name: String,
    /// `TYPE.NAME` of the key provider.
    pub keys: Option<(String, Span)>,
    pub span: Span,
}

/// `state { method = method.T.N; fallback { method = ... }; enforced = true }`, or `plan { ... }`.
#[derive(Debug, Clone, Default)]
pub struct EncryptionTarget {
    /// `TYPE.NAME` of the method.
    pub method: Option<(String, Span)>,
    pub fallback: Option<(String, Span)>,
    pub enforced: bool,
    pub span: Span,
}

/// A `provider` block.
#[derive(Debug, Clone)]
pub struct ProviderBlock {
    pub name: String,
    pub alias: Option<String>,
    pub body: BodyExprs,
    pub span: Span,
}

impl ProviderBlock {
    /// `name` or `name.alias`, as resources and state refer to it.
    pub fn config_addr(&self) -> String {
        provider_config_addr(&self.name, self.alias.as_deref())
    }
}

pub fn provider_config_addr(name: &str, alias: Option<&str>) -> String {
    match alias {
        Some(a) => format!("{name}.{a}"),
        None => name.to_owned(),
    }
}

/// A `condition` with its `error_message`: variable validations,
/// preconditions, postconditions and check assertions.
#[derive(Debug, Clone)]
pub struct Validation {
    pub condition: Expr,
    pub error_message: Expr,
}

/// A `check` block: assertions reported as warnings.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub asserts: Vec<Validation>,
    pub span: Span,
}

/// `moved { from = ..., to = ... }`: a rename in state.
#[derive(Debug, Clone)]
pub struct Moved {
    pub from: crate::addr::Target,
    pub to: crate::addr::Target,
    pub span: Span,
}

/// `removed { from = ..., lifecycle { destroy = false } }`.
#[derive(Debug, Clone)]
pub struct Removed {
    pub from: crate::addr::Target,
    pub destroy: bool,
    pub span: Span,
}

/// `import { to = ..., id = ... }`: adopt an existing object at plan time.
#[derive(Debug, Clone)]
pub struct Import {
    pub to: crate::addr::InstanceAddr,
    pub id: Expr,
    pub span: Span,
}

/// A `variable` block.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub ty: Option<Type>,
    pub default: Option<Expr>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub nullable: bool,
    pub validations: Vec<Validation>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Local {
    pub name: String,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub create_before_destroy: bool,
    pub prevent_destroy: bool,
    /// Attribute names; `all` ignores every attribute.
    pub ignore_changes: Vec<String>,
    pub ignore_all_changes: bool,
    /// References whose change replaces the instance.
    pub replace_triggered_by: Vec<Expr>,
    pub preconditions: Vec<Validation>,
    pub postconditions: Vec<Validation>,
}

/// A resource's `lifecycle` block, which most resources do not have: kept
/// behind a pointer, and none at all when it is empty, so a resource without
/// one pays a pointer instead of the block's ~100 bytes (issue 12). Reads
/// as a [`Lifecycle`].
#[derive(Debug, Clone, Default)]
pub struct LifecycleBlock(Option<Box<Lifecycle>>);

/// What a resource without a `lifecycle` block reads.
static NO_LIFECYCLE: Lifecycle = Lifecycle {
    create_before_destroy: false,
    prevent_destroy: false,
    ignore_changes: Vec::new(),
    ignore_all_changes: false,
    replace_triggered_by: Vec::new(),
    preconditions: Vec::new(),
    postconditions: Vec::new(),
};

impl LifecycleBlock {
    pub fn new(lifecycle: Lifecycle) -> LifecycleBlock {
        let empty = !lifecycle.create_before_destroy
            && !lifecycle.prevent_destroy
            && !lifecycle.ignore_all_changes
            && lifecycle.ignore_changes.is_empty()
            && lifecycle.replace_triggered_by.is_empty()
            && lifecycle.preconditions.is_empty()
            && lifecycle.postconditions.is_empty();
        LifecycleBlock((!empty).then(|| Box::new(lifecycle)))
    }
}

impl std::ops::Deref for LifecycleBlock {
    type Target = Lifecycle;
    fn deref(&self) -> &Lifecycle {
        self.0.as_deref().unwrap_or(&NO_LIFECYCLE)
    }
}

/// A `resource` or `data` block.
#[derive(Debug, Clone)]
pub struct Resource {
    pub addr: ResourceAddr,
    pub count: Option<Expr>,
    pub for_each: Option<Expr>,
    pub depends_on: Vec<Expr>,
    /// `provider = NAME` or `NAME.ALIAS`; `None` means the default
    /// configuration of the provider named by the type's prefix.
    pub provider: Option<(String, Option<String>, Span)>,
    pub lifecycle: LifecycleBlock,
    pub body: BodyExprs,
    pub span: Span,
    /// The span of the block header, for labels under diagnostics.
    pub header: Span,
}

impl Resource {
    /// The provider name implied by the type (`kvm_domain` → `kvm`) unless
    /// `provider` says otherwise.
    pub fn provider_name(&self) -> &str {
        match &self.provider {
            Some((name, _, _)) => name,
            None => provider_for_type(&self.addr.type_name),
        }
    }
    pub fn provider_config_addr(&self) -> String {
        match &self.provider {
            Some((name, alias, _)) => provider_config_addr(name, alias.as_deref()),
            None => provider_for_type(&self.addr.type_name).to_owned(),
        }
    }
}

pub fn provider_for_type(type_name: &str) -> &str {
    type_name.split('_').next().unwrap_or(type_name)
}

#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub value: Expr,
    pub sensitive: bool,
    pub description: Option<String>,
    pub depends_on: Vec<Expr>,
    pub span: Span,
}

/// `module "name" { source = "./dir" ... }`: a call of a child module.
#[derive(Debug, Clone)]
pub struct ModuleCall {
    pub name: String,
    /// Local path, relative to the calling module's directory.
    pub source: String,
    pub count: Option<Expr>,
    pub for_each: Option<Expr>,
    pub depends_on: Vec<Expr>,
    /// Values for the child's variables.
    pub inputs: Vec<AttrExpr>,
    pub span: Span,
    pub header: Span,
}

/// How deep modules may nest (also stops a module that calls itself).
const MAX_MODULE_DEPTH: usize = 16;

/// A whole configuration: every `*.strata.hcl` file of a directory, and the
/// modules it calls. Every module's files are in the root's `sources`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub dir: PathBuf,
    pub sources: Sources,
    /// The workspace the configuration is evaluated for (`terraform.workspace`),
    /// set by the engine on the root; `None` reads as `default`.
    pub workspace: Option<String>,
    pub backend: Option<Backend>,
    pub encryption: Option<EncryptionConfig>,
    pub providers: Vec<ProviderBlock>,
    pub variables: BTreeMap<String, Variable>,
    pub locals: BTreeMap<String, Local>,
    pub resources: BTreeMap<ResourceAddr, Resource>,
    pub outputs: BTreeMap<String, Output>,
    pub checks: Vec<Check>,
    pub moved: Vec<Moved>,
    pub removed: Vec<Removed>,
    pub imports: Vec<Import>,
    pub module_calls: BTreeMap<String, ModuleCall>,
    /// The configuration of each called module, by call name; calls of one
    /// source directory from one module share it (it is loaded once).
    pub children: BTreeMap<String, Arc<Config>>,
}

impl Config {
    /// Loads every configuration file of `dir`, in name order, and the
    /// modules they call.
    pub fn load(dir: &Path) -> (Config, Diagnostics) {
        let mut diags = Diagnostics::default();
        let mut sources = Sources::default();
        let mut config = load_module(dir, dir, &mut sources, &mut diags, &mut Vec::new());
        config.sources = sources;
        (config, diags)
    }

    /// Parses one file's text into the configuration (also used by tests and
    /// the fuzz target).
    pub fn add_source(&mut self, path: PathBuf, text: String, diags: &mut Diagnostics) {
        let file = self.sources.add(path, text);
        let text = self.sources.text(file).to_owned();
        lower::lower_file(self, file, &text, diags);
    }

    /// The configuration a module path runs (`[]` is this one).
    pub fn module(&self, path: &[String]) -> Option<&Config> {
        match path.split_first() {
            None => Some(self),
            Some((first, rest)) => self.children.get(first)?.module(rest),
        }
    }

    /// Every module configuration with its path, this one first.
    pub fn modules(&self) -> Vec<(Vec<String>, &Config)> {
        let mut out = vec![(Vec::new(), self)];
        for (name, child) in &self.children {
            for (mut path, c) in child.modules() {
                path.insert(0, name.clone());
                out.push((path, c));
            }
        }
        out
    }

    /// All managed and data resources.
    pub fn resource(&self, addr: &ResourceAddr) -> Option<&Resource> {
        self.resources.get(addr)
    }

    pub fn managed(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values().filter(|r| r.addr.mode == Mode::Managed)
    }

    pub fn provider_block(&self, config_addr: &str) -> Option<&ProviderBlock> {
        self.providers.iter().find(|p| p.config_addr() == config_addr)
    }

    /// A hash of every configuration file, so a saved plan can refuse to apply
    /// to a configuration that changed since. Variable files are left out:
    /// the plan holds the values they gave, and applying it reads none.
    pub fn fingerprint(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let variable_file = |path: &Path| path.to_str().is_some_and(|p| p.ends_with(VARS_SUFFIX) || p.ends_with(".stratavars.json"));
        for (_, path, text) in self.sources.iter().filter(|(_, path, _)| !variable_file(path)) {
            path.hash(&mut h);
            text.hash(&mut h);
        }
        format!("{:016x}", h.finish())
    }
}

/// Loads one module directory and, recursively, the modules it calls.
/// `calling` holds the (canonical) directories of the modules on the way
/// here, so a module that calls itself, directly or through others, is an
/// error at the call instead of an exponential tree of copies.
fn load_module(dir: &Path, root: &Path, sources: &mut Sources, diags: &mut Diagnostics, calling: &mut Vec<PathBuf>) -> Config {
    let mut config = Config { dir: dir.to_owned(), ..Config::default() };
    let depth = calling.len();
    calling.push(dir.canonicalize().unwrap_or_else(|_| dir.to_owned()));
    let files = match config_files(dir, CONFIG_SUFFIX) {
        Ok(files) => files,
        Err(e) => {
            diags.push(Diagnostic::global(format!("cannot read {}: {e}", dir.display())));
            return config;
        }
    };
    if files.is_empty() {
        diags.push(
            Diagnostic::global(format!("no configuration files (*{CONFIG_SUFFIX}) in {}", dir.display()))
                .with_help("Strata reads *.strata.hcl files, not Terraform's *.tf"),
        );
    }
    // Every file is read first, so that all of them are parsed together
    // (the pieces of all of them shared out among the cores); a file's
    // problems are reported in its place, as if each had been read and
    // parsed before the next.
    let read: Vec<(Diagnostics, Option<FileId>)> = files
        .iter()
        .map(|path| {
            let display = path.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| path.clone());
            let mut problems = Diagnostics::default();
            let file = read_source(path, display, sources, &mut problems);
            (problems, file)
        })
        .collect();
    let texts: Vec<(FileId, &str)> = read.iter().filter_map(|(_, file)| *file).map(|file| (file, sources.text(file))).collect();
    let mut lowered = lower::lower_files(&mut config, &texts).into_iter();
    for (problems, file) in read {
        diags.extend(problems);
        if file.is_some() {
            diags.extend(lowered.next().unwrap_or_default());
        }
    }
    let calls: Vec<ModuleCall> = config.module_calls.values().cloned().collect();
    // Calls of one directory from here load the same module in the same
    // context (the same modules on the way), so it is loaded once and
    // shared; each later call still adds the module's files to `sources`
    // and repeats its problems, as loading it again would.
    let mut loaded: HashMap<PathBuf, LoadedModule> = HashMap::new();
    for call in calls {
        let local = call.source.starts_with("./") || call.source.starts_with("../");
        if !local {
            diags.push(Diagnostic::error(
                format!("module source {:?} is not a local path", call.source),
                call.header.clone(),
                "only ./ and ../ sources are supported so far",
            ));
            continue;
        }
        if depth >= MAX_MODULE_DEPTH {
            diags.push(Diagnostic::error(
                format!("modules nest more than {MAX_MODULE_DEPTH} deep (does a module call itself?)"),
                call.header.clone(),
                "here",
            ));
            continue;
        }
        // Lexically normalised, so "./modules/x" shows as ".../modules/x".
        let child_dir: PathBuf = dir.join(&call.source).components().collect();
        if !child_dir.is_dir() {
            diags.push(Diagnostic::error(
                format!("module {:?}: {} is not a directory", call.name, child_dir.display()),
                call.header.clone(),
                "source not found",
            ));
            continue;
        }
        let canonical = child_dir.canonicalize().unwrap_or_else(|_| child_dir.clone());
        if calling.contains(&canonical) {
            let shown = match canonical.strip_prefix(&calling[0]) {
                Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
                Ok(rel) => rel.to_owned(),
                Err(_) => canonical.clone(),
            };
            diags.push(
                Diagnostic::error(
                    format!(
                        "module {:?} (source {:?}) calls {}, a module that is already being loaded: a module cannot call itself",
                        call.name,
                        call.source,
                        shown.display()
                    ),
                    call.header.clone(),
                    "recursive module call",
                )
                .with_help("modules form a tree; move what the module shares into a module of its own"),
            );
            continue;
        }
        let child = match loaded.get(&canonical) {
            Some(done) => {
                sources.repeat(done.files.clone());
                diags.0.extend(done.problems.iter().cloned());
                done.config.clone()
            }
            None => {
                let (first_file, first_problem) = (sources.len(), diags.0.len());
                let child = Arc::new(load_module(&child_dir, root, sources, diags, calling));
                let files = first_file..sources.len();
                let problems = diags.0[first_problem..].to_vec();
                loaded.insert(canonical, LoadedModule { config: child.clone(), files, problems });
                child
            }
        };
        config.children.insert(call.name.clone(), child);
    }
    calling.pop();
    config
}

/// A module loaded for a call, for the next calls of its directory.
struct LoadedModule {
    config: Arc<Config>,
    /// The entries of `sources` its loading added.
    files: std::ops::Range<usize>,
    /// The problems its loading reported.
    problems: Vec<Diagnostic>,
}

/// The diagnostic for a file the parser refuses.
pub(crate) fn syntax_error(file: FileId, e: &parse::SyntaxError) -> Diagnostic {
    Diagnostic::error(format!("syntax error: {}", e.message), Span { file, range: e.range.clone() }, e.message.clone())
}

/// Reads a configuration or variable file into `sources`. A file that is not
/// UTF-8 is an error at the first bad byte (its text is kept, made valid, so
/// the diagnostic can show the line).
pub(crate) fn read_source(path: &Path, display: PathBuf, sources: &mut Sources, diags: &mut Diagnostics) -> Option<FileId> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            diags.push(Diagnostic::global(format!("cannot read {}: {e}", path.display())));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(sources.add(display, text)),
        Err(e) => {
            let bad = e.utf8_error();
            let offset = bad.valid_up_to();
            let byte = e.as_bytes()[offset];
            let file = sources.add(display, String::from_utf8_lossy(e.as_bytes()).into_owned());
            // The lossy text has the same bytes up to the first bad one.
            let end = offset + sources.text(file)[offset..].chars().next().map_or(0, char::len_utf8);
            diags.push(
                Diagnostic::error(format!("invalid UTF-8: byte 0x{byte:02x} is not valid here"), Span { file, range: offset..end }, "not UTF-8")
                    .with_help("configuration files must be UTF-8 text"),
            );
            None
        }
    }
}

/// Files of `dir` whose names end with `suffix`, sorted by name.
pub fn config_files(dir: &Path, suffix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_of_one_directory_share_its_module_and_repeat_its_files_and_problems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("m")).unwrap();
        let module = "resource \"strata_data\" \"x\" {\n  input = 1\n}\nresource \"strata_data\" \"x\" {\n  input = 2\n}\n";
        std::fs::write(dir.path().join("m/main.strata.hcl"), module).unwrap();
        let root = "module \"a\" {\n  source = \"./m\"\n}\nmodule \"b\" {\n  source = \"./m\"\n}\n";
        std::fs::write(dir.path().join("main.strata.hcl"), root).unwrap();
        let (config, diags) = Config::load(dir.path());
        assert!(Arc::ptr_eq(&config.children["a"], &config.children["b"]));
        assert_eq!(config.children["a"].resources.len(), 1);
        // The fingerprint of a saved plan hashes the module's file once per call.
        let module_files = config.sources.iter().filter(|(_, path, _)| path.ends_with("m/main.strata.hcl")).count();
        assert_eq!(module_files, 2);
        // The duplicate block is reported once per call, as two loads would.
        assert_eq!(diags.0.len(), 2, "{diags:?}");
        assert_eq!(diags.0[0], diags.0[1]);
        assert!(diags.0[0].message.contains("strata_data.x"), "{diags:?}");
    }
}
