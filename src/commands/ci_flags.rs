//! The flags Terraform's CI invocations pass to every command that plans,
//! applies or edits the state: `-input`, `-compact-warnings`, `-lock`,
//! `-lock-timeout` (with Terraform's duration syntax).

use super::*;
use std::time::Duration;

/// How a command uses the terminal, as Terraform's CI flags say.
#[derive(Args, Debug, Clone)]
pub struct UiFlags {
    /// Ask for input when needed (`-input=false`: never, fail instead).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub input: bool,
    /// Print warnings as one line each.
    #[arg(long = "compact-warnings")]
    pub compact_warnings: bool,
}

impl Default for UiFlags {
    fn default() -> UiFlags {
        UiFlags { input: true, compact_warnings: false }
    }
}

/// The state lock, as Terraform's `-lock` and `-lock-timeout` control it.
#[derive(Args, Debug, Clone)]
pub struct LockFlags {
    /// Lock the state (`-lock=false`: do not; unsafe while others run).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub lock: bool,
    /// Wait this long for a lock another process holds (`30s`, `5m`).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

impl Default for LockFlags {
    fn default() -> LockFlags {
        LockFlags { lock: true, lock_timeout: Duration::ZERO }
    }
}

/// Takes the state lock as the flags say: waiting up to `-lock-timeout`,
/// or not at all with `-lock=false` (with a warning).
pub(super) fn take_lock(shell: &Shell, ws: &Workspace, operation: &str, flags: &LockFlags) -> ops::OpResult<Option<ops::LockGuard>> {
    if !flags.lock {
        shell.warn("-lock=false: the state is not locked, so another Strata run at the same time can change it under this one");
        return Ok(None);
    }
    let (guard, warning) = ops::lock_waiting(ws, operation, flags.lock_timeout)?;
    if let Some(w) = warning {
        shell.warn(&w);
    }
    Ok(Some(guard))
}

/// A duration as Terraform (Go's `time.ParseDuration`) writes it: a sequence
/// of decimal numbers with units, `300ms`, `30s`, `5m`, `1h30m`, `1.5h`;
/// `0` alone is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (examples: 30s, 5m, 1h30m)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// The flags of a run that plans or applies, beyond what to plan.
#[derive(Debug, Clone, Default)]
pub(super) struct Session {
    pub ui: UiFlags,
    pub lock: LockFlags,
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_as_go_writes_them() {
        for (text, expected) in [
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5h", Duration::from_secs(5400)),
            ("300ms", Duration::from_millis(300)),
            ("2m3.5s", Duration::from_millis(123_500)),
            ("10us", Duration::from_micros(10)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        for bad in ["", "5", "5x", "m", "1h-2m", "-1s", "1 m", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} is refused");
        }
    }
}
