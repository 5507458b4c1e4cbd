//! Canonical formatting of HCL source, in the layout `terraform fmt` produces.
//!
//! hcl-edit keeps every bit of whitespace and every comment of the source as "decor" (prefix and
//! suffix strings) around the nodes of its syntax tree, and prints the tree back verbatim. The
//! formatter therefore only rewrites decor: indentation, blank lines, and the spaces between
//! tokens within a line, following hclwrite's `spaceAfterToken` (what `terraform fmt` uses):
//! one space around binary operators, `=`, `?`, `:`, `=>` and after commas; none after unary
//! operators, around `.` and `::`, before commas and `...`, just inside `(…)` and `[…]`, or
//! between a name and its `(` or `[`; one space just inside non-empty `{…}`. A gap is only
//! respaced when it holds nothing but spaces, so comments stay put and line breaks are left to
//! the indentation logic. Tokens themselves (literals, templates, heredocs) are never touched,
//! so formatting cannot change what a configuration means; the one exception is a negative
//! number, which hcl-edit reads as one token spaces included (`- 1`), re-read without them.
//! Comments ending consecutive lines are aligned as terraform fmt aligns them, whatever the lines
//! hold (see `align_comments`).
//!
//! Known differences from `terraform fmt`: the inside of quoted templates and heredocs is kept
//! as written (terraform prints `"${ a+b }"` as `"${a + b}"`); a grouping `for` expression with
//! no `if` ends `v...}` (terraform: `v... }`; hcl-edit has no place for that space); the inside
//! of a parenthesised object key (`(var.k) = 1`) keeps its spacing; terraform fmt's rewrites
//! beyond layout (unwrapping `"${var.x}"`, `list` to `list(any)` in variable types) are not
//! done; a line that closes a bracket after other content (`b)`) keeps the content's indent;
//! widths count characters, not grapheme clusters. Quoted strings are kept as written, escapes
//! included (hcl-edit's own printing of them mis-escapes `$${` after `%`).

use hcl::edit::expr::{
    Array, BinaryOp, Expression, ForExpr, FuncCall, Object, ObjectKey, ObjectValueAssignment,
    ObjectValueTerminator, Traversal, TraversalOperator, UnaryOperator,
};
use hcl::edit::parser;
use hcl::edit::structure::{Attribute, Block, Body, Structure};
use hcl::edit::visit_mut::{visit_expr_mut, visit_object_mut, VisitMut};
use hcl::edit::{Decor, Decorate, Span};

/// One level of indentation.
const INDENT: &str = "  ";

/// Formats HCL source in Strata's canonical layout (terraform fmt's): two-space indentation per
/// nesting level (blocks and multi-line brackets alike), the `=` of consecutive single-line
/// attributes and object items aligned, hclwrite's spacing between the tokens of a line,
/// comments kept in place (trailing comments of consecutive lines aligned), runs of blank lines
/// collapsed to one, no blank line right after an opening or before a closing bracket, no
/// trailing whitespace, and a single final newline. Heredocs and other literals are kept exactly
/// as written; the result is stable under reformatting.
///
/// # Errors
///
/// Returns the parser's error if `source` is not valid HCL.
pub fn format_source(source: &str) -> Result<String, super::parse::SyntaxError> {
    format_in_pieces(source, super::pieces::piece_size(source.len(), FMT_PIECE), super::pieces::threads_for(source.len()))
}

/// The largest piece the formatter takes when pieces are shared out: a
/// piece's tree with its decor copied out is tens of times its text, and
/// every thread holds one (with 256 KiB pieces two threads raised the peak
/// of the 10k-block file from 33 to 61 MiB).
const FMT_PIECE: usize = 64 * 1024;

/// [`format_source`], with a large file parsed, formatted and printed one piece of about `piece`
/// bytes of whole top-level blocks at a time (pieces from `parse::pieces`, shared out among the
/// cores by `pieces::in_order`), so that its syntax tree, tens of times the size of the text,
/// never exists whole. Formatting a top-level structure depends on its neighbours only through
/// whether one comes before it (a blank line may separate them) and through `=` alignment, which
/// never runs past a block; templates are put back piece by piece; what depends on the printed
/// text as a whole (trailing comments aligned, the end of the file) is done once on all of it.
/// The result is the same as formatting the file whole.
/// The pieces are shared out among up to `threads` threads.
fn format_in_pieces(source: &str, piece: usize, threads: usize) -> Result<String, super::parse::SyntaxError> {
    let ranges = super::parse::pieces(source, piece)?;
    // Placeholders are numbered within their piece: a source holding their mark character could
    // hold a lookalike of another piece's placeholder (which the whole file's numbering would
    // put back), so such a file is formatted whole.
    let in_pieces = (ranges.len() > 1 && !source.contains('\u{E000}')).then(|| format_pieces(source, &ranges, threads)).flatten();
    let printed = match in_pieces {
        Some(printed) => printed,
        None => {
            let body = super::parse::parse_whole_for_fmt(source)?;
            let (mut printed, mut originals) = (String::with_capacity(source.len() + source.len() / 8), Vec::new());
            format_piece(source, body, false, true, &mut printed, &mut originals);
            restore_stashed(&printed, &originals)
        }
    };
    // Drop what layout leaves after the last token or comment (line breaks, indentation before
    // end of input), so that the file ends with exactly one newline.
    let text = align_comments(&printed);
    let text = text.trim_end();
    Ok(if text.is_empty() {
        String::new()
    } else {
        format!("{text}\n")
    })
}

/// The pieces `ranges` of `source` (two or more) formatted apart, each with its templates put
/// back, joined; `None` when a cut cannot be kept: a piece does not parse alone, defines a
/// top-level attribute an earlier piece defined (the parser refuses that in one body, so the
/// whole file's error stands), or, before the last, ends with an attribute (`=` alignment runs
/// over consecutive attributes; after a block no run of them continues). So every piece but
/// the last ends with a block, and each piece but the first follows a structure.
fn format_pieces(source: &str, ranges: &[std::ops::Range<usize>], threads: usize) -> Option<String> {
    struct Formatted {
        attributes: Vec<String>,
        text: String,
    }
    let given_up = std::sync::atomic::AtomicBool::new(false);
    let jobs: Vec<(usize, std::ops::Range<usize>)> = ranges.iter().cloned().enumerate().collect();
    let format = |(index, range): &(usize, std::ops::Range<usize>)| {
        use std::sync::atomic::Ordering::Relaxed;
        let last = index + 1 == ranges.len();
        let body = (!given_up.load(Relaxed)).then(|| super::parse::parse_piece_for_fmt(source, range.clone())).flatten();
        let Some(body) = body.filter(|body| last || matches!(body.iter().last(), Some(Structure::Block(_)))) else {
            given_up.store(true, Relaxed);
            return None;
        };
        let attributes = body.iter().filter_map(Structure::as_attribute).map(|a| a.key.as_str().to_owned()).collect();
        let (mut printed, mut originals) = (String::with_capacity(range.len() + range.len() / 8), Vec::new());
        format_piece(source, body, *index > 0, last, &mut printed, &mut originals);
        Some(Formatted { attributes, text: restore_stashed(&printed, &originals) })
    };
    let mut joined = Some(String::with_capacity(source.len() + source.len() / 8));
    let mut attributes = std::collections::HashSet::new();
    super::pieces::in_order(&jobs, threads, format, |_, formatted| {
        let Some(formatted) = formatted else {
            joined = None;
            return;
        };
        if !formatted.attributes.into_iter().all(|name| attributes.insert(name)) {
            joined = None;
        }
        if let Some(text) = joined.as_mut() {
            text.push_str(&formatted.text);
        }
    });
    joined
}

