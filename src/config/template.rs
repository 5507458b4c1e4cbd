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
//! Lowering (`lower/template.rs`) flattens hcl-edit's tree into that
//! sequence and applies the rules; this module renders the result.

use super::ast::{Part, Template};
use super::eval::{boolean, describe, eval, iterate, mark, EvalError, EvalResult, Scope};
use strata_provider::Value;

/// Renders a template (quoted, heredoc or file) as lowering flattened it.
pub(crate) fn render(template: &Template, scope: &Scope) -> EvalResult {
    if template.lone {
        if let [Part::Interpolation(only)] = &template.parts[..] {
            return eval(only, scope);
        }
    }
    let mut out = Rendered { text: String::new(), sensitive: false };
    if !out.range(&template.parts, 0..template.parts.len(), scope)? {
        return Ok(Value::Unknown);
    }
    Ok(mark(Value::String(out.text), out.sensitive))
}

struct Rendered {
    text: String,
    sensitive: bool,
}

impl Rendered {
    /// Renders `parts[range]`; false when a value in it is unknown.
    fn range(&mut self, parts: &[Part], range: std::ops::Range<usize>, scope: &Scope) -> Result<bool, EvalError> {
        let mut i = range.start;
        while i < range.end {
            match &parts[i] {
                Part::Text(t) => self.text.push_str(t),
                Part::Interpolation(expr) => {
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
                Part::If { cond: cond_expr, else_at, end } => {
                    let (else_at, end) = (else_at.map(|e| e as usize), *end as usize);
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
                    if !self.range(parts, body, scope)? {
                        return Ok(false);
                    }
                    i = end;
                }
                Part::For(intro) => {
                    let end = intro.end as usize;
                    let coll = eval(&intro.collection, scope)?;
                    if coll.is_unknown() {
                        return Ok(false);
                    }
                    self.sensitive |= coll.is_sensitive();
                    for (k, v) in iterate(&coll, &intro.collection)? {
                        let inner = match &intro.key_var {
                            Some(kv) => scope.bind(&[(kv, k), (&intro.value_var, v)]),
                            None => scope.bind(&[(&intro.value_var, v)]),
                        };
                        if !self.range(parts, i + 1..end, &inner)? {
                            return Ok(false);
                        }
                    }
                    i = end;
                }
                Part::Else | Part::EndIf | Part::EndFor => {}
            }
            i += 1;
        }
        Ok(true)
    }
}
