//! STRATA PATCH: a hand-written, single-pass HCL parser that builds exactly
//! the tree the winnow parser builds (same values, spans and decor spans), in
//! a fraction of the time.
//!
//! It is a recursive-descent parser over bytes that mirrors the winnow
//! grammar decision by decision: where the winnow parser peeks, this one
//! peeks at the same bytes; where it sets a span or a piece of decor, this
//! one sets the same (it even reuses the same parse states, `BodyParseState`
//! and `ExprParseState`). It is safe by construction in one direction only,
//! and that is the one that matters: whenever it meets anything it does not
//! handle (function namespaces, a carriage
//! return, a non-ASCII identifier, ...) or any error at all, it *declines*
//! and the winnow parser parses the text, so every error and its message
//! stays hcl-edit's. It must never accept a text and build a tree different
//! from winnow's; `tests.rs` checks that over every HCL file of the
//! workspace and systematic mutations of them.

mod expr;
mod string;
#[cfg(test)]
mod tests;

use super::nesting::MAX_NESTING_DEPTH;
use super::state::BodyParseState;
use crate::structure::{Attribute, Block, BlockLabel, Body, Structure};
use crate::{Decorate, Decorated, Ident, RawString, SetSpan};
use std::ops::Range;

/// The fast parser gives the text to the winnow parser.
pub(super) struct Decline;

/// The result of a fast parse step.
pub(super) type Fast<T> = Result<T, Decline>;

/// Parses the structures of `input[start..]` into a [`Body`] whose decor
/// is left as spans into `input`, as the winnow `body` parser does, or
/// `None` when the fast parser declines.
pub(super) fn parse_body(input: &str, start: usize) -> Option<Body> {
    let mut cursor = Cursor {
        src: input,
        bytes: input.as_bytes(),
        pos: start,
        depth: 0,
        operator_depth: 0,
    };
    let body = cursor.body().ok()?;
    (cursor.pos == input.len()).then_some(body)
}

