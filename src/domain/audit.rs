//! Audit entries and the hash chain that makes the trail tamper-evident.
//!
//! Each entry's hash is SHA-256 over an unambiguous (length-prefixed) encoding
//! of its sequence number, its fields and the previous entry's hash. Changing,
//! deleting, inserting or reordering any entry breaks the chain at that point.
//!
//! Invariant: no field may carry a secret, a card number or a CVC; callers pass
//! ids, never keys.

use sha2::{Digest, Sha256};

use super::api_key::Mode;
use super::time::Timestamp;

/// The hash that the first entry chains to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether the audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

/// An audit entry about to be appended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    pub at: Timestamp,
    pub request_id: Option<String>,
    pub merchant_id: Option<String>,
    pub key_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// What happened, e.g. `api.request`, `api_key.revoked`, `auth.failed`.
    pub action: String,
    /// What it happened to, e.g. `GET /v1/merchant` or a key id.
    pub resource: Option<String>,
    pub outcome: Outcome,
    /// Why: the true reason, for operators (never shown to clients).
    pub reason: Option<String>,
    /// The mode (test or live) of the caller and of what was acted on; `None`
    /// for operator and system actions without one.
    pub mode: Option<Mode>,
}

/// Longest user agent kept in the trail.
const MAX_USER_AGENT: usize = 256;

/// Longest user agent searched for secrets; the rest is never kept.
const MAX_SCANNED_USER_AGENT: usize = MAX_USER_AGENT * 4;

/// Whether `c` may be part of a card number or key as the redactor reads
/// them: letters and digits of any script, their separators, percent
/// escapes, and anything non-ASCII (full-width forms, invisible characters).
fn may_spell_a_secret(c: char) -> bool {
    c.is_alphanumeric() || !c.is_ascii() || matches!(c, ' ' | '.' | '-' | '/' | '_' | '+' | '%')
}

impl AuditEvent {
    /// A new event with only the action and outcome set.
    pub fn new(action: &str, outcome: Outcome) -> Self {
        Self {
            at: Timestamp::now(),
            request_id: None,
            merchant_id: None,
            key_id: None,
            client_ip: None,
            user_agent: None,
            action: action.to_owned(),
            resource: None,
            outcome,
            reason: None,
            mode: None,
        }
    }

    /// Keeps a user agent bounded, free of control characters, and free of
    /// anything shaped like a card number or API key. Redaction runs before
    /// the text is shortened (it shortens the text, so what follows a
    /// redaction moves up into the part that is kept); past
    /// [`MAX_SCANNED_USER_AGENT`] characters the text is cut, and the
    /// unfinished word at the cut is dropped, since a secret cut there would
    /// be judged by its first part only.
    pub fn sanitize_user_agent(raw: &str) -> String {
        let mut chars = raw.chars().filter(|c| !c.is_control());
        let mut bounded: String = chars.by_ref().take(MAX_SCANNED_USER_AGENT).collect();
        if chars.next().is_some() {
            let keep = bounded.trim_end_matches(may_spell_a_secret).len();
            bounded.truncate(keep);
        }
        super::redact::redact(&bounded).chars().take(MAX_USER_AGENT).collect()
    }
}

/// An entry as stored: the event plus its place and hash in the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// Computes the chain hash of `event` at position `seq` after `prev_hash`.
pub fn chain_hash(seq: i64, event: &AuditEvent, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(&seq.to_be_bytes());
    field(&event.at.as_millis().to_be_bytes());
    for opt in [
        &event.request_id,
        &event.merchant_id,
        &event.key_id,
        &event.client_ip,
        &event.user_agent,
    ] {
        optional(&mut field, opt.as_deref());
    }
    field(event.action.as_bytes());
    optional(&mut field, event.resource.as_deref());
    field(event.outcome.as_str().as_bytes());
    optional(&mut field, event.reason.as_deref());
    // Added after the chain began: present only when set, under its own tag,
    // so that entries without a mode (every earlier one) hash as they did.
    if let Some(mode) = event.mode {
        field(b"\x02mode");
        field(mode.as_str().as_bytes());
    }
    field(prev_hash.as_bytes());
    hex::encode(h.finalize())
}

fn optional(field: &mut impl FnMut(&[u8]), value: Option<&str>) {
    match value {
        None => field(b"\x00"),
        Some(v) => {
            field(b"\x01");
            field(v.as_bytes());
        }
    }
}

/// The first place where a chain stops being intact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// Sequence number of the first entry that does not verify.
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

