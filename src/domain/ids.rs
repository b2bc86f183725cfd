//! Identifiers that come from outside, parsed once at the boundary so the core never sees raw strings.
use serde::{Deserialize, Serialize};
use std::fmt;

/// A new key for a row Purser makes: a purchase, a refund, a spend, an event, the sandbox's objects. Version 7 puts
/// the time first, so a batch's new rows land on the last leaf of each B-tree that indexes them, not on a random
/// page each: fewer pages for a commit to write to the WAL and for the next step to read back. Its 74 random bits
/// keep it unguessable. A secret (the sandbox's client secret) stays random throughout, and so do ids cut to a few
/// digits of a UUID (the sandbox's PayPal ids), whose first digits would be the time.
pub fn new_key() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Who is paying: the `sub` of a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("a user id is 1 to 128 characters of letters, digits and - _ . @ :".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A provider's payment-method token (`pm_…`). Anything that looks like a card number is refused outright: Purser
/// must never receive card data, only tokens.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentMethodId(String);

#[derive(Debug, PartialEq, Eq)]
pub enum PaymentMethodError {
    CardData,
    Malformed,
}

impl PaymentMethodId {
    pub fn parse(raw: &str) -> Result<Self, PaymentMethodError> {
        let digits = raw.chars().filter(char::is_ascii_digit).count();
        let only_card_chars = raw.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
        if only_card_chars && (12..=19).contains(&digits) {
            return Err(PaymentMethodError::CardData);
        }
        if is_provider_id(raw, "pm_") { Ok(Self(raw.to_owned())) } else { Err(PaymentMethodError::Malformed) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A provider's PaymentIntent id (`pi_…`), as the client hands it back to confirm.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentIntentId(String);

impl PaymentIntentId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if is_provider_id(raw, "pi_") {
            Ok(Self(raw.to_owned()))
        } else {
            Err("paymentIntentId must be a `pi_…` id".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A single-use card token from Stripe.js (`tok_…`, `stripe.createToken`), which the provider turns into a payment
/// method. Like a method id, it stands for the card so that the card itself never reaches Purser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardToken(String);

impl CardToken {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if is_provider_id(raw, "tok_") {
            Ok(Self(raw.to_owned()))
        } else {
            Err("cardToken must be the `tok_…` id Stripe.js returned; Purser never takes card details".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Stripe's ids: a type prefix, then letters, digits and underscores.
fn is_provider_id(raw: &str, prefix: &str) -> bool {
    raw.starts_with(prefix) && raw.len() <= 255 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_made_later_sort_later_as_text_too() {
        let keys: Vec<String> = (0..1000).map(|_| new_key().simple().to_string()).collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "the sandbox's ids are these keys as text");
    }

    #[test]
    fn card_numbers_are_refused_as_card_data() {
        for pan in ["4242424242424242", "4242 4242 4242 4242", "4000-0027-6000-3184"] {
            assert_eq!(PaymentMethodId::parse(pan), Err(PaymentMethodError::CardData));
        }
    }

    #[test]
    fn tokens_parse_and_junk_does_not() {
        assert!(PaymentMethodId::parse("pm_card_visa").is_ok());
        assert_eq!(PaymentMethodId::parse("tok_visa"), Err(PaymentMethodError::Malformed));
        assert_eq!(PaymentMethodId::parse("pm_x; drop table"), Err(PaymentMethodError::Malformed));
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("user-42").is_ok());
        assert!(PaymentIntentId::parse("pi_123").is_ok());
        assert!(PaymentIntentId::parse("ch_123").is_err());
        assert!(CardToken::parse("tok_1Abc").is_ok());
        assert!(CardToken::parse("4242424242424242").is_err());
        assert!(CardToken::parse("pm_card_visa").is_err());
    }
}

/// `prefix` and a hyphenated UUID, or the bare UUID: exactly the form the OpenAPI document's patterns describe (the
/// UUID parser alone would take braces, URNs and the simple form too).
pub fn parse_prefixed(raw: &str, prefix: &str) -> Option<uuid::Uuid> {
    let bare = raw.strip_prefix(prefix).unwrap_or(raw);
    let hyphenated = bare.len() == 36
        && bare
            .char_indices()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
    hyphenated.then(|| uuid::Uuid::parse_str(bare).ok()).flatten()
}

/// How the API names Purser's own objects: a prefix and the UUID (`txn_0b5e…`), as Stripe names its objects, so an id
/// says what it is. The bare UUID of earlier versions is still accepted.
macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $what:literal) => {
        #[doc = concat!("A ", $what, " as the API names it: `", $prefix, "` and its UUID.")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn parse(raw: &str) -> Result<Self, String> {
                parse_prefixed(raw, $prefix)
                    .map(Self)
                    .ok_or_else(|| format!(concat!("Give a ", $what, " id: `", $prefix, "` and a UUID.")))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0.hyphenated())
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(TransactionId, "txn_", "transaction");
prefixed_id!(RefundRequestId, "ref_", "refund request");
prefixed_id!(SpendId, "spd_", "spend");

/// The source of a ledger row (`purchase:{uuid}`, `spend:{uuid}`…) as the API names it: `txn_…`, `spd_…`, `ref_…`,
/// or the dispute's or adjustment's own id.
pub fn public_source(source: &str) -> String {
    match source.split_once(':') {
        Some(("purchase", id)) => format!("{}{id}", TransactionId::PREFIX),
        Some(("spend", id)) => format!("{}{id}", SpendId::PREFIX),
        Some(("refund", id)) => format!("{}{id}", RefundRequestId::PREFIX),
        Some((_, id)) => id.to_owned(),
        None => source.to_owned(),
    }
}

#[cfg(test)]
mod prefixed_tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_the_bare_form_still_parses() {
        let id = uuid::Uuid::parse_str("0b5e6c1a-1111-4222-8333-944455556666").unwrap();
        assert_eq!(TransactionId(id).to_string(), "txn_0b5e6c1a-1111-4222-8333-944455556666");
        assert_eq!(TransactionId::parse("txn_0b5e6c1a-1111-4222-8333-944455556666"), Ok(TransactionId(id)));
        assert_eq!(TransactionId::parse("0b5e6c1a-1111-4222-8333-944455556666"), Ok(TransactionId(id)));
        assert!(TransactionId::parse("ref_0b5e6c1a-1111-4222-8333-944455556666").is_err());
        assert_eq!(RefundRequestId(id).to_string(), "ref_0b5e6c1a-1111-4222-8333-944455556666");
        assert_eq!(serde_json::to_value(RefundRequestId(id)).unwrap(), "ref_0b5e6c1a-1111-4222-8333-944455556666");
    }
}
