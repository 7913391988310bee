//! Secrets at rest (mailbox passwords): sealed with XChaCha20-Poly1305 under a key from the
//! configuration (`FERRODESK_SECRET_KEY`), never stored in the clear. A sealed value is
//! `v1:` + base64(nonce ‖ ciphertext); opening fails on any change to it or with another key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// The sealing key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// A key derived from the configured one, for MACs (never the encryption key itself).
    mac_key: Vec<u8>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// Keys that appear in documentation or are trivially guessable are refused.
const SAMPLE_KEYS: &[&str] = &["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "changeme", "secret"];

impl SecretBox {
    /// Reads a key: 32 bytes, base64 (`openssl rand -base64 32` or `ferrodesk` prints one).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if SAMPLE_KEYS.contains(&text) {
            return Err("this is a sample key; generate your own (e.g. `openssl rand -base64 32`)".into());
        }
        let key =
            STANDARD.decode(text).map_err(|_| "the key must be base64 (e.g. `openssl rand -base64 32`)".to_owned())?;
        if key.len() != 32 {
            return Err(format!("the key must be 32 bytes, this one is {}", key.len()));
        }
        if key.iter().all(|b| *b == key[0]) {
            return Err("this key is not random; generate one with `openssl rand -base64 32`".into());
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|_| "the key must be 32 bytes".to_owned())?;
        let mac_key = crate::keys::mac(&key, b"ferrodesk: derived MAC key");
        Ok(Self { cipher, mac_key })
    }

    /// A 32-byte key for `label`, derived from the configured key.
    pub fn derive(&self, label: &str) -> Vec<u8> {
        crate::keys::mac(&self.mac_key, label.as_bytes())
    }

    /// Seals `plain`; `nonce` must be 24 fresh random bytes.
    pub fn seal(&self, plain: &str, nonce: [u8; 24]) -> String {
        // Encryption with a valid key and nonce cannot fail.
        let sealed = self.cipher.encrypt(XNonce::from_slice(&nonce), plain.as_bytes()).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("v1:{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, String> {
        let body = sealed.strip_prefix("v1:").ok_or("not a sealed value")?;
        let bytes = STANDARD.decode(body).map_err(|_| "the sealed value is damaged")?;
        if bytes.len() < 24 + 16 {
            return Err("the sealed value is damaged".into());
        }
        let (nonce, data) = bytes.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), data)
            .map_err(|_| "the stored password cannot be opened with this FERRODESK_SECRET_KEY".to_owned())?;
        String::from_utf8(plain).map_err(|_| "the sealed value is damaged".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "q83vEjRWeJq8bN7wEjRWeJq8bN7wEjRWeJq8bN7wEjQ=";

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_unchanged() {
        let boxed = SecretBox::from_base64(KEY).unwrap_or_else(|e| panic!("{e}"));
        let sealed = boxed.seal("imap pa55", [7; 24]);
        assert!(!sealed.contains("pa55"));
        assert_eq!(boxed.open(&sealed).as_deref(), Ok("imap pa55"));
        let other =
            SecretBox::from_base64("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=").unwrap_or_else(|e| panic!("{e}"));
        assert!(other.open(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(boxed.open(&tampered).is_err());
    }

    #[test]
    fn weak_keys_are_refused() {
        assert!(SecretBox::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_err());
        assert!(SecretBox::from_base64("c2hvcnQ=").is_err());
        assert!(SecretBox::from_base64("not base64!").is_err());
        assert!(SecretBox::from_base64("changeme").is_err());
    }
}
