//! Fraud rules, pure: the signals around a checkout in, a verdict out. The monitor counts the signals in the database
//! (`store::fraud_screenings`); the rules live here so they are tested without a clock or a database.
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use std::collections::VecDeque;

/// The fraud monitor's rules, as configured in `[fraud]`; a missing key keeps its default.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default)]
pub struct FraudRules {
    /// No single checkout above this many minor units.
    pub max_amount: i64,
    /// Checkouts one client may start in an hour.
    pub checkouts_per_hour: usize,
    /// Checkouts one IP address may start in an hour, whoever is signed in.
    pub checkouts_per_ip_per_hour: usize,
    /// Checkouts with one card (the provider's payment method) in an hour, whoever uses it.
    pub checkouts_per_card_per_hour: usize,
    /// Distinct cards one client may try in an hour: more looks like a list of stolen cards being tested.
    pub cards_per_client_per_hour: usize,
    /// Declines after which a client is stopped for the rest of the hour (card testing).
    pub declines_per_hour: usize,
    /// Review thresholds, below the blocks: a checkout above this amount, or a client's checkout this many in the
    /// hour, or a card this many in the client's hour, is let through but held for an admin before its credits
    /// (`under_review`). Off by default (at the block's own threshold, which is checked first).
    pub review_amount: i64,
    pub review_checkouts_per_hour: usize,
    pub review_cards_per_client_per_hour: usize,
    /// Declines across the platform in a minute that look like an attack: processing is paused.
    pub breach_declines_per_minute: usize,
    /// Checkouts blocked across the platform in a minute that look like an attack: processing is paused.
    pub breach_blocks_per_minute: usize,
    /// Webhooks failing signature verification in a minute that look like forgery attempts: processing is paused.
    pub breach_signature_failures_per_minute: usize,
    /// How many distinct senders such a wave must come from to pause processing; fewer only raise an alert, so a
    /// handful of addresses cannot stop the platform.
    pub breach_signature_senders: usize,
}

impl Default for FraudRules {
    fn default() -> Self {
        Self {
            max_amount: 1_000_000,
            checkouts_per_hour: 20,
            checkouts_per_ip_per_hour: 200,
            checkouts_per_card_per_hour: 10,
            cards_per_client_per_hour: 5,
            declines_per_hour: 5,
            review_amount: 1_000_000,
            review_checkouts_per_hour: 20,
            review_cards_per_client_per_hour: 5,
            breach_declines_per_minute: 50,
            breach_blocks_per_minute: 100,
            breach_signature_failures_per_minute: 30,
            breach_signature_senders: 3,
        }
    }
}

/// What the monitor knows about one checkout, counted before it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Signals {
    pub amount: i64,
    pub client_checkouts: usize,
    pub client_declines: usize,
    pub ip_checkouts: usize,
    pub card_checkouts: usize,
    /// Distinct cards the client used in the hour, this one included.
    pub client_cards: usize,
    /// The account is flagged for confirmed fraud.
    pub flagged: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Let the payment happen, but hold its credits until an admin has looked (AC9.3.4).
    Review(String),
    Block(String),
    /// The account is flagged for confirmed fraud: no payment until an admin lifts the flag.
    Flagged,
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

pub fn assess(rules: &FraudRules, signals: &Signals) -> Verdict {
    let block = |reason: &str| Verdict::Block(reason.to_owned());
    if signals.flagged {
        return Verdict::Flagged;
    }
    if signals.amount > rules.max_amount {
        return Verdict::Block(format!("the amount is above the {} limit for one payment", rules.max_amount));
    }
    if signals.client_declines >= rules.declines_per_hour {
        return block("too many declined payments in the last hour");
    }
    if signals.client_checkouts >= rules.checkouts_per_hour {
        return block("too many payments started in the last hour");
    }
    if signals.ip_checkouts >= rules.checkouts_per_ip_per_hour {
        return block("too many payments started from this network in the last hour");
    }
    if signals.card_checkouts >= rules.checkouts_per_card_per_hour {
        return block("this card was used for too many payments in the last hour");
    }
    if signals.client_cards > rules.cards_per_client_per_hour {
        return block("too many different cards tried in the last hour");
    }
    if signals.amount > rules.review_amount {
        return Verdict::Review(format!("the amount is above the {} review threshold", rules.review_amount));
    }
    if signals.client_checkouts >= rules.review_checkouts_per_hour {
        return Verdict::Review("many payments started in the last hour".into());
    }
    if signals.client_cards > rules.review_cards_per_client_per_hour {
        return Verdict::Review("several different cards tried in the last hour".into());
    }
    Verdict::Allow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> FraudRules {
        FraudRules {
            max_amount: 100_000,
            checkouts_per_hour: 3,
            checkouts_per_ip_per_hour: 4,
            checkouts_per_card_per_hour: 2,
            cards_per_client_per_hour: 2,
            declines_per_hour: 2,
            ..FraudRules::default()
        }
    }

    fn ordinary() -> Signals {
        Signals { amount: 16000, client_cards: 1, ..Signals::default() }
    }

    #[test]
    fn each_rule_blocks_and_an_ordinary_checkout_passes() {
        let rules = rules();
        assert_eq!(assess(&rules, &ordinary()), Verdict::Allow);
        let blocked = [
            Signals { amount: 100_001, ..ordinary() },
            Signals { client_declines: 2, ..ordinary() },
            Signals { client_checkouts: 3, ..ordinary() },
            Signals { ip_checkouts: 4, ..ordinary() },
            Signals { card_checkouts: 2, ..ordinary() },
            Signals { client_cards: 3, ..ordinary() },
        ];
        for signals in blocked {
            assert!(matches!(assess(&rules, &signals), Verdict::Block(_)), "{signals:?}");
        }
        let flagged = Signals { flagged: true, client_declines: 2, ..ordinary() };
        assert_eq!(assess(&rules, &flagged), Verdict::Flagged, "a flagged account is refused as flagged, first");
    }

    // Issue 17: review thresholds below the blocks hold a checkout for an admin instead of refusing it.
    #[test]
    fn review_thresholds_below_the_blocks_hold_rather_than_refuse() {
        let rules = FraudRules {
            review_amount: 50_000,
            review_checkouts_per_hour: 2,
            review_cards_per_client_per_hour: 1,
            ..rules()
        };
        assert_eq!(assess(&rules, &ordinary()), Verdict::Allow);
        for signals in [
            Signals { amount: 50_001, ..ordinary() },
            Signals { client_checkouts: 2, ..ordinary() },
            Signals { client_cards: 2, ..ordinary() },
        ] {
            assert!(matches!(assess(&rules, &signals), Verdict::Review(_)), "{signals:?}");
        }
        assert!(matches!(assess(&rules, &Signals { amount: 100_001, ..ordinary() }), Verdict::Block(_)), "block first");
        assert_eq!(assess(&FraudRules::default(), &Signals { client_checkouts: 19, ..ordinary() }), Verdict::Allow);
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
