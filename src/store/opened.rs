//! Card checkouts this node opened, by their provider intent: whose each is, for which package, on which rail. None of
//! these ever changes (a purchase's intent is set once, when the provider made it), so a confirm that finds its
//! intent here needs no read to know the purchase it is for, and whether the caller may confirm it.
use crate::domain::ids::ClientId;
use crate::domain::package::PackageId;
use crate::domain::purchase::{Purchase, Rail};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use uuid::Uuid;

/// A buyer confirms within minutes of opening a checkout; past this many newer ones, a confirm reads its purchase as
/// any other node would. An entry is about a hundred bytes.
const KEPT: NonZeroUsize = NonZeroUsize::new(16_384).unwrap();

#[derive(Clone, Debug)]
pub struct Opened {
    pub purchase: Uuid,
    pub client: ClientId,
    pub package: PackageId,
    pub rail: Rail,
}

impl Opened {
    pub fn of(purchase: &Purchase) -> Self {
        Self {
            purchase: purchase.id,
            client: purchase.client.clone(),
            package: purchase.package.clone(),
            rail: purchase.rail,
        }
    }
}

pub struct OpenedIntents(Mutex<LruCache<String, Opened>>);

impl Default for OpenedIntents {
    fn default() -> Self {
        Self(Mutex::new(LruCache::new(KEPT)))
    }
}

impl OpenedIntents {
    /// Keeps `purchase` under its intent, once the provider made one.
    pub fn keep(&self, purchase: &Purchase) {
        let Some(intent) = &purchase.intent_id else { return };
        if let Ok(mut kept) = self.0.lock() {
            kept.put(intent.clone(), Opened::of(purchase));
        }
    }

    pub fn get(&self, intent: &str) -> Option<Opened> {
        self.0.lock().ok()?.get(intent).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::OpenedIntents;
    use crate::domain::ids::ClientId;
    use crate::domain::purchase::tests::{package, policy};
    use crate::domain::purchase::{Checkout, Purchase};

    #[test]
    fn a_checkout_is_kept_once_it_has_an_intent() {
        let client = ClientId::parse("c1").unwrap();
        let open = Purchase::open(
            uuid::Uuid::new_v4(),
            client,
            &package(),
            Checkout::default(),
            chrono::Utc::now(),
            &policy(),
        );
        let opened = OpenedIntents::default();
        opened.keep(&open.purchase);
        assert!(opened.get("pi_1").is_none(), "no intent yet: nothing to find it by");
        let with_intent = Purchase { intent_id: Some("pi_1".into()), ..open.purchase };
        opened.keep(&with_intent);
        let found = opened.get("pi_1").expect("kept under its intent");
        assert_eq!((found.purchase, found.client, found.rail), (with_intent.id, with_intent.client, with_intent.rail));
    }
}
