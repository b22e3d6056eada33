//! The server side of HTTP Digest authentication (RFC 7616), as GA/T 1400 devices and
//! platforms speak it: `qop=auth`, SHA-256 or MD5, the username being the device id.
//!
//! - **Credentials are stored hashed**: the node knows `HA1 = H(username:realm:password)`
//!   per algorithm (what RFC 7616 §3.4.2 calls the hashed credential), never the password.
//!   A leaked devices file lets someone impersonate a device to this realm, as a leaked
//!   token hash would not; that is Digest's design, and why the file is created 0600.
//! - **Nonces are stateless and signed**: `hex(issued_at_ms) . hex(random) . hex(HMAC)`,
//!   the HMAC (SHA-256, key drawn at start) over the first two. A forged or foreign nonce
//!   fails the HMAC; one older than the lifetime is answered `stale=true`, so the client
//!   retries with the fresh nonce without asking its user again.
//! - **Replays are refused**: for each nonce in use the node remembers the highest `nc`
//!   (nonce count) it accepted; a request whose `nc` is not higher is a replay, whatever
//!   the rest says. Only authenticated requests create entries, and entries expire with
//!   their nonce, so the book is bounded by what real clients do.
//!
//! The maintained crates (`digest_auth`, `http-auth`) are written for clients:
//! `digest_auth` can recompute a response on a server, but only from the password, which
//! this node does not keep, and leaves nonces to its user. So this side is written here
//! from the RFC, on `ring` (HMAC, random; already in the tree for TLS), `sha2` and `md-5`;
//! the integration tests drive it with `digest_auth` as the client.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use md5::Md5;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// The hash algorithms accepted, strongest first (the order of the challenges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `SHA-256`.
    Sha256,
    /// `MD5` (what most deployed cameras speak).
    Md5,
}

impl Algorithm {
    /// The token in headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Md5 => "MD5",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("SHA-256") {
            Some(Self::Sha256)
        } else if text.eq_ignore_ascii_case("MD5") {
            Some(Self::Md5)
        } else {
            None
        }
    }

    /// Lower-case hex of the hash of `text`.
    pub fn hex(self, text: &str) -> String {
        match self {
            Self::Sha256 => hex::encode(Sha256::digest(text.as_bytes())),
            Self::Md5 => hex::encode(Md5::digest(text.as_bytes())),
        }
    }

    /// `HA1 = H(username:realm:password)`, the form credentials are stored in.
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> String {
        self.hex(&format!("{username}:{realm}:{password}"))
    }
}

/// The parts of an `Authorization: Digest …` header the check needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Device id.
    pub username: String,
    /// Must be ours.
    pub realm: String,
    /// As issued by us.
    pub nonce: String,
    /// The request target as the client saw it.
    pub uri: String,
    /// The client's proof.
    pub response: String,
    /// `auth`.
    pub qop: String,
    /// Nonce count, 8 hex digits.
    pub nc: String,
    /// Client nonce.
    pub cnonce: String,
    /// `MD5` when absent.
    pub algorithm: String,
}

/// Why a request is not authenticated; the answer is 401 with a fresh challenge either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Digest` header.
    Missing,
    /// The header cannot be parsed, or lacks a required part, or asks for an unsupported
    /// algorithm or qop.
    Malformed,
    /// The realm or the uri does not match this request.
    Mismatch,
    /// The nonce was not issued by this node (or with another key).
    ForeignNonce,
    /// The nonce is too old: retry with the fresh one (`stale=true`).
    Stale,
    /// The username is not a known device, or has no credential for the algorithm.
    UnknownDevice,
    /// The response does not prove the password.
    WrongResponse,
    /// The nonce count was used before with this nonce.
    Replayed,
}

impl Refusal {
    /// The reason, for the response body and the metrics label (no personal data).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing_credentials",
            Self::Malformed => "malformed_credentials",
            Self::Mismatch => "realm_or_uri_mismatch",
            Self::ForeignNonce => "unknown_nonce",
            Self::Stale => "stale_nonce",
            Self::UnknownDevice => "unknown_device",
            Self::WrongResponse => "wrong_password",
            Self::Replayed => "replayed_nonce",
        }
    }
}

