//! Lowering hcl-edit's syntax tree into the configuration model, reporting
//! every structural problem (unknown blocks, missing labels, duplicates).

use super::*;
use hcl::edit::expr::{Expression, TraversalOperator};
use hcl::edit::Span as _;
use hcl::edit::structure::{Block, Body, Structure};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

mod encryption;
pub(crate) mod expr;
pub(crate) mod template;

/// Lowers one file into its module.
pub(super) fn lower_file(config: &mut Config, file: FileId, text: &str, diags: &mut Diagnostics) {
    for lowered in lower_files(config, &[(file, text)]) {
        diags.extend(lowered);
    }
}

/// Lowers the files of a module, in order, into `config`, and returns each
/// file's diagnostics.
///
/// Each file is cut into pieces of whole top-level blocks; every piece is
/// parsed and lowered on its own (on every core, see `pieces::in_order`)
/// into a part of its own, and the parts join in source order: a piece's
/// into its file's, a file's into the module once all of it has parsed, so
/// a file with a syntax error adds nothing but the error, as when it was
/// parsed whole. A piece is lowered without knowing the pieces and files
/// before it, so where one declares a name they declare too, the file's
/// pieces are parsed again and lowered one after the other after them, as
/// one thread would have done, which finds the duplicates where it found
/// them: the model and every diagnostic, in its order, are those of
/// lowering the files whole one after the other.
pub(super) fn lower_files(config: &mut Config, files: &[(FileId, &str)]) -> Vec<Diagnostics> {
    let threads = super::pieces::threads_for(files.iter().map(|(_, text)| text.len()).sum());
    lower_files_in(config, files, |len| super::pieces::piece_size(len, super::pieces::PIECE), threads)
}

/// [`lower_files`] with pieces of `piece_size(file length)` bytes, on up to
/// `threads` threads.
fn lower_files_in(config: &mut Config, files: &[(FileId, &str)], piece_size: impl Fn(usize) -> usize, threads: usize) -> Vec<Diagnostics> {
    let mut joined = Joined { config, files, done: files.iter().map(|_| Diagnostics::default()).collect(), current: None };
    let mut jobs = Vec::new();
    for (index, &(file, text)) in files.iter().enumerate() {
        match super::parse::pieces(text, piece_size(text.len())) {
            Ok(ranges) => jobs.extend(ranges.into_iter().map(|range| Piece { index, range })),
            Err(e) => joined.done[index].push(syntax_error(file, &e)),
        }
    }
    // Once a piece of a file does not parse, the file is parsed again whole:
    // its other pieces need not be.
    let failed: Vec<AtomicBool> = files.iter().map(|_| AtomicBool::new(false)).collect();
    let lower = |piece: &Piece| {
        let (file, text) = files[piece.index];
        if failed[piece.index].load(Ordering::Relaxed) {
            return None;
        }
        let lowered = LoweredPiece::new(file, text, piece.range.clone());
        if lowered.is_none() {
            failed[piece.index].store(true, Ordering::Relaxed);
        }
        lowered
    };
    let before = joined.config.resources.len();
    super::pieces::in_order(&jobs, threads, lower, |at, lowered| joined.take(&jobs[at], lowered));
    joined.finish_file();
    // The resources are most of a large module, kept for the whole run.
    if joined.config.resources.len() >= 2 * before.max(REPACK_FROM) {
        repack(&mut joined.config.resources);
    }
    joined.done
}

/// How many resources a module needs before [`repack`] is worth a pass.
const REPACK_FROM: usize = 64;

/// Rebuilds a map from its entries in order, which fills every node.
///
/// The joins insert a piece's names one by one among the others', in an
/// order that is not the map's, so nodes split and stay between half and
/// three quarters full: a quarter or more of the map, whose entries are a
/// resource each, is room nothing takes (issue 12). Built from sorted
/// entries, nodes are full. Done only when this load has at least doubled
/// the map, so repeated loads stay linear; the entries moved out free the
/// old nodes as they go.
fn repack<K: Ord, V>(map: &mut BTreeMap<K, V>) {
    let mut entries = Vec::with_capacity(map.len());
    entries.extend(std::mem::take(map));
    *map = entries.into_iter().collect();
}

/// A piece of a file: the file's index in `lower_files`, and its bytes.
struct Piece {
    index: usize,
    range: std::ops::Range<usize>,
}

/// A piece lowered on its own.
struct LoweredPiece {
    part: Config,
    diags: Diagnostics,
    /// The names of its top-level attributes (which are errors; the parser
    /// refuses one defined twice in a file, see `Joined::take`).
    attributes: Vec<String>,
}

impl LoweredPiece {
    /// `None` when the piece does not parse alone.
    fn new(file: FileId, text: &str, range: std::ops::Range<usize>) -> Option<LoweredPiece> {
        let body = super::parse::parse_piece_for_model(text, range)?;
        let attributes = body.iter().filter_map(Structure::as_attribute).map(|a| a.key.as_str().to_owned()).collect();
        let (mut part, mut diags, earlier) = (Config::default(), Diagnostics::default(), Config::default());
        Lowerer { file, text, earlier: &earlier, diags: &mut diags, names: expr::Names::default() }.body_of_file(&mut part, body);
        Some(LoweredPiece { part, diags, attributes })
    }
}

/// The pieces lowered so far, joined in source order.
struct Joined<'c, 'f> {
    /// The module, with the files joined so far.
    config: &'c mut Config,
    files: &'f [(FileId, &'f str)],
    /// Each file's diagnostics.
    done: Vec<Diagnostics>,
    /// The file whose pieces are being joined.
    current: Option<FileJoin>,
}

