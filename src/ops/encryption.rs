//! Building the ciphers a configuration's `encryption` block asks for: the
//! state's (handed to the backend, which encrypts every record) and saved
//! plans'. Passphrases are evaluated from variables only, so they come from
//! `STRATA_VAR_name`, a `*.auto.stratavars.hcl` file or a default, and never
//! from a command line where other processes could read them.

use super::{OpError, OpResult};
use crate::config::diag::{Diagnostic, Span};
use crate::config::{self, vars, Config, Diagnostics, EncryptionConfig, EncryptionTarget};
use crate::plan;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use strata_provider::Value;
use strata_state::{Encryption, Method, Pbkdf2Key, DEFAULT_ITERATIONS, MIN_ITERATIONS};

/// OpenTofu's minimum passphrase length for pbkdf2.
const MIN_PASSPHRASE: usize = 16;

/// The ciphers of the state and of saved plans.
pub struct Ciphers {
    pub state: Arc<Encryption>,
    pub plan: Arc<Encryption>,
}

impl Ciphers {
    pub fn none() -> Ciphers {
        Ciphers { state: Encryption::none(), plan: Encryption::none() }
    }
}

/// The ciphers `config`'s encryption block configures (none without one).
pub fn ciphers(config: &Config) -> OpResult<Ciphers> {
    let Some(enc) = &config.encryption else { return Ok(Ciphers::none()) };
    let mut diags = Diagnostics::default();
    let mut builder = Builder { config, enc, variables: None, keys: HashMap::new(), diags: &mut diags };
    let state = builder.target(enc.state.as_ref(), "state");
    let plan = builder.target(enc.plan.as_ref(), "plan");
    if diags.has_errors() {
        return Err(OpError::Config(Box::new(config.sources.clone()), diags));
    }
    Ok(Ciphers { state, plan })
}

struct Builder<'a> {
    config: &'a Config,
    enc: &'a EncryptionConfig,
    variables: Option<BTreeMap<String, Value>>,
    keys: HashMap<String, Arc<Pbkdf2Key>>,
    diags: &'a mut Diagnostics,
}

impl Builder<'_> {
    fn target(&mut self, target: Option<&EncryptionTarget>, what: &str) -> Arc<Encryption> {
        let Some(target) = target else { return Encryption::none() };
        let Some((primary, span)) = &target.method else { return Encryption::none() };
        let Some(primary) = self.method(primary, span) else { return Encryption::none() };
        if target.enforced && matches!(primary, Method::Unencrypted { .. }) {
            self.diags.push(Diagnostic::error(format!("the {what} encryption is enforced, but its method is unencrypted"), span.clone(), "here"));
        }
        let fallback = target.fallback.as_ref().and_then(|(name, span)| self.method(name, span));
        Encryption::new(primary, fallback)
    }

    fn method(&mut self, reference: &str, span: &Span) -> Option<Method> {
        let Some(m) = self.enc.methods.iter().find(|m| format!("{}.{}", m.kind, m.name) == reference) else {
            self.diags.push(Diagnostic::error(format!("no method.{reference} is declared in the encryption block"), span.clone(), "here"));
            return None;
        };
        match m.kind.as_str() {
            "unencrypted" => Some(Method::Unencrypted { name: m.name.clone() }),
            _ => {
                let (keys, keys_span) = m.keys.clone()?;
                let key = self.key(&keys, &keys_span)?;
                Some(Method::AesGcm { name: m.name.clone(), key })
            }
        }
    }

    fn key(&mut self, reference: &str, span: &Span) -> Option<Arc<Pbkdf2Key>> {
        if let Some(k) = self.keys.get(reference) {
            return Some(k.clone());
        }
        let Some(provider) = self.enc.key_providers.iter().find(|k| format!("{}.{}", k.kind, k.name) == reference) else {
            self.diags.push(Diagnostic::error(format!("no key_provider.{reference} is declared in the encryption block"), span.clone(), "here"));
            return None;
        };
        let passphrase = provider.body.attr("passphrase")?;
        let value = self.eval(&passphrase.expr)?;
        let Some(passphrase_text) = value.unmarked().as_str().map(str::to_owned) else {
            let message = if matches!(value.unmarked(), Value::Null) {
                format!(
                    "the passphrase of key_provider.{reference} has no value: set its variable with STRATA_VAR_NAME or a *.auto.stratavars.hcl file"
                )
            } else {
                "the passphrase must be a string".to_owned()
            };
            self.diags.push(Diagnostic::error(message, passphrase.span.clone(), "here"));
            return None;
        };
        if passphrase_text.chars().count() < MIN_PASSPHRASE {
            self.diags.push(Diagnostic::error(
                format!("the passphrase of key_provider.{reference} is too short: it needs at least {MIN_PASSPHRASE} characters"),
                passphrase.span.clone(),
                "here",
            ));
            return None;
        }
        let iterations = match provider.body.attr("iterations") {
            None => DEFAULT_ITERATIONS,
            Some(attr) => {
                let n = self.eval(&attr.expr)?.unmarked().as_number().and_then(|n| n.to_i64());
                // The engine's own tests may derive keys faster.
                let least = if std::env::var_os("STRATA_ENABLE_TEST_PROVIDER").is_some() { 1000 } else { MIN_ITERATIONS };
                match n.and_then(|n| u32::try_from(n).ok()) {
                    Some(n) if n >= least => n,
                    _ => {
                        self.diags.push(Diagnostic::error(
                            format!("iterations must be a whole number of at least {MIN_ITERATIONS}"),
                            attr.span.clone(),
                            "here",
                        ));
                        return None;
                    }
                }
            }
        };
        let key = Arc::new(Pbkdf2Key::new(&provider.name, &passphrase_text, iterations));
        self.keys.insert(reference.to_owned(), key.clone());
        Some(key)
    }

    /// Evaluates an expression that may use variables (and functions).
    fn eval(&mut self, expr: &config::Expr) -> Option<Value> {
        let variables = self.variables.get_or_insert_with(|| {
            let mut config = self.config.clone();
            let env: Vec<(String, String)> = std::env::vars().collect();
            // Problems with other variables are reported where they are used.
            vars::resolve(&mut config, &[], &env).0
        });
        let (instances, expansions, calls) = (HashMap::new(), HashMap::new(), HashMap::new());
        let names = plan::World::new(self.config, variables, &instances, &expansions, &calls);
        let scope = config::eval::Scope::new(&names);
        match config::eval::eval(&expr.expr, &scope) {
            Ok(v) if v.is_unknown() => {
                self.diags.push(Diagnostic::error("the encryption key needs a value known before planning", expr.span(), "unknown"));
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                // The evaluator withholds messages about sensitive values.
                self.diags.push(Diagnostic::error(
                    format!("{} (set the variable with STRATA_VAR_NAME or a *.auto.stratavars.hcl file)", e.message),
                    Span::new(expr.file, e.range.clone()),
                    "here",
                ));
                None
            }
        }
    }
}
