//! What the service committed since it started, for `/metrics`: purchases and refunds entering each status, webhooks
//! received. Bumped after each commit and kept in memory, so a scrape reads no table; a restart starts them at zero, as
//! Prometheus's `rate()` and `increase()` expect of a counter.
use crate::prometheus::CounterFamily as Family;

#[derive(Default)]
pub struct Counters {
    purchases: Family,
    refunds: Family,
    webhooks: Family,
}

impl Counters {
    /// A purchase entered `status` (a step committed, or the purchase was opened).
    pub fn purchase_entered(&self, status: &'static str) {
        self.purchases.add(format!("status=\"{status}\""));
    }

    pub fn refund_entered(&self, status: &'static str) {
        self.refunds.add(format!("status=\"{status}\""));
    }

    /// A webhook verified and offered to the inbox: `new`, or a `duplicate` of one already stored.
    pub fn webhook_received(&self, provider: &str, outcome: &'static str) {
        self.webhooks.add(format!("provider=\"{provider}\",outcome=\"{outcome}\""));
    }

    pub fn render(&self, out: &mut String) {
        self.purchases.render(out, "purser_purchase_transitions_total", "Purchases entering each status.");
        self.refunds.render(out, "purser_refund_transitions_total", "Refund requests entering each status.");
        self.webhooks.render(out, "purser_webhooks_received_total", "Verified webhooks, new or duplicate.");
    }
}