/// Walks records in storage order and checks sequence, links and hashes.
/// `expected_next` tracks state so a long chain can be verified in pages.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: i64,
    prev_hash: String,
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
        }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        if record.seq != self.next_seq {
            let problem = if record.seq > self.next_seq {
                format!("entries {} to {} are missing (deleted)", self.next_seq, record.seq - 1)
            } else {
                format!("sequence went back to {} (inserted or reordered entry)", record.seq)
            };
            return Err(ChainBreak {
                seq: record.seq.min(self.next_seq),
                problem,
            });
        }
        if record.prev_hash != self.prev_hash {
            return Err(ChainBreak {
                seq: record.seq,
                problem: "link to the previous entry is broken (inserted, deleted or reordered entry)".into(),
            });
        }
        if chain_hash(record.seq, &record.event, &record.prev_hash) != record.hash {
            return Err(ChainBreak {
                seq: record.seq,
                problem: "content does not match its hash (modified entry)".into(),
            });
        }
        self.next_seq += 1;
        self.prev_hash.clone_from(&record.hash);
        self.checked += 1;
        Ok(())
    }

    /// Checks that the chain ends where the head says it does, which catches
    /// entries deleted from the end.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<u64, ChainBreak> {
        if head_seq != self.next_seq - 1 || head_hash != self.prev_hash {
            return Err(ChainBreak {
                seq: self.next_seq,
                problem: format!(
                    "the chain ends at entry {} but the head records entry {} (entries removed from the end)",
                    self.next_seq - 1,
                    head_seq
                ),
            });
        }
        Ok(self.checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_redacted_whole_before_they_are_shortened() {
        assert_eq!(AuditEvent::sanitize_user_agent("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(
            AuditEvent::sanitize_user_agent("a\u{7}b 4242.4242.4242.4242 c"),
            "ab [REDACTED] c"
        );
        // Redactions shorten the text, so a card number that starts far
        // into a long user agent lands in the part that is kept.
        let encoded: String = "4242424242424242".bytes().map(|b| format!("%{b:02X}")).collect();
        let agent = |card_at: usize| {
            let mut ua = format!("{encoded} ").repeat(card_at / 49);
            ua.push_str(&"x".repeat(card_at - ua.chars().count()));
            ua + "4242424242424242 end"
        };
        // Within what is scanned: judged whole.
        let kept = AuditEvent::sanitize_user_agent(&agent(MAX_USER_AGENT * 2 - 11));
        assert!(kept.ends_with("x[REDACTED] end"), "{kept}");
        // Cut by the bound after 11 digits: the unfinished word goes.
        let kept = AuditEvent::sanitize_user_agent(&agent(MAX_SCANNED_USER_AGENT - 11));
        for kept in [kept, AuditEvent::sanitize_user_agent(&agent(MAX_USER_AGENT * 2 - 11))] {
            assert!(kept.chars().count() <= MAX_USER_AGENT);
            let digits: String = kept.chars().filter(char::is_ascii_digit).collect();
            assert!(!digits.contains("42424"), "{kept}");
        }
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let mut event = AuditEvent::new("api.request", Outcome::Success);
                event.resource = Some(format!("GET /v1/thing/{seq}"));
                let hash = chain_hash(seq, &event, &prev);
                let r = AuditRecord {
                    seq,
                    event,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn verify(records: &[AuditRecord]) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for r in records {
            v.check(r)?;
        }
        let (seq, hash) = records
            .last()
            .map(|r| (r.seq, r.hash.clone()))
            .unwrap_or((0, GENESIS_HASH.into()));
        v.finish(seq, &hash)
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)).unwrap(), 5);
    }

    #[test]
    fn modification_is_found_at_its_entry() {
        let mut c = chain(5);
        c[2].event.outcome = Outcome::Failure;
        assert_eq!(verify(&c).unwrap_err().seq, 3);
    }

    #[test]
    fn deletion_and_reordering_are_found() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c).unwrap_err().seq, 2);
        let mut c = chain(5);
        c.swap(1, 2);
        assert_eq!(verify(&c).unwrap_err().seq, 2);
    }

    #[test]
    fn tail_truncation_is_found_against_the_head() {
        let c = chain(5);
        let mut v = ChainVerifier::default();
        for r in &c[..4] {
            v.check(r).unwrap();
        }
        assert!(v.finish(5, &c[4].hash).is_err());
    }

    #[test]
    fn fields_are_unambiguous() {
        let mut a = AuditEvent::new("x", Outcome::Success);
        a.resource = Some("ab".into());
        a.reason = Some("c".into());
        let mut b = a.clone();
        b.resource = Some("a".into());
        b.reason = Some("bc".into());
        assert_ne!(chain_hash(1, &a, GENESIS_HASH), chain_hash(1, &b, GENESIS_HASH));
    }
}
