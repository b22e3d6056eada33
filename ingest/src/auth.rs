//! Gateway authentication: each gateway presents `authorization: Bearer <token>`; the node
//! knows only SHA-256 hashes of the tokens (CSV `gateway_id,token_sha256`), so a leaked
//! configuration does not leak credentials. `camtrail gateways issue` mints tokens.

use std::io::Read;
use std::path::Path;

use camtrail_common::token::{self, TokenTable};

/// Header of the hash file.
pub const HASHES_HEADER: &str = "gateway_id,token_sha256";
/// Header of the token file handed to gateways.
pub const TOKENS_HEADER: &str = "gateway_id,token";

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// I/O error.
    #[error("cannot read gateway token hashes {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Bad content.
    #[error("gateway token hashes line {line}: {message}")]
    Line {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Maps token hashes to gateway ids.
#[derive(Debug, Clone, Default)]
pub struct GatewayAuth {
    tokens: TokenTable<String>,
}

impl GatewayAuth {
    /// Load `gateway_id,token_sha256` lines (header first).
    pub fn from_path(path: &Path) -> Result<Self, AuthConfigError> {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .map_err(|source| AuthConfigError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Self::parse(&text)
    }

    /// Parse the hash file's text.
    pub fn parse(text: &str) -> Result<Self, AuthConfigError> {
        let mut tokens = TokenTable::default();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || (number == 1 && line == HASHES_HEADER) {
                continue;
            }
            let bad = |message: &str| AuthConfigError::Line {
                line: number,
                message: message.to_string(),
            };
            let (gateway, hash_hex) = line
                .split_once(',')
                .ok_or_else(|| bad("expected 2 fields"))?;
            let hash = token::parse_hash_hex(hash_hex)
                .ok_or_else(|| bad("token_sha256 must be 64 hex digits"))?;
            if gateway.trim().is_empty() {
                return Err(bad("empty gateway_id"));
            }
            tokens.insert(hash, gateway.trim().to_string());
        }
        Ok(Self { tokens })
    }

    /// The gateway a bearer token belongs to, if any.
    pub fn gateway_for_token(&self, token: &str) -> Option<&str> {
        self.tokens.owner_of_token(token).map(String::as_str)
    }

    /// The gateway an `authorization` header value authenticates, if any.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<&str> {
        self.tokens.authenticate(authorization).map(String::as_str)
    }

    /// Number of known gateways.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no gateway is known (every request will be refused).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// A freshly minted credential.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// Gateway it belongs to.
    pub gateway_id: String,
    /// Secret handed to the gateway (256 random bits, hex).
    pub token: String,
}

impl IssuedToken {
    /// Mint a random token for `gateway_id`.
    pub fn mint(gateway_id: &str) -> Self {
        Self {
            gateway_id: gateway_id.to_string(),
            token: token::mint(""),
        }
    }

    /// Hex SHA-256 of the token, as stored in the node's configuration.
    pub fn hash_hex(&self) -> String {
        token::hash_hex(&self.token)
    }
}

/// Render tokens as the two files: (`gateway_id,token` for gateways, `gateway_id,token_sha256`
/// for ingest nodes).
pub fn render_token_files(tokens: &[IssuedToken]) -> (String, String) {
    let mut secrets = format!("{TOKENS_HEADER}\n");
    let mut hashes = format!("{HASHES_HEADER}\n");
    for token in tokens {
        secrets.push_str(&format!("{},{}\n", token.gateway_id, token.token));
        hashes.push_str(&format!("{},{}\n", token.gateway_id, token.hash_hex()));
    }
    (secrets, hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_authenticate_their_gateway_only() {
        let tokens = vec![IssuedToken::mint("gw-1"), IssuedToken::mint("gw-2")];
        let (secrets, hashes) = render_token_files(&tokens);
        assert!(
            !hashes.contains(&tokens[0].token),
            "hash file must not hold secrets"
        );
        assert!(secrets.contains(&tokens[0].token));
        let auth = GatewayAuth::parse(&hashes).expect("parse");
        assert_eq!(auth.len(), 2);
        let header = format!("Bearer {}", tokens[1].token);
        assert_eq!(auth.authenticate(Some(&header)), Some("gw-2"));
        assert_eq!(
            auth.authenticate(Some(&tokens[1].token)),
            None,
            "scheme required"
        );
        assert_eq!(auth.authenticate(Some("Bearer wrong")), None);
        assert_eq!(auth.authenticate(None), None);
    }

    #[test]
    fn bad_lines_are_reported_with_numbers() {
        let err = GatewayAuth::parse("gateway_id,token_sha256\ngw-1,nothex\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(GatewayAuth::parse("gw-1\n").is_err());
    }
}
