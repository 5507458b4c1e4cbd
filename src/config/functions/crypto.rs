//! Hash and UUID functions. Hashes are of the string's UTF-8 bytes.

use super::{arity, one, str_value, string, Args, Function, FunctionContext, Result, Table};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use strata_provider::Value;
use uuid::Uuid;

pub(super) const FUNCTIONS: Table = &[
    ("base64sha256", Function::Pure(base64sha256)),
    ("base64sha512", Function::Pure(base64sha512)),
    ("bcrypt", Function::Pure(bcrypt_fn)),
    ("md5", Function::Pure(md5_fn)),
    ("rsadecrypt", Function::Pure(rsadecrypt)),
    ("sha1", Function::Pure(sha1_fn)),
    ("sha256", Function::Pure(sha256)),
    ("sha512", Function::Pure(sha512)),
    ("uuid", Function::Raw(uuid_fn)),
    ("uuidv5", Function::Pure(uuidv5)),
];

/// Decrypts base64 PKCS#1 v1.5 ciphertext with a PEM RSA private key
/// (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`), with Terraform's
/// messages. The result is sensitive only if an argument is (as in
/// Terraform); an error about a sensitive argument is withheld by the
/// evaluator.
fn rsadecrypt(args: Args) -> Result {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    let [ciphertext, key] = arity(args)?;
    let (ciphertext, key) = (string(&ciphertext)?, string(&key)?);
    let bytes = STANDARD
        .decode(ciphertext.as_bytes())
        .map_err(|_| format!("failed to decode input {ciphertext:?}: cipher text must be base64-encoded"))?;
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(&key)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(&key))
        .map_err(|_| "invalid private key: no RSA private key found (PEM PKCS#1 or PKCS#8)".to_owned())?;
    let plain = key.decrypt(rsa::Pkcs1v15Encrypt, &bytes).map_err(|_| "failed to decrypt: decryption error".to_owned())?;
    String::from_utf8(plain).map(Value::String).map_err(|_| "the decrypted text is not valid UTF-8".to_owned())
}

fn digest<D: Digest>(args: Args) -> Result<Vec<u8>> {
    Ok(D::digest(string(&one(args)?)?.as_bytes()).to_vec())
}

fn hex(bytes: Vec<u8>) -> Result {
    str_value(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn base64sha256(args: Args) -> Result {
    str_value(STANDARD.encode(digest::<Sha256>(args)?))
}

fn base64sha512(args: Args) -> Result {
    str_value(STANDARD.encode(digest::<Sha512>(args)?))
}

/// A bcrypt hash (`$2a$`, as Go writes it) with a random salt, so a new
/// value on every call, as in Terraform. Cost 10 unless given (4 to 31).
fn bcrypt_fn(args: Args) -> Result {
    let (text, cost) = match <[Value; 2]>::try_from(args) {
        Ok([text, cost]) => (text, super::integer(&cost)?),
        Err(args) => (one(args)?, 10),
    };
    let text = string(&text)?;
    let cost = u32::try_from(cost).ok().filter(|c| (4..=31).contains(c)).ok_or("the cost must be between 4 and 31")?;
    if text.len() > 72 {
        return Err("the given string is longer than 72 bytes, which bcrypt cannot hash".into());
    }
    let hash = bcrypt::hash_with_result(text.as_bytes(), cost).map_err(|e| format!("error occurred generating password: {e}"))?;
    str_value(hash.format_for_version(bcrypt::Version::TwoA))
}

fn md5_fn(args: Args) -> Result {
    hex(digest::<Md5>(args)?)
}

fn sha1_fn(args: Args) -> Result {
    hex(digest::<Sha1>(args)?)
}

fn sha256(args: Args) -> Result {
    hex(digest::<Sha256>(args)?)
}

fn sha512(args: Args) -> Result {
    hex(digest::<Sha512>(args)?)
}

/// Unknown during plan, a random v4 UUID during apply.
fn uuid_fn(args: Args, cx: &FunctionContext) -> Result {
    arity::<0>(args)?;
    if !cx.apply {
        return Ok(Value::Unknown);
    }
    str_value(Uuid::new_v4().to_string())
}

/// The namespace is `dns`, `url`, `oid`, `x500` or a UUID.
fn uuidv5(args: Args) -> Result {
    let [ns, name] = arity(args)?;
    let (ns, name) = (string(&ns)?, string(&name)?);
    let namespace = match ns.as_str() {
        "dns" => Uuid::NAMESPACE_DNS,
        "url" => Uuid::NAMESPACE_URL,
        "oid" => Uuid::NAMESPACE_OID,
        "x500" => Uuid::NAMESPACE_X500,
        other => Uuid::parse_str(other).map_err(|e| format!("uuidv5() doesn't support namespace {other} ({e})"))?,
    };
    str_value(Uuid::new_v5(&namespace, name.as_bytes()).to_string())
}