/// Formats one piece of a file and prints it after `printed`: `follows` says whether a
/// structure came before the piece, `last` whether the file ends with it. Templates and literals
/// go to `originals`, numbered on from the earlier pieces'. Returns whether a structure has now
/// been printed.
fn format_piece(
    source: &str,
    mut body: Body,
    follows: bool,
    last: bool,
    printed: &mut String,
    originals: &mut Vec<(&'static str, String)>,
) -> bool {
    // hcl-edit dedents `<<-` heredocs when parsing and re-indents them when printing, which
    // loses text (fuzzing found lines cut short and unstable indentation), and re-escapes
    // quoted templates inside directives on every pass. Templates therefore leave the tree as
    // placeholders and come back verbatim from the source.
    let mut heredocs = HeredocStash {
        source,
        originals: std::mem::take(originals),
    };
    heredocs.visit_body_mut(&mut body);
    *originals = heredocs.originals;
    Formatter::new(source, originals).file(&mut body, follows, last);
    use std::fmt::Write as _;
    // Writing to a `String` cannot fail.
    let _ = write!(printed, "{body}");
    follows || !body.is_empty()
}

/// Placeholders start with a private-use character no configuration contains.
const HEREDOC_MARK: &str = "\u{E000}strata-heredoc-";
const TEMPLATE_MARK: &str = "\u{E000}strata-template-";
const LITERAL_MARK: &str = "\u{E000}strata-literal-";
/// Stands for the spaces in front of a `#`/`//` comment that ends a line after other tokens,
/// until `align_comments` knows how many there are.
const COMMENT_MARK: &str = "\u{E000}strata-comment\u{E000}";

/// Aligns the comments ending consecutive lines, as terraform fmt does (hclwrite's "comment
/// cells"): each run of lines that end with a `#`/`//` comment after other tokens gets its
/// comments one column after the longest line of the run, whatever the lines hold (attributes,
/// block headers, closing brackets).
fn align_comments(text: &str) -> String {
    // The line's text in front of its trailing comment and the comment, where there is one.
    fn split(line: &str) -> Option<(&str, &str)> {
        // A substring search costs a searcher's set-up per line; most lines hold no mark,
        // which a byte search tells.
        if !line.contains('\u{E000}') {
            return None;
        }
        let (code, comment) = line.split_once(COMMENT_MARK)?;
        (comment.starts_with('#') || comment.starts_with("//")).then(|| (code.trim_end(), comment))
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    while start < lines.len() {
        if start > 0 {
            out.push('\n');
        }
        if split(lines[start]).is_none() {
            out.push_str(lines[start]);
            start += 1;
            continue;
        }
        let mut end = start;
        while end < lines.len() && split(lines[end]).is_some() {
            end += 1;
        }
        let run: Vec<(&str, &str)> = lines[start..end].iter().filter_map(|line| split(line)).collect();
        let column = run.iter().map(|(code, _)| width(code)).max().unwrap_or(0);
        for (index, (code, comment)) in run.into_iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            out.push_str(code);
            out.extend(std::iter::repeat_n(' ', column - width(code) + 1));
            out.push_str(comment);
        }
        start = end;
    }
    out
}

fn placeholder(kind: &str, i: usize) -> String {
    format!("{kind}{i}\u{E000}")
}

/// Puts the source text of every stashed template and literal back in place of its quoted
/// placeholder, in one pass over `text` (a search per placeholder made formatting quadratic
/// in the number of templates).
fn restore_stashed(text: &str, originals: &[(&'static str, String)]) -> String {
    const OPEN: &str = "\"\u{E000}strata-";
    const CLOSE: &str = "\u{E000}\"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        let restored = candidate[1..].find(CLOSE).and_then(|end| {
            let inner = &candidate[1..1 + end];
            let original = [HEREDOC_MARK, TEMPLATE_MARK, LITERAL_MARK].into_iter().find_map(|kind| {
                let index: usize = inner.strip_prefix(kind)?.parse().ok()?;
                let (stashed_kind, original) = originals.get(index)?;
                (*stashed_kind == kind).then_some(original)
            })?;
            Some((original, 1 + end + CLOSE.len()))
        });
        match restored {
            Some((original, consumed)) => {
                out.push_str(original);
                rest = &candidate[consumed..];
            }
            None => {
                out.push_str(OPEN);
                rest = &candidate[OPEN.len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces every template (heredoc or quoted) with a placeholder string, keeping its source
/// text.
struct HeredocStash<'a> {
    source: &'a str,
    originals: Vec<(&'static str, String)>,
}

impl HeredocStash<'_> {
    /// The kind of placeholder `expr` needs, if any.
    fn stand_in_kind(&self, expr: &Expression) -> Option<&'static str> {
        match expr {
            Expression::HeredocTemplate(_) => Some(HEREDOC_MARK),
            Expression::StringTemplate(_) => Some(TEMPLATE_MARK),
            // hcl-edit re-escapes literals itself, and gets `$${`/`%%{` after another `$` or
            // `%` wrong (`"%$${a}"` comes back as `"%${a}"`, a template): a literal whose
            // printed form is not its source text is kept as written.
            Expression::String(_)
                if !self.source.get(expr.span().unwrap_or(0..0)).is_some_and(|text| bare_is(expr, text)) =>
            {
                Some(LITERAL_MARK)
            }
            _ => None,
        }
    }

    /// Replaces `expr` with a placeholder of `kind`, keeping its decor and source text.
    fn stash(&mut self, expr: &mut Expression, kind: &'static str) {
        if let Some(text) = expr.span().and_then(|range| self.source.get(range)) {
            let decor = expr.decor().clone();
            let mut stand_in = Expression::from(placeholder(kind, self.originals.len()));
            *stand_in.decor_mut() = decor;
            self.originals.push((kind, text.to_owned()));
            *expr = stand_in;
        }
    }
}

impl VisitMut for HeredocStash<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expression) {
        match self.stand_in_kind(expr) {
            Some(kind) => self.stash(expr, kind),
            None => visit_expr_mut(self, expr),
        }
    }

    fn visit_object_mut(&mut self, object: &mut Object) {
        // Keys cannot be replaced in place (they are the keys of a map), yet a key prints
        // through the same escaping as any literal: rebuild the object, in order, when one
        // needs a placeholder.
        let needs_stand_in = object
            .iter()
            .any(|(key, _)| key.as_expr().is_some_and(|e| self.stand_in_kind(e).is_some()));
        if needs_stand_in {
            let mut rebuilt = Object::with_capacity(object.len());
            for (key, value) in object.iter() {
                let key = match key {
                    ObjectKey::Expression(expr) => {
                        let mut expr = expr.clone();
                        if let Some(kind) = self.stand_in_kind(&expr) {
                            self.stash(&mut expr, kind);
                        }
                        ObjectKey::Expression(expr)
                    }
                    ident => ident.clone(),
                };
                rebuilt.insert(key, value.clone());
            }
            rebuilt.set_trailing(object.trailing().clone());
            *rebuilt.decor_mut() = object.decor().clone();
            *object = rebuilt;
        }
        visit_object_mut(self, object);
    }
}

/// Walks the tree in source order, rewriting decor.
struct Formatter<'a> {
    source: &'a str,
    /// Indent level of the output line currently being written. Brackets opened on a line
    /// indent their content one level deeper than that line, however many of them open there,
    /// which is how terraform fmt indents `foo([` … `])`.
    line_indent: usize,
    /// The source text of the templates and literals standing in the tree as placeholders,
    /// by placeholder index, so that keys align by what will be printed.
    originals: &'a [(&'static str, String)],
}

