//! String templates as Terraform evaluates them: quoted strings, heredocs
//! and `templatefile` files.
//!
//! HCL works on a flat sequence of tokens, not on the nested tree hcl-edit
//! parses, and its rules only come out right on that sequence:
//! - in heredocs and template files each line of text is its own token, so a
//!   strip marker (`~`) removes whitespace only up to and including the
//!   nearest newline; a quoted string's text between two markers is one token;
//! - strip markers act on the neighbouring token even across a directive's
//!   boundary (`%{ if c ~}` trims the first text of the body);
//! - a `<<-` heredoc then loses the smallest indentation of the lines that
//!   start with text, counted after stripping and across directive bodies;
//! - a template that is one interpolation and nothing else is that value,
//!   with its type (`"${1.0}"` is the number 1).
//!
//! This module flattens hcl-edit's tree into that sequence, applies the
//! rules, and evaluates the result.

use super::eval::{boolean, describe, eval, iterate, mark, nfc, EvalError, EvalResult, Scope};
use hcl::edit::expr::Expression;
use hcl::edit::template::{Directive, Element, ForTemplateExpr, HeredocTemplate, Strip, Template};
use strata_provider::Value;

/// A quoted template (`"a ${b}"`).
pub(crate) fn quoted(template: &Template, scope: &Scope) -> EvalResult {
    render(template, Layout::Quoted, scope)
}

/// A heredoc; `<<-` strips indentation (hcl-edit's parser, patched, keeps
/// the text as written and marks such a heredoc with an indent).
pub(crate) fn heredoc(h: &HeredocTemplate, scope: &Scope) -> EvalResult {
    let layout = if h.indent().is_some() { Layout::FlushHeredoc } else { Layout::Lines };
    render(&h.template, layout, scope)
}

/// The contents of a template file (`templatefile`).
pub(crate) fn file(template: &Template, scope: &Scope) -> EvalResult {
    render(template, Layout::Lines, scope)
}

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// One text token between markers.
    Quoted,
    /// One text token per line.
    Lines,
    /// One per line, then the common indentation removed (`<<-`).
    FlushHeredoc,
}

enum Token<'a> {
    Text(String),
    Interpolation(&'a Expression),
    If(&'a Expression),
    Else,
    EndIf,
    For(&'a ForTemplateExpr),
    EndFor,
}

fn render(template: &Template, layout: Layout, scope: &Scope) -> EvalResult {
    if let [Element::Interpolation(only)] = template.iter().collect::<Vec<_>>()[..] {
        return eval(&only.expr, scope);
    }
    let mut tokens = Vec::new();
    flatten(template, layout != Layout::Quoted, &mut tokens);
    strip(&mut tokens);
    let mut tokens: Vec<Token> = tokens.into_iter().map(|(t, _)| t).collect();
    if layout == Layout::FlushHeredoc {
        flush(&mut tokens);
    }
    let ends = matching_ends(&tokens);
    let mut out = Rendered { text: String::new(), sensitive: false };
    if !out.range(&tokens, &ends, 0..tokens.len(), scope)? {
        return Ok(Value::Unknown);
    }
    Ok(mark(Value::String(out.text), out.sensitive))
}

fn flatten<'a>(template: &'a Template, per_line: bool, out: &mut Vec<(Token<'a>, Strip)>) {
    for element in template.iter() {
        match element {
            Element::Literal(text) if per_line => {
                out.extend(text.split_inclusive('\n').map(|line| (Token::Text(nfc(line)), Strip::None)));
            }
            Element::Literal(text) => out.push((Token::Text(nfc(text)), Strip::None)),
            Element::Interpolation(i) => out.push((Token::Interpolation(&i.expr), i.strip)),
            Element::Directive(d) => match &**d {
                Directive::If(d) => {
                    out.push((Token::If(&d.if_expr.cond_expr), d.if_expr.strip));
                    flatten(&d.if_expr.template, per_line, out);
                    if let Some(e) = &d.else_expr {
                        out.push((Token::Else, e.strip));
                        flatten(&e.template, per_line, out);
                    }
                    out.push((Token::EndIf, d.endif_expr.strip));
                }
                Directive::For(d) => {
                    out.push((Token::For(&d.for_expr), d.for_expr.strip));
                    flatten(&d.for_expr.template, per_line, out);
                    out.push((Token::EndFor, d.endfor_expr.strip));
                }
            },
        }
    }
}

/// `~` trims the whitespace of the text token right before (`${~`, `%{~`)
/// or right after (`~}`) it.
fn strip(tokens: &mut [(Token, Strip)]) {
    for i in 0..tokens.len() {
        let marks = tokens[i].1;
        if marks.strip_start() && i > 0 {
            if let Token::Text(t) = &mut tokens[i - 1].0 {
                t.truncate(t.trim_end().len());
            }
        }
        if marks.strip_end() && i + 1 < tokens.len() {
            if let Token::Text(t) = &mut tokens[i + 1].0 {
                *t = t.trim_start().to_owned();
            }
        }
    }
}

/// Removes the smallest indentation of the lines that begin with text, as
/// HCL's `flushHeredocTemplateParts`: a line that begins with an
/// interpolation or directive has none; a blank line does not count.
fn flush(tokens: &mut [Token]) {
    let mut least = usize::MAX;
    let mut at_line_start = true;
    let mut adjust = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if at_line_start {
            at_line_start = false;
            match token {
                Token::Text(t) => {
                    let rest = t.trim_start();
                    if !(rest.is_empty() && t.ends_with('\n')) {
                        least = least.min(t[..t.len() - rest.len()].chars().count());
                        adjust.push(i);
                    }
                }
                _ => least = 0,
            }
        }
        if let Token::Text(t) = token {
            at_line_start = t.ends_with('\n');
        }
    }
    if least == 0 || least == usize::MAX {
        return;
    }
    for i in adjust {
        if let Token::Text(t) = &mut tokens[i] {
            let cut = t.char_indices().nth(least).map_or(t.len(), |(at, _)| at);
            t.drain(..cut);
        }
    }
}

/// For each `If`/`For` token, the index of its `Else` (if any) and of its end.
fn matching_ends(tokens: &[Token]) -> Vec<(Option<usize>, usize)> {
    let mut ends = vec![(None, 0); tokens.len()];
    let mut open = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::If(_) | Token::For(_) => open.push(i),
            Token::Else => {
                if let Some(&start) = open.last() {
                    ends[start].0 = Some(i);
                }
            }
            Token::EndIf | Token::EndFor => {
                if let Some(start) = open.pop() {
                    ends[start].1 = i;
                }
            }
            Token::Text(_) | Token::Interpolation(_) => {}
        }
    }
    ends
}

