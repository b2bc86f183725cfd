//! How long provider calls take and how many fail, by rail (card, paypal) and operation, for `/metrics`. Kept in memory: a
//! restart starts the counts again, as Prometheus counters expect.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    errors: u64,
}

/// The histograms of one running service.
#[derive(Default)]
pub struct ProviderTimings(Mutex<BTreeMap<(&'static str, &'static str), Histogram>>);

impl ProviderTimings {
    /// One provider call: its duration, and whether the provider failed to answer.
    pub fn record(&self, rail: &'static str, operation: &'static str, took: Duration, unreachable: bool) {
        let seconds = took.as_secs_f64();
        let Ok(mut calls) = self.0.lock() else { return };
        let histogram = calls.entry((rail, operation)).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            *bucket += u64::from(seconds <= bound);
        }
        histogram.count += 1;
        histogram.sum += seconds;
        histogram.errors += u64::from(unreachable);
    }

    /// The histograms and error counters in Prometheus's text format.
    pub fn render(&self, out: &mut String) {
        let Ok(calls) = self.0.lock() else { return };
        let name = "purser_provider_call_seconds";
        let _ = writeln!(out, "# HELP {name} Provider call latency.\n# TYPE {name} histogram");
        for ((rail, operation), h) in calls.iter() {
            let labels = format!("rail=\"{rail}\",operation=\"{operation}\"");
            for (bucket, bound) in h.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {bucket}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}", h.sum, h.count);
        }
        let errors = "purser_provider_call_errors_total";
        let _ = writeln!(
            out,
            "# HELP {errors} Provider calls with no answer (network, timeout, 5xx).\n# TYPE {errors} counter"
        );
        for ((rail, operation), h) in calls.iter() {
            let _ = writeln!(out, "{errors}{{rail=\"{rail}\",operation=\"{operation}\"}} {}", h.errors);
        }
    }
}
