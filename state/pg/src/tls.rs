//! TLS to the server with libpq's meaning of `sslmode` and `sslrootcert`,
//! so a connection string behaves as it does for `psql`.
//!
//! The driver (`tokio-postgres`) knows only `disable`, `prefer` and
//! `require`, and its TLS connector would verify every certificate against
//! the system's roots whatever the mode. These options are therefore taken
//! out of the connection string here and turned into the driver's mode and
//! a `native-tls` connector:
//!
//! | sslmode | TLS | certificate checked | host name checked |
//! |---|---|---|---|
//! | `disable` | never | | |
//! | `allow`, `prefer` (default) | if the server offers it | only with a root file, as `verify-ca` | no |
//! | `require` | always | only with a root file, as `verify-ca` | no |
//! | `verify-ca` | always | against the root file | no |
//! | `verify-full` | always | against the root file | yes |
//!
//! The root file is `sslrootcert`, else `PGSSLROOTCERT`, else
//! `~/.postgresql/root.crt` if it exists (libpq's order); `sslrootcert=system`
//! means the system's trusted roots and requires `verify-full`, as in libpq
//! 16. `PGSSLMODE` is the default mode. (`allow` tries TLS first, where libpq
//! tries plain first; client certificates are not supported.)

use native_tls::{Certificate, TlsConnector};
use postgres::config::SslMode as DriverMode;
use std::path::PathBuf;
use strata_state::{Result, StateError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StateError::Database(format!(
                    "sslmode {other:?} in the PostgreSQL connection string is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// None given: no verification below `verify-ca`.
    None,
    File(PathBuf),
    System,
}

/// The TLS settings of one connection string.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    pub mode: SslMode,
    roots: Roots,
}

impl Tls {
    /// Takes `sslmode` and `sslrootcert` out of `conn` (key/value or URL
    /// form); returns the rest for the driver and the TLS settings.
    pub fn split(conn: &str) -> Result<(String, Tls)> {
        let (rest, mode, root) = if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
            take_from_url(conn)
        } else {
            take_from_key_value(conn)
        };
        let mode = match mode.or_else(|| std::env::var("PGSSLMODE").ok().filter(|m| !m.is_empty())) {
            Some(mode) => SslMode::parse(&mode)?,
            None => SslMode::Prefer,
        };
        let root = root.or_else(|| std::env::var("PGSSLROOTCERT").ok().filter(|r| !r.is_empty()));
        let roots = match root.as_deref() {
            Some("system") => Roots::System,
            Some(path) => Roots::File(PathBuf::from(path)),
            None => match std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt")) {
                Some(default) if default.is_file() => Roots::File(default),
                _ => Roots::None,
            },
        };
        if roots == Roots::System && mode != SslMode::VerifyFull && mode != SslMode::Disable {
            return Err(StateError::Database(format!(
                "weak sslmode {:?} may not be used with sslrootcert=system (use \"verify-full\")",
                mode.name()
            )));
        }
        Ok((rest, Tls { mode, roots }))
    }

    /// The driver's mode: it has no verify modes (verification is the
    /// connector's business) and no `allow`.
    pub fn driver_mode(&self) -> DriverMode {
        match self.mode {
            SslMode::Disable => DriverMode::Disable,
            SslMode::Allow | SslMode::Prefer => DriverMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverMode::Require,
        }
    }

    /// True when the server's certificate is checked.
    pub fn verifies(&self) -> bool {
        matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull) || self.roots != Roots::None
    }

    /// The connector for this mode (reads the root file).
    pub fn connector(&self) -> Result<TlsConnector> {
        let mut builder = TlsConnector::builder();
        match &self.roots {
            Roots::System => {}
            Roots::File(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    StateError::Database(format!("cannot read the root certificate file {} (sslrootcert): {e}", path.display()))
                })?;
                let certs = Certificate::stack_from_pem(&pem).map_err(|e| {
                    StateError::Database(format!("the root certificate file {} (sslrootcert) is not PEM certificates: {e}", path.display()))
                })?;
                builder.disable_built_in_roots(true);
                for cert in certs {
                    builder.add_root_certificate(cert);
                }
            }
            Roots::None if matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
                return Err(StateError::Database(format!(
                    "sslmode={} needs the CA that signed the server's certificate: give sslrootcert=FILE in the connection string \
                     (or PGSSLROOTCERT, or ~/.postgresql/root.crt), or sslrootcert=system for the system's trusted roots",
                    self.mode.name()
                )))
            }
            Roots::None => {
                builder.danger_accept_invalid_certs(true);
            }
        }
        if self.mode != SslMode::VerifyFull {
            builder.danger_accept_invalid_hostnames(true);
        }
        builder.build().map_err(|e| StateError::Database(format!("TLS for PostgreSQL: {e}")))
    }

    /// A hint for a failed handshake: which check failed and against what.
    pub fn explain(&self, message: &str) -> Option<String> {
        if !self.verifies() || !message.contains("certificate verify failed") {
            return None;
        }
        let roots = match &self.roots {
            Roots::File(path) => format!("the CA in {}", path.display()),
            Roots::System | Roots::None => "the system's trusted roots".into(),
        };
        Some(format!(
            "the server's certificate is not trusted: sslmode={} checks it against {roots}{}",
            self.mode.name(),
            if self.mode == SslMode::VerifyFull { ", and that it names the host connected to" } else { "" }
        ))
    }
}

