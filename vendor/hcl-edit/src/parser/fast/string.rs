//! Quoted strings of the fast parser: a plain string when it holds no
//! interpolation, else a string template, as winnow's `alt((string,
//! string_template))` decides. Template directives (`%{`) are left to
//! winnow.

use super::{Cursor, Decline, Fast};
use crate::template::{Element, Interpolation, StringTemplate, Strip};
use crate::{Decorate, RawString, SetSpan, Spanned};

/// A quoted string: its value, or its template.
pub(super) enum Quoted {
    String(String),
    Template(StringTemplate),
}

impl Cursor<'_> {
    /// A quoted string that is not a template.
    pub(super) fn plain_string(&mut self) -> Fast<String> {
        match self.quoted()? {
            Quoted::String(string) => Ok(string),
            Quoted::Template(_) => Err(Decline),
        }
    }

    pub(super) fn quoted(&mut self) -> Fast<Quoted> {
        self.expect(b'"')?;
        let mut elements = Vec::new();
        let mut literal = String::new();
        let mut literal_start = self.pos;
        loop {
            let run = self.pos;
            self.literal_run();
            literal.push_str(self.slice(run..self.pos)?);
            match (self.peek(), self.peek_at(1), self.peek_at(2)) {
                (Some(b'"'), _, _) => break,
                (Some(b'\\'), _, _) => {
                    let escaped = self.escaped_char()?;
                    literal.push(escaped);
                }
                (Some(b'$'), Some(b'$'), Some(b'{')) => {
                    self.pos += 3;
                    literal.push_str("${");
                }
                (Some(b'%'), Some(b'%'), Some(b'{')) => {
                    self.pos += 3;
                    literal.push_str("%{");
                }
                (Some(b'$'), Some(b'{'), _) => {
                    if self.pos > literal_start {
                        let mut element =
                            Element::Literal(Spanned::new(std::mem::take(&mut literal)));
                        element.set_span(literal_start..self.pos);
                        elements.push(element);
                    }
                    elements.push(self.interpolation()?);
                    literal_start = self.pos;
                }
                // Directives, and the end of the input.
                _ => return Err(Decline),
            }
        }
        let end = self.pos;
        self.pos += 1;
        if elements.is_empty() {
            return Ok(Quoted::String(literal));
        }
        if end > literal_start {
            let mut element = Element::Literal(Spanned::new(literal));
            element.set_span(literal_start..end);
            elements.push(element);
        }
        Ok(Quoted::Template(StringTemplate::from(elements)))
    }

    /// Skips literal text: up to a `"`, a `\`, or a `${`/`%{` (escaped or
    /// not).
    fn literal_run(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'"' | b'\\' => return,
                b'$' | b'%' => {
                    let next = self.peek_at(1);
                    if next == Some(b'{') || (next == Some(b) && self.peek_at(2) == Some(b'{')) {
                        return;
                    }
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
    }

    fn escaped_char(&mut self) -> Fast<char> {
        self.expect(b'\\')?;
        let escape = self.peek().ok_or(Decline)?;
        self.pos += 1;
        match escape {
            b'n' => Ok('\n'),
            b'r' => Ok('\r'),
            b't' => Ok('\t'),
            b'\\' => Ok('\\'),
            b'"' => Ok('"'),
            b'u' => self.hex_escape(4),
            b'U' => self.hex_escape(8),
            _ => Err(Decline),
        }
    }

    fn hex_escape(&mut self, digits: usize) -> Fast<char> {
        let hex = self.slice(self.pos..self.pos + digits)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Decline);
        }
        let code = u32::from_str_radix(hex, 16).map_err(|_| Decline)?;
        self.pos += digits;
        char::from_u32(code).ok_or(Decline)
    }

    /// `${ expr }`, with optional strip markers.
    fn interpolation(&mut self) -> Fast<Element> {
        let start = self.pos;
        self.pos += 2;
        let strip_start = self.eat(b'~');
        let prefix = self.ws()?;
        let expr_start = self.pos;
        let mut expr = self.multiline_expr()?;
        expr.set_span(expr_start..self.pos);
        let suffix = self.ws()?;
        let decor = expr.decor_mut();
        decor.set_prefix(RawString::from_span(prefix));
        decor.set_suffix(RawString::from_span(suffix));
        let strip_end = self.eat(b'~');
        self.expect(b'}')?;
        let mut interpolation = Interpolation::new(expr);
        interpolation.strip = Strip::from((strip_start, strip_end));
        let mut element = Element::Interpolation(interpolation);
        element.set_span(start..self.pos);
        Ok(element)
    }
}
