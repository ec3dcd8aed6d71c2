//! Randomness from the operating system's CSPRNG, and the base62 alphabet used
//! by ids and API keys.
//!
//! Invariant: every secret or identifier is drawn from `getrandom` (the OS
//! CSPRNG), never from a seeded or user-space generator. Secrets (keys,
//! webhook and challenge secrets, data keys, nonces) take their bytes straight
//! from it; identifiers ([`id_string`]), which are unguessable but not secret,
//! from a small per-thread buffer of its bytes, so a payment's several ids
//! cost one system call rather than one each.

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

/// Bytes of the OS CSPRNG buffered per thread for identifiers only.
const ID_POOL: usize = 256;

struct IdPool {
    bytes: [u8; ID_POOL],
    /// Next unused byte; `ID_POOL` when empty. Used bytes are zeroed.
    next: usize,
}

thread_local! {
    static ID_BYTES: std::cell::RefCell<IdPool> = const {
        std::cell::RefCell::new(IdPool { bytes: [0; ID_POOL], next: ID_POOL })
    };
}

/// Like [`base62_string`], for identifiers: the bytes come from the OS CSPRNG
/// through a per-thread buffer (each byte used once). Never use it for a
/// secret.
pub fn id_string(len: usize) -> Result<String, RandomError> {
    ID_BYTES.with(|cell| {
        let mut pool = cell.borrow_mut();
        let mut out = String::with_capacity(len);
        while out.len() < len {
            if pool.next == ID_POOL {
                fill(&mut pool.bytes)?;
                pool.next = 0;
            }
            let at = pool.next;
            let Some(slot) = pool.bytes.get_mut(at) else {
                pool.next = ID_POOL;
                continue;
            };
            let byte = std::mem::take(slot);
            pool.next += 1;
            if byte < 248 {
                out.push(base62_digit(u64::from(byte)));
            }
        }
        Ok(out)
    })
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
    fn id_strings_have_the_length_and_alphabet_and_never_repeat_a_draw() {
        // More than one pool's worth, so refills are crossed.
        let ids: Vec<String> = (0..100).map(|_| id_string(24).unwrap()).collect();
        assert!(ids.iter().all(|s| s.len() == 24 && is_base62(s)));
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Every base62 character shows up across 2,400 draws (uniform: about 39 each).
        let mut seen = [0usize; 62];
        for b in ids.iter().flat_map(|s| s.bytes()) {
            if let Some(i) = BASE62.iter().position(|&c| c == b) {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n > 5), "{seen:?}");
    }

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
