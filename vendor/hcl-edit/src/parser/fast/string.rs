//! Quoted strings and heredocs of the fast parser. A quoted string is a
//! plain string when it holds no interpolation, else a string template, as
//! winnow's `alt((string, string_template))` decides. Template directives
//! (`%{`) are left to winnow.

use super::{Cursor, Decline, Fast};
use crate::expr::Expression;
use crate::parser::state::ExprParseState;
use crate::template::{Element, HeredocTemplate, Interpolation, StringTemplate, Strip, Template};
use crate::{Decorate, Ident, RawString, SetSpan, Span, Spanned};

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

    /// winnow's `heredoc`: `<<DELIM` or `<<-DELIM`, a line ending, the
    /// template, and the delimiter alone on its line (after spaces).
    pub(super) fn heredoc(&mut self, state: &mut ExprParseState) -> Fast<()> {
        if !self.at(b"<<") {
            return Err(Decline);
        }
        self.pos += 2;
        let indented = self.eat(b'-');
        let (delimiter, _) = self.ident_str()?;
        self.expect(b'\n')?;

        let start = self.pos;
        let mut template = if self.at_heredoc_end(delimiter)? {
            Template::default()
        } else {
            Template::from(self.heredoc_elements(delimiter)?)
        };
        template.set_span(start..self.pos);

        let trailing = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        let trailing = trailing..self.pos;
        if !self.at_heredoc_end(delimiter)? {
            return Err(Decline);
        }
        self.pos += delimiter.len();

        let mut heredoc = HeredocTemplate::new(Ident::new_unchecked(delimiter), template);
        // As winnow's `heredoc` (STRATA PATCH 4).
        if indented {
            heredoc.set_indent(0);
        }
        heredoc.set_trailing(RawString::from_span(trailing));
        state.on_expr_term(Expression::HeredocTemplate(Box::new(heredoc)));
        Ok(())
    }

    /// Whether spaces, `delimiter` and no identifier character follow.
    fn at_heredoc_end(&self, delimiter: &str) -> Fast<bool> {
        let mut at = self.pos;
        while matches!(self.bytes.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        let Some(rest) = self.bytes.get(at..) else {
            return Ok(false);
        };
        if !rest.starts_with(delimiter.as_bytes()) {
            return Ok(false);
        }
        match rest.get(delimiter.len()) {
            Some(&b) if b >= 0x80 => Err(Decline),
            Some(&b) => Ok(!(b.is_ascii_alphanumeric() || b == b'_' || b == b'-')),
            None => Ok(true),
        }
    }

    /// The elements of a non-empty heredoc, up to and including the line
    /// ending before its end delimiter (which joins the last literal).
    fn heredoc_elements(&mut self, delimiter: &str) -> Fast<Vec<Element>> {
        let mut elements = Vec::new();
        let mut literal = String::new();
        let mut literal_start = self.pos;
        loop {
            let run = self.pos;
            let end = self.heredoc_literal_run(delimiter)?;
            literal.push_str(self.slice(run..self.pos)?);
            if end {
                break;
            }
            match (self.peek(), self.peek_at(1), self.peek_at(2)) {
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
        if self.pos > literal_start {
            let mut element = Element::Literal(Spanned::new(literal));
            element.set_span(literal_start..self.pos);
            elements.push(element);
        }
        // The line ending before the delimiter.
        let line_ending = self.pos;
        self.expect(b'\n')?;
        match elements.last_mut() {
            Some(Element::Literal(literal)) => {
                let start = literal.span().ok_or(Decline)?.start;
                literal.push('\n');
                literal.set_span(start..self.pos);
            }
            _ => {
                let mut literal = Spanned::new(String::from("\n"));
                literal.set_span(line_ending..self.pos);
                elements.push(Element::Literal(literal));
            }
        }
        Ok(elements)
    }

    /// Skips heredoc text up to a `${`/`%{` (escaped or not), or up to the
    /// line ending before the end delimiter (then true).
    fn heredoc_literal_run(&mut self, delimiter: &str) -> Fast<bool> {
        while let Some(b) = self.peek() {
            match b {
                b'$' | b'%' => {
                    let next = self.peek_at(1);
                    if next == Some(b'{') || (next == Some(b) && self.peek_at(2) == Some(b'{')) {
                        return Ok(false);
                    }
                    self.pos += 1;
                }
                b'\n' => {
                    self.pos += 1;
                    let ends = self.at_heredoc_end(delimiter)?;
                    self.pos -= 1;
                    if ends {
                        return Ok(true);
                    }
                    self.pos += 1;
                }
                b'\r' => return Err(Decline),
                _ => self.pos += 1,
            }
        }
        Ok(false)
    }
}
