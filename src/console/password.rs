//! The admin password: plain, or an argon2 PHC string (`$argon2id$...`, made with
//! `claude-pool hash-password`). A plain password is compared as SHA-256 digests in constant
//! time; a PHC string is verified by argon2 off the async threads. Never logged.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why the configured password cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("auth.admin_password looks like an argon2 hash but does not parse: {0}")]
pub struct PasswordError(String);

/// The configured admin password.
#[derive(Clone)]
pub enum AdminPassword {
    /// Empty: the console is off.
    Off,
    /// A plain password, kept as its digest.
    Plain([u8; 32]),
    /// An argon2 PHC string.
    Argon2(String),
}

impl std::fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "AdminPassword::Off",
            Self::Plain(_) => "AdminPassword::Plain(***)",
            Self::Argon2(_) => "AdminPassword::Argon2(***)",
        })
    }
}

impl AdminPassword {
    /// From `auth.admin_password`.
    pub fn new(configured: &str) -> Result<Self, PasswordError> {
        if configured.is_empty() {
            Ok(Self::Off)
        } else if configured.starts_with("$argon2") {
            let parsed = PasswordHash::new(configured).map_err(|e| PasswordError(e.to_string()))?;
            if parsed.hash.is_none() || parsed.salt.is_none() {
                return Err(PasswordError("it has no salt or no hash".into()));
            }
            Ok(Self::Argon2(configured.to_owned()))
        } else {
            Ok(Self::Plain(Sha256::digest(configured.as_bytes()).into()))
        }
    }

    /// True unless the console is off.
    pub fn is_set(&self) -> bool {
        !matches!(self, Self::Off)
    }

    /// Whether `given` is the password (always false when off).
    pub async fn verify(&self, given: String) -> bool {
        match self {
            Self::Off => false,
            Self::Plain(digest) => {
                let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
                bool::from(given.ct_eq(digest))
            }
            Self::Argon2(phc) => {
                let phc = phc.clone();
                tokio::task::spawn_blocking(move || {
                    PasswordHash::new(&phc).is_ok_and(|hash| {
                        Argon2::default()
                            .verify_password(given.as_bytes(), &hash)
                            .is_ok()
                    })
                })
                .await
                .unwrap_or(false)
            }
        }
    }
}

/// An argon2id PHC string of `password` with a random salt (`claude-pool hash-password`).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_and_argon2_passwords_verify_and_wrong_ones_do_not() {
        let plain = AdminPassword::new("s3cret-pass").unwrap();
        assert!(plain.verify("s3cret-pass".into()).await);
        assert!(!plain.verify("s3cret-pas".into()).await);
        let phc = hash("s3cret-pass").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let hashed = AdminPassword::new(&phc).unwrap();
        assert!(hashed.verify("s3cret-pass".into()).await);
        assert!(!hashed.verify(phc.clone()).await);
        assert!(!AdminPassword::new("").unwrap().is_set());
        assert!(!AdminPassword::Off.verify(String::new()).await);
        assert!(AdminPassword::new("$argon2id$garbage").is_err());
        assert!(!format!("{hashed:?}{plain:?}").contains("s3cret"));
    }
}
