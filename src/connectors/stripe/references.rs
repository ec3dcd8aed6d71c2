//! Which PaymentIntent belongs to which of our payments, remembered from the
//! moment the intent is created (before it is confirmed), so that `sync`
//! after an authorization whose answer was lost finds it at once. Bounded:
//! two generations, the older forgotten when the newer fills; a payment
//! forgotten here (or made by another replica, or before a restart) is found
//! through Stripe's search API instead.

use std::collections::HashMap;
use std::sync::Mutex;

/// Payments remembered per generation.
const GENERATION: usize = 10_000;

#[derive(Default)]
pub struct References {
    generations: Mutex<(HashMap<String, String>, HashMap<String, String>)>,
}

impl References {
    pub fn record(&self, payment: &str, intent: &str) {
        let Ok(mut generations) = self.generations.lock() else {
            return;
        };
        let (current, previous) = &mut *generations;
        if let Some(known) = previous.get_mut(payment) {
            intent.clone_into(known);
            return;
        }
        if current.len() >= GENERATION && !current.contains_key(payment) {
            *previous = std::mem::take(current);
        }
        current.insert(payment.to_owned(), intent.to_owned());
    }

    pub fn get(&self, payment: &str) -> Option<String> {
        let generations = self.generations.lock().ok()?;
        generations
            .0
            .get(payment)
            .or_else(|| generations.1.get(payment))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_two_generations_only() {
        let references = References::default();
        references.record("pay_first", "pi_first");
        for i in 1..GENERATION {
            references.record(&format!("pay_{i}"), "pi");
        }
        references.record("pay_next", "pi_next");
        assert_eq!(references.get("pay_first").as_deref(), Some("pi_first"));
        for i in 0..GENERATION {
            references.record(&format!("pay_later_{i}"), "pi");
        }
        assert_eq!(references.get("pay_first"), None);
        assert_eq!(references.get("pay_next").as_deref(), Some("pi_next"));
    }
}
