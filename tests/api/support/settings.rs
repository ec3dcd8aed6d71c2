//! The webhook settings of test gateways.

use std::time::Duration;

use paywarden::webhooks::settings::{RetrySchedule, WebhookSettings};

use super::test_ca::test_ca;

/// The retry schedule of test gateways: 100 ms doubling to 400 ms, for 4 s.
pub const TEST_RETRY: RetrySchedule = RetrySchedule {
    initial: Duration::from_millis(100),
    max_interval: Duration::from_millis(400),
    window: Duration::from_secs(4),
};

/// Webhook settings of test gateways: the test CA trusted (verification on),
/// a fast retry schedule and poll interval, attempts cut after 2 s.
pub fn webhook_settings() -> WebhookSettings {
    let mut settings = WebhookSettings::new(
        false,
        Some(test_ca().ca_pem.as_bytes()),
        TEST_RETRY,
        Duration::from_millis(100),
        Duration::from_secs(5),
    )
    .unwrap();
    settings.attempt_timeout = Duration::from_secs(2);
    settings.payloads = paywarden::api::views::webhook_payloads();
    settings
}
