//! Purchases seen finished, kept for the inputs that follow their end (the webhooks after a confirm). A finished
//! purchase never changes again (`Purchase::on` answers from it unchanged; the state machine's property test holds
//! it), so a copy is never stale, whichever node finished it.
use crate::domain::purchase::Purchase;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use uuid::Uuid;

/// The webhooks that follow a purchase's end come within seconds: at a thousand purchases a second these cover four.
/// A copy is about a kilobyte.
const KEPT: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

pub struct FinishedPurchases(Mutex<LruCache<Uuid, Purchase>>);

impl Default for FinishedPurchases {
    fn default() -> Self {
        Self(Mutex::new(LruCache::new(KEPT)))
    }
}

impl FinishedPurchases {
    /// Keeps `purchase` if it is finished.
    pub fn keep(&self, purchase: &Purchase) {
        if purchase.status.is_terminal()
            && let Ok(mut kept) = self.0.lock()
        {
            kept.put(purchase.id, purchase.clone());
        }
    }

    pub fn get(&self, id: Uuid) -> Option<Purchase> {
        self.0.lock().ok()?.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::FinishedPurchases;
    use crate::domain::ids::ClientId;
    use crate::domain::purchase::tests::{package, policy};
    use crate::domain::purchase::{Checkout, Purchase, Status};

    #[test]
    fn only_finished_purchases_are_kept() {
        let open = |id| {
            let client = ClientId::parse("c1").unwrap();
            Purchase::open(id, client, &package(), Checkout::default(), chrono::Utc::now(), &policy()).purchase
        };
        let kept = FinishedPurchases::default();
        let waiting = open(uuid::Uuid::new_v4());
        kept.keep(&waiting);
        assert!(kept.get(waiting.id).is_none(), "an unfinished purchase still changes");
        let finished = Purchase { status: Status::Succeeded, ..open(uuid::Uuid::new_v4()) };
        kept.keep(&finished);
        assert_eq!(kept.get(finished.id), Some(finished));
    }
}
