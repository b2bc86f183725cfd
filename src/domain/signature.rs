//! Stripe's webhook signature scheme, which Purser's own events to the platform use too:
//! `Stripe-Signature: t=<unix>,v1=<hex hmac-sha256 of "t.payload">[,v1=…]`. Several secrets may be configured at
//! once so a rotation never drops events.
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's own default: events older or newer than five minutes are refused, which bounds replay.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header")]
    Malformed,
    #[error("signature timestamp outside the {TOLERANCE_SECS} s tolerance")]
    Stale,
    #[error("no signature matches a configured webhook secret")]
    Mismatch,
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    sign_with_each(payload, &[secret], timestamp)
}

/// One `v1` per secret, so a receiver holding either the old or the new secret accepts it during a rotation.
pub fn sign_with_each(payload: &[u8], secrets: &[&str], timestamp: i64) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac(secret, timestamp, payload).finalize().into_bytes()));
    }
    header
}

pub fn verify(payload: &[u8], header: Option<&str>, secrets: &[&str], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.extend(hex::decode(sig).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let matches = secrets
        .iter()
        .any(|secret| signatures.iter().any(|sig| mac(secret, timestamp, payload).verify_slice(sig).is_ok()));
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_payload_verifies_and_tampering_does_not() {
        let header = sign(b"{\"id\":1}", "whsec_a", 1000);
        assert_eq!(verify(b"{\"id\":1}", Some(&header), &["whsec_b", "whsec_a"], 1010), Ok(()));
        assert_eq!(verify(b"{\"id\":2}", Some(&header), &["whsec_a"], 1010), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"{\"id\":1}", Some(&header), &["whsec_a"], 1301), Err(SignatureError::Stale));
        assert_eq!(verify(b"{}", Some("v1=zz"), &["whsec_a"], 0), Err(SignatureError::Malformed));
        assert_eq!(verify(b"{}", None, &["whsec_a"], 0), Err(SignatureError::Missing));
    }
}
