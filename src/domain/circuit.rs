//! A circuit breaker, pure: closed while the provider answers; open after too many failures in a window, when new
//! checkouts are refused at once instead of piling onto a sick provider; half-open after a cooldown, when one probe
//! decides whether to close again.
use super::fraud::Window;
use chrono::{DateTime, TimeDelta, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open { until: DateTime<Utc> },
    HalfOpen,
}

#[derive(Clone, Copy, Debug)]
pub struct CircuitRules {
    pub failures: usize,
    pub window: TimeDelta,
    pub cooldown: TimeDelta,
}

#[derive(Debug)]
pub struct Circuit {
    pub state: CircuitState,
    failures: Window,
}

impl Default for Circuit {
    fn default() -> Self {
        Self { state: CircuitState::Closed, failures: Window::default() }
    }
}

impl Circuit {
    /// May a new checkout go to this provider now? An open circuit past its cooldown lets one probe through.
    pub fn allow(&mut self, now: DateTime<Utc>) -> bool {
        match self.state {
            CircuitState::Closed => true,
            CircuitState::Open { until } if now >= until => {
                self.state = CircuitState::HalfOpen;
                true
            }
            CircuitState::Open { .. } | CircuitState::HalfOpen => false,
        }
    }

    /// A provider call's outcome: returns true when this opened the circuit.
    pub fn record(&mut self, success: bool, now: DateTime<Utc>, rules: &CircuitRules) -> bool {
        if success {
            if self.state == CircuitState::HalfOpen {
                self.state = CircuitState::Closed;
            }
            return false;
        }
        self.failures.push(now);
        let tripped = match self.state {
            CircuitState::HalfOpen => true,
            CircuitState::Closed => self.failures.count_since(now, rules.window) >= rules.failures,
            CircuitState::Open { .. } => false,
        };
        if tripped {
            self.state = CircuitState::Open { until: now + rules.cooldown };
        }
        tripped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_failures_probes_after_the_cooldown_and_closes_on_success() {
        let rules = CircuitRules { failures: 3, window: TimeDelta::seconds(60), cooldown: TimeDelta::seconds(30) };
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut circuit = Circuit::default();
        assert!(!circuit.record(false, t0, &rules));
        assert!(!circuit.record(false, t0, &rules));
        assert!(circuit.record(false, t0, &rules), "the third failure opens it");
        assert!(!circuit.allow(t0 + TimeDelta::seconds(10)));
        assert!(circuit.allow(t0 + TimeDelta::seconds(31)), "one probe after the cooldown");
        assert!(!circuit.allow(t0 + TimeDelta::seconds(31)), "only one");
        circuit.record(true, t0 + TimeDelta::seconds(32), &rules);
        assert_eq!(circuit.state, CircuitState::Closed);
        circuit.allow(t0 + TimeDelta::seconds(32));
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let rules = CircuitRules { failures: 1, window: TimeDelta::seconds(60), cooldown: TimeDelta::seconds(5) };
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut circuit = Circuit::default();
        circuit.record(false, t0, &rules);
        assert!(circuit.allow(t0 + TimeDelta::seconds(6)));
        assert!(circuit.record(false, t0 + TimeDelta::seconds(7), &rules));
        assert!(!circuit.allow(t0 + TimeDelta::seconds(8)));
    }
}