impl<'a> Formatter<'a> {
    fn new(source: &'a str, originals: &'a [(&'static str, String)]) -> Self {
        Formatter {
            source,
            line_indent: 0,
            originals,
        }
    }

    /// The top level of a file, or of one piece of it: `follows` says whether a structure came
    /// before, `last` whether the file ends with this piece.
    fn file(&mut self, body: &mut Body, follows: bool, last: bool) {
        body.set_prefer_omit_trailing_newline(false);
        self.body(body, 0, follows);
        if !last {
            // A piece ends right after a line break; what follows is the next piece's.
            return;
        }
        // Comments after the last structure end the file.
        let end = Gap {
            line_start: true,
            inner: 0,
            next: 0,
            blank_before: follows || !body.is_empty(),
            blank_after: false,
        };
        self.suffix(body.decor_mut(), end);
    }

    /// The structures of a body at `depth`; `follows` says whether a structure came before the
    /// first (in an earlier piece of the file).
    fn body(&mut self, body: &mut Body, depth: usize, follows: bool) {
        for index in 0..body.len() {
            let Some(structure) = body.get_mut(index) else {
                continue;
            };
            self.line_indent = depth;
            // The prefix holds the comment lines and blank lines above the structure; the body
            // already wrote the line break in front of it.
            let above = Gap {
                line_start: true,
                inner: depth,
                next: depth,
                blank_before: index > 0 || follows,
                blank_after: true,
            };
            self.prefix(structure.decor_mut(), above);
            set_line_end_suffix(structure.decor_mut());
            match structure {
                Structure::Attribute(attr) => self.attribute(attr),
                Structure::Block(block) => self.block(block, depth),
            }
        }
        align_body(body);
    }

    fn attribute(&mut self, attr: &mut Attribute) {
        set_inline_suffix(attr.key.decor_mut());
        let value = attr.value.decor_mut();
        set_inline_prefix(value);
        set_line_end_suffix(value);
        self.expr(&mut attr.value, self.line_indent + 1);
    }

    fn block(&mut self, block: &mut Block, depth: usize) {
        set_inline_suffix(block.ident.decor_mut());
        for label in &mut block.labels {
            set_inline_suffix(label.decor_mut());
        }
        let body = &mut block.body;
        if body.prefer_oneline() {
            // `name { key = value }` and `name {}` stay on one line, as with terraform fmt.
            if let Some(Structure::Attribute(attr)) = body.get_mut(0) {
                let decor = attr.decor_mut();
                set_inline_prefix(decor);
                set_inline_suffix(decor);
                self.attribute(attr);
            }
            let inside = body.decor().suffix().map_or("", |raw| raw);
            if !has_comment(inside) {
                body.decor_mut().set_suffix("");
            }
            return;
        }
        // The body's prefix is the rest of the `{` line: at most a trailing comment.
        set_line_end_prefix(body.decor_mut());
        self.body(body, depth + 1, false);
        let close = Gap {
            line_start: true,
            inner: depth + 1,
            next: depth,
            blank_before: !body.is_empty(),
            blank_after: false,
        };
        self.suffix(body.decor_mut(), close);
    }

    /// Lays out the decor inside `expr`. Its own prefix and suffix belong to the parent.
    /// `inner` is the indent level of continuation lines in the innermost enclosing bracket.
    fn expr(&mut self, expr: &mut Expression, inner: usize) {
        let within = Gap::within(inner);
        match expr {
            Expression::Array(array) => self.array(array),
            Expression::Object(object) => self.object(object),
            Expression::FuncCall(call) => self.func_call(call, inner),
            Expression::ForExpr(for_expr) => self.for_expr(for_expr),
            Expression::Parenthesis(paren) => {
                let base = self.line_indent;
                self.bracketed(paren.inner_mut(), base);
                // No spaces just inside brackets.
                space1(paren.inner_mut().decor_mut(), Side::Prefix, false);
                space1(paren.inner_mut().decor_mut(), Side::Suffix, false);
            }
            Expression::Conditional(cond) => {
                self.expr(&mut cond.cond_expr, inner);
                self.suffix(cond.cond_expr.decor_mut(), within);
                self.prefix(cond.true_expr.decor_mut(), within);
                self.expr(&mut cond.true_expr, inner);
                self.suffix(cond.true_expr.decor_mut(), within);
                self.prefix(cond.false_expr.decor_mut(), within);
                self.expr(&mut cond.false_expr, inner);
                space1(cond.cond_expr.decor_mut(), Side::Suffix, true);
                space1(cond.true_expr.decor_mut(), Side::Prefix, true);
                space1(cond.true_expr.decor_mut(), Side::Suffix, true);
                space1(cond.false_expr.decor_mut(), Side::Prefix, true);
            }
            Expression::BinaryOp(op) => self.binary_op(op, inner),
            Expression::UnaryOp(op) => {
                self.expr(&mut op.expr, inner);
                // `!x`, `-x`: see `space_after_leading_minus` for hclwrite's exceptions.
                space1(op.expr.decor_mut(), Side::Prefix, false);
            }
            Expression::Traversal(traversal) => self.traversal(traversal, inner),
            Expression::Number(_) => respace_negative_number(expr, false),
            // Literals, variables and templates (quoted and heredoc) are kept verbatim.
            _ => {}
        }
    }

    /// The source between two offsets, if it holds only whitespace and comments.
    fn trivia_between(&self, start: Option<usize>, end: Option<usize>) -> Option<&'a str> {
        self.source.get(start?..end?).filter(|text| is_trivia(text))
    }

    fn binary_op(&mut self, op: &mut BinaryOp, inner: usize) {
        // hcl-edit 0.10 leaves the decor around binary operators unresolved after parsing
        // (its `despan` skips it), so it would print as single spaces and drop any comment
        // there. Rebuild it from the source between the neighbouring tokens.
        let operator = op.operator.span();
        let before = self.trivia_between(
            end_of(&op.lhs_expr),
            operator.as_ref().map(|span| span.start),
        );
        let after = self.trivia_between(operator.map(|span| span.end), start_of(&op.rhs_expr));
        let decor = op.operator.decor_mut();
        if let Some(text) = before {
            decor.set_prefix(text);
        }
        if let Some(text) = after {
            decor.set_suffix(text);
        }

        let within = Gap::within(inner);
        self.expr(&mut op.lhs_expr, inner);
        self.suffix(op.lhs_expr.decor_mut(), within);
        self.prefix(op.operator.decor_mut(), within);
        self.suffix(op.operator.decor_mut(), within);
        self.prefix(op.rhs_expr.decor_mut(), within);
        self.expr(&mut op.rhs_expr, inner);
        // Binary operators get one space on each side.
        let operator = op.operator.decor_mut();
        space2(
            op.lhs_expr.decor_mut(),
            Side::Suffix,
            operator,
            Side::Prefix,
            true,
        );
        let operator = op.operator.decor_mut();
        space2(
            operator,
            Side::Suffix,
            op.rhs_expr.decor_mut(),
            Side::Prefix,
            true,
        );
    }

    fn traversal(&mut self, traversal: &mut Traversal, inner: usize) {
        // The same hcl-edit gap as for binary operators: the decor before each `.`/`[`.
        let mut previous = end_of(&traversal.expr);
        let within = Gap::within(inner);
        self.expr(&mut traversal.expr, inner);
        self.suffix(traversal.expr.decor_mut(), within);
        for operator in &mut traversal.operators {
            let span = operator.span();
            if let Some(text) = self.trivia_between(previous, span.as_ref().map(|s| s.start)) {
                operator.decor_mut().set_prefix(text);
            }
            previous = span.map(|span| span.end);
            self.prefix(operator.decor_mut(), within);
            match operator.value_mut() {
                TraversalOperator::Index(index) => {
                    let base = self.line_indent;
                    self.bracketed(index, base);
                }
                TraversalOperator::GetAttr(ident) => self.prefix(ident.decor_mut(), within),
                _ => {}
            }
        }
        traversal_spacing(traversal);
    }

    /// A single expression between brackets opened on a line indented at `base`.
    fn bracketed(&mut self, expr: &mut Expression, base: usize) {
        self.prefix(expr.decor_mut(), Gap::open(base));
        self.expr(expr, base + 1);
        self.suffix(expr.decor_mut(), Gap::close(base));
    }

    fn array(&mut self, array: &mut Array) {
        let base = self.line_indent;
        let inner = base + 1;
        let count = array.len();
        // With a trailing comma, the gap before `]` is the array's `trailing`, otherwise it is
        // the suffix of the last element.
        let trailing_comma = array.trailing_comma();
        for (index, value) in array.iter_mut().enumerate() {
            let before = if index == 0 {
                Gap::open(base)
            } else {
                Gap::within(inner)
            };
            self.prefix(value.decor_mut(), before);
            self.expr(value, inner);
            let after = if index + 1 == count && !trailing_comma {
                Gap::close(base)
            } else {
                Gap::within(inner)
            };
            self.suffix(value.decor_mut(), after);
        }
        let close = if count == 0 {
            Gap::empty(base)
        } else {
            Gap::close(base)
        };
        if let Some(text) = self.gap(array.trailing(), close) {
            array.set_trailing(text);
        }
        let trailing = array.trailing().to_string();
        let text = list_spacing(array.iter_mut(), trailing_comma, &trailing);
        if let Some(text) = text {
            array.set_trailing(text);
        }
    }

    fn func_call(&mut self, call: &mut FuncCall, inner: usize) {
        let within = Gap::within(inner);
        for part in &mut call.name.namespace {
            self.prefix(part.decor_mut(), within);
            self.suffix(part.decor_mut(), within);
        }
        self.prefix(call.name.name.decor_mut(), within);
        self.suffix(call.name.name.decor_mut(), within);

        let args = &mut call.args;
        let base = self.line_indent;
        let count = args.len();
        let trailer = args.trailing_comma() || args.expand_final();
        for (index, arg) in args.iter_mut().enumerate() {
            let before = if index == 0 {
                Gap::open(base)
            } else {
                Gap::within(base + 1)
            };
            self.prefix(arg.decor_mut(), before);
            self.expr(arg, base + 1);
            let after = if index + 1 == count && !trailer {
                Gap::close(base)
            } else {
                Gap::within(base + 1)
            };
            self.suffix(arg.decor_mut(), after);
        }
        let close = if count == 0 {
            Gap::empty(base)
        } else {
            Gap::close(base)
        };
        if let Some(text) = self.gap(args.trailing(), close) {
            args.set_trailing(text);
        }
        // No space between the name and `(`, nor around `::`.
        for part in &mut call.name.namespace {
            space1(part.decor_mut(), Side::Prefix, false);
            space1(part.decor_mut(), Side::Suffix, false);
        }
        space1(call.name.name.decor_mut(), Side::Prefix, false);
        space1(call.name.name.decor_mut(), Side::Suffix, false);
        let args = &mut call.args;
        space1(args.decor_mut(), Side::Prefix, false);
        let expand_final = args.expand_final();
        // `f(a, b...)`: nothing after `...` but `)`.
        let comma = args.trailing_comma() && !expand_final;
        let trailing = args.trailing().to_string();
        let text = list_spacing(args.iter_mut(), comma, &trailing);
        if let Some(text) = text {
            args.set_trailing(text);
        }
    }

    fn for_expr(&mut self, for_expr: &mut ForExpr) {
        let base = self.line_indent;
        let inner = base + 1;
        let within = Gap::within(inner);
        let intro = &mut for_expr.intro;
        self.prefix(intro.decor_mut(), Gap::open(base));
        if let Some(key_var) = &mut intro.key_var {
            self.prefix(key_var.decor_mut(), within);
            self.suffix(key_var.decor_mut(), within);
        }
        self.prefix(intro.value_var.decor_mut(), within);
        self.suffix(intro.value_var.decor_mut(), within);
        self.operand(&mut intro.collection_expr, within, inner);
        if let Some(key_expr) = &mut for_expr.key_expr {
            self.operand(key_expr, within, inner);
        }

        let value = &mut for_expr.value_expr;
        self.prefix(value.decor_mut(), within);
        self.expr(value, inner);
        match &mut for_expr.cond {
            Some(cond) => {
                self.suffix(value.decor_mut(), within);
                self.prefix(cond.decor_mut(), within);
                self.prefix(cond.expr.decor_mut(), within);
                self.expr(&mut cond.expr, inner);
                self.suffix(cond.expr.decor_mut(), Gap::close(base));
            }
            // hcl-edit keeps the space after a grouping `...` in the for expression's own
            // suffix, outside the brace; leave that case alone rather than guess.
            None if for_expr.grouping => self.suffix(value.decor_mut(), within),
            None => self.suffix(value.decor_mut(), Gap::close(base)),
        }
        for_spacing(for_expr);
    }

    /// An expression with both of its gaps inside the same bracket.
    fn operand(&mut self, expr: &mut Expression, gap: Gap, inner: usize) {
        self.prefix(expr.decor_mut(), gap);
        self.expr(expr, inner);
        self.suffix(expr.decor_mut(), gap);
    }

    fn object(&mut self, object: &mut Object) {
        let base = self.line_indent;
        let inner = base + 1;
        let count = object.len();
        // Items ended by a newline (rather than a comma) leave the next gap at a line start.
        let mut line_start = false;
        for (index, (mut key, value)) in object.iter_mut().enumerate() {
            let mut before = if index == 0 {
                Gap::open(base)
            } else {
                Gap::within(inner)
            };
            before.line_start = line_start;
            self.prefix(key.decor_mut(), before);
            // One space around `=` and `:` alike.
            set_inline_suffix(key.decor_mut());
            set_inline_prefix(value.expr_mut().decor_mut());
            self.expr(value.expr_mut(), inner);
            let terminator = value.terminator();
            let decor = value.expr_mut().decor_mut();
            match terminator {
                ObjectValueTerminator::Newline => set_line_end_suffix(decor),
                ObjectValueTerminator::Comma => self.suffix(decor, Gap::within(inner)),
                ObjectValueTerminator::None => self.suffix(decor, Gap::close(base)),
            }
            line_start = terminator == ObjectValueTerminator::Newline;
        }
        let mut close = if count == 0 {
            Gap::empty(base)
        } else {
            Gap::close(base)
        };
        close.line_start = line_start;
        if let Some(text) = self.gap(object.trailing(), close) {
            object.set_trailing(text);
        }
        object_spacing(object);
        align_object(object, self.originals);
    }

    /// Lays out one gap, keeping track of the line the following token lands on.
    fn gap(&mut self, raw: &str, gap: Gap) -> Option<String> {
        let laid = layout(raw, gap)?;
        if laid.ends_with_break {
            self.line_indent = gap.next;
        }
        Some(laid.text)
    }

    fn prefix(&mut self, decor: &mut Decor, gap: Gap) {
        let raw = decor.prefix().map_or("", |raw| raw);
        if let Some(text) = self.gap(raw, gap) {
            decor.set_prefix(text);
        }
    }

    fn suffix(&mut self, decor: &mut Decor, gap: Gap) {
        let raw = decor.suffix().map_or("", |raw| raw);
        if let Some(text) = self.gap(raw, gap) {
            decor.set_suffix(text);
        }
    }
}

/// Where a gap between two tokens sits, which decides how it is laid out.
#[derive(Clone, Copy)]
struct Gap {
    /// The gap starts a fresh line whose line break has already been written.
    line_start: bool,
    /// Indent level of comment lines inside the gap.
    inner: usize,
    /// Indent level of the token after the gap, if that token starts a line.
    next: usize,
    /// Whether a blank line may follow the token before the gap (not after an opening bracket).
    blank_before: bool,
    /// Whether a blank line may precede the token after the gap (not before a closing bracket).
    blank_after: bool,
}

impl Gap {
    /// Between two tokens inside a bracket whose content is indented at `inner`.
    fn within(inner: usize) -> Gap {
        Gap {
            line_start: false,
            inner,
            next: inner,
            blank_before: true,
            blank_after: true,
        }
    }

