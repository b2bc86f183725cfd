//! Latency samples and their percentiles.
use serde::Serialize;
use std::time::Duration;

#[derive(Default)]
pub struct Samples(Vec<Duration>);

/// Milliseconds.
#[derive(Serialize, Clone, Copy, Default, Debug)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Samples {
    pub fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn summary(&mut self) -> Summary {
        self.0.sort_unstable();
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        let at = |q: f64| {
            let index = ((self.0.len() as f64 * q).ceil() as usize).saturating_sub(1);
            self.0.get(index).copied().map_or(0.0, ms)
        };
        Summary { count: self.0.len(), p50: at(0.50), p95: at(0.95), p99: at(0.99), max: at(1.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let mut samples = Samples::default();
        for ms in 1..=100 {
            samples.push(Duration::from_millis(ms));
        }
        let summary = samples.summary();
        assert_eq!((summary.count, summary.p50, summary.p95, summary.p99, summary.max), (100, 50.0, 95.0, 99.0, 100.0));
        assert_eq!(Samples::default().summary().p99, 0.0);
    }
}