/// A file whose pieces are being joined.
struct FileJoin {
    index: usize,
    /// Its pieces so far.
    ranges: Vec<std::ops::Range<usize>>,
    part: Config,
    diags: Diagnostics,
    attributes: HashSet<String>,
    fallback: Fallback,
}

/// How a file is lowered when its pieces cannot simply be joined.
#[derive(PartialEq)]
enum Fallback {
    /// They can.
    None,
    /// A piece declares a name an earlier one does: the pieces are lowered
    /// again one after the other, each knowing those before it, which finds
    /// the duplicates where one thread would have.
    OneByOne,
    /// A piece did not parse alone, or defined a top-level attribute an
    /// earlier one defined: the file is parsed whole (the parser refuses an
    /// attribute defined twice in a body), and its error stands alone.
    Whole,
}

impl Joined<'_, '_> {
    fn take(&mut self, piece: &Piece, lowered: Option<LoweredPiece>) {
        if self.current.as_ref().is_none_or(|f| f.index != piece.index) {
            self.finish_file();
            self.current = Some(FileJoin {
                index: piece.index,
                ranges: Vec::new(),
                part: Config::default(),
                diags: Diagnostics::default(),
                attributes: HashSet::new(),
                fallback: Fallback::None,
            });
        }
        let Some(joining) = self.current.as_mut() else { return };
        joining.ranges.push(piece.range.clone());
        if joining.fallback == Fallback::Whole {
            return;
        }
        let Some(lowered) = lowered else {
            joining.fallback = Fallback::Whole;
            return;
        };
        if !lowered.attributes.into_iter().all(|name| joining.attributes.insert(name)) {
            joining.fallback = Fallback::Whole;
            return;
        }
        if joining.fallback == Fallback::None {
            if join(&mut joining.part, lowered.part, Duplicates::Refuse) {
                joining.diags.extend(lowered.diags);
            } else {
                joining.fallback = Fallback::OneByOne;
            }
        }
    }

    /// Joins the file being joined into the module.
    fn finish_file(&mut self) {
        let Some(mut joining) = self.current.take() else { return };
        let (file, text) = self.files[joining.index];
        if joining.fallback == Fallback::None && declares_any(&joining.part, self.config) {
            joining.fallback = Fallback::OneByOne;
        }
        let diags = match joining.fallback {
            Fallback::None => {
                join(self.config, joining.part, Duplicates::Absent);
                joining.diags
            }
            Fallback::OneByOne => {
                let (mut part, mut diags) = (Config::default(), Diagnostics::default());
                let mut cx = Lowerer { file, text, earlier: self.config, diags: &mut diags, names: expr::Names::default() };
                // Every piece parsed alone before, so it parses again.
                for body in joining.ranges.into_iter().filter_map(|range| super::parse::parse_piece_for_model(text, range)) {
                    cx.body_of_file(&mut part, body);
                }
                join(self.config, part, Duplicates::Absent);
                diags
            }
            Fallback::Whole => {
                let mut diags = Diagnostics::default();
                match super::parse::parse_whole_for_model(text) {
                    Ok(body) => {
                        let mut part = Config::default();
                        Lowerer { file, text, earlier: self.config, diags: &mut diags, names: expr::Names::default() }.body_of_file(&mut part, body);
                        join(self.config, part, Duplicates::Absent);
                    }
                    Err(e) => diags.push(syntax_error(file, &e)),
                }
                diags
            }
        };
        self.done[joining.index] = diags;
    }
}

/// Whether `part` declares a name (a variable, local value, resource,
/// output, module call or provider configuration) `earlier` does.
fn declares_any(part: &Config, earlier: &Config) -> bool {
    fn any_key<K: Ord, V>(mine: &BTreeMap<K, V>, theirs: &BTreeMap<K, V>) -> bool {
        !theirs.is_empty() && mine.keys().any(|k| theirs.contains_key(k))
    }
    any_key(&part.variables, &earlier.variables)
        || any_key(&part.locals, &earlier.locals)
        || any_key(&part.resources, &earlier.resources)
        || any_key(&part.outputs, &earlier.outputs)
        || any_key(&part.module_calls, &earlier.module_calls)
        || part.providers.iter().any(|p| earlier.provider_block(&p.config_addr()).is_some())
}

/// What [`join`] does with a name `part` declares that `config` already does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Duplicates {
    /// Stop and answer false, `config` left with some of `part` in it: one
    /// look-up per name instead of a look-up and an insertion.
    Refuse,
    /// There are none (see `declares_any`, and the lowerer drops a name
    /// `earlier` declares): insert without looking.
    Absent,
}