/// Parse `Digest username="…", realm="…", …` (quoted strings with `\` escapes, or tokens).
pub fn parse_authorization(header: &str) -> Result<Credentials, Refusal> {
    let rest = header.trim_start();
    let (scheme, rest) = rest.split_at(rest.find(char::is_whitespace).ok_or(Refusal::Malformed)?);
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(Refusal::Missing);
    }
    let mut credentials = Credentials::default();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let name: String = chars
            .by_ref()
            .take_while(|&c| c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if name.is_empty() || name.len() > 32 {
            return Err(Refusal::Malformed);
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut value = String::new();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().ok_or(Refusal::Malformed)?),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(Refusal::Malformed);
            }
            value
        } else {
            chars
                .by_ref()
                .take_while(|&c| c != ',')
                .collect::<String>()
                .trim()
                .to_string()
        };
        if value.len() > 1024 {
            return Err(Refusal::Malformed);
        }
        let slot = match name.as_str() {
            "username" => &mut credentials.username,
            "realm" => &mut credentials.realm,
            "nonce" => &mut credentials.nonce,
            "uri" => &mut credentials.uri,
            "response" => &mut credentials.response,
            "qop" => &mut credentials.qop,
            "nc" => &mut credentials.nc,
            "cnonce" => &mut credentials.cnonce,
            "algorithm" => &mut credentials.algorithm,
            // `userhash=true` would hide the username behind a hash we cannot invert
            // without a table; not supported.
            "userhash" if value.eq_ignore_ascii_case("true") => return Err(Refusal::Malformed),
            _ => continue,
        };
        *slot = value;
    }
    let required = [
        &credentials.username,
        &credentials.realm,
        &credentials.nonce,
        &credentials.uri,
        &credentials.response,
        &credentials.nc,
        &credentials.cnonce,
    ];
    if required.iter().any(|part| part.is_empty()) || !credentials.qop.eq_ignore_ascii_case("auth")
    {
        return Err(Refusal::Malformed);
    }
    Ok(credentials)
}

/// What the node knows of one device's credential.
pub trait CredentialLookup {
    /// The stored HA1 of `username` for `algorithm`, if any.
    fn ha1(&self, username: &str, algorithm: Algorithm) -> Option<&str>;
}

/// Issues and checks nonces, remembers nonce counts.
pub struct DigestAuthority {
    realm: String,
    key: hmac::Key,
    random: SystemRandom,
    lifetime_ms: i64,
    /// nonce → highest nc accepted.
    counts: Mutex<HashMap<String, u32>>,
}

/// Most nonces remembered at once; beyond, the oldest are forgotten (their clients get
/// `stale=true` and a fresh nonce).
const MAX_TRACKED_NONCES: usize = 100_000;

impl DigestAuthority {
    /// An authority for `realm`, nonces valid for `lifetime`, with a fresh random key.
    pub fn new(realm: &str, lifetime: Duration) -> anyhow::Result<Self> {
        let random = SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &random)
            .map_err(|_| anyhow::anyhow!("no randomness for the Digest nonce key"))?;
        Ok(Self {
            realm: realm.to_string(),
            key,
            random,
            lifetime_ms: i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX),
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A fresh nonce, issued at `now_ms`.
    pub fn nonce(&self, now_ms: i64) -> String {
        let mut random = [0u8; 12];
        // SystemRandom fails only without an OS source of randomness, which `new` checked.
        let _ = self.random.fill(&mut random);
        let body = format!("{:012x}{}", now_ms.max(0), hex::encode(random));
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}{}", hex::encode(&tag.as_ref()[..16]))
    }

