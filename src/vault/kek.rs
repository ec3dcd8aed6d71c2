//! Key-encryption keys (KEKs): versioned 256-bit keys that wrap each record's
//! data key, and the [`KekProvider`] trait through which the vault finds them.
//!
//! Invariants: KEK bytes live only in a zeroizing [`Kek`] whose `Debug` prints
//! nothing; no error message contains key material; a provider's current
//! version is always one it can return. Today keys come from files or
//! environment variables ([`StaticKeyring`]); a KMS/HSM-backed provider can be
//! added later by implementing [`KekProvider`], without changing callers of
//! `vault::envelope`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretString};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::cipher::KEY_LEN;
pub use super::kek_version::KekVersion;
use crate::domain::random::{self, RandomError};
use crate::secret_files::{self as files, DevSecrets, SecretFileError};

/// KEK length in bytes (AES-256).
pub const KEK_LEN: usize = KEY_LEN;

/// Why a KEK or keyring could not be loaded. Names where a key came from, never
/// what it contained.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("{origin} is not valid base64")]
    NotBase64 { origin: String },
    #[error("{origin} must decode to exactly {KEK_LEN} bytes")]
    WrongLength { origin: String },
    #[error(transparent)]
    File(#[from] SecretFileError),
    #[error("environment variable {name} is not set (or not valid UTF-8)")]
    MissingEnv { name: String },
    #[error("key-encryption key version {0} is configured more than once")]
    DuplicateVersion(KekVersion),
    #[error("the current key-encryption key version {0} is not in the keyring")]
    CurrentMissing(KekVersion),
    #[error("cannot write key-encryption key file {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A 256-bit key-encryption key. Zeroized on drop; `Debug` prints `Kek(***)`.
pub struct Kek(SecretBox<[u8; KEK_LEN]>);

impl Kek {
    pub fn new(bytes: SecretBox<[u8; KEK_LEN]>) -> Self {
        Self(bytes)
    }

    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut key = SecretBox::new(Box::new([0u8; KEK_LEN]));
        random::fill(key.expose_secret_mut())?;
        Ok(Self(key))
    }

    /// Decodes standard base64 (surrounding whitespace ignored). `origin` names
    /// the source in errors, e.g. a path or variable name.
    pub fn from_base64(encoded: &str, origin: &str) -> Result<Self, KekError> {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| KekError::NotBase64 { origin: origin.into() })?,
        );
        if decoded.len() != KEK_LEN {
            return Err(KekError::WrongLength { origin: origin.into() });
        }
        let mut key = SecretBox::new(Box::new([0u8; KEK_LEN]));
        key.expose_secret_mut().copy_from_slice(&decoded);
        Ok(Self(key))
    }

    /// Reads a file holding the base64 key (as written by [`generate_kek_file`]).
    /// Refused if group or others may access it, or if it is a development
    /// secret and `dev` refuses those (`files::read_secret`).
    pub fn read_file(path: &Path, dev: DevSecrets<'_>) -> Result<Self, KekError> {
        let raw = files::read_secret(path, "KEK file", dev)?;
        Self::from_base64(&raw, &path.display().to_string())
    }

    /// Reads the base64 key from environment variable `name`. The value stays
    /// in the process environment; prefer a file where possible.
    pub fn from_env(name: &str) -> Result<Self, KekError> {
        let raw = Zeroizing::new(std::env::var(name).map_err(|_| KekError::MissingEnv { name: name.into() })?);
        Self::from_base64(&raw, name)
    }

    /// Whether `other` holds the same key bytes (compared in constant time),
    /// e.g. a KEK file against the key configured for its version.
    pub fn same_key(&self, other: &Kek) -> bool {
        self.expose().ct_eq(other.expose()).into()
    }

    /// The key bytes, for the vault's ciphers only.
    pub(super) fn expose(&self) -> &[u8; KEK_LEN] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(***)")
    }
}

/// Where the vault gets its KEKs. Implementations must be cheap to call: the
/// vault asks on every seal and open.
pub trait KekProvider: Send + Sync {
    /// The version new data keys are wrapped under, and its key.
    fn current(&self) -> (KekVersion, &Kek);

    /// The key of `version`, if this provider still holds it. Returning `None`
    /// for a retired version makes records wrapped under it unreadable.
    fn get(&self, version: KekVersion) -> Option<&Kek>;
}

/// KEKs held in memory, loaded at start from files or environment variables.
/// Rotation: add the new key as current, keep the old ones until every record
/// has been re-wrapped (`envelope::rewrap`), then drop them from configuration.
pub struct StaticKeyring {
    /// Held apart from the others so that `current()` cannot fail.
    current: (KekVersion, Kek),
    older: BTreeMap<KekVersion, Kek>,
}

impl StaticKeyring {
    /// A keyring of one key.
    pub fn single(version: KekVersion, kek: Kek) -> Self {
        Self {
            current: (version, kek),
            older: BTreeMap::new(),
        }
    }

    /// A keyring of several versions; `current` must be among them and no
    /// version may appear twice.
    pub fn new(current: KekVersion, keys: impl IntoIterator<Item = (KekVersion, Kek)>) -> Result<Self, KekError> {
        let mut older = BTreeMap::new();
        for (version, kek) in keys {
            if older.insert(version, kek).is_some() {
                return Err(KekError::DuplicateVersion(version));
            }
        }
        let kek = older.remove(&current).ok_or(KekError::CurrentMissing(current))?;
        Ok(Self {
            current: (current, kek),
            older,
        })
    }

