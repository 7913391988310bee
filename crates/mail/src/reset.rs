//! Password-reset tokens. A token is an HMAC of the reset's id under a key made from the
//! instance's stored secret and, when configured, `FERRODESK_SECRET_KEY` — so it never needs
//! storing: the database keeps only its SHA-256, and the outbox derives it again to write the
//! link. With the configured key, someone who reads the database cannot make a valid token.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrodesk_store::{Store, StoreError};
use sha2::{Digest, Sha256};

use crate::secret::SecretBox;

/// The instance secret resets are keyed with.
pub const RESET_SECRET: &str = "password-reset";
/// How long a reset link works.
pub const RESET_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);

/// Makes reset tokens.
#[derive(Clone)]
pub struct ResetTokens {
    key: Vec<u8>,
}

impl ResetTokens {
    pub async fn load(store: &Arc<dyn Store>, secrets: Option<&SecretBox>) -> Result<Self, StoreError> {
        Ok(Self { key: crate::keys::instance_key(store, secrets, RESET_SECRET).await? })
    }

    /// The token of reset `id` (URL-safe).
    pub fn token(&self, id: uuid::Uuid) -> String {
        URL_SAFE_NO_PAD.encode(crate::keys::mac(&self.key, id.as_bytes()))
    }
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_per_reset_and_key() {
        let a = ResetTokens { key: vec![1; 32] };
        let b = ResetTokens { key: vec![2; 32] };
        let (x, y) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        assert_ne!(a.token(x), a.token(y));
        assert_ne!(a.token(x), b.token(x));
        assert_eq!(a.token(x), a.token(x));
        assert_eq!(a.token(x).len(), 43);
        assert_ne!(token_hash(&a.token(x)), a.token(x));
    }
}
