//! A Prometheus counter family kept in memory: a count per label set, rendered in the text format `/metrics` serves.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// The labels are kept in Prometheus's own `name="value",…` form.
#[derive(Default)]
pub struct CounterFamily(Mutex<BTreeMap<String, u64>>);

impl CounterFamily {
    pub fn add(&self, labels: String) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(labels).or_default() += 1;
        }
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let Ok(counts) = self.0.lock() else { return };
        for (labels, count) in counts.iter() {
            let _ = writeln!(out, "{name}{{{labels}}} {count}");
        }
    }
}
