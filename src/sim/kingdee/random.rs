//! The sandbox's one source of randomness: session ids and fault draws.
//!
//! Seeded from `--seed`, so a single-threaded test sees the same ids and the same faults on
//! every run (concurrent requests interleave draws in scheduling order).

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct Random(ChaCha20Rng);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(ChaCha20Rng::seed_from_u64(seed))
    }

    /// A uniform draw in `0..1`.
    pub fn unit(&mut self) -> f64 {
        // 53 random bits are exactly what an f64 mantissa holds.
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn id(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.0.next_u64() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    /// Lower-case hex, like a `kdservice-sessionid`.
    pub fn hex_id(&mut self, len: usize) -> String {
        self.id(b"0123456789abcdef", len)
    }

    /// Lower-case letters and digits, like an `ASP.NET_SessionId`.
    pub fn alphanumeric_id(&mut self, len: usize) -> String {
        self.id(b"abcdefghijklmnopqrstuvwxyz0123456789", len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_in_range_and_ids_have_their_alphabet() {
        let mut random = Random::new(7);
        for _ in 0..1000 {
            let draw = random.unit();
            assert!((0.0..1.0).contains(&draw));
        }
        let id = random.alphanumeric_id(24);
        assert_eq!(id.len(), 24);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(Random::new(1).hex_id(32), Random::new(2).hex_id(32));
        assert_eq!(Random::new(1).hex_id(32), Random::new(1).hex_id(32));
    }
}
