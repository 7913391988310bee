//! The instance's keys and the one HMAC construction every signed thing here uses
//! (Message-IDs, reset tokens, mailed links, derived keys).

use std::sync::Arc;

use ferrodesk_store::{Store, StoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::SecretBox;

/// An HMAC-SHA256 keyed with `key`.
pub(crate) fn hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = hmac(key);
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The key named `name`: the instance's stored secret of that name (created by the first
/// process that needs it, so every process gets the same), mixed with the configured key
/// when one is given.
pub(crate) async fn instance_key(
    store: &Arc<dyn Store>,
    secrets: Option<&SecretBox>,
    name: &str,
) -> Result<Vec<u8>, StoreError> {
    let stored = store.instance_secret(name, rand::random::<[u8; 32]>().to_vec()).await?;
    Ok(match secrets {
        Some(s) => mac(&s.derive(name), &stored),
        None => stored,
    })
}
