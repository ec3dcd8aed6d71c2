//! The `history` column of a payment: a JSON array of its entries, oldest
//! first, each stored as an array `[at, action, from, to, outcome, amount,
//! reason]` (the column is rewritten on every change of its payment, so names
//! repeated in every entry would be most of its bytes). Entries written as
//! objects with those names (before 2026-12-06, and by PostgreSQL migration
//! 11) are read too, and rewritten as arrays by the payment's next change.
//!
//! A column that does not parse, or names a status that is not one, is
//! `StoreError::Corrupt`.

use serde::Serialize;

use crate::domain::money::MinorUnits;
use crate::domain::payment::{HistoryEntry, PaymentStatus};
use crate::domain::time::Timestamp;
use crate::store::StoreError;

/// The stored array form, by reference (what is written).
type EntryRef<'a> = (
    i64,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<i64>,
    Option<&'a str>,
);

/// The stored array form, owned (what is read).
type EntryArray = (i64, String, Option<String>, String, String, Option<i64>, Option<String>);

/// The earlier object form.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryObject {
    at: i64,
    action: String,
    from: Option<String>,
    to: String,
    outcome: String,
    amount: Option<i64>,
    reason: Option<String>,
}

/// One entry as read, before its statuses and amount are parsed.
struct RawEntry(EntryArray);

impl<'de> serde::Deserialize<'de> for RawEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EitherForm;
        impl<'de> serde::de::Visitor<'de> for EitherForm {
            type Value = RawEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a history entry (array or object)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawEntry, A::Error> {
                let entry: EntryArray =
                    serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(RawEntry(entry))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawEntry, A::Error> {
                let o: EntryObject =
                    serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawEntry((o.at, o.action, o.from, o.to, o.outcome, o.amount, o.reason)))
            }
        }
        deserializer.deserialize_any(EitherForm)
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("payment history: {what}"))
}

fn status(name: &str) -> Result<PaymentStatus, StoreError> {
    PaymentStatus::parse(name).ok_or_else(|| corrupt("unknown status"))
}

/// The entries of a stored `history` column.
pub fn parse_history(column: &str) -> Result<Vec<HistoryEntry>, StoreError> {
    let raw: Vec<RawEntry> = serde_json::from_str(column).map_err(corrupt)?;
    raw.into_iter()
        .map(|RawEntry((at, action, from, to, outcome, amount, reason))| {
            Ok(HistoryEntry {
                at: Timestamp::from_millis(at),
                action,
                from: from.as_deref().map(status).transpose()?,
                to: status(&to)?,
                outcome,
                amount: amount
                    .map(|a| MinorUnits::parse(a, i64::MAX).map_err(|_| corrupt("amount not positive")))
                    .transpose()?,
                reason,
            })
        })
        .collect()
}

/// The `history` column holding `entries`.
pub fn history_column(entries: &[HistoryEntry]) -> Result<String, StoreError> {
    let stored: Vec<EntryRef<'_>> = entries
        .iter()
        .map(|e| {
            (
                e.at.as_millis(),
                e.action.as_str(),
                e.from.map(PaymentStatus::as_str),
                e.to.as_str(),
                e.outcome.as_str(),
                e.amount.map(MinorUnits::get),
                e.reason.as_deref(),
            )
        })
        .collect();
    let mut column = Vec::with_capacity(64 * entries.len() + 2);
    stored
        .serialize(&mut serde_json::Serializer::new(&mut column))
        .map_err(corrupt)?;
    String::from_utf8(column).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: i64, action: &str, from: Option<PaymentStatus>, to: PaymentStatus) -> HistoryEntry {
        HistoryEntry {
            at: Timestamp::from_millis(at),
            action: action.into(),
            from,
            to,
            outcome: "succeeded".into(),
            amount: None,
            reason: None,
        }
    }

    #[test]
    fn history_column_is_compact_round_trips_in_order_and_reads_the_object_form() {
        let entries = vec![
            HistoryEntry {
                amount: Some(MinorUnits::parse(500, i64::MAX).unwrap()),
                ..entry(1, "create", None, PaymentStatus::RequiresConfirmation)
            },
            HistoryEntry {
                reason: Some("why".into()),
                ..entry(
                    2,
                    "confirm",
                    Some(PaymentStatus::RequiresConfirmation),
                    PaymentStatus::Processing,
                )
            },
        ];
        let column = history_column(&entries).unwrap();
        assert_eq!(
            column,
            r#"[[1,"create",null,"requires_confirmation","succeeded",500,null],[2,"confirm","requires_confirmation","processing","succeeded",null,"why"]]"#
        );
        assert_eq!(parse_history(&column).unwrap(), entries);
        // The earlier object form (and a column mixing both) reads the same.
        let objects = r#"[{"at":1,"action":"create","from":null,"to":"requires_confirmation","outcome":"succeeded","amount":500,"reason":null},
            [2,"confirm","requires_confirmation","processing","succeeded",null,"why"]]"#;
        assert_eq!(parse_history(objects).unwrap(), entries);
        for broken in [
            r#"[[1,"create",null,"requires_confirmation","succeeded",500]]"#,
            r#"[[1,"create",null,"requires_confirmation","succeeded",500,null,"extra"]]"#,
            r#"[{"at":1,"action":"create","to":"x","outcome":"y","amount":null,"reason":null,"evil":1}]"#,
            r#"[{"at":"1","action":"create","from":null,"to":"x","outcome":"y","amount":null,"reason":null}]"#,
            r#"[[1,"create",null,"paid","succeeded",500,null]]"#,
            r#"[[1,"create","paid","succeeded","succeeded",500,null]]"#,
            r#"[[1,"create",null,"succeeded","succeeded",0,null]]"#,
            r#"[7]"#,
        ] {
            assert!(matches!(parse_history(broken), Err(StoreError::Corrupt(_))), "{broken}");
        }
        assert!(parse_history("[]").unwrap().is_empty());
        assert!(matches!(parse_history("{"), Err(StoreError::Corrupt(_))));
    }
}
