//! Secret material the gateway needs at start: the API-key pepper, and the
//! 32-byte vault keys read the same way. In development they are generated
//! once under `<data_dir>/dev-secrets/` (0600, marked as development secrets:
//! `files::write_dev_secret`); otherwise they must be configured, start-up
//! names exactly what is missing, and a configured file must be owner-only and
//! not a development secret (`files::read_secret`).

use std::path::{Path, PathBuf};

use base64::Engine;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use zeroize::Zeroize;

use crate::services::key_hasher::PEPPER_LEN;

use super::config::Config;
use crate::secret_files::{self as files, DevSecrets, SecretFileError};

pub type Pepper = SecretBox<[u8; PEPPER_LEN]>;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot create development secret: {0}")]
    Dev(String),
    #[error(transparent)]
    File(#[from] SecretFileError),
}

/// Where the development pepper lives.
pub fn dev_pepper_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-secrets").join("api_key_pepper")
}

/// The configured pepper, if any (inline or from a file). Development
/// secrets are accepted only when `dev`.
pub fn configured_pepper(config: &Config, dev: bool) -> Result<Option<Pepper>, SecretError> {
    configured_key(
        config.secrets.api_key_pepper.as_ref(),
        config.secrets.api_key_pepper_file.as_deref(),
        "secrets.api_key_pepper",
        DevSecrets::new(dev, &config.data_dir),
    )
}

/// A 32-byte secret from inline base64 or a file, if either is configured.
/// `name` is its configuration key (the file's is `{name}_file`).
pub fn configured_key(
    inline: Option<&SecretString>,
    file: Option<&Path>,
    name: &str,
    dev: DevSecrets<'_>,
) -> Result<Option<SecretBox<[u8; PEPPER_LEN]>>, SecretError> {
    match (inline, file) {
        (Some(inline), _) => decode_pepper(inline.expose_secret(), name).map(Some),
        (None, Some(path)) => read_pepper_file(path, &format!("{name}_file"), dev).map(Some),
        (None, None) => Ok(None),
    }
}

/// Loads the development secret `file_name` from `<data_dir>/dev-secrets/`,
/// creating it (32 random bytes, base64, 0600) on first use.
pub fn ensure_dev_key(data_dir: &Path, file_name: &str) -> Result<SecretBox<[u8; PEPPER_LEN]>, SecretError> {
    let path = data_dir.join("dev-secrets").join(file_name);
    if !path.exists() {
        let dir = data_dir.join("dev-secrets");
        files::create_private_dir(&dir).map_err(|e| SecretError::Dev(e.to_string()))?;
        let mut bytes = crate::domain::random::bytes::<PEPPER_LEN>().map_err(|e| SecretError::Dev(e.to_string()))?;
        let mut encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        bytes.zeroize();
        encoded.push('\n');
        let written = files::write_dev_secret(&path, encoded.as_bytes());
        encoded.zeroize();
        written.map_err(|e| SecretError::Dev(e.to_string()))?;
    }
    read_pepper_file(&path, "development secret", DevSecrets::Allowed)
}

/// Reads a base64 32-byte secret file (`what` names it in errors): refused if
/// group or others may access it, or if it is a development secret and `dev`
/// refuses those.
pub fn read_pepper_file(path: &Path, what: &str, dev: DevSecrets<'_>) -> Result<Pepper, SecretError> {
    let raw = files::read_secret(path, what, dev)?;
    decode_pepper(raw.trim(), &path.display().to_string())
}

/// Loads the development pepper, creating it on first use.
pub fn ensure_dev_pepper(data_dir: &Path) -> Result<Pepper, SecretError> {
    ensure_dev_key(data_dir, "api_key_pepper")
}

/// A fresh random pepper, base64-encoded, for `paywarden secrets generate`.
pub fn generate_encoded() -> Result<SecretString, SecretError> {
    let mut bytes = crate::domain::random::bytes::<PEPPER_LEN>().map_err(|e| SecretError::Dev(e.to_string()))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    bytes.zeroize();
    Ok(SecretString::from(encoded))
}

fn decode_pepper(encoded: &str, source: &str) -> Result<Pepper, SecretError> {
    let mut decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| SecretError::Invalid(format!("{source} is not valid base64")))?;
    let result = <[u8; PEPPER_LEN]>::try_from(decoded.as_slice())
        .map(|arr| SecretBox::new(Box::new(arr)))
        .map_err(|_| SecretError::Invalid(format!("{source} must decode to exactly {PEPPER_LEN} bytes")));
    decoded.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_pepper_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_dev_pepper(dir.path()).unwrap();
        let b = ensure_dev_pepper(dir.path()).unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert!(!files::too_open(&dev_pepper_path(dir.path())));
        let raw = std::fs::read_to_string(dev_pepper_path(dir.path())).unwrap();
        assert!(raw.starts_with("# paywarden-dev"), "marked as a development secret");
        let production = DevSecrets::Refused { data_dir: dir.path() };
        assert!(matches!(
            read_pepper_file(&dev_pepper_path(dir.path()), "x", production),
            Err(SecretError::File(SecretFileError::DevGenerated { .. }))
        ));
    }

    #[test]
    fn wrong_length_or_encoding_is_refused() {
        assert!(decode_pepper("not base64!", "x").is_err());
        assert!(decode_pepper("AAAA", "x").is_err());
        let ok = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(decode_pepper(&ok, "x").is_ok());
    }
}