struct Rendered {
    text: String,
    sensitive: bool,
}

impl Rendered {
    /// Renders `tokens[range]`; false when a value in it is unknown.
    fn range(&mut self, tokens: &[Token], ends: &[(Option<usize>, usize)], range: std::ops::Range<usize>, scope: &Scope) -> Result<bool, EvalError> {
        let mut i = range.start;
        while i < range.end {
            match &tokens[i] {
                Token::Text(t) => self.text.push_str(t),
                Token::Interpolation(expr) => {
                    let v = eval(expr, scope)?;
                    if v.contains_unknown() {
                        return Ok(false);
                    }
                    self.sensitive |= v.is_sensitive();
                    let s = v.to_template_string().ok_or_else(|| {
                        EvalError::at(expr, format!("cannot include {} in a string template", describe(&v)))
                    })?;
                    self.text.push_str(&s);
                }
                Token::If(cond_expr) => {
                    let (else_at, end) = ends[i];
                    let cond = eval(cond_expr, scope)?;
                    if cond.is_unknown() {
                        return Ok(false);
                    }
                    self.sensitive |= cond.is_sensitive();
                    let body = if boolean(&cond, cond_expr)? {
                        i + 1..else_at.unwrap_or(end)
                    } else {
                        else_at.map_or(end..end, |e| e + 1..end)
                    };
                    if !self.range(tokens, ends, body, scope)? {
                        return Ok(false);
                    }
                    i = end;
                }
                Token::For(intro) => {
                    let end = ends[i].1;
                    let coll = eval(&intro.collection_expr, scope)?;
                    if coll.is_unknown() {
                        return Ok(false);
                    }
                    self.sensitive |= coll.is_sensitive();
                    let key_var = intro.key_var.as_ref().map(|k| k.as_str());
                    let value_var = intro.value_var.as_str();
                    for (k, v) in iterate(&coll, &intro.collection_expr)? {
                        let inner = match key_var {
                            Some(kv) => scope.bind(&[(kv, k), (value_var, v)]),
                            None => scope.bind(&[(value_var, v)]),
                        };
                        if !self.range(tokens, ends, i + 1..end, &inner)? {
                            return Ok(false);
                        }
                    }
                    i = end;
                }
                Token::Else | Token::EndIf | Token::EndFor => {}
            }
            i += 1;
        }
        Ok(true)
    }
}
