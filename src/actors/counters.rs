//! What the service committed since it started, for `/metrics`: purchases and refunds entering each status, webhooks
//! received. Bumped after each commit and kept in memory, so a scrape reads no table; a restart starts them at zero, as
//! Prometheus's `rate()` and `increase()` expect of a counter.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// One counter family: a count per label set, the labels already in Prometheus's `name="value"` form.
#[derive(Default)]
struct Family(Mutex<BTreeMap<String, u64>>);

impl Family {
    fn add(&self, labels: String) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(labels).or_default() += 1;
        }
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let Ok(counts) = self.0.lock() else { return };
        for (labels, count) in counts.iter() {
            let _ = writeln!(out, "{name}{{{labels}}} {count}");
        }
    }
}

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
