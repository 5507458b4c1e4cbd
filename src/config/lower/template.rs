//! Templates into HCL's flat token sequence, once, at lowering: quoted
//! strings, heredocs and `templatefile` files.
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
//! This module flattens hcl-edit's tree into that sequence and applies the
//! rules; none of them depends on a value, so `config::template` only
//! renders what is left. Adjacent texts are joined once the rules are applied.

use super::expr::{node, Names};
use crate::config::ast::{self, Part};
use crate::config::eval::nfc;
use hcl::edit::template::{Directive, Element, Strip, Template};

#[derive(Clone, Copy, PartialEq)]
pub enum Layout {
    /// One text token between markers.
    Quoted,
    /// One text token per line.
    Lines,
    /// One per line, then the common indentation removed (`<<-`).
    FlushHeredoc,
}

/// A token while the rules are applied.
enum Token {
    Text(String),
    Part(Part),
}

/// The contents of a template file (`templatefile`), parsed at run time.
pub fn file(template: &Template) -> ast::Template {
    lower(template, Layout::Lines, &mut Names::default())
}

pub fn lower(template: &Template, layout: Layout, names: &mut Names) -> ast::Template {
    let mut elements = template.iter();
    if let (Some(Element::Interpolation(only)), None) = (elements.next(), elements.next()) {
        return ast::Template { lone: true, parts: Box::new([Part::Interpolation(node(&only.expr, names))]) };
    }
    let mut tokens = Vec::new();
    flatten(template, layout != Layout::Quoted, names, &mut tokens);
    strip(&mut tokens);
    let mut tokens: Vec<Token> = tokens.into_iter().map(|(t, _)| t).collect();
    if layout == Layout::FlushHeredoc {
        flush(&mut tokens);
    }
    let mut parts = join_texts(tokens);
    link_ends(&mut parts);
    ast::Template { lone: false, parts: parts.into() }
}

fn flatten(template: &Template, per_line: bool, names: &mut Names, out: &mut Vec<(Token, Strip)>) {
    for element in template.iter() {
        match element {
            Element::Literal(text) if per_line => {
                out.extend(text.split_inclusive('\n').map(|line| (Token::Text(nfc(line)), Strip::None)));
            }
            Element::Literal(text) => out.push((Token::Text(nfc(text)), Strip::None)),
            Element::Interpolation(i) => out.push((Token::Part(Part::Interpolation(node(&i.expr, names))), i.strip)),
            Element::Directive(d) => match &**d {
                Directive::If(d) => {
                    let cond = node(&d.if_expr.cond_expr, names);
                    out.push((Token::Part(Part::If { cond: Box::new(cond), else_at: None, end: 0 }), d.if_expr.strip));
                    flatten(&d.if_expr.template, per_line, names, out);
                    if let Some(e) = &d.else_expr {
                        out.push((Token::Part(Part::Else), e.strip));
                        flatten(&e.template, per_line, names, out);
                    }
                    out.push((Token::Part(Part::EndIf), d.endif_expr.strip));
                }
                Directive::For(d) => {
                    let intro = &d.for_expr;
                    let directive = ast::ForDirective {
                        key_var: intro.key_var.as_ref().map(|k| names.name(k.as_str())),
                        value_var: names.name(intro.value_var.as_str()),
                        collection: node(&intro.collection_expr, names),
                        end: 0,
                    };
                    out.push((Token::Part(Part::For(Box::new(directive))), intro.strip));
                    flatten(&intro.template, per_line, names, out);
                    out.push((Token::Part(Part::EndFor), d.endfor_expr.strip));
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
                Token::Part(_) => least = 0,
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

/// The parts, each run of texts joined into one and empty texts dropped:
/// rendering only appends texts, so this is the same string.
fn join_texts(tokens: Vec<Token>) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text = String::new();
    for token in tokens {
        match token {
            Token::Text(t) => text.push_str(&t),
            Token::Part(part) => {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text).into()));
                }
                parts.push(part);
            }
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text.into()));
    }
    parts
}

/// Sets each `If`'s `Else` and end and each `For`'s end.
fn link_ends(parts: &mut [Part]) {
    let mut open = Vec::new();
    for i in 0..parts.len() {
        let at = u32::try_from(i).unwrap_or(u32::MAX);
        match &parts[i] {
            Part::If { .. } | Part::For(_) => open.push(i),
            Part::Else => {
                if let Some(&start) = open.last() {
                    if let Part::If { else_at, .. } = &mut parts[start] {
                        *else_at = Some(at);
                    }
                }
            }
            Part::EndIf | Part::EndFor => {
                if let Some(start) = open.pop() {
                    match &mut parts[start] {
                        Part::If { end, .. } => *end = at,
                        Part::For(f) => f.end = at,
                        _ => {}
                    }
                }
            }
            Part::Text(_) | Part::Interpolation(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ast::{Kind, Part};

    fn parts(src: &str) -> (bool, Vec<String>) {
        let node = crate::config::parse::parse_expr(src).unwrap();
        let Kind::Template(t) = node.kind else { panic!("{src}: not a template") };
        let shown = t
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => format!("{t:?}"),
                Part::Interpolation(_) => "${}".into(),
                Part::If { else_at, end, .. } => format!("if({else_at:?},{end})"),
                Part::Else => "else".into(),
                Part::EndIf => "endif".into(),
                Part::For(f) => format!("for({})", f.end),
                Part::EndFor => "endfor".into(),
            })
            .collect();
        (t.lone, shown)
    }

    #[test]
    fn heredocs_are_flushed_and_stripped_once_with_texts_joined() {
        let (lone, shown) = parts("<<-EOT\n    a\n      b ${x}\n    %{ if c }yes%{ else }no%{ endif }\n    EOT");
        assert!(!lone);
        assert_eq!(shown, [r#""a\n  b ""#, "${}", r#""\n""#, "if(Some(5),7)", r#""yes""#, "else", r#""no""#, "endif", r#""\n""#]);
        let (_, shown) = parts(r#""a %{ if c ~} yes %{~ endif } b""#);
        assert_eq!(shown, [r#""a ""#, "if(None,3)", r#""yes""#, "endif", r#"" b""#]);
    }

    #[test]
    fn a_lone_interpolation_keeps_its_value_and_directives_know_their_ends() {
        assert_eq!(parts(r#""${x}""#), (true, vec!["${}".to_owned()]));
        let (_, shown) = parts(r#""%{ for v in xs }[${v}]%{ endfor }!""#);
        assert_eq!(shown, ["for(4)", r#""[""#, "${}", r#""]""#, "endfor", r#""!""#]);
    }
}