/// The parse position in the input, and the nesting state the winnow
/// parser keeps in its input (`NestingState`).
pub(super) struct Cursor<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    operator_depth: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn at(&self, tag: &[u8]) -> bool {
        self.bytes.get(self.pos..).is_some_and(|rest| rest.starts_with(tag))
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Fast<()> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(Decline)
        }
    }

    fn slice(&self, range: Range<usize>) -> Fast<&'a str> {
        self.src.get(range).ok_or(Decline)
    }

    /// Runs `parse` one nesting level deeper, as winnow's `nested` does.
    fn nested<T>(&mut self, parse: impl FnOnce(&mut Self) -> Fast<T>) -> Fast<T> {
        if self.depth >= MAX_NESTING_DEPTH {
            return Err(Decline);
        }
        self.depth += 1;
        let result = self.operator_scope(parse);
        self.depth -= 1;
        result
    }

    /// Runs `parse` in its own operator depth scope, as winnow's
    /// `operator_scope` does.
    fn operator_scope<T>(&mut self, parse: impl FnOnce(&mut Self) -> Fast<T>) -> Fast<T> {
        let outer = self.operator_depth;
        self.operator_depth = 0;
        let result = parse(self);
        self.operator_depth = outer.max(self.operator_depth);
        result
    }

    /// `ws`: spaces, tabs, newlines and comments of every kind.
    fn ws(&mut self) -> Fast<Range<usize>> {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n') => self.pos += 1,
                Some(b'#') => self.line_comment_rest()?,
                Some(b'/') => match self.peek_at(1) {
                    Some(b'/') => self.line_comment_rest()?,
                    Some(b'*') => self.inline_comment()?,
                    _ => break,
                },
                // `\r` (winnow's line endings and comment ends treat it
                // specially) is left to winnow.
                Some(b'\r') => return Err(Decline),
                _ => break,
            }
        }
        Ok(start..self.pos)
    }

    /// `sp`: spaces, tabs and inline comments.
    fn sp(&mut self) -> Fast<Range<usize>> {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.inline_comment()?,
                _ => break,
            }
        }
        Ok(start..self.pos)
    }

    /// An optional `#` or `//` comment up to (not including) the line end.
    fn opt_line_comment(&mut self) -> Fast<bool> {
        if self.peek() == Some(b'#') || self.at(b"//") {
            self.line_comment_rest()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn line_comment_rest(&mut self) -> Fast<()> {
        let rest = self.bytes.get(self.pos..).ok_or(Decline)?;
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(n) if rest.get(n) == Some(&b'\r') => Err(Decline),
            Some(n) => {
                self.pos += n;
                Ok(())
            }
            None => {
                self.pos = self.bytes.len();
                Ok(())
            }
        }
    }

    /// A `/* ... */` comment; an unterminated one is left to winnow.
    fn inline_comment(&mut self) -> Fast<()> {
        let rest = self.bytes.get(self.pos + 2..).ok_or(Decline)?;
        let n = rest.windows(2).position(|w| w == b"*/").ok_or(Decline)?;
        self.pos += 2 + n + 2;
        Ok(())
    }

    /// Whether an identifier starts here; a non-ASCII character (which may
    /// or may not be an identifier character) is left to winnow.
    fn starts_ident(&self) -> Fast<bool> {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => Ok(true),
            Some(b) if b >= 0x80 => Err(Decline),
            _ => Ok(false),
        }
    }

    fn ident_str(&mut self) -> Fast<(&'a str, Range<usize>)> {
        let start = self.pos;
        if !self.starts_ident()? {
            return Err(Decline);
        }
        self.pos += 1;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                self.pos += 1;
            } else if b >= 0x80 {
                return Err(Decline);
            } else {
                break;
            }
        }
        Ok((self.slice(start..self.pos)?, start..self.pos))
    }

    fn ident(&mut self) -> Fast<Decorated<Ident>> {
        let (name, span) = self.ident_str()?;
        let mut ident = Decorated::new(Ident::new_unchecked(name));
        ident.set_span(span);
        Ok(ident)
    }

    /// winnow's `body`: structures, each ended by a line ending or the end.
    fn body(&mut self) -> Fast<Body> {
        let mut state = BodyParseState::default();
        let start = self.pos;
        loop {
            let iteration = self.pos;
            let ws = self.ws()?;
            if !self.starts_ident()? {
                self.pos = iteration;
                break;
            }
            state.on_ws(ws);
            self.structure(&mut state)?;
            let trailing = self.pos;
            self.sp()?;
            self.opt_line_comment()?;
            state.on_ws(trailing..self.pos);
            match self.peek() {
                Some(b'\n') => {
                    self.pos += 1;
                    state.on_line_ending();
                }
                None => state.on_eof(),
                _ => return Err(Decline),
            }
        }
        let span = start..self.pos;
        let suffix = self.ws()?;
        let mut body = state.into_body();
        body.set_span(span);
        body.decor_mut().set_suffix(RawString::from_span(suffix));
        Ok(body)
    }

    fn structure(&mut self, state: &mut BodyParseState<'a>) -> Fast<()> {
        let start = self.pos;
        let (name, name_span) = self.ident_str()?;
        let suffix = self.sp()?;
        let mut ident = Decorated::new(Ident::new_unchecked(name));
        ident.decor_mut().set_suffix(RawString::from_span(suffix));
        ident.set_span(name_span);
        let mut structure = match self.peek() {
            Some(b'=') => {
                if state.is_redefined(name) {
                    return Err(Decline);
                }
                let expr = self.attribute_expr()?;
                Structure::Attribute(Attribute::new(ident, expr))
            }
            Some(b'{') => {
                let body = self.block_body()?;
                let mut block = Block::new(ident);
                block.body = body;
                Structure::Block(block)
            }
            _ if self.peek() == Some(b'"') || self.starts_ident()? => {
                let labels = self.block_labels()?;
                let body = self.block_body()?;
                let mut block = Block::new(ident);
                block.body = body;
                block.labels = labels;
                Structure::Block(block)
            }
            _ => return Err(Decline),
        };
        structure.set_span(start..self.pos);
        state.on_structure(structure);
        Ok(())
    }

    fn attribute_expr(&mut self) -> Fast<crate::expr::Expression> {
        self.expect(b'=')?;
        let prefix = self.sp()?;
        let start = self.pos;
        let mut expr = self.root_expr()?;
        expr.set_span(start..self.pos);
        expr.decor_mut().set_prefix(RawString::from_span(prefix));
        Ok(expr)
    }

    fn block_labels(&mut self) -> Fast<Vec<BlockLabel>> {
        let mut labels = Vec::new();
        loop {
            let start = self.pos;
            let mut label = if self.peek() == Some(b'"') {
                // A label with an interpolation is not a string: winnow
                // then fails on it.
                BlockLabel::String(Decorated::new(self.plain_string()?))
            } else if self.starts_ident()? {
                BlockLabel::Ident(Decorated::new(Ident::new_unchecked(self.ident_str()?.0)))
            } else {
                return Ok(labels);
            };
            label.set_span(start..self.pos);
            let suffix = self.sp()?;
            label.decor_mut().set_suffix(RawString::from_span(suffix));
            labels.push(label);
        }
    }

    fn block_body(&mut self) -> Fast<Body> {
        self.nested(|c| {
            c.expect(b'{')?;
            let prefix_start = c.pos;
            c.sp()?;
            c.opt_line_comment()?;
            let prefix_end = c.pos;
            let body = if c.peek() == Some(b'\n') {
                // Multiline block.
                let line_ending = c.pos;
                c.pos += 1;
                let mut body = c.body()?;
                body.set_span(line_ending..c.pos);
                body.decor_mut()
                    .set_prefix(RawString::from_span(prefix_start..prefix_end));
                body
            } else {
                // One-line block.
                c.pos = prefix_start;
                let prefix = c.sp()?;
                let attr = if c.starts_ident()? {
                    let start = c.pos;
                    let mut key = c.ident()?;
                    let key_suffix = c.sp()?;
                    key.decor_mut().set_suffix(RawString::from_span(key_suffix));
                    let expr = c.attribute_expr()?;
                    let mut attr = Attribute::new(key, expr);
                    attr.set_span(start..c.pos);
                    let attr_suffix = c.sp()?;
                    let decor = attr.decor_mut();
                    decor.set_prefix(RawString::from_span(prefix.clone()));
                    decor.set_suffix(RawString::from_span(attr_suffix));
                    Some(attr)
                } else {
                    None
                };
                let suffix = match attr {
                    Some(_) => c.sp()?,
                    None => prefix,
                };
                let mut body = Body::new();
                body.set_prefer_oneline(true);
                body.decor_mut().set_suffix(RawString::from_span(suffix));
                if let Some(attr) = attr {
                    body.push(attr);
                }
                body
            };
            c.expect(b'}')?;
            Ok(body)
        })
    }
}