/// `key=value` pairs as libpq reads them: values bare or single-quoted
/// with backslash escapes. Everything but the TLS keys is kept as written.
fn take_from_key_value(conn: &str) -> (String, Option<String>, Option<String>) {
    let (mut rest, mut mode, mut root) = (String::new(), None, None);
    let chars: Vec<char> = conn.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '=' {
            i += 1;
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let value_start = i;
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                value.push(chars[i]);
                i += 1;
            }
        }
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            "" => {}
            _ => {
                if !rest.is_empty() {
                    rest.push(' ');
                }
                rest.push_str(&key);
                rest.push('=');
                rest.extend(&chars[value_start..i.min(chars.len())]);
            }
        }
    }
    (rest, mode, root)
}

/// A `postgresql://` URL: the TLS parameters taken out of its query.
fn take_from_url(conn: &str) -> (String, Option<String>, Option<String>) {
    let Some((base, query)) = conn.split_once('?') else {
        return (conn.to_owned(), None, None);
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = Some(percent_decode(value)),
            "sslrootcert" => root = Some(percent_decode(value)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    (rest, mode, root)
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_of_both_forms_and_the_rest_is_kept() {
        let (rest, tls) = Tls::split("host=db port=5 sslmode=verify-full sslrootcert='/a b/ca.crt' password='x y'").unwrap();
        assert_eq!(rest, "host=db port=5 password='x y'");
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.roots, Roots::File("/a b/ca.crt".into()));
        assert!(tls.verifies());

        let (rest, tls) = Tls::split("postgresql://me@db/strata?sslmode=require&application_name=x&sslrootcert=%2Ftmp%2Fca.crt").unwrap();
        assert_eq!(rest, "postgresql://me@db/strata?application_name=x");
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(tls.roots, Roots::File("/tmp/ca.crt".into()));
        assert_eq!(tls.driver_mode(), DriverMode::Require);

        let (_, tls) = Tls::split("host=db sslmode=require").unwrap();
        if tls.roots == Roots::None {
            assert!(!tls.verifies(), "require without a root file does not verify, as in libpq");
        }
        assert!(Tls::split("host=db sslmode=verify").is_err());
        assert!(Tls::split("host=db sslmode=require sslrootcert=system").is_err(), "libpq 16 refuses a weak mode with system roots");
        assert!(Tls::split("host=db sslmode=verify-full sslrootcert=system").is_ok());
    }
}