    /// Right after a bracket opened on a line indented at `base`.
    fn open(base: usize) -> Gap {
        Gap {
            blank_before: false,
            ..Gap::within(base + 1)
        }
    }

    /// Right before the bracket closing one opened on a line indented at `base`.
    fn close(base: usize) -> Gap {
        Gap {
            next: base,
            blank_after: false,
            ..Gap::within(base + 1)
        }
    }

    /// Between an opening and its closing bracket, with nothing else between them.
    fn empty(base: usize) -> Gap {
        Gap {
            blank_before: false,
            ..Gap::close(base)
        }
    }
}

struct Laid {
    text: String,
    /// The token after the gap starts a new line.
    ends_with_break: bool,
}

/// Rewrites one gap of whitespace and comments: comments keep their place (on their own line or
/// trailing a token) with fresh indentation, blank lines shrink to at most one. `None` means the
/// gap stays as written: spacing inside a line is set afterwards, by the `space*` helpers.
fn layout(raw: &str, gap: Gap) -> Option<Laid> {
    let pieces = trivia(raw);
    if pieces.is_empty() && !gap.line_start {
        return None;
    }
    let mut text = String::new();
    // Line breaks seen since the last comment; one is already written when the gap starts a line.
    let mut breaks = usize::from(gap.line_start);
    let mut written = gap.line_start;
    let mut seen_comment = false;
    let mut last_is_block_comment = false;
    for piece in pieces {
        match piece {
            Trivia::Newline => breaks += 1,
            // Kept verbatim like a comment, should decor ever hold anything else.
            Trivia::Comment(comment) | Trivia::Other(comment) => {
                if breaks > 0 {
                    // One blank line at most, and none right after an opening bracket.
                    let most = 1 + usize::from(seen_comment || gap.blank_before);
                    push_breaks(&mut text, breaks.min(most), &mut written);
                    push_indent(&mut text, gap.inner);
                    breaks = 0;
                } else if is_line_comment(comment) {
                    // A comment ending a line after a token: aligned later.
                    text.push_str(COMMENT_MARK);
                } else {
                    // A trailing comment, or one following another on the same line.
                    text.push(' ');
                }
                push_comment(&mut text, comment);
                seen_comment = true;
                last_is_block_comment = comment.starts_with("/*");
            }
        }
    }
    let ends_with_break = breaks > 0;
    if ends_with_break {
        // None right before a closing bracket either.
        let blank = gap.blank_after && (seen_comment || gap.blank_before);
        push_breaks(&mut text, breaks.min(1 + usize::from(blank)), &mut written);
        push_indent(&mut text, gap.next);
    } else if last_is_block_comment {
        // `/* … */` followed by a token on the same line.
        text.push(' ');
    }
    Some(Laid {
        text,
        ends_with_break,
    })
}

fn push_breaks(text: &mut String, breaks: usize, written: &mut bool) {
    let owed = breaks - usize::from(std::mem::take(written));
    text.extend(std::iter::repeat_n('\n', owed));
}

fn push_indent(text: &mut String, level: usize) {
    text.push_str(&INDENT.repeat(level));
}

/// Appends a comment without trailing whitespace on any of its lines.
fn push_comment(text: &mut String, comment: &str) {
    for (index, line) in comment.split('\n').enumerate() {
        if index > 0 {
            text.push('\n');
        }
        text.push_str(line.trim_end());
    }
}

/// What is left of decor once plain spaces are dropped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trivia<'a> {
    Newline,
    /// A `#`/`//` line comment (without its line break) or a `/* */` comment.
    Comment(&'a str),
    /// Anything else: never produced from decor, which holds only whitespace and comments.
    Other(&'a str),
}

fn trivia(raw: &str) -> Vec<Trivia<'_>> {
    let mut pieces = Vec::new();
    let mut rest = raw;
    while let Some(ch) = rest.chars().next() {
        let len = if ch == '\n' {
            pieces.push(Trivia::Newline);
            1
        } else if rest.starts_with(COMMENT_MARK) {
            // Stands for spaces.
            COMMENT_MARK.len()
        } else if ch.is_whitespace() {
            ch.len_utf8()
        } else if rest.starts_with('#') || rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            pieces.push(Trivia::Comment(rest[..end].trim_end()));
            end
        } else if let Some(body) = rest.strip_prefix("/*") {
            let end = body.find("*/").map_or(rest.len(), |at| at + 4);
            pieces.push(Trivia::Comment(&rest[..end]));
            end
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            pieces.push(Trivia::Other(&rest[..end]));
            end
        };
        rest = &rest[len..];
    }
    pieces
}

