//! Client-side encryption of everything at rest, as OpenTofu's `encryption`
//! block has it: AES-256-GCM with a key derived from a passphrase by
//! PBKDF2-HMAC-SHA512, a primary method and an optional fallback for
//! rotation (or for reading a state written before encryption was on).
//!
//! Every stored record goes through [`Encryption::encrypt`] and
//! [`Encryption::decrypt`] (see [`crate::record`]), so any backend that
//! stores the same opaque payloads is encrypted alike. A payload is either
//! plain JSON or `0x00 "SE" 0x01 | salt (16) | nonce (12) | ciphertext+tag`;
//! the table and key of the record are the associated data, so a payload
//! moved to another record fails to decrypt. The salt is chosen once per
//! state and kept in each payload, so the slow key derivation runs once per
//! process and salt, not per record.

use aes_gcm::aead::rand_core::RngCore as _;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::Sha512;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const PREFIX: [u8; 4] = [0x00, b'S', b'E', 0x01];
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = PREFIX.len() + SALT_LEN + NONCE_LEN;
/// OpenTofu's default for PBKDF2-HMAC-SHA512 (OWASP's recommendation).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// OpenTofu's minimum.
pub const MIN_ITERATIONS: u32 = 200_000;

/// A PBKDF2 key provider: a passphrase, and the keys derived from it per salt.
pub struct Pbkdf2Key {
    name: String,
    passphrase: String,
    iterations: u32,
    derived: Mutex<HashMap<[u8; SALT_LEN], [u8; 32]>>,
    /// The salt new payloads use: the state's own once one was read.
    write_salt: Mutex<Option<[u8; SALT_LEN]>>,
}

impl std::fmt::Debug for Pbkdf2Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passphrase.
        f.debug_struct("Pbkdf2Key").field("name", &self.name).field("iterations", &self.iterations).finish()
    }
}

impl Pbkdf2Key {
    /// `name` is how messages refer to it (`key_provider.pbkdf2.NAME`).
    pub fn new(name: &str, passphrase: &str, iterations: u32) -> Pbkdf2Key {
        Pbkdf2Key {
            name: name.to_owned(),
            passphrase: passphrase.to_owned(),
            iterations,
            derived: Mutex::new(HashMap::new()),
            write_salt: Mutex::new(None),
        }
    }

    fn key(&self, salt: &[u8; SALT_LEN]) -> [u8; 32] {
        let mut derived = self.derived.lock().expect("key cache");
        *derived.entry(*salt).or_insert_with(|| {
            let mut key = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha512>(self.passphrase.as_bytes(), salt, self.iterations, &mut key);
            key
        })
    }

    fn salt_for_writing(&self) -> [u8; SALT_LEN] {
        *self.write_salt.lock().expect("salt").get_or_insert_with(|| {
            let mut salt = [0u8; SALT_LEN];
            OsRng.fill_bytes(&mut salt);
            salt
        })
    }
}

/// One configured method: `method "aes_gcm" "NAME"` or `method "unencrypted" "NAME"`.
#[derive(Debug, Clone)]
pub enum Method {
    Unencrypted { name: String },
    AesGcm { name: String, key: Arc<Pbkdf2Key> },
}

impl Method {
    fn describe(&self) -> String {
        match self {
            Method::Unencrypted { name } => format!("method.unencrypted.{name}"),
            Method::AesGcm { name, .. } => format!("method.aes_gcm.{name}"),
        }
    }
}

/// What encrypts and decrypts one kind of data (the state, or saved plans).
#[derive(Debug)]
pub struct Encryption {
    /// `None`: no encryption configured; plain data only.
    primary: Option<Method>,
    fallback: Option<Method>,
}

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptionError {
    #[error(
        "the {what} is encrypted, but no encryption is configured: add the terraform {{ encryption {{ ... }} }} block with its key"
    )]
    NotConfigured { what: String },
    #[error(
        "the {what} cannot be decrypted with {tried}: the passphrase is wrong, or the data was written with another key \
         (to rotate keys, keep the old one as fallback {{ method = ... }})"
    )]
    WrongKey { what: String, tried: String },
    #[error(
        "the {what} is not encrypted, but encryption is configured without an unencrypted fallback: to encrypt an existing \
         {what}, add method \"unencrypted\" \"migrate\" {{}} and fallback {{ method = method.unencrypted.migrate }}"
    )]
    Unencrypted { what: String },
    #[error("the {what} is not a payload Strata wrote (it is damaged or cut short)")]
    Malformed { what: String },
}

/// A decrypted payload, and whether it was written under the primary method
/// (if not, it is rewritten with it on the next change).
pub struct Opened {
    pub plain: Vec<u8>,
    pub current: bool,
}

impl Encryption {
    /// No encryption: payloads are plain, and an encrypted one is refused.
    pub fn none() -> Arc<Encryption> {
        Arc::new(Encryption { primary: None, fallback: None })
    }

    pub fn new(primary: Method, fallback: Option<Method>) -> Arc<Encryption> {
        Arc::new(Encryption { primary: Some(primary), fallback })
    }

