//! [`ExpiryDate`]: a card's expiry month and year.
//!
//! Invariants: the month is 1–12 and the year has four digits. A date parsed
//! from a client is this month or later and at most 20 years ahead (UTC); one
//! rebuilt from storage is only checked for shape, as the card may have
//! expired since.

use crate::domain::time::Timestamp;

use super::CardError;

/// Latest accepted expiry year, relative to the current year.
const MAX_YEARS_AHEAD: i64 = 20;

/// A card's expiry month and four-digit year. The card is valid through the
/// last day of that month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiryDate {
    // Field order gives chronological `Ord`.
    year: u16,
    month: u8,
}

impl ExpiryDate {
    /// Parses a client's expiry: month 1–12; year as 4 digits or as 2 digits
    /// (the next matching year not in the past). Must be this month or later,
    /// and at most 20 years ahead, judged in UTC at `now`.
    pub fn parse(month: i64, year: i64, now: Timestamp) -> Result<Self, CardError> {
        let month = parse_month(month)?;
        let (now_year, now_month) = year_month(now).ok_or(CardError::ExpiryYear)?;
        let full_year = match year {
            0..=99 => {
                let century = now_year - now_year.rem_euclid(100);
                let candidate = century + year;
                if candidate < now_year {
                    candidate + 100
                } else {
                    candidate
                }
            }
            _ => year,
        };
        if full_year < now_year || full_year > now_year + MAX_YEARS_AHEAD {
            return Err(CardError::ExpiryYear);
        }
        // The year is plausible; a month already past in this year is the error.
        if full_year == now_year && i64::from(month) < now_month {
            return Err(CardError::ExpiryMonth);
        }
        let year = u16::try_from(full_year).map_err(|_| CardError::ExpiryYear)?;
        Ok(Self { year, month })
    }

    /// Rebuilds an expiry read back from our own storage; only the shape is
    /// checked, since a stored card may have expired since.
    pub fn from_stored(month: i64, year: i64) -> Result<Self, CardError> {
        let month = parse_month(month)?;
        let year = u16::try_from(year)
            .ok()
            .filter(|y| (1000..=9999).contains(y))
            .ok_or(CardError::ExpiryYear)?;
        Ok(Self { year, month })
    }

    pub fn month(self) -> u8 {
        self.month
    }

    /// Four-digit year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// True once the expiry month has ended (UTC).
    pub fn is_expired(self, now: Timestamp) -> bool {
        year_month(now).is_none_or(|(y, m)| (i64::from(self.year), i64::from(self.month)) < (y, m))
    }
}

/// A calendar month, 1–12.
fn parse_month(month: i64) -> Result<u8, CardError> {
    u8::try_from(month)
        .ok()
        .filter(|m| (1..=12).contains(m))
        .ok_or(CardError::ExpiryMonth)
}

/// The UTC calendar year and month (1–12) at `now`.
fn year_month(now: Timestamp) -> Option<(i64, i64)> {
    let t = ::time::OffsetDateTime::from_unix_timestamp(now.as_secs()).ok()?;
    Some((i64::from(t.year()), i64::from(u8::from(t.month()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2025-06-15T00:00:00Z.
    const NOW: Timestamp = Timestamp::from_millis(1_749_945_600_000);

    #[test]
    fn expiry_dates() {
        let ok = ExpiryDate::parse(6, 2025, NOW).unwrap();
        assert_eq!((ok.month(), ok.year()), (6, 2025));
        assert_eq!(ExpiryDate::parse(7, 27, NOW).unwrap().year(), 2027);
        assert_eq!(ExpiryDate::parse(12, 2045, NOW).unwrap().year(), 2045);
        assert_eq!(ExpiryDate::parse(1, 2046, NOW), Err(CardError::ExpiryYear));
        assert_eq!(ExpiryDate::parse(12, 2024, NOW), Err(CardError::ExpiryYear));
        assert_eq!(ExpiryDate::parse(12, 24, NOW), Err(CardError::ExpiryYear)); // 2124
        assert_eq!(ExpiryDate::parse(5, 2025, NOW), Err(CardError::ExpiryMonth));
        assert_eq!(ExpiryDate::parse(0, 2026, NOW), Err(CardError::ExpiryMonth));
        assert_eq!(ExpiryDate::parse(13, 2026, NOW), Err(CardError::ExpiryMonth));
        assert_eq!(ExpiryDate::parse(-1, 2026, NOW), Err(CardError::ExpiryMonth));
        assert_eq!(ExpiryDate::parse(1, 202, NOW), Err(CardError::ExpiryYear));
        assert_eq!(ExpiryDate::parse(1, i64::MAX, NOW), Err(CardError::ExpiryYear));
        assert_eq!(CardError::ExpiryYear.code(), "invalid_expiry_year");
        assert_eq!(CardError::ExpiryMonth.code(), "invalid_expiry_month");
    }

    #[test]
    fn two_digit_years_roll_into_the_next_century_near_its_end() {
        let late = Timestamp::from_millis(4_102_444_800_000 - 86_400_000 * 200); // mid-2099
        assert_eq!(ExpiryDate::parse(12, 99, late).unwrap().year(), 2099);
        assert_eq!(ExpiryDate::parse(12, 5, late).unwrap().year(), 2105);
    }

    #[test]
    fn stored_expiry_may_be_in_the_past() {
        let old = ExpiryDate::from_stored(1, 2020).unwrap();
        assert!(old.is_expired(NOW));
        assert!(!ExpiryDate::parse(6, 2025, NOW).unwrap().is_expired(NOW));
        assert!(ExpiryDate::from_stored(13, 2020).is_err());
        assert!(ExpiryDate::from_stored(1, 20).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(m in any::<i64>(), y in any::<i64>()) {
            let _ = ExpiryDate::parse(m, y, NOW);
            let _ = ExpiryDate::from_stored(m, y);
        }
    }
}
