//! Bearer tokens: 256 random bits handed to a gateway or a user once; nodes keep only their
//! SHA-256, so a leaked configuration leaks no credential. Gateway credentials (ingest) and
//! investigator credentials (query) are both [`TokenTable`]s.

use std::collections::HashMap;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// SHA-256 of a token.
pub type TokenHash = [u8; 32];

/// The SHA-256 of `token`.
pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The SHA-256 of `token`, as 64 lower-case hex digits (what configuration files store).
pub fn hash_hex(token: &str) -> String {
    hex::encode(hash(token))
}

/// A hash from its 64 hex digits.
pub fn parse_hash_hex(text: &str) -> Option<TokenHash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut hash).ok()?;
    Some(hash)
}

/// A new random token: `prefix` then 64 hex digits (256 random bits).
pub fn mint(prefix: &str) -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("{prefix}{}", hex::encode(secret))
}

/// The token of an `authorization` header value `Bearer <token>`; `None` without the
/// scheme or with an empty token. The scheme is case-insensitive and may be followed by
/// more than one space (RFC 7235 §2.1: `auth-scheme 1*SP token68`).
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim_start();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

/// Who each known token hash belongs to.
#[derive(Debug, Clone)]
pub struct TokenTable<T> {
    by_hash: HashMap<TokenHash, T>,
}

impl<T> Default for TokenTable<T> {
    fn default() -> Self {
        Self {
            by_hash: HashMap::new(),
        }
    }
}

impl<T> TokenTable<T> {
    /// Add `owner` for `hash`; gives back the owner already holding the hash, if any.
    pub fn insert(&mut self, hash: TokenHash, owner: T) -> Option<T> {
        self.by_hash.insert(hash, owner)
    }

    /// The owner of `token`, if it is known.
    pub fn owner_of_token(&self, token: &str) -> Option<&T> {
        self.by_hash.get(&hash(token))
    }

    /// The owner an `authorization` header value (`Bearer <token>`) authenticates.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<&T> {
        self.owner_of_token(bearer(authorization)?)
    }

    /// Number of known tokens.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether no token is known (every request will be refused).
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_authenticate_their_owner_only() {
        let token = mint("ct_");
        assert!(token.starts_with("ct_") && token.len() == 67);
        assert_ne!(token, mint("ct_"));
        let mut table = TokenTable::default();
        assert!(table.insert(hash(&token), "alice").is_none());
        let header = format!("Bearer {token}");
        assert_eq!(table.authenticate(Some(&header)), Some(&"alice"));
        assert_eq!(table.authenticate(Some(&token)), None, "scheme required");
        assert_eq!(table.authenticate(Some("Bearer ")), None);
        assert_eq!(table.authenticate(Some("Bearer wrong")), None);
        assert_eq!(table.authenticate(None), None);
        assert_eq!(parse_hash_hex(&hash_hex(&token)), Some(hash(&token)));
        assert_eq!(parse_hash_hex("xyz"), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in [
            "Bearer t0k",
            "bearer t0k",
            "BEARER t0k",
            "bEaReR  t0k",
            " Bearer t0k ",
        ] {
            assert_eq!(bearer(Some(header)), Some("t0k"), "{header:?}");
        }
        for header in ["Basic t0k", "Bearer", "Bearert0k", "Bearer   ", "t0k", ""] {
            assert_eq!(bearer(Some(header)), None, "{header:?}");
        }
    }
}
