//! The entry points to the HCL parser (hcl-edit), guarded against input it
//! would take exponential time on.
//!
//! hcl-edit 0.10's parser backtracks through every unclosed bracket: an object
//! key is first parsed as an expression and parsed again when no `=` follows,
//! so each `{` (or `(`, `[`, `${`, `%{`) left open doubles the work: 258 bytes
//! of unclosed `%{` took 27 s. A file whose brackets never close is an error
//! either way, so a quick scan that follows strings, templates, heredocs and
//! comments counts what is left open at the end, and past
//! [`MAX_UNCLOSED`] reports the first unclosed bracket instead of parsing.
//! Below that bound the parser's own error stands (2^MAX_UNCLOSED steps are
//! quick).

use super::ast::Node;
use hcl::edit::structure::Body;
use std::ops::Range;

/// Unclosed brackets tolerated before the parser is not asked at all.
pub const MAX_UNCLOSED: usize = 8;

/// Why a text was not parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    /// The byte range at fault.
    pub range: Range<usize>,
    /// The parser's full report (with line and column), for `Display`.
    detail: String,
}

impl SyntaxError {
    fn from_parser(text: &str, e: &hcl::edit::parser::Error) -> SyntaxError {
        // The parser's offset can fall inside a multi-byte character.
        let mut offset = e.location().offset().min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let end = text[offset..].chars().next().map_or(offset, |c| offset + c.len_utf8());
        SyntaxError { message: e.message().to_owned(), range: offset..end, detail: e.to_string() }
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// A whole file (configuration or variables).
pub fn parse_body(text: &str) -> Result<Body, SyntaxError> {
    check_brackets(text)?;
    hcl::edit::parser::parse_body(text).map_err(|e| SyntaxError::from_parser(text, &e))
}

/// Where `text` may be cut into pieces of about `piece` bytes of whole
/// top-level structures that parse apart (see [`unclosed_and_pieces`]): the
/// byte ranges of the pieces, in order, covering all of it (one range when
/// there is no cut).
///
/// # Errors
///
/// When too many brackets are never closed, as [`parse_body`] reports it.
pub(crate) fn pieces(text: &str, piece: usize) -> Result<Vec<Range<usize>>, SyntaxError> {
    let (open, cuts) = unclosed_and_pieces(text, piece);
    check_open(text, &open)?;
    let mut start = 0;
    let ranges = cuts.into_iter().chain(std::iter::once(text.len())).map(|end| {
        let range = start..end;
        start = end;
        range
    });
    Ok(ranges.collect())
}

/// One piece (from [`pieces`]) of a configuration file for the model, spans
/// counted from the start of `text`, decor as spans into it (see
/// [`parse_body_for_model`]). `None` when the piece does not parse alone:
/// the file has a syntax error, or the scan cut it where it should not have;
/// [`parse_whole_for_model`] tells which.
pub(crate) fn parse_piece_for_model(text: &str, range: Range<usize>) -> Option<Body> {
    hcl::edit::parser::parse_body_spanned_range(text, range).ok()
}

/// A file whose brackets [`pieces`] checked, whole, for the model: what
/// stands when a piece did not parse alone.
pub(crate) fn parse_whole_for_model(text: &str) -> Result<Body, SyntaxError> {
    hcl::edit::parser::parse_body_spanned(text).map_err(|e| SyntaxError::from_parser(text, &e))
}

/// One piece (from [`pieces`]) of a file for the formatter: as
/// [`parse_piece_for_model`], but with the decor copied out, as
/// [`parse_body`] does, so that the piece can be printed.
pub(crate) fn parse_piece_for_fmt(text: &str, range: Range<usize>) -> Option<Body> {
    hcl::edit::parser::parse_body_range(text, range).ok()
}

/// A file whose brackets [`pieces`] checked, whole, for the formatter.
pub(crate) fn parse_whole_for_fmt(text: &str) -> Result<Body, SyntaxError> {
    hcl::edit::parser::parse_body(text).map_err(|e| SyntaxError::from_parser(text, &e))
}

/// A configuration file for the model: as [`parse_body`], but the tree's
/// decor stays spans into `text` instead of being copied out (the model
/// never prints the tree, so the copies were a string per node for nothing).
pub fn parse_body_for_model(text: &str) -> Result<Body, SyntaxError> {
    check_brackets(text)?;
    hcl::edit::parser::parse_body_spanned(text).map_err(|e| SyntaxError::from_parser(text, &e))
}

/// One expression (`-var` values, the console, the fuzz target), in the
/// model's tree.
pub fn parse_expr(text: &str) -> Result<Node, SyntaxError> {
    check_brackets(text)?;
    let expr = hcl::edit::parser::parse_expr(text).map_err(|e| SyntaxError::from_parser(text, &e))?;
    Ok(model_expr(&expr))
}

/// An expression hcl-edit parsed, in the model's tree (for tests that read
/// expressions out of a parsed file of cases).
pub fn model_expr(expr: &hcl::edit::expr::Expression) -> Node {
    super::lower::expr::node(expr, &mut Default::default())
}

/// Where the scan is.
pub(crate) enum Frame {
    /// An open `(`, `[` or `{` in code, with its closing byte.
    Bracket(u8, usize),
    /// `${` or `%{` inside a template, closed by `}`.
    Interpolation(usize),
    /// A quoted string.
    Quoted(usize),
    /// A heredoc body, ended by a line holding only the marker.
    Heredoc(String, usize),
}

impl Frame {
    fn start(&self) -> usize {
        match self {
            Frame::Bracket(_, at) | Frame::Interpolation(at) | Frame::Quoted(at) | Frame::Heredoc(_, at) => *at,
        }
    }
}

/// Errs when more than [`MAX_UNCLOSED`] brackets are still open at the end.
fn check_brackets(text: &str) -> Result<(), SyntaxError> {
    check_open(text, &unclosed(text))
}

/// Errs when more than [`MAX_UNCLOSED`] of `open` are open.
pub(crate) fn check_open(text: &str, open: &[Frame]) -> Result<(), SyntaxError> {
    if open.len() <= MAX_UNCLOSED {
        return Ok(());
    }
    let first = open[0].start();
    let end = text[first..].chars().next().map_or(first, |c| first + c.len_utf8());
    let message = format!("{} brackets, strings or templates are never closed, the first one here", open.len());
    Err(SyntaxError { detail: message.clone(), message, range: first..end })
}

/// Bytes the scan must look at, by where it is; every other byte is skipped
/// in a tight loop (the scan runs before every parse, so it must cost little
/// next to the parser: a byte-at-a-time state machine was 10 % of loading a
/// large file).
const CODE_SPECIAL: [bool; 256] = byte_set(b"\"()[]{}#/<");
const QUOTED_SPECIAL: [bool; 256] = byte_set(b"\\\"$%\n");
const HEREDOC_SPECIAL: [bool; 256] = byte_set(b"$%\n");

const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        set[bytes[i] as usize] = true;
        i += 1;
    }
    set
}

