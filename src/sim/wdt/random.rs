//! Small helpers over a seeded ChaCha stream: ranges, chances, picks and shuffles.
//!
//! `rand_core` 0.10 only gives raw `u32`/`u64` draws; the sandbox needs a handful of derived
//! ones, written here so that every draw is explicit and the streams stay reproducible for a
//! seed. Modulo bias is irrelevant at these ranges (all far below 2^32).

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A reproducible stream for one purpose: the same seed and `purpose` give the same draws,
/// different purposes give independent streams, so enabling one fault does not shift another.
pub fn stream(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose);
    rng
}

/// A number in `0..n` (`n > 0`).
pub fn below(rng: &mut impl Rng, n: u64) -> u64 {
    assert!(n > 0, "below(0) has no values");
    rng.next_u64() % n
}

/// A number in `low..=high`.
pub fn between(rng: &mut impl Rng, low: i64, high: i64) -> i64 {
    assert!(low <= high, "between({low}, {high}) is empty");
    low + below(rng, (high - low) as u64 + 1) as i64
}

/// True with probability `p` (clamped to 0..=1). Draws nothing when the answer is certain,
/// so a switched-off fault does not consume its stream.
pub fn chance(rng: &mut impl Rng, p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    if p >= 1.0 {
        return true;
    }
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    unit < p
}

/// One element of a non-empty slice.
pub fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len() as u64) as usize]
}

/// An index chosen with the given relative weights.
pub fn weighted(rng: &mut impl Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut draw = below(rng, u64::from(total)) as u32;
    for (index, weight) in weights.iter().enumerate() {
        if draw < *weight {
            return index;
        }
        draw -= weight;
    }
    weights.len() - 1
}

/// Fisher–Yates, in place.
pub fn shuffle<T>(rng: &mut impl Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let draws = |seed, purpose| {
            let mut rng = stream(seed, purpose);
            (0..4).map(|_| below(&mut rng, 1000)).collect::<Vec<_>>()
        };
        assert_eq!(draws(7, 1), draws(7, 1));
        assert_ne!(draws(7, 1), draws(7, 2));
        assert_ne!(draws(7, 1), draws(8, 1));
    }

    #[test]
    fn certain_chances_consume_nothing() {
        let mut a = stream(1, 1);
        let mut b = stream(1, 1);
        assert!(!chance(&mut a, 0.0));
        assert!(chance(&mut a, 1.0));
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn ranges_and_weights_stay_in_bounds() {
        let mut rng = stream(3, 0);
        for _ in 0..1000 {
            let value = between(&mut rng, -2, 2);
            assert!((-2..=2).contains(&value));
            assert!(weighted(&mut rng, &[0, 5, 0]) == 1);
        }
        let mut items: Vec<u32> = (0..20).collect();
        shuffle(&mut rng, &mut items);
        items.sort();
        assert_eq!(items, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn chances_are_roughly_honoured() {
        let mut rng = stream(5, 0);
        let hits = (0..10_000).filter(|_| chance(&mut rng, 0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }
}