    /// True when new payloads are encrypted.
    pub fn encrypts(&self) -> bool {
        matches!(self.primary, Some(Method::AesGcm { .. }))
    }

    /// True when [`Encryption::decrypt`] gives every plain payload back as
    /// it is, as current data: no key and no fallback are configured.
    pub(crate) fn reads_as_stored(&self) -> bool {
        matches!(self.primary, None | Some(Method::Unencrypted { .. })) && self.fallback.is_none()
    }

    /// True when a fallback method is configured: only then can stored data
    /// be readable yet not current (and due to be rewritten).
    pub fn has_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Seals `plain` under the primary method; `aad` binds it to its place.
    pub fn encrypt(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let Some(Method::AesGcm { key, .. }) = &self.primary else {
            return plain.to_vec();
        };
        let salt = key.salt_for_writing();
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key.key(&salt)));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher.encrypt(&nonce, Payload { msg: plain, aad }).expect("AES-GCM encrypts any length we store");
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.extend_from_slice(&PREFIX);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a payload written by [`Encryption::encrypt`] under the primary or
    /// the fallback method. `what` names the data for messages.
    pub fn decrypt(&self, what: &str, aad: &[u8], stored: &[u8]) -> Result<Opened, EncryptionError> {
        let methods: Vec<&Method> = self.primary.iter().chain(self.fallback.iter()).collect();
        if !is_encrypted(stored) {
            return match methods.first() {
                None | Some(Method::Unencrypted { .. }) => Ok(Opened { plain: stored.to_vec(), current: true }),
                Some(_) if methods.iter().any(|m| matches!(m, Method::Unencrypted { .. })) => {
                    Ok(Opened { plain: stored.to_vec(), current: false })
                }
                Some(_) => Err(EncryptionError::Unencrypted { what: what.to_owned() }),
            };
        }
        if stored.len() < HEADER_LEN {
            return Err(EncryptionError::Malformed { what: what.to_owned() });
        }
        let salt: [u8; SALT_LEN] = stored[PREFIX.len()..PREFIX.len() + SALT_LEN].try_into().expect("salt length");
        let nonce = Nonce::from_slice(&stored[PREFIX.len() + SALT_LEN..HEADER_LEN]);
        let mut tried = Vec::new();
        for (i, method) in methods.iter().enumerate() {
            let Method::AesGcm { key, .. } = method else { continue };
            tried.push(method.describe());
            let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key.key(&salt)));
            if let Ok(plain) = cipher.decrypt(nonce, Payload { msg: &stored[HEADER_LEN..], aad }) {
                if i == 0 {
                    // Keep writing under the state's salt: one derivation per process.
                    key.write_salt.lock().expect("salt").get_or_insert(salt);
                }
                return Ok(Opened { plain, current: i == 0 });
            }
        }
        if tried.is_empty() {
            return Err(EncryptionError::NotConfigured { what: what.to_owned() });
        }
        Err(EncryptionError::WrongKey { what: what.to_owned(), tried: tried.join(" or ") })
    }
}

/// True for a payload [`Encryption::encrypt`] sealed.
pub fn is_encrypted(stored: &[u8]) -> bool {
    stored.starts_with(&PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aes(name: &str, passphrase: &str) -> Method {
        Method::AesGcm { name: name.into(), key: Arc::new(Pbkdf2Key::new(name, passphrase, 1000)) }
    }

    #[test]
    fn round_trip_binds_the_place_and_refuses_a_wrong_key() {
        let enc = Encryption::new(aes("new", "correct horse"), None);
        let sealed = enc.encrypt(b"instances\0a.b", b"{\"secret\":\"s3cr3t\"}");
        assert!(is_encrypted(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        let opened = enc.decrypt("state", b"instances\0a.b", &sealed).unwrap();
        assert_eq!(opened.plain, b"{\"secret\":\"s3cr3t\"}");
        assert!(opened.current);
        assert!(matches!(enc.decrypt("state", b"instances\0a.c", &sealed), Err(EncryptionError::WrongKey { .. })));
        let wrong = Encryption::new(aes("new", "battery staple"), None);
        assert!(matches!(wrong.decrypt("state", b"instances\0a.b", &sealed), Err(EncryptionError::WrongKey { .. })));
        assert!(matches!(Encryption::none().decrypt("state", b"x", &sealed), Err(EncryptionError::NotConfigured { .. })));
    }

    #[test]
    fn fallback_reads_old_data_as_not_current() {
        let old = Encryption::new(aes("old", "one"), None);
        let sealed = old.encrypt(b"k", b"[1]");
        let rotated = Encryption::new(aes("new", "two"), Some(aes("old", "one")));
        let opened = rotated.decrypt("state", b"k", &sealed).unwrap();
        assert_eq!(opened.plain, b"[1]");
        assert!(!opened.current);
        // Plain data needs an unencrypted fallback once encryption is on.
        assert!(matches!(rotated.decrypt("state", b"k", b"[1]"), Err(EncryptionError::Unencrypted { .. })));
        let migrating = Encryption::new(aes("new", "two"), Some(Method::Unencrypted { name: "migrate".into() }));
        assert!(!migrating.decrypt("state", b"k", b"[1]").unwrap().current);
    }
}
