//! The platform backend's API keys (issue 18): `psk_<id>_<secret>`, of which Purser keeps the id and the SHA-256 of
//! the secret, never the secret. A key is shown once, when it is made; rotating is making a second key, moving the
//! backend to it, and revoking the first, with both valid in between.
use sha2::{Digest, Sha256};

const PREFIX: &str = "psk_";

/// A key as presented in `Authorization: Bearer psk_…`.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey {
    pub id: String,
    secret: String,
}

impl PresentedKey {
    /// `None` for anything that is not the shape of a Purser API key (a JWT, say).
    pub fn parse(token: &str) -> Option<Self> {
        let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(id, 12) && hex(secret, 64)).then(|| Self { id: id.to_owned(), secret: secret.to_owned() })
    }

    /// Whether this key's secret is the one whose hash is stored.
    pub fn matches(&self, stored_hash: &str) -> bool {
        // Digests of a secret the caller cannot choose the digest of: comparing them reveals nothing usable.
        hash(&self.secret) == stored_hash
    }
}

/// A new key: what to show once, and what to store.
pub struct NewKey {
    pub id: String,
    pub key: String,
    pub hash: String,
}

impl NewKey {
    /// From 60 random bytes' worth of UUIDs: 48 bits of id, 244 of secret.
    pub fn generate() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        Self { key: format!("{PREFIX}{id}_{secret}"), hash: hash(&secret), id }
    }
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_only_its_own_hash() {
        let made = NewKey::generate();
        let presented = PresentedKey::parse(&made.key).expect("a generated key parses");
        assert_eq!(presented.id, made.id);
        assert!(presented.matches(&made.hash));
        assert!(!presented.matches(&NewKey::generate().hash));
        assert!(!made.key.contains(&made.hash), "the stored hash is not the secret");
    }

    #[test]
    fn other_tokens_are_not_keys() {
        for token in ["eyJhbGciOiJIUzI1NiJ9.e30.x", "psk_", "psk_abc_def", "psk_0123456789ab_xyz"] {
            assert_eq!(PresentedKey::parse(token), None, "{token}");
        }
    }
}
