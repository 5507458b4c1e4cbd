//! Quoted strings, heredocs and their templates in the fast parser. A
//! quoted string is a plain string when it holds no interpolation or
//! directive, else a string template, as winnow's `alt((string,
//! string_template))` decides; the template parsers mirror
//! `parser/template.rs`.

use super::{Cursor, Decline, Fast};
use crate::expr::Expression;
use crate::parser::state::ExprParseState;
use crate::template::{
    Directive, Element, ElseTemplateExpr, EndforTemplateExpr, EndifTemplateExpr, ForDirective,
    ForTemplateExpr, HeredocTemplate, IfDirective, IfTemplateExpr, Interpolation, StringTemplate,
    Strip, Template,
};
use crate::{Decorate, Ident, RawString, SetSpan, Span, Spanned};

/// A quoted string: its value, or its template.
pub(super) enum Quoted {
    String(String),
    Template(StringTemplate),
}

/// The kind of text template elements are read from.
#[derive(Clone, Copy)]
enum Text<'d> {
    /// Inside quotes: escapes, and the text ends at `"`.
    Quoted,
    /// A heredoc's own text: it ends at the line ending before the
    /// delimiter line.
    Heredoc(&'d str),
    /// A directive body inside a heredoc (winnow's `template`): it ends only
    /// at a control (`%{`) that is not a directive start, or at the end.
    Unquoted,
}

