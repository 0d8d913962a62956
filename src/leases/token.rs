//! Lease ids and secret tokens.
use std::fmt::Write;

/// A fresh secret: 256 random bits from a CSPRNG, hex-encoded.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn new_lease_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
pub fn tokens_match(given: &str, stored: &str) -> bool {
    given.len() == stored.len()
        && given
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn only_the_exact_token_matches() {
        let t = new_token();
        assert!(tokens_match(&t, &t.clone()));
        assert!(!tokens_match(&t[..63], &t));
        assert!(!tokens_match("", &t));
        let mut wrong = t.clone().into_bytes();
        wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
        assert!(!tokens_match(std::str::from_utf8(&wrong).unwrap(), &t));
    }
}
