//! Lowering `terraform { encryption { ... } }`, OpenTofu's block: key
//! providers, methods that use them, and which method (and fallback) the
//! state and saved plans use. Only the names and expressions are kept here;
//! `ops` evaluates the passphrases and builds the ciphers.

use super::*;

impl Lowerer<'_> {
    pub(super) fn encryption(&mut self, config: &mut Config, block: &Block) {
        let mut enc = EncryptionConfig { span: self.span(block.span()), ..Default::default() };
        for structure in block.body.iter() {
            let inner = match structure {
                Structure::Block(b) => b,
                Structure::Attribute(a) => {
                    self.error(format!("unexpected attribute {:?} in the encryption block", a.key.as_str()), a.key.span(), "here");
                    continue;
                }
            };
            match inner.ident.as_str() {
                "key_provider" => {
                    let Some(labels) = self.labels(inner, 2, "the key provider type and name") else { continue };
                    if labels[0] != "pbkdf2" {
                        self.error(format!("unknown key provider {:?}", labels[0]), inner.labels[0].span(), "only pbkdf2 exists");
                        continue;
                    }
                    let body = self.body(inner.body.clone());
                    if body.attr("passphrase").is_none() {
                        self.error("a pbkdf2 key provider needs a passphrase", inner.ident.span(), "here");
                    }
                    enc.key_providers.push(KeyProviderConfig {
                        kind: labels[0].to_owned(),
                        name: labels[1].to_owned(),
                        body,
                        span: self.span(inner.span()),
                    });
                }
                "method" => {
                    let Some(labels) = self.labels(inner, 2, "the method type and name") else { continue };
                    let keys = inner.body.get_attribute("keys").and_then(|a| self.reference(&a.value, "key_provider"));
                    match labels[0] {
                        "aes_gcm" if keys.is_none() => {
                            self.error("an aes_gcm method needs keys = key_provider.TYPE.NAME", inner.ident.span(), "here")
                        }
                        "aes_gcm" | "unencrypted" => {}
                        other => {
                            self.error(format!("unknown method {other:?}"), inner.labels[0].span(), "expected aes_gcm or unencrypted");
                            continue;
                        }
                    }
                    enc.methods.push(MethodConfig {
                        kind: labels[0].to_owned(),
                        name: labels[1].to_owned(),
                        keys,
                        span: self.span(inner.span()),
                    });
                }
                target @ ("state" | "plan") => {
                    let mut t = EncryptionTarget { span: self.span(inner.span()), ..Default::default() };
                    for s in inner.body.iter() {
                        match s {
                            Structure::Attribute(a) if a.key.as_str() == "method" => t.method = self.reference(&a.value, "method"),
                            Structure::Attribute(a) if a.key.as_str() == "enforced" => {
                                t.enforced = matches!(&a.value, Expression::Bool(b) if *b.value())
                            }
                            Structure::Block(b) if b.ident.as_str() == "fallback" => {
                                t.fallback = b.body.get_attribute("method").and_then(|a| self.reference(&a.value, "method"));
                                if t.fallback.is_none() {
                                    self.error("a fallback block needs method = method.TYPE.NAME", b.ident.span(), "here");
                                }
                            }
                            Structure::Attribute(a) => self.error(format!("unexpected attribute {:?}", a.key.as_str()), a.key.span(), "here"),
                            Structure::Block(b) => self.error(format!("unexpected block {:?}", b.ident.as_str()), b.ident.span(), "here"),
                        }
                    }
                    if t.method.is_none() {
                        self.error(format!("the {target} block needs method = method.TYPE.NAME"), inner.ident.span(), "here");
                    }
                    if target == "state" {
                        enc.state = Some(t);
                    } else {
                        enc.plan = Some(t);
                    }
                }
                other => self.error(
                    format!("unknown block {other:?} in the encryption block"),
                    inner.ident.span(),
                    "expected key_provider, method, state or plan",
                ),
            }
        }
        config.encryption = Some(enc);
    }

    /// A static reference `ROOT.TYPE.NAME` (e.g. `method.aes_gcm.new`), as
    /// "TYPE.NAME" with its span.
    fn reference(&mut self, expr: &Expression, root: &str) -> Option<(String, Span)> {
        let parts: Option<Vec<String>> = match expr {
            Expression::Traversal(t) => match &t.expr {
                Expression::Variable(v) if v.as_str() == root => t
                    .operators
                    .iter()
                    .map(|op| match op.value() {
                        TraversalOperator::GetAttr(name) => Some(name.as_str().to_owned()),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            },
            _ => None,
        };
        match parts {
            Some(p) if p.len() == 2 => Some((p.join("."), self.span(expr.span()))),
            _ => {
                self.error(format!("expected a reference {root}.TYPE.NAME"), expr.span(), "not a reference");
                None
            }
        }
    }
}