/// Adds what a file's part holds to its module; false when `duplicates` is
/// [`Duplicates::Refuse`] and `part` declares a name `config` does.
fn join(config: &mut Config, part: Config, duplicates: Duplicates) -> bool {
    fn join_map<K: Ord, V>(into: &mut BTreeMap<K, V>, mut from: BTreeMap<K, V>, duplicates: Duplicates) -> bool {
        if into.is_empty() {
            std::mem::swap(into, &mut from);
            return true;
        }
        if duplicates == Duplicates::Absent {
            into.extend(from);
            return true;
        }
        from.into_iter().all(|(k, v)| match into.entry(k) {
            std::collections::btree_map::Entry::Vacant(free) => {
                free.insert(v);
                true
            }
            std::collections::btree_map::Entry::Occupied(_) => false,
        })
    }
    let Config { backend, encryption, providers, variables, locals, resources, outputs, checks, moved, removed, imports, module_calls, .. } = part;
    if duplicates == Duplicates::Refuse && providers.iter().any(|p| config.provider_block(&p.config_addr()).is_some()) {
        return false;
    }
    if backend.is_some() {
        config.backend = backend;
    }
    if encryption.is_some() {
        config.encryption = encryption;
    }
    config.providers.extend(providers);
    config.checks.extend(checks);
    config.moved.extend(moved);
    config.removed.extend(removed);
    config.imports.extend(imports);
    join_map(&mut config.variables, variables, duplicates)
        && join_map(&mut config.locals, locals, duplicates)
        && join_map(&mut config.resources, resources, duplicates)
        && join_map(&mut config.outputs, outputs, duplicates)
        && join_map(&mut config.module_calls, module_calls, duplicates)
}

struct Lowerer<'a> {
    file: FileId,
    /// The file's text: the tree's decor is spans into it.
    text: &'a str,
    /// The module as the files before this one left it (for duplicates).
    earlier: &'a Config,
    diags: &'a mut Diagnostics,
    /// The names of the piece's (or file's) expressions, each kept once.
    names: expr::Names,
}