/// Whether `text` consists of whitespace and comments only.
fn is_trivia(text: &str) -> bool {
    trivia(text)
        .iter()
        .all(|piece| !matches!(piece, Trivia::Other(_)))
}

/// Source offset where `expr` and its suffix end, if known.
fn end_of(expr: &Expression) -> Option<usize> {
    let suffix = expr.decor().suffix().map_or(0, |raw| raw.len());
    Some(expr.span()?.end + suffix)
}

/// Source offset where `expr` and its prefix start, if known.
fn start_of(expr: &Expression) -> Option<usize> {
    let prefix = expr.decor().prefix().map_or(0, |raw| raw.len());
    expr.span()?.start.checked_sub(prefix)
}

fn has_comment(raw: &str) -> bool {
    trivia(raw).iter().any(|piece| *piece != Trivia::Newline)
}

fn is_line_comment(comment: &str) -> bool {
    comment.starts_with('#') || comment.starts_with("//")
}

/// A gap inside a line that needs exactly one space (around `=`, between block labels), with
/// any `/* */` comments kept between single spaces.
fn inline(raw: &str) -> String {
    let pieces = trivia(raw);
    let mut text = String::from(" ");
    for piece in &pieces {
        match piece {
            Trivia::Comment(comment) if !is_line_comment(comment) => {
                text.push_str(comment);
                text.push(' ');
            }
            // Line breaks and line comments cannot occur here in valid HCL; keep them as they are.
            _ => return raw.to_owned(),
        }
    }
    text
}

/// A gap that ends a line: only a trailing comment survives, after one space.
fn line_end(raw: &str) -> String {
    let mut text = String::new();
    for piece in trivia(raw) {
        if let Trivia::Comment(comment) | Trivia::Other(comment) = piece {
            if is_line_comment(comment) {
                text.push_str(COMMENT_MARK);
            } else {
                text.push(' ');
            }
            push_comment(&mut text, comment);
        }
    }
    text
}

fn set_inline_prefix(decor: &mut Decor) {
    let text = inline(decor.prefix().map_or("", |raw| raw));
    decor.set_prefix(text);
}

fn set_inline_suffix(decor: &mut Decor) {
    let text = inline(decor.suffix().map_or("", |raw| raw));
    decor.set_suffix(text);
}

fn set_line_end_prefix(decor: &mut Decor) {
    let text = line_end(decor.prefix().map_or("", |raw| raw));
    decor.set_prefix(text);
}

fn set_line_end_suffix(decor: &mut Decor) {
    let text = line_end(decor.suffix().map_or("", |raw| raw));
    decor.set_suffix(text);
}

/// Which side of a node its decor is on.
#[derive(Clone, Copy)]
enum Side {
    Prefix,
    Suffix,
}

fn raw(decor: &Decor, side: Side) -> &str {
    let raw = match side {
        Side::Prefix => decor.prefix(),
        Side::Suffix => decor.suffix(),
    };
    raw.map_or("", |raw| raw)
}

fn set_raw(decor: &mut Decor, side: Side, text: &str) {
    match side {
        Side::Prefix => decor.set_prefix(text),
        Side::Suffix => decor.set_suffix(text),
    }
}

/// Whether a gap holds only spaces inside a line: no line break, no comment. Only such gaps get
/// their spacing normalised; anything else is the layout's business.
fn blank(raw: &str) -> bool {
    // Most gaps are a space or nothing, which needs no scan for comments.
    raw.bytes().all(|byte| byte == b' ') || trivia(raw).is_empty()
}

fn spaces(space: bool) -> &'static str {
    if space {
        " "
    } else {
        ""
    }
}

/// Sets the spacing of a gap held by one decor side, if it is blank.
fn space1(decor: &mut Decor, side: Side, space: bool) {
    if blank(raw(decor, side)) {
        set_raw(decor, side, spaces(space));
    }
}

/// Sets the spacing of a gap split over two decor sides (the first written first), if both are
/// blank.
fn space2(first: &mut Decor, first_side: Side, second: &mut Decor, second_side: Side, space: bool) {
    if blank(raw(first, first_side)) && blank(raw(second, second_side)) {
        set_raw(first, first_side, spaces(space));
        set_raw(second, second_side, "");
    }
}

/// Sets the spacing of a gap made of a decor side followed by a container's `trailing`.
fn space_trailing(
    decor: Option<(&mut Decor, Side)>,
    trailing: &str,
    space: bool,
) -> Option<String> {
    match decor {
        Some((decor, side)) => {
            if blank(raw(decor, side)) && blank(trailing) {
                set_raw(decor, side, spaces(space));
                Some(String::new())
            } else {
                None
            }
        }
        None => blank(trailing).then(|| spaces(space).to_owned()),
    }
}

/// Spacing of a list or argument list within a line: none inside the brackets or before a
/// comma, one space after a comma (a trailing one too, as hclwrite does: `[1, 2, ]`). Returns the
/// new `trailing`, if it changes.
fn list_spacing<'e>(
    items: impl Iterator<Item = &'e mut Expression>,
    trailing_comma: bool,
    trailing: &str,
) -> Option<String> {
    let mut items: Vec<&mut Expression> = items.collect();
    let count = items.len();
    for (index, item) in items.iter_mut().enumerate() {
        space1(item.decor_mut(), Side::Prefix, index > 0);
        if index + 1 < count || trailing_comma {
            space1(item.decor_mut(), Side::Suffix, false);
        }
    }
    match items.pop() {
        None => space_trailing(None, trailing, false),
        Some(_) if trailing_comma => space_trailing(None, trailing, true),
        Some(last) => space_trailing(Some((last.decor_mut(), Side::Suffix)), trailing, false),
    }
}