/// Where a sequence of template elements stopped.
#[derive(PartialEq)]
enum Stop {
    /// At the closing `"`.
    Quote,
    /// At the line ending before a heredoc's end delimiter.
    HeredocEnd,
    /// At a `%{` that starts neither `if` nor `for` (an `else`, `endif`,
    /// `endfor`, or an error).
    Control,
    /// At the end of the input.
    End,
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
        // Most strings are plain text: one copy, without the general
        // element machinery.
        let start = self.pos;
        while self.peek().is_some_and(|b| !matches!(b, b'"' | b'\\' | b'$' | b'%')) {
            self.pos += 1;
        }
        if self.peek() == Some(b'"') {
            let string = self.slice(start..self.pos)?.to_owned();
            self.pos += 1;
            return Ok(Quoted::String(string));
        }
        self.pos = start;
        let (mut elements, stop) = self.elements(Text::Quoted)?;
        if stop != Stop::Quote {
            return Err(Decline);
        }
        self.pos += 1;
        match elements.len() {
            0 => Ok(Quoted::String(String::new())),
            1 if matches!(elements.first(), Some(Element::Literal(_))) => match elements.pop() {
                Some(Element::Literal(literal)) => Ok(Quoted::String(literal.into_value())),
                _ => Err(Decline),
            },
            _ => Ok(Quoted::Template(StringTemplate::from(elements))),
        }
    }

    /// winnow's `elements`: literals, interpolations and directives.
    fn elements(&mut self, text: Text<'_>) -> Fast<(Vec<Element>, Stop)> {
        let mut elements = Vec::new();
        let mut literal = String::new();
        let mut literal_start = self.pos;
        let stop = loop {
            let run = self.pos;
            let heredoc_end = self.literal_run(text)?;
            literal.push_str(self.slice(run..self.pos)?);
            if heredoc_end {
                break Stop::HeredocEnd;
            }
            match (self.peek(), self.peek_at(1), self.peek_at(2)) {
                (None, _, _) if matches!(text, Text::Unquoted) => break Stop::End,
                (Some(b'"'), _, _) => break Stop::Quote,
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
                (Some(b'$' | b'%'), Some(b'{'), _) => {
                    let start = self.pos;
                    let mut element = if self.peek() == Some(b'$') {
                        Element::Interpolation(self.interpolation()?)
                    } else if self.at_control_keyword(b"if")? {
                        let quoted = matches!(text, Text::Quoted);
                        Element::Directive(Box::new(Directive::If(self.if_directive(quoted)?)))
                    } else if self.at_control_keyword(b"for")? {
                        let quoted = matches!(text, Text::Quoted);
                        Element::Directive(Box::new(Directive::For(self.for_directive(quoted)?)))
                    } else {
                        break Stop::Control;
                    };
                    element.set_span(start..self.pos);
                    if start > literal_start {
                        let mut flushed =
                            Element::Literal(Spanned::new(std::mem::take(&mut literal)));
                        flushed.set_span(literal_start..start);
                        elements.push(flushed);
                    }
                    elements.push(element);
                    literal_start = self.pos;
                }
                _ => return Err(Decline),
            }
        };
        if self.pos > literal_start {
            let mut element = Element::Literal(Spanned::new(literal));
            element.set_span(literal_start..self.pos);
            elements.push(element);
        }
        Ok((elements, stop))
    }

    /// Skips literal text up to a `${`/`%{` (escaped or not), a `"` or `\`
    /// in quoted text, the end, or the line ending before a heredoc's end
    /// delimiter (then true).
    fn literal_run(&mut self, text: Text<'_>) -> Fast<bool> {
        while let Some(b) = self.peek() {
            match b {
                b'"' | b'\\' if matches!(text, Text::Quoted) => return Ok(false),
                b'$' | b'%' => {
                    let next = self.peek_at(1);
                    if next == Some(b'{') || (next == Some(b) && self.peek_at(2) == Some(b'{')) {
                        return Ok(false);
                    }
                    self.pos += 1;
                }
                b'\n' => {
                    if let Text::Heredoc(delimiter) = text {
                        self.pos += 1;
                        let ends = self.at_heredoc_end(delimiter)?;
                        self.pos -= 1;
                        if ends {
                            return Ok(true);
                        }
                    }
                    self.pos += 1;
                }
                // winnow's line endings include `\r\n`.
                b'\r' if matches!(text, Text::Heredoc(_)) => return Err(Decline),
                _ => self.pos += 1,
            }
        }
        Ok(false)
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

    /// winnow's `control` opening: `intro` (`${` or `%{`), and an optional
    /// `~`.
    fn control_open(&mut self, intro: u8) -> Fast<bool> {
        if self.peek() != Some(intro) || self.peek_at(1) != Some(b'{') {
            return Err(Decline);
        }
        self.pos += 2;
        Ok(self.eat(b'~'))
    }

    /// winnow's `control` closing: an optional `~` and `}`.
    fn control_close(&mut self) -> Fast<bool> {
        let strip = self.eat(b'~');
        self.expect(b'}')?;
        Ok(strip)
    }

    /// Whether a `%{` control here starts with `keyword` (after `~` and
    /// whitespace).
    fn at_control_keyword(&mut self, keyword: &[u8]) -> Fast<bool> {
        let checkpoint = self.pos;
        let found = self.control_open(b'%').is_ok() && {
            self.ws()?;
            self.at(keyword)
        };
        self.pos = checkpoint;
        Ok(found)
    }

    /// `${ expr }`, with optional strip markers.
    fn interpolation(&mut self) -> Fast<Interpolation> {
        let strip_start = self.control_open(b'$')?;
        let prefix = self.ws()?;
        let expr_start = self.pos;
        let mut expr = self.multiline_expr()?;
        expr.set_span(expr_start..self.pos);
        let suffix = self.ws()?;
        let decor = expr.decor_mut();
        decor.set_prefix(RawString::from_span(prefix));
        decor.set_suffix(RawString::from_span(suffix));
        let strip_end = self.control_close()?;
        let mut interpolation = Interpolation::new(expr);
        interpolation.strip = Strip::from((strip_start, strip_end));
        Ok(interpolation)
    }

    /// A directive's body: quoted text inside a quoted string, else template
    /// text (STRATA PATCH 3), one nesting level deeper.
    fn directive_body(&mut self, quoted: bool) -> Fast<Template> {
        let start = self.pos;
        let text = if quoted { Text::Quoted } else { Text::Unquoted };
        let (elements, _) = self.nested(|c| c.elements(text))?;
        let mut template = Template::from(elements);
        template.set_span(start..self.pos);
        Ok(template)
    }

    /// `%{ keyword }` with whitespace around the keyword: the strip markers,
    /// preamble and trailing decor.
    fn keyword_control(&mut self, keyword: &[u8]) -> Fast<(Strip, RawString, RawString)> {
        let strip_start = self.control_open(b'%')?;
        let preamble = self.ws()?;
        if !self.at(keyword) {
            return Err(Decline);
        }
        self.pos += keyword.len();
        let trailing = self.ws()?;
        let strip_end = self.control_close()?;
        Ok((
            Strip::from((strip_start, strip_end)),
            RawString::from_span(preamble),
            RawString::from_span(trailing),
        ))
    }

    fn if_directive(&mut self, quoted: bool) -> Fast<IfDirective> {
        let strip_start = self.control_open(b'%')?;
        let preamble = self.ws()?;
        if !self.at(b"if") {
            return Err(Decline);
        }
        self.pos += 2;
        let cond = self.ws_decorated(Self::expr)?;
        let strip_end = self.control_close()?;
        let template = self.directive_body(quoted)?;
        let mut if_expr = IfTemplateExpr::new(cond, template);
        if_expr.strip = Strip::from((strip_start, strip_end));
        if_expr.set_preamble(RawString::from_span(preamble));

        let else_expr = if self.at_control_keyword(b"else")? {
            let (strip, preamble, trailing) = self.keyword_control(b"else")?;
            let template = self.directive_body(quoted)?;
            let mut else_expr = ElseTemplateExpr::new(template);
            else_expr.strip = strip;
            else_expr.set_preamble(preamble);
            else_expr.set_trailing(trailing);
            Some(else_expr)
        } else {
            None
        };

        let (strip, preamble, trailing) = self.keyword_control(b"endif")?;
        let mut endif_expr = EndifTemplateExpr::new();
        endif_expr.strip = strip;
        endif_expr.set_preamble(preamble);
        endif_expr.set_trailing(trailing);
        Ok(IfDirective::new(if_expr, else_expr, endif_expr))
    }

    fn for_directive(&mut self, quoted: bool) -> Fast<ForDirective> {
        let strip_start = self.control_open(b'%')?;
        let preamble = self.ws()?;
        if !self.at(b"for") {
            return Err(Decline);
        }
        self.pos += 3;
        let first = self.ws_decorated_ident()?;
        let second = if self.eat(b',') {
            Some(self.ws_decorated_ident()?)
        } else {
            None
        };
        if !self.at(b"in") {
            return Err(Decline);
        }
        self.pos += 2;
        let collection = self.ws_decorated(Self::expr)?;
        let strip_end = self.control_close()?;
        let template = self.directive_body(quoted)?;
        let (key_var, value_var) = match second {
            Some(second) => (Some(first), second),
            None => (None, first),
        };
        let mut for_expr = ForTemplateExpr::new(key_var, value_var, collection, template);
        for_expr.strip = Strip::from((strip_start, strip_end));
        for_expr.set_preamble(RawString::from_span(preamble));

        let (strip, preamble, trailing) = self.keyword_control(b"endfor")?;
        let mut endfor_expr = EndforTemplateExpr::new();
        endfor_expr.strip = strip;
        endfor_expr.set_preamble(preamble);
        endfor_expr.set_trailing(trailing);
        Ok(ForDirective::new(for_expr, endfor_expr))
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
        let (mut elements, stop) = self.elements(Text::Heredoc(delimiter))?;
        if stop != Stop::HeredocEnd {
            return Err(Decline);
        }
        let line_ending = self.pos;
        self.expect(b'\n')?;
        if let Some(Element::Literal(literal)) = elements.last_mut() {
            let start = literal.span().ok_or(Decline)?.start;
            literal.push('\n');
            literal.set_span(start..self.pos);
        } else {
            let mut literal = Spanned::new(String::from("\n"));
            literal.set_span(line_ending..self.pos);
            elements.push(Element::Literal(literal));
        }
        Ok(elements)
    }
}
