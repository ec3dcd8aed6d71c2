//! Randomness from the operating system's CSPRNG, and the base62 alphabet used
//! by ids and API keys.
//!
//! Invariant: every secret or identifier is drawn from `getrandom` (the OS
//! CSPRNG), never from a seeded or user-space generator.

/// The base62 alphabet: digits, upper case, lower case (in ASCII order).
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Errors from the operating system's random source.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// Fills `buf` from the OS CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|_| RandomError)
}

/// `n` random bytes from the OS CSPRNG.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// A string of `len` uniformly distributed base62 characters (≈5.95 bits each).
///
/// Uses rejection sampling (bytes ≥ 248 are discarded) so that no character is
/// more likely than another.
pub fn base62_string(len: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(len);
    let mut pool = [0u8; 64];
    while out.len() < len {
        fill(&mut pool)?;
        for byte in pool {
            if out.len() == len {
                break;
            }
            if byte < 248 {
                out.push(base62_digit(u64::from(byte)));
            }
        }
    }
    Ok(out)
}

/// Encodes `value` in base62, left-padded with `0` to exactly `width` characters.
/// `width` must be large enough for `value` (6 for a `u32`).
pub fn base62_fixed(mut value: u64, width: usize) -> String {
    let mut digits = vec!['0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = base62_digit(value);
        value /= 62;
    }
    digits.into_iter().collect()
}

/// The base62 digit for `value % 62`.
fn base62_digit(value: u64) -> char {
    let index = usize::try_from(value % 62).unwrap_or(0);
    BASE62.get(index).map_or('0', |&b| char::from(b))
}

/// True when every byte of `s` is in the base62 alphabet.
pub fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_string_has_requested_length_and_alphabet() {
        let s = base62_string(40).unwrap();
        assert_eq!(s.len(), 40);
        assert!(is_base62(&s));
        assert_ne!(s, base62_string(40).unwrap());
    }

    #[test]
    fn base62_fixed_pads_and_encodes() {
        assert_eq!(base62_fixed(0, 6), "000000");
        assert_eq!(base62_fixed(61, 2), "0z");
        assert_eq!(base62_fixed(62, 2), "10");
        assert_eq!(base62_fixed(u64::from(u32::MAX), 6), "4gfFC3");
    }
}