/// Spacing of an object within a line: one space inside the braces (none in `{}`), none before
/// a comma, one after it.
fn object_spacing(object: &mut Object) {
    let trailing = object.trailing().to_string();
    let mut new_trailing = None;
    // After an item ended by a line break, the next gap starts with indentation.
    let mut line_start = false;
    let mut last = None;
    for (mut key, value) in object.iter_mut() {
        if !line_start {
            space1(key.decor_mut(), Side::Prefix, true);
        }
        let terminator = value.terminator();
        let decor = value.expr_mut().decor_mut();
        match terminator {
            ObjectValueTerminator::Comma => space1(decor, Side::Suffix, false),
            ObjectValueTerminator::None => {
                new_trailing = space_trailing(Some((decor, Side::Suffix)), &trailing, true);
            }
            ObjectValueTerminator::Newline => {}
        }
        line_start = terminator == ObjectValueTerminator::Newline;
        last = Some(terminator);
    }
    match last {
        None => new_trailing = space_trailing(None, &trailing, false),
        Some(ObjectValueTerminator::Comma) => new_trailing = space_trailing(None, &trailing, true),
        _ => {}
    }
    if let Some(text) = new_trailing {
        object.set_trailing(text);
    }
}

/// Spacing of `[for k, v in coll : value if cond]` and `{for k, v in coll : key => value if
/// cond}` within a line.
fn for_spacing(for_expr: &mut ForExpr) {
    let object = for_expr.key_expr.is_some();
    let intro = &mut for_expr.intro;
    space1(intro.decor_mut(), Side::Prefix, object);
    if let Some(key_var) = &mut intro.key_var {
        space1(key_var.decor_mut(), Side::Prefix, true);
        space1(key_var.decor_mut(), Side::Suffix, false);
    }
    space1(intro.value_var.decor_mut(), Side::Prefix, true);
    space1(intro.value_var.decor_mut(), Side::Suffix, true);
    space1(intro.collection_expr.decor_mut(), Side::Prefix, true);
    space1(intro.collection_expr.decor_mut(), Side::Suffix, true);
    space_after_leading_minus(&mut intro.collection_expr);
    match &mut for_expr.key_expr {
        Some(key_expr) => {
            space2(
                intro.decor_mut(),
                Side::Suffix,
                key_expr.decor_mut(),
                Side::Prefix,
                true,
            );
            space1(key_expr.decor_mut(), Side::Suffix, true);
            space1(for_expr.value_expr.decor_mut(), Side::Prefix, true);
            space_after_leading_minus(&mut for_expr.value_expr);
        }
        None => {
            let value = for_expr.value_expr.decor_mut();
            space2(intro.decor_mut(), Side::Suffix, value, Side::Prefix, true);
        }
    }
    let value = for_expr.value_expr.decor_mut();
    match &mut for_expr.cond {
        Some(cond) => {
            if for_expr.grouping {
                space1(value, Side::Suffix, false);
                space1(cond.decor_mut(), Side::Prefix, true);
            } else {
                space2(value, Side::Suffix, cond.decor_mut(), Side::Prefix, true);
            }
            space1(cond.expr.decor_mut(), Side::Prefix, true);
            space_after_leading_minus(&mut cond.expr);
            let expr = cond.expr.decor_mut();
            if blank(raw(expr, Side::Suffix)) {
                // Before the closing bracket.
                set_raw(expr, Side::Suffix, spaces(object));
            }
        }
        // The gap after `...` is out of reach (see `Formatter::for_expr`); the one before it
        // is empty.
        None if for_expr.grouping => space1(value, Side::Suffix, false),
        None => space1(value, Side::Suffix, object),
    }
}

/// Spacing of a traversal within a line: none around `.` or inside `[…]`, and none before `[`
/// except where hclwrite puts one (after a quoted string and after `.*`).
fn traversal_spacing(traversal: &mut Traversal) {
    let string_like = matches!(
        traversal.expr,
        Expression::String(_) | Expression::StringTemplate(_) | Expression::HeredocTemplate(_)
    );
    let mut before_blank = blank(raw(traversal.expr.decor(), Side::Suffix));
    let mut after_attr_splat = false;
    for (index, operator) in traversal.operators.iter_mut().enumerate() {
        let bracket = matches!(
            operator.value(),
            TraversalOperator::Index(_) | TraversalOperator::FullSplat(_)
        );
        let space = bracket && ((index == 0 && string_like) || after_attr_splat);
        if before_blank && blank(raw(operator.decor(), Side::Prefix)) {
            if index == 0 {
                set_raw(traversal.expr.decor_mut(), Side::Suffix, "");
            }
            set_raw(operator.decor_mut(), Side::Prefix, spaces(space));
        }
        let inner = match operator.value_mut() {
            TraversalOperator::AttrSplat(splat) | TraversalOperator::FullSplat(splat) => {
                splat.decor_mut()
            }
            TraversalOperator::GetAttr(ident) => ident.decor_mut(),
            TraversalOperator::Index(expr) => expr.decor_mut(),
            TraversalOperator::LegacyIndex(index) => index.decor_mut(),
        };
        space1(inner, Side::Prefix, false);
        space1(inner, Side::Suffix, false);
        space1(operator.decor_mut(), Side::Suffix, false);
        before_blank = blank(raw(operator.decor(), Side::Suffix));
        after_attr_splat = matches!(operator.value(), TraversalOperator::AttrSplat(_));
    }
}

/// The term an expression starts with: what follows the gap in front of the expression.
fn leading_term(expr: &mut Expression) -> &mut Expression {
    match expr {
        Expression::BinaryOp(op) => leading_term(&mut op.lhs_expr),
        Expression::Conditional(cond) => leading_term(&mut cond.cond_expr),
        Expression::Traversal(traversal) => leading_term(&mut traversal.expr),
        _ => expr,
    }
}

/// hclwrite guesses whether `-` negates from the token before it; after a word (`in`, `if`) or
/// `=>` it guesses subtraction and keeps a space after the minus.
fn space_after_leading_minus(expr: &mut Expression) {
    let term = leading_term(expr);
    match term {
        Expression::UnaryOp(op) if op.operator.value() == &UnaryOperator::Neg => {
            space1(op.expr.decor_mut(), Side::Prefix, true);
        }
        _ => respace_negative_number(term, true),
    }
}

/// hcl-edit reads `- 1` as one number token, spaces included; gives it `space` spaces after the
/// minus instead.
fn respace_negative_number(expr: &mut Expression, space: bool) {
    let Expression::Number(number) = expr else {
        return;
    };
    let Some(repr) = number.as_repr() else {
        return;
    };
    let Some(digits) = repr.strip_prefix('-') else {
        return;
    };
    let text = format!(
        "-{}{}",
        spaces(space),
        digits.trim_start_matches([' ', '\t'])
    );
    if text == **repr {
        return;
    }
    // The only way to set a number's text is to parse it.
    if let Ok(mut parsed) = parser::parse_expr(&text) {
        if matches!(parsed, Expression::Number(_)) {
            *parsed.decor_mut() = number.decor().clone();
            *expr = parsed;
        }
    }
}

/// One `key = value` line (or not) of a body or object, as seen by alignment.
#[derive(Clone, Copy, Default)]
struct Row {
    /// The `key = value` line may take part in aligning `=` at all.
    eligible: bool,
    /// The line directly follows the previous row's line: no blank line or comment between.
    adjacent: bool,
    /// The value ends on the line it starts on, so the next line may continue the run.
    single_line: bool,
    key_width: usize,
}

impl Row {
    fn new(key_width: usize, value: &Expression) -> Row {
        // Heredocs stand in the tree as placeholders (see `HeredocStash`); they span lines.
        let heredoc = matches!(value, Expression::String(s) if s.value().starts_with(HEREDOC_MARK));
        let single_line = !heredoc && !bare_spans_lines(value);
        Row {
            // A heredoc's first line is complete, so terraform fmt aligns it with the lines above.
            eligible: single_line || heredoc,
            single_line,
            key_width,
            ..Row::default()
        }
    }
}

