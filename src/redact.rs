//! Keeping secrets out of error messages.
//!
//! Sensitive marks protect values wherever Strata renders them, but an error
//! message is text written by someone else: a provider that quotes its input
//! ("object \"hunter2\" refuses to be created"), libvirt quoting XML, a
//! function quoting its argument. Such text loses the mark. Every place where
//! a message is made from marked values therefore passes it through this
//! module before it is shown or stored:
//!
//! - [`scrub`] replaces every sensitive string of the values involved (raw,
//!   and as Rust, JSON and XML quoting would write it) with
//!   `(sensitive value)`; a message that contains a secret too short to be
//!   replaced safely is withheld whole;
//! - [`provider_error`] does that for a provider's error, given the values
//!   of the instance the call was about.
//!
//! - [`scrub_log`] does that for every log line, with every sensitive
//!   string the engine has seen in this process ([`remember`]): providers
//!   get values without marks, so what they log cannot be redacted where
//!   it is written.
//!
//! The evaluator does not scrub: when a function fails on a sensitive
//! argument it withholds the message altogether (see `config::eval`),
//! because a function may quote its argument transformed (decoded, parsed,
//! normalised) beyond what text replacement can recognise.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use strata_provider::{ProviderError, Value};

/// What a secret is replaced with in a message.
pub const PLACEHOLDER: &str = "(sensitive value)";

/// Secrets shorter than this (in characters) are not replaced inside a
/// message, which would garble it and still hint at the value: a message
/// that contains one is withheld whole.
const SHORTEST_REPLACEABLE: usize = 4;

/// Lines of a multi-line secret at least this long are also replaced on
/// their own: a parser quoting the offending line of a cloud-init document
/// or a key quotes one line, not the whole value.
const SHORTEST_LINE: usize = 8;

/// The message with every sensitive string of `sources` removed.
pub fn scrub<'a>(message: &str, sources: impl IntoIterator<Item = &'a Value>) -> String {
    let secrets: Vec<String> = sources.into_iter().flat_map(Value::sensitive_strings).collect();
    if secrets.is_empty() {
        return message.to_owned();
    }
    let mut needles: Vec<String> = Vec::new();
    for secret in &secrets {
        needles.push(secret.clone());
        if secret.contains('\n') {
            needles.extend(secret.lines().map(str::trim).filter(|l| l.chars().count() >= SHORTEST_LINE).map(str::to_owned));
        }
    }
    let mut variants: Vec<String> = needles.iter().flat_map(|n| quoted_forms(n)).collect();
    variants.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    variants.dedup();
    if variants.iter().any(|v| v.chars().count() < SHORTEST_REPLACEABLE && message.contains(v.as_str())) {
        return "(the message is not shown: it contains a sensitive value)".to_owned();
    }
    let mut out = message.to_owned();
    for v in &variants {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), PLACEHOLDER);
        }
    }
    out
}

/// A provider's error as the user may see it: its message scrubbed of the
/// secrets in `values` (the planned, prior or configured values of the
/// instance or provider the call was about).
pub fn provider_error<'a>(error: ProviderError, values: impl IntoIterator<Item = &'a Value>) -> String {
    scrub(&error.message, values)
}

/// Whether a logger runs: only then does [`remember`] collect anything.
static COLLECTING: AtomicBool = AtomicBool::new(false);

/// Every sensitive string seen so far, in every quoted form.
static LOG_SECRETS: Mutex<LogSecrets> = Mutex::new(LogSecrets { forms: BTreeSet::new(), by_length: Vec::new(), stale: false });

struct LogSecrets {
    forms: BTreeSet<String>,
    /// `forms`, longest first (so a secret inside another is replaced after
    /// it); rebuilt when `stale`.
    by_length: Vec<String>,
    stale: bool,
}

/// Called once when logging starts; until then [`remember`] costs nothing.
pub fn start_collecting_log_secrets() {
    COLLECTING.store(true, Ordering::Relaxed);
}

/// Notes the sensitive strings of `values` so that no log line shows them.
/// The engine calls it wherever marked values enter (variables, state,
/// plans, provider results) before a provider sees them unmarked.
pub fn remember<'a>(values: impl IntoIterator<Item = &'a Value>) {
    if !COLLECTING.load(Ordering::Relaxed) {
        return;
    }
    let mut secrets = values.into_iter().flat_map(Value::sensitive_strings).peekable();
    if secrets.peek().is_none() {
        return;
    }
    let mut registry = LOG_SECRETS.lock().unwrap_or_else(|p| p.into_inner());
    for secret in secrets {
        let mut needles = vec![secret.clone()];
        if secret.contains('\n') {
            needles.extend(secret.lines().map(str::trim).filter(|l| l.chars().count() >= SHORTEST_LINE).map(str::to_owned));
        }
        for form in needles.iter().flat_map(|n| quoted_forms(n)) {
            registry.stale |= registry.forms.insert(form);
        }
    }
}