/// The first index from `i` whose byte is in `set` (or the end).
fn skip_to(bytes: &[u8], mut i: usize, set: &[bool; 256]) -> usize {
    while i < bytes.len() && !set[bytes[i] as usize] {
        i += 1;
    }
    i
}

/// What is still open at the end of `text`, outermost first.
fn unclosed(text: &str) -> Vec<Frame> {
    unclosed_and_pieces(text, usize::MAX).0
}

/// What [`unclosed`] finds, and where `text` may be cut into pieces of about
/// `piece` bytes or more: after the line ending of a line whose last token is
/// a `}` that closes a top-level bracket (a block, or an attribute's object),
/// which ends a structure (a line ending ends every top-level structure).
pub(crate) fn unclosed_and_pieces(text: &str, piece: usize) -> (Vec<Frame>, Vec<usize>) {
    let mut cuts = Vec::new();
    let mut last_cut = 0;
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match stack.last() {
            Some(Frame::Quoted(_)) => {
                i = skip_to(bytes, i, &QUOTED_SPECIAL);
                let Some(&b) = bytes.get(i) else { break };
                match b {
                    b'\\' => i += 1,
                    b'"' => {
                        stack.pop();
                    }
                    b'$' | b'%' if bytes.get(i + 1) == Some(&b) && bytes.get(i + 2) == Some(&b'{') => i += 2,
                    b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => {
                        stack.push(Frame::Interpolation(i));
                        i += 1;
                    }
                    // A quoted string ends at the line; the parser says why.
                    b'\n' => {
                        stack.pop();
                    }
                    _ => {}
                }
            }
            Some(Frame::Heredoc(marker, _)) => {
                // In a heredoc the byte processed before this one is always
                // the one just before it, so a line starts after a `\n`.
                if i > 0 && bytes[i - 1] == b'\n' {
                    let line_end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                    if text[i..line_end].trim() == marker {
                        stack.pop();
                        i = line_end;
                        continue;
                    }
                }
                i = skip_to(bytes, i, &HEREDOC_SPECIAL);
                let Some(&b) = bytes.get(i) else { break };
                match b {
                    b'$' | b'%' if bytes.get(i + 1) == Some(&b) && bytes.get(i + 2) == Some(&b'{') => i += 2,
                    b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => {
                        stack.push(Frame::Interpolation(i));
                        i += 1;
                    }
                    _ => {}
                }
            }
            _ => {
                i = skip_to(bytes, i, &CODE_SPECIAL);
                let Some(&b) = bytes.get(i) else { break };
                match b {
                    b'"' => stack.push(Frame::Quoted(i)),
                    b'(' => stack.push(Frame::Bracket(b')', i)),
                    b'[' => stack.push(Frame::Bracket(b']', i)),
                    b'{' => stack.push(Frame::Bracket(b'}', i)),
                    b')' | b']' | b'}' => match stack.last() {
                        Some(Frame::Bracket(close, _)) if *close == b => {
                            stack.pop();
                            if b == b'}' && stack.is_empty() && i + 1 - last_cut >= piece {
                                let rest = &bytes[i + 1..];
                                let blank = rest.iter().position(|&c| c != b' ' && c != b'\t' && c != b'\r');
                                if let Some(at) = blank.filter(|&at| rest[at] == b'\n') {
                                    last_cut = i + 1 + at + 1;
                                    cuts.push(last_cut);
                                }
                            }
                        }
                        Some(Frame::Interpolation(_)) if b == b'}' => {
                            stack.pop();
                        }
                        // A stray closer: the parser reports it.
                        _ => {}
                    },
                    b'#' => i = text[i..].find('\n').map_or(text.len(), |n| i + n) - 1,
                    b'/' if bytes.get(i + 1) == Some(&b'/') => i = text[i..].find('\n').map_or(text.len(), |n| i + n) - 1,
                    b'/' if bytes.get(i + 1) == Some(&b'*') => i = text[i + 2..].find("*/").map_or(text.len(), |n| i + 2 + n + 2) - 1,
                    b'<' if bytes.get(i + 1) == Some(&b'<') => {
                        let rest = &text[i + 2..];
                        let rest = rest.strip_prefix('-').unwrap_or(rest);
                        let marker: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-').collect();
                        let after = &rest[marker.len()..];
                        if !marker.is_empty() && (after.starts_with('\n') || after.starts_with("\r\n")) {
                            let body = text.len() - after.len() + if after.starts_with('\n') { 1 } else { 2 };
                            stack.push(Frame::Heredoc(marker, i));
                            i = body;
                            continue;
                        }
                    }
                    _ => {}
                }
            }
        }
        i += 1;
    }
    (stack, cuts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_has_nothing_open() {
        for text in [
            "a = { b = [1, (2)] }\n",
            "a = \"x${ {b = \"}\"}.b }%{ if c }{%{ endif }$${ \\\" \"\n",
            "a = <<-EOT\n  { ${ x } $${ %%{\n  EOT\nb = {}\n",
            "# {\n// (\n/* [ */ a = 1\n",
            "a = 1 << 2\n",
        ] {
            assert!(unclosed(text).is_empty(), "{text:?}");
            assert!(check_brackets(text).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn many_unclosed_brackets_are_refused_at_the_first() {
        let text = format!("x = \"{}", "%{".repeat(129));
        let e = parse_body(&text).unwrap_err();
        assert_eq!(e.range, 4..5);
        assert!(e.message.contains("130 brackets, strings or templates are never closed"), "{}", e.message);
        let e = parse_expr(&"{a = (".repeat(20)).unwrap_err();
        assert_eq!(e.range, 0..1);
    }

    #[test]
    fn a_few_unclosed_brackets_are_left_to_the_parser() {
        let e = parse_body("a = { b = (\n").unwrap_err();
        assert!(!e.message.contains("never closed"), "the parser's own error: {}", e.message);
    }
}