/// Aligns `=` across runs of consecutive eligible rows (terraform fmt's "assign cells"): the
/// spaces to put before each row's `=`. Trailing comments are aligned on the finished text (see
/// `align_comments`).
fn plan(rows: &[Row]) -> Vec<usize> {
    let mut padding = vec![1; rows.len()];
    let mut start = 0;
    while start < rows.len() {
        if !rows[start].eligible {
            start += 1;
            continue;
        }
        let mut end = start + 1;
        while end < rows.len()
            && rows[end].eligible
            && rows[end].adjacent
            && rows[end - 1].single_line
        {
            end += 1;
        }
        let run = &rows[start..end];
        let key_width = run.iter().map(|row| row.key_width).max().unwrap_or(0);
        for (pad, row) in padding[start..end].iter_mut().zip(run) {
            *pad = key_width - row.key_width + 1;
        }
        start = end;
    }
    padding
}

fn align_body(body: &mut Body) {
    let rows: Vec<Row> = body
        .iter()
        .map(|structure| {
            let Structure::Attribute(attr) = structure else {
                return Row::default();
            };
            let mut row = Row::new(width(attr.key.as_str()), &attr.value);
            row.eligible &= plain_assignment(attr.key.decor(), attr.value.decor());
            row.adjacent = attr
                .decor()
                .prefix()
                .is_none_or(|raw| raw.chars().all(|ch| ch == ' '));
            row
        })
        .collect();
    for (index, padding) in plan(&rows).into_iter().enumerate() {
        if !rows[index].eligible {
            continue;
        }
        if let Some(Structure::Attribute(attr)) = body.get_mut(index) {
            attr.key.decor_mut().set_suffix(" ".repeat(padding));
        }
    }
}