impl Lowerer<'_> {
    /// A file's (piece of) body. The parsed tree is consumed: its
    /// expressions move into the model instead of being copied, and the rest
    /// of it is freed here.
    fn body_of_file(&mut self, config: &mut Config, body: Body) {
        for structure in body {
            match structure {
                Structure::Attribute(attr) => self.error(
                    format!("unexpected attribute {:?} at the top level", attr.key.as_str()),
                    attr.span(),
                    "attributes belong inside a block",
                ),
                Structure::Block(block) => self.top_level_block(config, block),
            }
        }
    }

    fn span(&self, range: Option<std::ops::Range<usize>>) -> Span {
        Span::new(self.file, range)
    }

    fn error(&mut self, message: impl Into<String>, range: Option<std::ops::Range<usize>>, label: &str) {
        let span = self.span(range);
        self.diags.push(Diagnostic::error(message, span, label));
    }

    /// An expression of the model; the parsed one is dropped here.
    fn expr(&mut self, expr: Expression) -> Expr {
        self.expr_of(&expr)
    }

    fn expr_of(&mut self, expr: &Expression) -> Expr {
        Expr { expr: expr::node(expr, &mut self.names), file: self.file }
    }

    /// The block's labels, or a diagnostic if there are not exactly `n`.
    fn labels<'b>(&mut self, block: &'b Block, n: usize, what: &str) -> Option<Vec<&'b str>> {
        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
        if labels.len() == n {
            return Some(labels);
        }
        self.error(
            format!("a {} block needs {n} label(s) ({what}), found {}", block.ident.as_str(), labels.len()),
            block.ident.span(),
            "here",
        );
        None
    }

    fn top_level_block(&mut self, config: &mut Config, block: Block) {
        match block.ident.as_str() {
            "terraform" | "strata" => self.settings(config, &block),
            "provider" => self.provider(config, block),
            "variable" => self.variable(config, block),
            "locals" => self.locals(config, block),
            "resource" => self.resource(config, block, Mode::Managed),
            "data" => self.resource(config, block, Mode::Data),
            "output" => self.output(config, block),
            "check" => self.check(config, block),
            "moved" => self.moved(config, &block),
            "removed" => self.removed(config, &block),
            "import" => self.import(config, block),
            "module" => self.module_call(config, block),
            other => self.error(
                format!("unknown block type {other:?}"),
                block.ident.span(),
                "expected terraform, provider, variable, locals, resource, data or output",
            ),
        }
    }

    fn settings(&mut self, config: &mut Config, block: &Block) {
        for structure in block.body.iter() {
            let Structure::Block(inner) = structure else { continue };
            match inner.ident.as_str() {
                "backend" => {
                    let Some(labels) = self.labels(inner, 1, "the backend type") else { continue };
                    // Backend settings are literals (as in Terraform): they are
                    // needed before anything else is evaluated.
                    let mut settings = std::collections::BTreeMap::new();
                    for attr in inner.body.attributes() {
                        match &attr.value {
                            Expression::String(s) => {
                                settings.insert(attr.key.to_string(), s.value().to_string());
                            }
                            _ => self.error(
                                format!("backend setting {:?} must be a string literal", attr.key.as_str()),
                                attr.value.span(),
                                "give it here as a string, or on `strata init -backend-config=KEY=VALUE`",
                            ),
                        }
                    }
                    if !crate::backend::KNOWN.contains(&labels[0]) {
                        self.error(
                            format!("unknown backend {:?}", labels[0]),
                            inner.labels[0].span(),
                            &format!("the backends are {}", crate::backend::KNOWN.join(", ")),
                        );
                    }
                    let path = settings.get("path").cloned();
                    config.backend =
                        Some(Backend { name: labels[0].to_owned(), path, settings, span: self.span(inner.span()) });
                }
                "encryption" => self.encryption(config, inner),
                "required_providers" | "required_version" => {}
                other => self.error(format!("unknown block {other:?} in terraform settings"), inner.ident.span(), "here"),
            }
        }
    }

    fn provider(&mut self, config: &mut Config, block: Block) {
        let Some(name) = self.labels(&block, 1, "the provider name").map(|l| l[0].to_owned()) else { return };
        let span = block.span();
        let mut alias_attr = None;
        let rest: Body = block
            .body
            .into_iter()
            .filter_map(|s| match s {
                Structure::Attribute(a) if alias_attr.is_none() && a.key.as_str() == "alias" => {
                    alias_attr = Some(a);
                    None
                }
                s => Some(s),
            })
            .collect();
        let body = self.body(rest);
        let alias = match alias_attr {
            Some(attr) => match &attr.value {
                Expression::String(s) => Some(s.value().to_string()),
                other => {
                    self.error("alias must be a string literal", other.span(), "here");
                    None
                }
            },
            None => None,
        };
        let provider = ProviderBlock { name, alias, body, span: self.span(span.clone()) };
        if config.provider_block(&provider.config_addr()).is_some() || self.earlier.provider_block(&provider.config_addr()).is_some() {
            self.error(
                format!("duplicate provider configuration {}", provider.config_addr()),
                span,
                "configured again here",
            );
            return;
        }
        config.providers.push(provider);
    }

    fn variable(&mut self, config: &mut Config, block: Block) {
        let Some(labels) = self.labels(&block, 1, "the variable name") else { return };
        let name = labels[0].to_owned();
        let mut var = Variable {
            name: name.clone(),
            ty: None,
            default: None,
            description: None,
            sensitive: false,
            nullable: true,
            validations: Vec::new(),
            span: self.span(block.span()),
        };
        let block_span = block.span();
        for structure in block.body {
            match structure {
                Structure::Attribute(attr) => match attr.key.as_str() {
                    "type" => match types::parse_type_constraint(&attr.value) {
                        Ok(ty) => var.ty = Some(ty),
                        Err(msg) => self.error(msg, attr.value.span(), "not a type"),
                    },
                    "default" => var.default = Some(self.expr(attr.value)),
                    "description" => var.description = self.literal_string(&attr.value),
                    "sensitive" => var.sensitive = self.literal_bool(&attr.value),
                    "nullable" => var.nullable = self.literal_bool(&attr.value),
                    other => self.error(format!("unexpected attribute {other:?} in variable"), attr.key.span(), "here"),
                },
                Structure::Block(mut inner) if inner.ident.as_str() == "validation" => {
                    let condition = inner.body.remove_attribute("condition");
                    let message = inner.body.remove_attribute("error_message");
                    match (condition, message) {
                        (Some(c), Some(m)) => var
                            .validations
                            .push(Validation { condition: self.expr(c.value), error_message: self.expr(m.value) }),
                        _ => self.error(
                            "a validation block needs condition and error_message",
                            inner.ident.span(),
                            "incomplete validation",
                        ),
                    }
                }
                Structure::Block(inner) => {
                    self.error(format!("unexpected block {:?} in variable", inner.ident.as_str()), inner.ident.span(), "here")
                }
            }
        }
        if config.variables.contains_key(&name) || self.earlier.variables.contains_key(&name) {
            self.error(format!("duplicate variable {name:?}"), block_span, "declared again here");
            return;
        }
        config.variables.insert(name, var);
    }

    fn locals(&mut self, config: &mut Config, block: Block) {
        for structure in block.body {
            match structure {
                Structure::Attribute(attr) => {
                    let name = attr.key.as_str().to_owned();
                    if self.earlier.locals.contains_key(&name) {
                        self.error(format!("duplicate local value {name:?}"), attr.span(), "defined again here");
                        continue;
                    }
                    match config.locals.entry(name) {
                        std::collections::btree_map::Entry::Occupied(taken) => {
                            self.error(format!("duplicate local value {:?}", taken.key()), attr.span(), "defined again here")
                        }
                        std::collections::btree_map::Entry::Vacant(free) => {
                            let span = self.span(attr.span());
                            let name = free.key().clone();
                            free.insert(Local { name, expr: self.expr(attr.value), span });
                        }
                    }
                }
                Structure::Block(inner) => {
                    self.error("blocks are not allowed in locals", inner.ident.span(), "here")
                }
            }
        }
    }

    fn resource(&mut self, config: &mut Config, block: Block, mode: Mode) {
        let Some(labels) = self.labels(&block, 2, "the type and the name") else { return };
        let addr = ResourceAddr::new(mode, labels[0], labels[1]);
        let header_end = block.labels.last().and_then(|l| l.span()).map(|s| s.end);
        let header = self.span(block.ident.span().map(|s| s.start..header_end.unwrap_or(s.end)));
        let mut resource = Resource {
            addr: addr.clone(),
            count: None,
            for_each: None,
            depends_on: Vec::new(),
            provider: None,
            lifecycle: LifecycleBlock::default(),
            body: BodyExprs::default(),
            span: self.span(block.span()),
            header,
        };
        let block_span = block.span();
        for structure in block.body {
            match structure {
                Structure::Attribute(attr) => match attr.key.as_str() {
                    "count" => resource.count = Some(self.expr(attr.value)),
                    "for_each" => resource.for_each = Some(self.expr(attr.value)),
                    "depends_on" => resource.depends_on = self.expr_list(attr.value),
                    "provider" => resource.provider = self.provider_ref(&attr.value),
                    _ => resource.body.attrs.push(self.attr_expr(attr)),
                },
                Structure::Block(inner) if inner.ident.as_str() == "lifecycle" => {
                    resource.lifecycle = LifecycleBlock::new(self.lifecycle(inner));
                }
                Structure::Block(inner) => {
                    if let Some(block) = self.nested_block(inner) {
                        resource.body.blocks.push(block);
                    }
                }
            }
        }
        resource.body.shrink_to_fit();
        if resource.count.is_some() && resource.for_each.is_some() {
            self.error(
                "count and for_each cannot both be set",
                block.ident.span(),
                "choose one of count and for_each",
            );
        }
        if self.earlier.resources.contains_key(&addr) {
            self.error(format!("duplicate {} {addr}", block.ident.as_str()), block_span, "declared again here");
            return;
        }
        // One descent of the map (comparing addresses) instead of two.
        match config.resources.entry(addr) {
            std::collections::btree_map::Entry::Occupied(taken) => {
                self.error(format!("duplicate {} {}", block.ident.as_str(), taken.key()), block_span, "declared again here")
            }
            std::collections::btree_map::Entry::Vacant(free) => {
                free.insert(resource);
            }
        }
    }

    fn lifecycle(&mut self, block: Block) -> Lifecycle {
        let mut lc = Lifecycle::default();
        for structure in block.body {
            let Structure::Attribute(attr) = structure else {
                if let Structure::Block(b) = structure {
                    match b.ident.as_str() {
                        "precondition" => lc.preconditions.extend(self.condition(b, "condition")),
                        "postcondition" => lc.postconditions.extend(self.condition(b, "condition")),
                        other => self.error(format!("unexpected block {other:?} in lifecycle"), b.ident.span(), "here"),
                    }
                }
                continue;
            };
            match attr.key.as_str() {
                "create_before_destroy" => lc.create_before_destroy = self.literal_bool(&attr.value),
                "prevent_destroy" => lc.prevent_destroy = self.literal_bool(&attr.value),
                "ignore_changes" => match attr.value {
                    Expression::Variable(v) if v.as_str() == "all" => lc.ignore_all_changes = true,
                    value => {
                        for e in self.expr_list(value) {
                            match &e.expr.kind {
                                ast::Kind::Variable(v) => lc.ignore_changes.push(v.to_string()),
                                ast::Kind::Traversal(t) => match &t.root.kind {
                                    ast::Kind::Variable(v) => lc.ignore_changes.push(v.to_string()),
                                    _ => self.diags.push(Diagnostic::error("expected an attribute name", e.span(), "here")),
                                },
                                _ => self.diags.push(Diagnostic::error("expected an attribute name", e.span(), "here")),
                            }
                        }
                    }
                },
                "replace_triggered_by" => lc.replace_triggered_by = self.expr_list(attr.value),
                other => self.error(format!("unexpected attribute {other:?} in lifecycle"), attr.key.span(), "here"),
            }
        }
        lc
    }

    /// A block with a condition and an error message.
    fn condition(&mut self, mut block: Block, condition_key: &str) -> Option<Validation> {
        let condition = block.body.remove_attribute(condition_key);
        let message = block.body.remove_attribute("error_message");
        match (condition, message) {
            (Some(c), Some(m)) => Some(Validation { condition: self.expr(c.value), error_message: self.expr(m.value) }),
            _ => {
                self.error(
                    format!("a {} block needs {condition_key} and error_message", block.ident.as_str()),
                    block.ident.span(),
                    "incomplete",
                );
                None
            }
        }
    }

    fn check(&mut self, config: &mut Config, block: Block) {
        let Some(name) = self.labels(&block, 1, "the check name").map(|l| l[0].to_owned()) else { return };
        let span = self.span(block.span());
        let mut asserts = Vec::new();
        for structure in block.body {
            match structure {
                Structure::Block(b) if b.ident.as_str() == "assert" => asserts.extend(self.condition(b, "condition")),
                Structure::Block(b) => self.error(
                    format!("{:?} blocks in check are not supported (only assert)", b.ident.as_str()),
                    b.ident.span(),
                    "here",
                ),
                Structure::Attribute(a) => self.error("unexpected attribute in check", a.key.span(), "here"),
            }
        }
        config.checks.push(Check { name, asserts, span });
    }

    /// An address written as a traversal (`strata_data.a[0]`), not a string.
    fn address(&mut self, block: &Block, key: &str) -> Option<crate::addr::Target> {
        let Some(attr) = block.body.get_attribute(key) else {
            self.error(format!("a {} block needs {key}", block.ident.as_str()), block.ident.span(), "incomplete");
            return None;
        };
        // The address as written (the tree is not printed: its decor is
        // spans into the text, see `parse_body_for_model`).
        let text = attr.value.span().and_then(|range| self.text.get(range)).unwrap_or_default();
        match text.trim().parse::<crate::addr::Target>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(e, attr.value.span(), "not a resource address");
                None
            }
        }
    }

    fn moved(&mut self, config: &mut Config, block: &Block) {
        let (Some(from), Some(to)) = (self.address(block, "from"), self.address(block, "to")) else { return };
        let same_kind = from.resource.is_some() == to.resource.is_some() && from.key.is_some() == to.key.is_some();
        if !same_kind {
            self.error(
                "moved needs from and to of the same kind: two modules, two resources, or two instances",
                block.ident.span(),
                "mismatched",
            );
            return;
        }
        config.moved.push(crate::config::Moved { from, to, span: self.span(block.span()) });
    }

    fn removed(&mut self, config: &mut Config, block: &Block) {
        let Some(from) = self.address(block, "from") else { return };
        let mut destroy = true;
        for b in block.body.get_blocks("lifecycle") {
            if let Some(attr) = b.body.get_attribute("destroy") {
                destroy = self.literal_bool(&attr.value);
            }
        }
        config.removed.push(crate::config::Removed { from, destroy, span: self.span(block.span()) });
    }

    fn import(&mut self, config: &mut Config, mut block: Block) {
        let Some(to) = self.address(&block, "to") else { return };
        let Some(to) = to.as_instance() else {
            self.error("import needs a resource instance address in to", block.ident.span(), "not an instance");
            return;
        };
        let Some(id) = block.body.remove_attribute("id") else {
            self.error("an import block needs id", block.ident.span(), "incomplete");
            return;
        };
        let id = self.expr(id.value);
        config.imports.push(crate::config::Import { to, id, span: self.span(block.span()) });
    }

    fn module_call(&mut self, config: &mut Config, block: Block) {
        let Some(labels) = self.labels(&block, 1, "the module name") else { return };
        let name = labels[0].to_owned();
        let header_end = block.labels.last().and_then(|l| l.span()).map(|s| s.end);
        let header = self.span(block.ident.span().map(|s| s.start..header_end.unwrap_or(s.end)));
        let mut call = ModuleCall {
            name: name.clone(),
            source: String::new(),
            count: None,
            for_each: None,
            depends_on: Vec::new(),
            inputs: Vec::new(),
            span: self.span(block.span()),
            header,
        };
        let block_span = block.span();
        for structure in block.body {
            match structure {
                Structure::Attribute(attr) => match attr.key.as_str() {
                    "source" => match &attr.value {
                        Expression::String(s) => call.source = s.value().to_string(),
                        other => self.error("source must be a string literal", other.span(), "not a literal"),
                    },
                    "version" => self.error("module versions need a registry, which is not supported yet", attr.span(), "here"),
                    "providers" => {} // Providers pass down implicitly.
                    "count" => call.count = Some(self.expr(attr.value)),
                    "for_each" => call.for_each = Some(self.expr(attr.value)),
                    "depends_on" => call.depends_on = self.expr_list(attr.value),
                    _ => call.inputs.push(self.attr_expr(attr)),
                },
                Structure::Block(inner) => {
                    self.error(format!("unexpected block {:?} in module", inner.ident.as_str()), inner.ident.span(), "here")
                }
            }
        }
        call.inputs.shrink_to_fit();
        if call.source.is_empty() {
            self.error(format!("module {name:?} has no source"), block.ident.span(), "add source = \"./path\"");
            return;
        }
        if call.count.is_some() && call.for_each.is_some() {
            self.error("count and for_each cannot both be set", block.ident.span(), "choose one");
        }
        if config.module_calls.contains_key(&name) || self.earlier.module_calls.contains_key(&name) {
            self.error(format!("duplicate module {name:?}"), block_span, "declared again here");
            return;
        }
        config.module_calls.insert(name, call);
    }

    fn output(&mut self, config: &mut Config, block: Block) {
        let Some(labels) = self.labels(&block, 1, "the output name") else { return };
        let name = labels[0].to_owned();
        let mut value = None;
        let mut output_sensitive = false;
        let mut description = None;
        let mut depends_on = Vec::new();
        let block_span = block.span();
        for structure in block.body {
            match structure {
                Structure::Attribute(attr) => match attr.key.as_str() {
                    "value" => value = Some(self.expr(attr.value)),
                    "sensitive" => output_sensitive = self.literal_bool(&attr.value),
                    "description" => description = self.literal_string(&attr.value),
                    "depends_on" => depends_on = self.expr_list(attr.value),
                    other => self.error(format!("unexpected attribute {other:?} in output"), attr.key.span(), "here"),
                },
                Structure::Block(inner) => {
                    self.error(format!("unexpected block {:?} in output", inner.ident.as_str()), inner.ident.span(), "here")
                }
            }
        }
        let Some(value) = value else {
            self.error(format!("output {name:?} has no value"), block.ident.span(), "missing `value = ...`");
            return;
        };
        if config.outputs.contains_key(&name) || self.earlier.outputs.contains_key(&name) {
            self.error(format!("duplicate output {name:?}"), block_span, "declared again here");
            return;
        }
        let span = self.span(block_span);
        config.outputs.insert(name.clone(), Output { name, value, sensitive: output_sensitive, description, depends_on, span });
    }

    /// An attribute of a body, its expression moved out of the tree.
    fn attr_expr(&mut self, attr: hcl::edit::structure::Attribute) -> AttrExpr {
        let span = self.span(attr.span());
        AttrExpr { name: attr.key.as_str().to_owned(), expr: self.expr(attr.value), span }
    }

    fn body(&mut self, body: Body) -> BodyExprs {
        let mut out = BodyExprs::default();
        for structure in body {
            match structure {
                Structure::Attribute(attr) => out.attrs.push(self.attr_expr(attr)),
                Structure::Block(inner) => {
                    if let Some(block) = self.nested_block(inner) {
                        out.blocks.push(block);
                    }
                }
            }
        }
        out.shrink_to_fit();
        out
    }

    /// A nested block, or a `dynamic` block that generates them.
    fn nested_block(&mut self, block: Block) -> Option<NestedBlockExpr> {
        let span = self.span(block.span());
        if block.ident.as_str() != "dynamic" {
            return Some(NestedBlockExpr { name: block.ident.as_str().to_owned(), body: self.body(block.body), span, dynamic: None });
        }
        let labels = self.labels(&block, 1, "the type of the generated blocks")?;
        let name = labels[0].to_owned();
        let mut for_each = None;
        let mut iterator = name.clone();
        let mut content = None;
        for structure in block.body {
            match structure {
                Structure::Attribute(attr) => match attr.key.as_str() {
                    "for_each" => for_each = Some(self.expr(attr.value)),
                    "iterator" => match &attr.value {
                        Expression::Variable(v) => iterator = v.as_str().to_owned(),
                        other => self.error("iterator must be a name", other.span(), "not a name"),
                    },
                    "labels" => {}
                    other => self.error(format!("unexpected attribute {other:?} in dynamic block"), attr.key.span(), "here"),
                },
                Structure::Block(inner) if inner.ident.as_str() == "content" => content = Some(self.body(inner.body)),
                Structure::Block(inner) => {
                    self.error(format!("unexpected block {:?} in dynamic block", inner.ident.as_str()), inner.ident.span(), "expected content { ... }")
                }
            }
        }
        let (Some(for_each), Some(body)) = (for_each, content) else {
            self.error("a dynamic block needs for_each and a content block", block.ident.span(), "incomplete dynamic block");
            return None;
        };
        Some(NestedBlockExpr { name, body, span, dynamic: Some(Dynamic { for_each, iterator }) })
    }

    fn provider_ref(&mut self, expr: &Expression) -> Option<(String, Option<String>, Span)> {
        let span = self.span(expr.span());
        match expr {
            Expression::Variable(v) => Some((v.as_str().to_owned(), None, span.clone())),
            Expression::Traversal(t) => match (&t.expr, t.operators.as_slice()) {
                (Expression::Variable(v), [op]) => match op.value() {
                    TraversalOperator::GetAttr(alias) => Some((v.as_str().to_owned(), Some(alias.as_str().to_owned()), span.clone())),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
        .or_else(|| {
            self.diags.push(Diagnostic::error("expected a provider reference such as kvm.remote", span, "here"));
            None
        })
    }

    fn expr_list(&mut self, expr: Expression) -> Vec<Expr> {
        match expr {
            Expression::Array(items) => items.into_iter().map(|e| self.expr(e)).collect(),
            _ => {
                self.diags.push(Diagnostic::error("expected a list", self.span(expr.span()), "here"));
                Vec::new()
            }
        }
    }

    fn literal_bool(&mut self, expr: &Expression) -> bool {
        match expr {
            Expression::Bool(b) => *b.value(),
            _ => {
                self.diags.push(Diagnostic::error("expected true or false", self.span(expr.span()), "here"));
                false
            }
        }
    }

    fn literal_string(&mut self, expr: &Expression) -> Option<String> {
        match expr {
            Expression::String(s) => Some(s.value().to_string()),
            Expression::HeredocTemplate(_) | Expression::StringTemplate(_) => {
                super::eval::constant(&self.expr_of(expr)).ok().and_then(|v| v.as_str().map(str::to_owned))
            }
            _ => {
                self.diags.push(Diagnostic::error("expected a string", self.span(expr.span()), "here"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lowers `text` as one piece (the whole tree at once).
    fn whole(text: &str) -> (Config, Diagnostics) {
        let mut config = Config::default();
        let mut diags = Diagnostics::default();
        match super::super::parse::parse_body_for_model(text) {
            Ok(body) => {
                let earlier = Config::default();
                let mut cx = Lowerer { file: FileId(0), text, earlier: &earlier, diags: &mut diags, names: expr::Names::default() };
                cx.body_of_file(&mut config, body);
            }
            Err(e) => diags.push(syntax_error(FileId(0), &e)),
        }
        (config, diags)
    }

    fn pieces(text: &str) -> (Config, Diagnostics) {
        let mut config = Config::default();
        let mut diags = Diagnostics::default();
        lower_file(&mut config, FileId(0), text, &mut diags);
        (config, diags)
    }

    /// A file of many pieces, with problems in several of them.
    fn large(tail: &str) -> String {
        let mut text = String::from("locals {\n  a = 1\n}\n");
        for i in 0..6000 {
            text.push_str(&format!(
                "resource \"strata_data\" \"r{i}\" {{\n  input = {{\n    name = \"${{local.a}}-{i}\" # c\n    deps = [strata_data.r{}.id]\n  }}\n}}\n\n",
                i / 2
            ));
            if i % 1500 == 7 {
                text.push_str(&format!("resource \"strata_data\" \"r{}\" {{\n}}\nlocals {{\n  a = 2\n}}\nnot_a_block \"x\" {{}}\n", i / 3));
            }
        }
        text.push_str(tail);
        text
    }

    /// Lowers `files` as one module, in pieces of `piece` bytes on `threads` threads: the
    /// module and each file's diagnostics, printed.
    fn module(files: &[&str], piece: usize, threads: usize) -> (String, Vec<String>) {
        let mut config = Config::default();
        let files: Vec<(FileId, &str)> = files.iter().enumerate().map(|(i, text)| (FileId(i as u32), *text)).collect();
        let diags = lower_files_in(&mut config, &files, |_| piece, threads);
        (format!("{config:?}"), diags.iter().map(|d| format!("{:?}", d.0)).collect())
    }

    /// Piece sizes and thread counts to compare: one thread with the default pieces, and
    /// threads given pieces as small as a block.
    const SPLITS: [(usize, usize); 5] = [(super::super::pieces::PIECE, 1), (super::super::pieces::PIECE, 2), (32 * 1024, 2), (4096, 3), (1, 2)];

    #[test]
    fn integer_literals_read_as_their_numbers() {
        let cases = [
            ("5", Some(5)),
            ("007", Some(7)),
            ("-  12", Some(-12)),
            ("999999999999999999", Some(999_999_999_999_999_999)),
            ("-0", None),
            ("9999999999999999999", None),
            ("1e3", None),
            ("1.5", None),
        ];
        for (text, inline) in cases {
            let (config, diags) = whole(&format!("locals {{\n  x = {text}\n}}\n"));
            assert!(diags.0.is_empty(), "{text}: {:?}", diags.0);
            let expr = &config.locals["x"].expr;
            match (&expr.expr.kind, inline) {
                (ast::Kind::Number(n), Some(want)) => assert_eq!(n.to_i64(), Some(want), "{text}"),
                (ast::Kind::Number(_), None) => {}
                (other, _) => panic!("{text}: {other:?}"),
            }
            let digits = text.trim_start_matches(['-', ' ']);
            let want = digits.parse::<strata_provider::Number>().unwrap();
            let want = if text.starts_with('-') { want.neg() } else { want };
            assert_eq!(super::super::eval::constant(expr).unwrap(), strata_provider::Value::Number(want), "{text}");
        }
    }

    #[test]
    fn only_a_lifecycle_block_that_says_something_is_kept() {
        let (config, _) = whole(
            "resource \"strata_data\" \"a\" {\n}\nresource \"strata_data\" \"b\" {\n  lifecycle {\n  }\n}\nresource \"strata_data\" \"c\" {\n  lifecycle {\n    prevent_destroy = true\n  }\n}\n",
        );
        let lifecycle = |name: &str| &config.resources[&ResourceAddr::new(Mode::Managed, "strata_data", name)].lifecycle;
        assert!(lifecycle("a").0.is_none() && lifecycle("b").0.is_none());
        assert!(!lifecycle("a").prevent_destroy && lifecycle("a").preconditions.is_empty());
        assert!(lifecycle("c").0.is_some() && lifecycle("c").prevent_destroy);
    }

    #[test]
    fn a_large_file_lowers_in_pieces_as_it_does_whole() {
        let text = large("output \"o\" {\n  value = <<EOT\n}\nEOT\n}\n");
        let ranges = super::super::parse::pieces(&text, super::super::pieces::PIECE).unwrap();
        assert!(ranges.len() >= 3, "{ranges:?}");
        let (a, da) = whole(&text);
        assert!(da.0.len() >= 12, "{:?}", da.0.len());
        assert_eq!(a.resources.len(), 6000);
        let (b, db) = pieces(&text);
        assert_eq!(format!("{:?}", da.0), format!("{:?}", db.0));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        for (piece, threads) in SPLITS {
            assert_eq!(module(&[&text], piece, threads), (format!("{a:?}"), vec![format!("{:?}", da.0)]), "{piece} bytes, {threads} threads");
        }
    }

    #[test]
    fn a_syntax_error_in_a_late_piece_is_the_whole_files_error_alone() {
        let text = large("resource \"strata_data\" \"bad\" {\n  input = [1,\n}\n");
        let (_, da) = whole(&text);
        let (b, db) = pieces(&text);
        assert_eq!(da.0.len(), 1);
        assert_eq!(format!("{:?}", da.0), format!("{:?}", db.0));
        assert!(b.resources.is_empty() && b.locals.is_empty());
        // Errors in the first and the last piece: still the whole file's one error.
        let both = format!("a = (\n{text}");
        let (_, whole_error) = whole(&both);
        for (piece, threads) in SPLITS {
            let (_, diags) = module(&[&both], piece, threads);
            assert_eq!(diags, vec![format!("{:?}", whole_error.0)], "{piece} bytes, {threads} threads");
        }
    }

    #[test]
    fn a_top_level_attribute_defined_in_two_pieces_is_the_parsers_error() {
        let text = format!("top = 1\n{}top = 2\n", large(""));
        let (_, da) = whole(&text);
        assert_eq!(da.0.len(), 1);
        assert!(da.0[0].message.contains("redefined"), "{:?}", da.0);
        for (piece, threads) in SPLITS {
            assert_eq!(module(&[&text], piece, threads).1, vec![format!("{:?}", da.0)], "{piece} bytes, {threads} threads");
        }
        // Once each, in different pieces: an error of lowering for each.
        let once = format!("one = 1\n{}two = 2\n", large(""));
        let (_, da) = whole(&once);
        assert_eq!(da.0.iter().filter(|d| d.message.contains("unexpected attribute")).count(), 2);
        assert_eq!(module(&[&once], 1, 2).1, vec![format!("{:?}", da.0)]);
    }

    #[test]
    fn the_files_of_a_module_lower_together_as_one_after_the_other() {
        // The second file declares again what the first does (in its first and last piece),
        // the third has a syntax error, the fourth is small and clean.
        let first = large("");
        let second = format!("variable \"v\" {{}}\nresource \"strata_data\" \"r5\" {{\n}}\n{}locals {{\n  a = 3\n}}\n", large("").replace("\"r", "\"s"));
        let third = large("x = [\n");
        let fourth = "variable \"v\" {}\noutput \"o\" {\n  value = 1\n}\n";
        let files = [first.as_str(), &second, &third, fourth];
        let one_by_one = module(&files, usize::MAX, 1);
        assert!(one_by_one.1[1].contains("duplicate resource strata_data.r5") && one_by_one.1[1].contains("duplicate local value"), "{}", one_by_one.1[1]);
        assert!(one_by_one.1[2].contains("syntax error"), "{}", one_by_one.1[2]);
        assert!(one_by_one.1[3].contains("duplicate variable"), "{}", one_by_one.1[3]);
        for (piece, threads) in SPLITS {
            assert!(module(&files, piece, threads) == one_by_one, "{piece} bytes, {threads} threads");
        }
    }
}