    /// Every version held, in ascending order.
    pub fn versions(&self) -> Vec<KekVersion> {
        let mut all: Vec<_> = self.older.keys().copied().chain([self.current.0]).collect();
        all.sort_unstable();
        all
    }
}

impl KekProvider for StaticKeyring {
    fn current(&self) -> (KekVersion, &Kek) {
        (self.current.0, &self.current.1)
    }

    fn get(&self, version: KekVersion) -> Option<&Kek> {
        if version == self.current.0 {
            Some(&self.current.1)
        } else {
            self.older.get(&version)
        }
    }
}

impl fmt::Debug for StaticKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeyring")
            .field("current", &self.current.0)
            .field("versions", &self.versions())
            .finish()
    }
}

/// A fresh KEK, base64-encoded, for an operator to place in a secret store.
pub fn generate_encoded() -> Result<SecretString, KekError> {
    let kek = Kek::generate()?;
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(kek.expose()),
    ))
}

/// Development helper: writes a fresh base64 KEK to `path` with mode 0600,
/// creating its directory (0700) if needed. Refuses to overwrite an existing
/// file, since replacing a KEK makes every record wrapped under it unreadable.
pub fn generate_kek_file(path: &Path) -> Result<(), KekError> {
    let write_err = |e: std::io::Error| KekError::Write {
        path: path.into(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        files::create_private_dir(dir).map_err(write_err)?;
    }
    let encoded = generate_encoded()?;
    files::write_private(path, encoded.expose_secret().as_bytes()).map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::new(SecretBox::new(Box::new([byte; KEK_LEN])))
    }

    #[test]
    fn base64_keys_must_be_32_bytes_and_errors_hold_no_key_material() {
        let good = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(
            Kek::from_base64(&format!(" {good}\n"), "x").unwrap().expose(),
            &[7u8; 32]
        );
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
        let err = Kek::from_base64(&short, "PAYWARDEN_KEK").unwrap_err();
        assert!(matches!(err, KekError::WrongLength { .. }));
        assert!(!err.to_string().contains(&short));
        let err = Kek::from_base64("c2VjcmV0!!", "PAYWARDEN_KEK").unwrap_err();
        assert!(matches!(err, KekError::NotBase64 { .. }));
        assert!(!err.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn debug_prints_no_key() {
        assert_eq!(format!("{:?}", kek(0xAB)), "Kek(***)");
        let ring = StaticKeyring::single(KekVersion::new(3), kek(0xAB));
        let shown = format!("{ring:?}");
        assert_eq!(
            shown,
            "StaticKeyring { current: KekVersion(3), versions: [KekVersion(3)] }"
        );
    }

    #[test]
    fn generated_file_is_private_loads_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("kek-1");
        generate_kek_file(&path).unwrap();
        assert!(!files::too_open(&path));
        let a = Kek::read_file(&path, DevSecrets::Allowed).unwrap();
        assert!(generate_kek_file(&path).is_err());
        assert_eq!(Kek::read_file(&path, DevSecrets::Allowed).unwrap().expose(), a.expose());
        assert!(matches!(
            Kek::read_file(&dir.path().join("none"), DevSecrets::Allowed),
            Err(KekError::File(SecretFileError::Unreadable { .. }))
        ));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = Kek::read_file(&path, DevSecrets::Allowed).unwrap_err();
        assert!(
            matches!(err, KekError::File(SecretFileError::TooOpen { mode: 0o640, .. })),
            "{err}"
        );
    }

    #[test]
    fn env_var_source_errors_name_the_variable_not_its_value() {
        let missing = "PAYWARDEN_TEST_VAULT_KEK_UNSET";
        assert!(matches!(Kek::from_env(missing), Err(KekError::MissingEnv { .. })));
        // PATH is always set and never a base64 32-byte key; reading it needs no
        // `set_var`, which would race with other test threads.
        let path = std::env::var("PATH").unwrap();
        let err = Kek::from_env("PATH").unwrap_err();
        assert!(err.to_string().contains("PATH"));
        assert!(path.len() < 8 || !err.to_string().contains(&path));
    }

    #[test]
    fn keyring_versions() {
        let (v1, v2) = (KekVersion::new(1), KekVersion::new(2));
        let ring = StaticKeyring::new(v2, [(v1, kek(1)), (v2, kek(2))]).unwrap();
        assert_eq!(ring.current().0, v2);
        assert_eq!(ring.current().1.expose(), &[2u8; 32]);
        assert_eq!(ring.get(v1).unwrap().expose(), &[1u8; 32]);
        assert!(ring.get(KekVersion::new(9)).is_none());
        assert_eq!(ring.versions(), vec![v1, v2]);
        assert!(matches!(
            StaticKeyring::new(v2, [(v1, kek(1))]),
            Err(KekError::CurrentMissing(v)) if v == v2
        ));
        assert!(matches!(
            StaticKeyring::new(v1, [(v1, kek(1)), (v1, kek(2))]),
            Err(KekError::DuplicateVersion(v)) if v == v1
        ));
        let generated = Kek::generate().unwrap();
        assert_ne!(generated.expose(), Kek::generate().unwrap().expose());
    }

    #[test]
    fn same_key_compares_the_bytes() {
        assert!(kek(1).same_key(&kek(1)));
        assert!(!kek(1).same_key(&kek(2)));
        let mut last_byte = [1u8; KEK_LEN];
        last_byte[KEK_LEN - 1] = 2;
        assert!(!kek(1).same_key(&Kek::new(SecretBox::new(Box::new(last_byte)))));
    }
}