fn align_object(object: &mut Object, originals: &[(&'static str, String)]) {
    let items: Vec<_> = object.iter().collect();
    let rows: Vec<Row> = items
        .iter()
        .enumerate()
        .map(|(index, (key, value))| {
            let before = key.decor().prefix().map_or("", |raw| raw);
            // The gap after an item holds the line break when the item ends with a comma.
            let after = match items.get(index + 1) {
                Some((next, _)) => next.decor().prefix().map_or("", |raw| raw),
                None => object.trailing(),
            };
            // After an item ended by a newline, `before` starts on the next line already.
            let after_newline =
                index > 0 && items[index - 1].1.terminator() == ObjectValueTerminator::Newline;
            let breaks = before.matches('\n').count() + usize::from(after_newline);
            let ends_line = match value.terminator() {
                ObjectValueTerminator::Newline => true,
                ObjectValueTerminator::Comma => after.contains('\n'),
                ObjectValueTerminator::None => false,
            };
            let mut row = Row::new(key_width(key, originals), value.expr());
            row.eligible &= value.assignment() == ObjectValueAssignment::Equals
                && breaks > 0
                && (ends_line || !row.single_line)
                && plain_assignment(key.decor(), value.expr().decor());
            row.adjacent = breaks == 1 && before.chars().all(|ch| ch == ' ' || ch == '\n');
            row
        })
        .collect();
    let padding = plan(&rows);
    for (index, (mut key, _)) in object.iter_mut().enumerate() {
        if !rows[index].eligible {
            continue;
        }
        key.decor_mut().set_suffix(" ".repeat(padding[index]));
    }
}

/// Whether `key = value` has exactly one space on each side of `=` (no comments in the way).
fn plain_assignment(key: &Decor, value: &Decor) -> bool {
    key.suffix().is_some_and(|raw| &**raw == " ") && value.prefix().is_some_and(|raw| &**raw == " ")
}

fn key_width(key: &ObjectKey, originals: &[(&'static str, String)]) -> usize {
    match key {
        ObjectKey::Ident(ident) => width(ident.as_str()),
        ObjectKey::Expression(expr) => match stashed(expr, originals) {
            Some(original) => width(original),
            None => width(&bare(expr)),
        },
    }
}

/// The source text a placeholder stands for.
fn stashed<'o>(expr: &Expression, originals: &'o [(&'static str, String)]) -> Option<&'o str> {
    let Expression::String(s) = expr else { return None };
    let rest = [HEREDOC_MARK, TEMPLATE_MARK, LITERAL_MARK].iter().find_map(|mark| s.value().strip_prefix(mark))?;
    let index: usize = rest.strip_suffix('\u{E000}')?.parse().ok()?;
    originals.get(index).map(|(_, text)| text.as_str())
}

/// An expression as printed, without its surrounding decor.
fn bare(expr: &Expression) -> String {
    let mut text = String::new();
    // Writing to a `String` cannot fail.
    let _ = expr.encode_undecorated(&mut text);
    text
}

/// Whether `expr` printed without its surrounding decor holds a line break, without building
/// the text: asked of every value alignment sees, objects within objects again at each level.
fn bare_spans_lines(expr: &Expression) -> bool {
    /// Stops the printing at the first line break.
    struct LineBreak;
    impl std::fmt::Write for LineBreak {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            if text.contains('\n') {
                Err(std::fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    expr.encode_undecorated(&mut LineBreak).is_err()
}

/// Whether `expr` printed without its surrounding decor is exactly `expected`, without building
/// the text.
fn bare_is(expr: &Expression, expected: &str) -> bool {
    /// Consumes `rest` as the printed text matches it; stops at the first difference.
    struct Matches<'t> {
        rest: &'t str,
    }
    impl std::fmt::Write for Matches<'_> {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            match self.rest.strip_prefix(text) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(())
                }
                None => Err(std::fmt::Error),
            }
        }
    }
    let mut matches = Matches { rest: expected };
    expr.encode_undecorated(&mut matches).is_ok() && matches.rest.is_empty()
}

/// Display width, counting characters as terraform fmt does.
fn width(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::format_source;

    /// Formats `input` and checks the result, and that formatting it again changes nothing.
    /// Both texts are written as raw strings starting on the line after the opening quote.
    #[track_caller]
    fn check(input: &str, expected: &str) {
        let input = input.strip_prefix('\n').unwrap_or(input);
        let expected = expected.strip_prefix('\n').unwrap_or(expected);
        let formatted = format_source(input).expect("input parses");
        assert_eq!(formatted, expected, "formatting input:\n{input}");
        let again = format_source(&formatted).expect("output parses");
        assert_eq!(again, formatted, "formatting is not idempotent");
    }

    #[test]
    fn many_templates_come_back_each_in_its_place() {
        let input: String = (0..200).map(|i| format!("a{i} = \"${{x}}-{i}\"\nb{i} = \"%{{if y}}{i}%{{endif}}\"\n\n")).collect();
        let formatted = format_source(&input).expect("input parses");
        for i in [0, 1, 10, 100, 199] {
            assert!(formatted.contains(&format!("a{i} = \"${{x}}-{i}\"\n")), "a{i} in:\n{formatted}");
            assert!(formatted.contains(&format!("b{i} = \"%{{if y}}{i}%{{endif}}\"\n")), "b{i} in:\n{formatted}");
        }
        assert!(!formatted.contains('\u{E000}'), "a placeholder was left:\n{formatted}");
        assert_eq!(format_source(&formatted).expect("output parses"), formatted);
    }

    /// Formatting a file in pieces of whole top-level blocks gives what formatting it whole
    /// does, at every piece size, including the cases where the pieces must not be kept apart.
    #[test]
    fn a_file_formatted_in_pieces_is_formatted_as_a_whole() {
        let blocks = [
            "resource \"x\" \"a\" {\nname = \"a\" # one\nlong_name = 1\n} # after a\n",
            "\n\n\n# above b\n\nresource   \"x\" \"b\" { # b\n  tags = {\nk = \"${var.v}\"\n  kk = \"%{if c}x%{endif}\"\n}\n}\n",
            "locals {\n  s = <<-EOT\n    keep   \n  EOT\n  t = \"${x}\"\n}\n",
            "b {}\n",
            "top = 1\n",
            "longer_top = 2\nc {\n  d = [\n\n1,\n]\n}\n",
            "single = { a = 1 }\nafter_single = 2\n",
            "e { f = 1 }\r\ng {\r\n  h = -  1 # minus\r\n}\r\n",
            "/* block\n   comment */ j {\n}\n",
            "k {\n  l = \"\u{E000}strata-literal-0\u{E000}\"\n}\n",
        ];
        // The last block holds a placeholder's lookalike, which sends a file whole.
        let plain = &blocks[..blocks.len() - 1];
        let mut inputs: Vec<String> = Vec::new();
        for blocks in [&blocks[..], plain] {
            inputs.push(blocks.concat());
            inputs.push(blocks.iter().rev().copied().collect::<String>());
            inputs.push(format!("{}\n\n# trailing comment\n\n", blocks.concat()));
            inputs.push(format!("{}top = 3\n", blocks.concat()));
            inputs.push(format!("{}z {{\n}}\n", blocks.concat()).repeat(3));
            inputs.push(format!("{}   \n", blocks.concat()));
            inputs.push(format!("{}unclosed {{\n", blocks.concat()));
            inputs.push(format!("{}bad = \n", blocks.concat()));
        }
        for input in &inputs {
            let whole = super::format_in_pieces(input, usize::MAX, 1);
            for piece in [1, 2, 7, 40, 64, 150, 300] {
                for threads in [1, 2, 3] {
                    assert_eq!(super::format_in_pieces(input, piece, threads), whole, "piece size {piece}, {threads} threads, input:\n{input}");
                }
            }
        }
        // The pieces are really formatted apart (not all sent back whole).
        let clean = format!("{}{}", blocks[0], blocks[2]).repeat(5);
        let ranges = super::super::parse::pieces(&clean, 1).unwrap();
        // A cut follows each `}` that ends a line (not the one with a comment after it).
        assert!(ranges.len() >= 5, "{} pieces", ranges.len());
        for threads in [1, 2] {
            let pieces = super::format_pieces(&clean, &ranges, threads).expect("every cut kept");
            assert_eq!(super::format_in_pieces(&clean, 1, threads), super::format_in_pieces(&clean, usize::MAX, 1));
            assert_eq!(Ok(super::align_comments(&pieces).trim_end().to_owned() + "\n"), super::format_in_pieces(&clean, usize::MAX, 1));
        }
    }

    #[test]
    fn aligns_equals_of_consecutive_single_line_attributes() {
        check(
            r#"
a = 1
long_name="two"
mid    =    3
"#,
            r#"
a         = 1
long_name = "two"
mid       = 3
"#,
        );
    }

    #[test]
    fn alignment_runs_break_at_blank_lines_comments_blocks_and_multi_line_values() {
        check(
            r"
a = 1
bb = 2

ccc = 3
# note
dddd = 4
e = 5
nested {}
ffffff = 6
g = [
  1,
]
hh = 7
",
            r"
a  = 1
bb = 2

ccc = 3
# note
dddd = 4
e    = 5
nested {}
ffffff = 6
g = [
  1,
]
hh = 7
",
        );
    }

    #[test]
    fn a_heredoc_line_joins_the_run_above_and_ends_it() {
        check(
            r#"
ami = "x"
user_data = <<EOT
echo hi
EOT
count = 1
"#,
            r#"
ami       = "x"
user_data = <<EOT
echo hi
EOT
count = 1
"#,
        );
    }

    #[test]
    fn aligns_object_items_and_indents_nested_objects() {
        check(
            r#"
tags = {
Name = "web"
"kubernetes.io/role" = "node"
nested = {
a = 1
bbb = 2
}
Environment = "prod"
Team = "core"

Cost = 1
}
"#,
            r#"
tags = {
  Name                 = "web"
  "kubernetes.io/role" = "node"
  nested = {
    a   = 1
    bbb = 2
  }
  Environment = "prod"
  Team        = "core"

  Cost = 1
}
"#,
        );
    }

    #[test]
    fn indents_nested_blocks_two_spaces_per_level() {
        check(
            r#"
resource   "aws_instance"     "web" {
ami = "ami-123"
    lifecycle {
            create_before_destroy = true
      }
dynamic "tag" {
for_each = var.tags
content {
key = tag.key
}
}
}
"#,
            r#"
resource "aws_instance" "web" {
  ami = "ami-123"
  lifecycle {
    create_before_destroy = true
  }
  dynamic "tag" {
    for_each = var.tags
    content {
      key = tag.key
    }
  }
}
"#,
        );
    }

    #[test]
    fn indents_multi_line_brackets_by_the_line_that_opens_them() {
        check(
            r#"
locals {
names = [
"a",
    "b",
]
merged = merge(var.base, {
      extra = true
    })
call = format(
"%s-%s",
var.a,
        var.b
)
list = [for s in var.items :
  upper(s)
if s != ""]
}
"#,
            r#"
locals {
  names = [
    "a",
    "b",
  ]
  merged = merge(var.base, {
    extra = true
  })
  call = format(
    "%s-%s",
    var.a,
    var.b
  )
  list = [for s in var.items :
    upper(s)
    if s != ""]
}
"#,
        );
    }

    /// Consecutive lines ending in comments get them aligned, as with terraform fmt: `1,` lines
    /// up with the two lines above.
    #[test]
    fn keeps_full_line_and_trailing_comments() {
        check(
            r#"
# Header comment.
// Another style.
/* A block
   comment. */
resource "x" "y" { # after brace
    # inside
  a = 1 # trailing
    b = [ # after bracket
      1, // one
      # before two
      2 /* two */
    ]
    # before closing brace
} # after closing brace
"#,
            r#"
# Header comment.
// Another style.
/* A block
   comment. */
resource "x" "y" { # after brace
  # inside
  a = 1 # trailing
  b = [ # after bracket
    1,  // one
    # before two
    2 /* two */
  ]
  # before closing brace
} # after closing brace
"#,
        );
    }

    #[test]
    fn aligns_trailing_comments_of_aligned_lines() {
        check(
            r#"
a = 1 # one
bungle = "bonce" # two
zebra = "striped"   # three
"#,
            r#"
a      = 1         # one
bungle = "bonce"   # two
zebra  = "striped" # three
"#,
        );
    }

    #[test]
    fn keeps_comments_around_operators() {
        // hcl-edit itself drops these when printing; the formatter restores them.
        check(
            r"
total = (
  var.a + # first
  var.b   /* second */ * 2
)
",
            r"
total = (
  var.a + # first
  var.b /* second */ * 2
)
",
        );
    }

    #[test]
    fn collapses_blank_lines_and_trims_whitespace() {
        check(
            "\n\n\na = 1   \n\n\n\nb {\n\n\n  c = 2\t\n\n\n  d = [\n\n    1,\n\n\n    2,\n\n  ]\n\n\n}\n\n\n",
            "a = 1\n\nb {\n  c = 2\n\n  d = [\n    1,\n\n    2,\n  ]\n}\n",
        );
    }

    #[test]
    fn single_line_blocks_stay_on_one_line() {
        check(
            r#"
output "ip" {value=aws_instance.web.private_ip}
empty {   }
"#,
            r#"
output "ip" { value = aws_instance.web.private_ip }
empty {}
"#,
        );
    }

    #[test]
    fn heredocs_are_kept_verbatim() {
        let input = "resource \"x\" \"y\" {\nscript = <<EOT\n  keep   \n\n\n\tthis  exactly\nEOT\n    policy = <<-JSON\n      {\n          \"a\": 1\n      }\n      JSON\n}\n";
        let expected = "resource \"x\" \"y\" {\n  script = <<EOT\n  keep   \n\n\n\tthis  exactly\nEOT\n  policy = <<-JSON\n      {\n          \"a\": 1\n      }\n      JSON\n}\n";
        check(input, expected);
    }

    #[test]
    fn ends_with_exactly_one_newline() {
        check("a = 1", "a = 1\n");
        check("a = 1\n\n\n", "a = 1\n");
        check("", "");
        check("\n \n", "");
        check("# only a comment", "# only a comment\n");
    }

    #[test]
    fn windows_line_endings_become_unix() {
        check(
            "a = 1\r\nb {\r\n  c = 2 # x\r\n}\r\n",
            "a = 1\nb {\n  c = 2 # x\n}\n",
        );
    }

    #[test]
    fn formatting_is_idempotent() {
        let input = r#"
variable "tags" {
    type = map(string)
    default = {
        Name = "web" # name
        Environment = "production"   # env
    }
}
locals {
  ids = [for k, v in var.things : v.id
         if v.enabled]
  by_key = { for k, v in var.things :
             k => v }
  x = var.enabled ? (
      var.count
  ) : 0
}
"#;
        let once = format_source(input).unwrap();
        assert_eq!(format_source(&once).unwrap(), once);
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(format_source("a = \n").is_err());
        assert!(format_source("resource \"x\" {\n").is_err());
        assert!(format_source("a = [1, 2\n").is_err());
        assert!(format_source("= 1\n").is_err());
    }
}