    /// The `WWW-Authenticate` values for a 401, SHA-256 first.
    pub fn challenges(&self, now_ms: i64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now_ms);
        [Algorithm::Sha256, Algorithm::Md5]
            .iter()
            .map(|algorithm| {
                format!(
                    "Digest realm=\"{}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\"{}",
                    self.realm,
                    algorithm.name(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// Check a request: its `Authorization` header, method and target (path and query).
    /// On success, the device id (the Digest username).
    pub fn verify(
        &self,
        header: Option<&str>,
        method: &str,
        target: &str,
        devices: &impl CredentialLookup,
        now_ms: i64,
    ) -> Result<String, Refusal> {
        let credentials = parse_authorization(header.ok_or(Refusal::Missing)?)?;
        let algorithm = if credentials.algorithm.is_empty() {
            Algorithm::Md5
        } else {
            Algorithm::parse(&credentials.algorithm).ok_or(Refusal::Malformed)?
        };
        if credentials.realm != self.realm || credentials.uri != target {
            return Err(Refusal::Mismatch);
        }
        let issued_at = self.issued_at(&credentials.nonce)?;
        if now_ms.saturating_sub(issued_at) > self.lifetime_ms || issued_at > now_ms + 60_000 {
            return Err(Refusal::Stale);
        }
        let nc = u32::from_str_radix(&credentials.nc, 16).map_err(|_| Refusal::Malformed)?;
        if credentials.nc.len() != 8 {
            return Err(Refusal::Malformed);
        }
        let ha1 = devices
            .ha1(&credentials.username, algorithm)
            .ok_or(Refusal::UnknownDevice)?;
        let ha2 = algorithm.hex(&format!("{method}:{}", credentials.uri));
        let expected = algorithm.hex(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            credentials.nonce, credentials.nc, credentials.cnonce
        ));
        if !constant_time_eq(
            expected.as_bytes(),
            credentials.response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(Refusal::WrongResponse);
        }
        self.count(&credentials.nonce, nc, now_ms)?;
        Ok(credentials.username)
    }

    /// When a nonce of ours was issued; `ForeignNonce` if it is not ours.
    fn issued_at(&self, nonce: &str) -> Result<i64, Refusal> {
        if nonce.len() != 12 + 24 + 32 || !nonce.is_ascii() {
            return Err(Refusal::ForeignNonce);
        }
        let (body, tag) = nonce.split_at(36);
        let tag = hex::decode(tag).map_err(|_| Refusal::ForeignNonce)?;
        let expected = hmac::sign(&self.key, body.as_bytes());
        if !constant_time_eq(&expected.as_ref()[..16], &tag) {
            return Err(Refusal::ForeignNonce);
        }
        i64::from_str_radix(&body[..12], 16).map_err(|_| Refusal::ForeignNonce)
    }

    /// Record `nc` for `nonce`: it must be higher than any accepted before.
    fn count(&self, nonce: &str, nc: u32, now_ms: i64) -> Result<(), Refusal> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(last) = counts.get_mut(nonce) {
            if nc <= *last {
                return Err(Refusal::Replayed);
            }
            *last = nc;
            return Ok(());
        }
        if counts.len() >= MAX_TRACKED_NONCES {
            let lifetime = self.lifetime_ms;
            counts.retain(|known, _| {
                self.issued_at(known)
                    .is_ok_and(|at| now_ms.saturating_sub(at) <= lifetime)
            });
            if counts.len() >= MAX_TRACKED_NONCES {
                // Every tracked nonce is live: refuse to track more rather than forget
                // counts that guard against replays; the client gets a fresh nonce.
                return Err(Refusal::Stale);
            }
        }
        counts.insert(nonce.to_string(), nc);
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Devices;
    impl CredentialLookup for Devices {
        fn ha1(&self, username: &str, algorithm: Algorithm) -> Option<&str> {
            match (username, algorithm) {
                ("dev-1", Algorithm::Sha256) => Some(SHA_HA1.as_str()),
                ("dev-1", Algorithm::Md5) => Some(MD5_HA1.as_str()),
                _ => None,
            }
        }
    }
    static SHA_HA1: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| Algorithm::Sha256.ha1("dev-1", "camtrail", "s3cret"));
    static MD5_HA1: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| Algorithm::Md5.ha1("dev-1", "camtrail", "s3cret"));

    const NOW: i64 = 1_796_170_530_000;

    fn authority() -> DigestAuthority {
        DigestAuthority::new("camtrail", Duration::from_secs(300)).expect("authority")
    }

    /// What a client computes (RFC 7616 §3.4.1).
    fn header(algorithm: Algorithm, password: &str, nonce: &str, nc: u32, uri: &str) -> String {
        let ha1 = algorithm.ha1("dev-1", "camtrail", password);
        let ha2 = algorithm.hex(&format!("POST:{uri}"));
        let nc = format!("{nc:08x}");
        let response = algorithm.hex(&format!("{ha1}:{nonce}:{nc}:0a4f113b:auth:{ha2}"));
        format!(
            "Digest username=\"dev-1\", realm=\"camtrail\", nonce=\"{nonce}\", uri=\"{uri}\", \
             algorithm={}, qop=auth, nc={nc}, cnonce=\"0a4f113b\", response=\"{response}\"",
            algorithm.name()
        )
    }

    #[test]
    fn the_rfc_7616_example_response_is_reproduced() {
        // RFC 7616 §3.9.1, SHA-256: Mufasa / Circle of Life, GET /dir/index.html.
        let ha1 = Algorithm::Sha256.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
        let ha2 = Algorithm::Sha256.hex("GET:/dir/index.html");
        let response = Algorithm::Sha256.hex(&format!(
            "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
        ));
        assert_eq!(
            response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn both_algorithms_authenticate_and_counts_must_grow() {
        let authority = authority();
        let nonce = authority.nonce(NOW);
        for (nc, algorithm) in [(1, Algorithm::Sha256), (2, Algorithm::Md5)] {
            let header = header(algorithm, "s3cret", &nonce, nc, "/VIID/MotorVehicles");
            assert_eq!(
                authority.verify(Some(&header), "POST", "/VIID/MotorVehicles", &Devices, NOW),
                Ok("dev-1".to_string())
            );
        }
        let replay = header(
            Algorithm::Sha256,
            "s3cret",
            &nonce,
            2,
            "/VIID/MotorVehicles",
        );
        assert_eq!(
            authority.verify(Some(&replay), "POST", "/VIID/MotorVehicles", &Devices, NOW),
            Err(Refusal::Replayed)
        );
    }

    #[test]
    fn every_way_of_failing_has_its_reason() {
        let authority = authority();
        let nonce = authority.nonce(NOW);
        let uri = "/VIID/MotorVehicles";
        let verify =
            |header: &str, now: i64| authority.verify(Some(header), "POST", uri, &Devices, now);
        assert_eq!(
            authority.verify(None, "POST", uri, &Devices, NOW),
            Err(Refusal::Missing)
        );
        assert_eq!(verify("Basic ZGV2OnB3", NOW), Err(Refusal::Missing));
        assert_eq!(
            verify("Digest username=\"dev-1\"", NOW),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            verify(&header(Algorithm::Sha256, "wrong", &nonce, 1, uri), NOW),
            Err(Refusal::WrongResponse)
        );
        assert_eq!(
            verify(
                &header(Algorithm::Sha256, "s3cret", &nonce, 1, "/VIID/Other"),
                NOW
            ),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(
                &header(Algorithm::Sha256, "s3cret", &nonce, 1, uri),
                NOW + 301_000
            ),
            Err(Refusal::Stale)
        );
        let foreign = DigestAuthority::new("camtrail", Duration::from_secs(300))
            .expect("other")
            .nonce(NOW);
        assert_eq!(
            verify(&header(Algorithm::Sha256, "s3cret", &foreign, 1, uri), NOW),
            Err(Refusal::ForeignNonce)
        );
        let stranger =
            header(Algorithm::Sha256, "s3cret", &nonce, 1, uri).replace("dev-1", "dev-2");
        assert_eq!(verify(&stranger, NOW), Err(Refusal::UnknownDevice));
        let sess = header(Algorithm::Sha256, "s3cret", &nonce, 1, uri)
            .replace("algorithm=SHA-256", "algorithm=SHA-256-sess");
        assert_eq!(verify(&sess, NOW), Err(Refusal::Malformed));
    }

    #[test]
    fn challenges_offer_both_algorithms_and_say_stale() {
        let challenges = authority().challenges(NOW, true);
        assert_eq!(challenges.len(), 2);
        assert!(
            challenges[0].contains("algorithm=SHA-256") && challenges[0].contains("stale=true")
        );
        assert!(challenges[1].contains("algorithm=MD5"));
        assert!(challenges[0].starts_with("Digest realm=\"camtrail\", qop=\"auth\""));
    }

    #[test]
    fn quoted_values_may_hold_commas_and_escapes() {
        let parsed = parse_authorization(
            "Digest username=\"a\\\"b\", realm=\"r, r\", nonce=n, uri=\"/x?a=1,2\", \
             response=\"ff\", qop=auth, nc=00000001, cnonce=\"c\"",
        )
        .expect("parses");
        assert_eq!(parsed.username, "a\"b");
        assert_eq!(parsed.realm, "r, r");
        assert_eq!(parsed.uri, "/x?a=1,2");
        assert_eq!(parsed.nonce, "n");
    }
}
