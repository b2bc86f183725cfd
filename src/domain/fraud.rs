//! Fraud rules, pure: the signals around a checkout in, a verdict out. The monitor actor keeps the windows of recent
//! events; the rules live here so they are tested without a clock or a database.
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug)]
pub struct FraudRules {
    /// No single checkout above this many minor units.
    pub max_amount: i64,
    /// Checkouts one client may start in an hour.
    pub checkouts_per_hour: usize,
    /// Declines after which a client is stopped for the rest of the hour (card testing).
    pub declines_per_hour: usize,
    /// Declines across the platform in a minute that look like an attack: processing is paused.
    pub breach_declines_per_minute: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Let the payment happen, but hold its credits until an admin has looked (AC9.3.4).
    Review(String),
    Block(String),
}

/// Events in a sliding window.
#[derive(Default, Debug)]
pub struct Window(VecDeque<DateTime<Utc>>);

impl Window {
    pub fn count_since(&mut self, now: DateTime<Utc>, span: TimeDelta) -> usize {
        while self.0.front().is_some_and(|at| now - *at >= span) {
            self.0.pop_front();
        }
        self.0.len()
    }

    pub fn push(&mut self, at: DateTime<Utc>) {
        self.0.push_back(at);
    }
}

/// A sandbox test method that plays Stripe Radar's block (`pm_card_radarBlock`).
pub const RADAR_BLOCK: &str = "pm_card_radarBlock";
/// A sandbox test method that plays Radar's elevated risk level (`pm_card_riskLevelElevated`).
pub const RISK_ELEVATED: &str = "pm_card_riskLevelElevated";

pub fn assess(
    rules: &FraudRules,
    amount: i64,
    method: Option<&str>,
    recent_checkouts: usize,
    recent_declines: usize,
) -> Verdict {
    if method == Some(RADAR_BLOCK) {
        return Verdict::Block("the payment provider's risk check blocked this card".into());
    }
    if amount > rules.max_amount {
        return Verdict::Block(format!("the amount is above the {} limit for one payment", rules.max_amount));
    }
    if recent_declines >= rules.declines_per_hour {
        return Verdict::Block("too many declined payments in the last hour".into());
    }
    if recent_checkouts >= rules.checkouts_per_hour {
        return Verdict::Block("too many payments started in the last hour".into());
    }
    if method == Some(RISK_ELEVATED) {
        return Verdict::Review("the payment provider rates this card's risk as elevated".into());
    }
    Verdict::Allow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> FraudRules {
        FraudRules { max_amount: 100_000, checkouts_per_hour: 3, declines_per_hour: 2, breach_declines_per_minute: 10 }
    }

    #[test]
    fn each_rule_blocks_and_an_ordinary_checkout_passes() {
        assert_eq!(assess(&rules(), 16000, Some("pm_card_visa"), 0, 0), Verdict::Allow);
        assert!(matches!(assess(&rules(), 16000, Some(RADAR_BLOCK), 0, 0), Verdict::Block(_)));
        assert!(matches!(assess(&rules(), 100_001, None, 0, 0), Verdict::Block(_)));
        assert!(matches!(assess(&rules(), 100, None, 0, 2), Verdict::Block(_)));
        assert!(matches!(assess(&rules(), 100, None, 3, 0), Verdict::Block(_)));
        assert!(matches!(assess(&rules(), 100, Some(RISK_ELEVATED), 0, 0), Verdict::Review(_)));
    }

    #[test]
    fn windows_forget_old_events() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut window = Window::default();
        window.push(t0);
        window.push(t0 + TimeDelta::minutes(30));
        assert_eq!(window.count_since(t0 + TimeDelta::minutes(59), TimeDelta::hours(1)), 2);
        assert_eq!(window.count_since(t0 + TimeDelta::minutes(61), TimeDelta::hours(1)), 1);
    }
}
