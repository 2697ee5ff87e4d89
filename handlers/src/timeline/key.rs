//! The keyed chain. The SHA-256 chain proves a row was not edited only to someone who trusts the
//! database it lives in: anyone who can write it can rewrite a row and recompute every hash
//! after it. With `ERLMCP_TIMELINE_KEY` each entry also carries an HMAC-SHA256 over the previous
//! entry's MAC and its own hash, and the incident row an HMAC of the chain's length and head, so
//! a rewrite (or a cut) without the key is detected.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// A secret for the keyed chain. Debug and Display never show it.
#[derive(Clone)]
pub struct TimelineKey(Vec<u8>);

/// Shortest key accepted: 16 bytes of secret.
pub const MIN_KEY_BYTES: usize = 16;

impl TimelineKey {
    /// A key from its text (the environment variable's value); refused if too short.
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!(
                "ERLMCP_TIMELINE_KEY is {} bytes; use at least {MIN_KEY_BYTES} random bytes (e.g. `openssl rand -hex 32`)",
                secret.len()
            ));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    fn hmac(&self, parts: &[&str]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        for p in parts {
            mac.update(p.as_bytes());
            // A separator no hex digit or id contains, so parts cannot run into each other.
            mac.update(b"\x1f");
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The MAC of an entry: over the previous entry's MAC (or, for the first keyed entry, the
    /// previous hash) and this entry's hash.
    pub fn entry_mac(&self, prev: &str, hash: &str) -> String {
        self.hmac(&["entry", prev, hash])
    }

    /// The MAC the incident row keeps of its chain's length and last hash.
    pub fn head_mac(&self, incident: &str, len: i64, hash: &str) -> String {
        self.hmac(&["head", incident, &len.to_string(), hash])
    }
}

impl fmt::Debug for TimelineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TimelineKey(hidden)")
    }
}