/// A log line with every remembered secret replaced; a line that holds a
/// secret too short to replace (as a word of its own) is withheld.
pub fn scrub_log(line: &str) -> Cow<'_, str> {
    if !COLLECTING.load(Ordering::Relaxed) {
        return Cow::Borrowed(line);
    }
    let mut registry = LOG_SECRETS.lock().unwrap_or_else(|p| p.into_inner());
    if registry.stale {
        let mut forms: Vec<String> = registry.forms.iter().cloned().collect();
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        registry.by_length = forms;
        registry.stale = false;
    }
    let mut out = Cow::Borrowed(line);
    for form in &registry.by_length {
        if form.chars().count() < SHORTEST_REPLACEABLE {
            if contains_word(&out, form) {
                return Cow::Owned("(a log line is withheld: it contains a sensitive value)\n".to_owned());
            }
        } else if out.contains(form.as_str()) {
            out = Cow::Owned(out.replace(form.as_str(), PLACEHOLDER));
        }
    }
    out
}

/// Whether `needle` occurs in `text` not adjoining a letter or digit, nor
/// a decimal point when it is a number (a secret `7` is in `count=7`, not
/// in a timestamp's `17` or in `7.5ms`).
fn contains_word(text: &str, needle: &str) -> bool {
    let numeric = needle.chars().all(|c| c.is_ascii_digit());
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || (numeric && c == '.'));
    text.match_indices(needle).any(|(at, _)| !is_word(text[..at].chars().next_back()) && !is_word(text[at + needle.len()..].chars().next()))
}

/// The ways a string is commonly written into a message: as is, escaped as
/// Rust's `{:?}` and JSON write it (without the quotes), XML-escaped.
fn quoted_forms(s: &str) -> Vec<String> {
    let debug = format!("{s:?}");
    let json = serde_json::to_string(s).unwrap_or_default();
    let mut forms = vec![
        s.to_owned(),
        debug[1..debug.len() - 1].to_owned(),
        json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_owned(),
        xml_escaped(s, "&apos;"),
        xml_escaped(s, "&#39;"),
    ];
    forms.retain(|f| !f.is_empty());
    forms
}

fn xml_escaped(s: &str, apostrophe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Value {
        Value::from(s).into_sensitive()
    }

    #[test]
    fn secrets_are_replaced_in_every_quoting() {
        let planned = Value::object([("name", secret("pa\"ss<w0rd>")), ("size", Value::from(8i64))]);
        for message in [
            "object pa\"ss<w0rd> refuses",
            "object \"pa\\\"ss<w0rd>\" refuses",
            "<name>pa&quot;ss&lt;w0rd&gt;</name> is invalid",
        ] {
            let scrubbed = scrub(message, [&planned]);
            assert!(!scrubbed.contains("w0rd"), "{message} → {scrubbed}");
            assert!(scrubbed.contains(PLACEHOLDER), "{scrubbed}");
        }
        assert_eq!(scrub("size 8 is too large", [&planned]), "size 8 is too large", "only marked values are secrets");
    }

    #[test]
    fn lines_of_multi_line_secrets_and_keys_of_sensitive_maps_are_replaced() {
        let user_data = secret("#cloud-config\npassword: correct-horse\n");
        let scrubbed = scrub("line 2: bad key in \"password: correct-horse\"", [&user_data]);
        assert!(!scrubbed.contains("correct-horse"), "{scrubbed}");
        let keys = Value::object([("key-from-a-secret", Value::from("x"))]).into_sensitive();
        assert!(!scrub("no such key-from-a-secret", [&keys]).contains("key-from-a-secret"));
    }

    #[test]
    fn log_lines_lose_every_remembered_secret() {
        start_collecting_log_secrets();
        remember([&Value::object([("pw", secret("log-canary\"x")), ("pin", Value::from(7i64).into_sensitive())])]);
        let line = scrub_log("call planned={\"pw\":\"log-canary\\\"x\"} at 17:00:07\n");
        assert!(!line.contains("log-canary"), "{line}");
        assert!(line.contains(PLACEHOLDER), "{line}");
        assert_eq!(scrub_log("count=17 took 7.5ms\n"), "count=17 took 7.5ms\n", "a short secret inside other digits is no match");
        assert!(scrub_log("count=7\n").contains("withheld"));
    }

    #[test]
    fn a_message_with_a_short_secret_is_withheld() {
        let scrubbed = scrub("pin 123 rejected", [&secret("123")]);
        assert!(!scrubbed.contains("123"), "{scrubbed}");
        assert_eq!(scrub("nothing to hide", [&secret("123")]), "nothing to hide");
    }
}
