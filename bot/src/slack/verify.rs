//! Request signatures: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret, and a
//! timestamp within 5 minutes of now (slack-morphism's verifier does both, in constant time).

use axum::http::HeaderMap;
use slack_morphism::prelude::SlackSigningSecret;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

pub struct Verifier(SlackEventSignatureVerifier);

impl Verifier {
    pub fn new(secret: &str) -> Self {
        Self(SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
            secret.to_string(),
        )))
    }

    /// Why a request is refused, or `Ok` for a genuine one.
    pub fn check(&self, headers: &HeaderMap, body: &str) -> Result<(), String> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let signature = get(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)
            .ok_or("missing X-Slack-Signature")?;
        let ts = get(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP)
            .ok_or("missing X-Slack-Request-Timestamp")?;
        self.0
            .verify(signature, body, ts)
            .map_err(|e| e.to_string())
    }
}
