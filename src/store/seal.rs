//! Sealing of stored Claude credentials: ChaCha20-Poly1305 with a key derived (SHA-256, with a
//! domain label) from the server's secret (`auth.encryption_key`, else `auth.master_key`).
//! A sealed value is `nonce (12 bytes) || ciphertext+tag`; a fresh random nonce per value.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The server has no secret to seal with.
    #[error("no server secret is configured (auth.encryption_key or auth.master_key)")]
    NoSecret,
    /// Wrong secret, or the value was altered.
    #[error("the sealed value cannot be opened (wrong server secret or corrupt value)")]
    Open,
}

const NONCE_LEN: usize = 12;

/// Seals and opens credentials with the server's secret.
#[derive(Clone)]
pub struct Sealer {
    cipher: Option<ChaCha20Poly1305>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("has_secret", &self.cipher.is_some())
            .finish()
    }
}

impl Sealer {
    /// A sealer for `secret` (empty: sealing is refused).
    pub fn new(secret: &str) -> Self {
        let cipher = Some(secret).filter(|s| !s.is_empty()).map(|s| {
            let mut h = Sha256::new();
            h.update(b"claude-pool credential sealing v1\0");
            h.update(s.as_bytes());
            let key: [u8; 32] = h.finalize().into();
            ChaCha20Poly1305::new(Key::from_slice(&key))
        });
        Self { cipher }
    }

    /// True when values can be sealed.
    pub fn available(&self) -> bool {
        self.cipher.is_some()
    }

    /// Encrypts `plain`.
    pub fn seal(&self, plain: &str) -> Result<Vec<u8>, SealError> {
        let cipher = self.cipher.as_ref().ok_or(SealError::NoSecret)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| SealError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a sealed value.
    pub fn open(&self, sealed: &[u8]) -> Result<String, SealError> {
        let cipher = self.cipher.as_ref().ok_or(SealError::NoSecret)?;
        if sealed.len() <= NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_round_trip_and_hide_the_plaintext() {
        let s = Sealer::new("server-secret");
        let a = s.seal("sk-ant-oat01-secret-token").unwrap();
        let b = s.seal("sk-ant-oat01-secret-token").unwrap();
        assert_ne!(a, b, "fresh nonce per value");
        assert!(!a.windows(6).any(|w| w == b"secret"));
        assert_eq!(s.open(&a).unwrap(), "sk-ant-oat01-secret-token");
        assert!(Sealer::new("other").open(&a).is_err());
        let mut tampered = a.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(s.open(&tampered).is_err());
        assert!(matches!(
            Sealer::new("").seal("x"),
            Err(SealError::NoSecret)
        ));
    }
}
