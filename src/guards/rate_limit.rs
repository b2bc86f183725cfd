//! Rate limits (governor) on the endpoints that start payments and refunds: per client, per IP, and for everyone
//! together, so one caller cannot crowd out the rest or test stolen cards at speed.
use crate::settings::LimitSettings;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

pub struct Limits {
    per_client: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    global: DefaultDirectRateLimiter,
    /// Webhooks that failed verification, per sender: past it a sender gets 429 instead of another try.
    bad_webhooks: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            per_client: RateLimiter::keyed(quota(settings.checkout_per_client_per_minute)),
            per_ip: RateLimiter::keyed(quota(settings.checkout_per_ip_per_minute)),
            global: RateLimiter::direct(quota(settings.checkout_global_per_minute)),
            bad_webhooks: RateLimiter::keyed(quota(settings.bad_webhooks_per_ip_per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when any budget is spent: how long until the caller may try again.
    pub fn check(&self, client: Option<&str>, ip: Option<IpAddr>) -> Result<(), Duration> {
        let now = self.clock.now();
        if let Some(client) = client {
            self.per_client.check_key(&client.to_owned()).map_err(|wait| wait.wait_time_from(now))?;
        }
        if let Some(ip) = ip {
            self.per_ip.check_key(&ip).map_err(|wait| wait.wait_time_from(now))?;
        }
        self.global.check().map_err(|wait| wait.wait_time_from(now))
    }

    /// Spends one failed verification from the sender's budget; `Err(wait)` once it is spent.
    pub fn bad_webhook(&self, ip: IpAddr) -> Result<(), Duration> {
        self.bad_webhooks.check_key(&ip).map_err(|wait| wait.wait_time_from(self.clock.now()))
    }
}
