//! Every random choice comes from an RNG derived from the run seed and a label naming the choice
//! (round, slot, purpose), so the outcome never depends on call order or timing, and resuming
//! needs no saved RNG state.
//!
//! The draws themselves are written out here, not taken from `rand`: they are rand 0.8's
//! algorithms (MIT/Apache-2.0), which every seeded run and recorded replay so far was made with.
//! rand 0.9 (and so 0.10) changed its integer ranges, shuffle, `choose` and sampling without replacement, so
//! calling its versions would change the outcome of every seeded run. Only the ChaCha8 stream
//! comes from `rand_chacha`, and it is the same in every release. (A 64-bit `usize` is assumed,
//! as rand 0.8 drew `usize` ranges from 64-bit words there.)

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn derive_rng(seed: u64, labels: &[&str]) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    for l in labels {
        h.update(&(l.len() as u64).to_le_bytes());
        h.update(l.as_bytes());
    }
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// A uniform `usize` in `0..n` (rand 0.8's `gen_range(0..n)`: 64-bit words, widening multiply,
/// rejection zone by the leading-zeros approximation).
pub fn below<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    assert!(n > 0, "below(0)");
    let range = n as u64;
    let zone = (range << range.leading_zeros()).wrapping_sub(1);
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(range);
        if (m as u64) <= zone {
            return (m >> 64) as usize;
        }
    }
}

/// A uniform `u32` in `low..=high` (rand 0.8's `gen_range(low..=high)` on u32).
fn u32_inclusive<R: Rng + ?Sized>(rng: &mut R, low: u32, high: u32) -> u32 {
    let range = high.wrapping_sub(low).wrapping_add(1);
    if range == 0 {
        return rng.next_u32();
    }
    let zone = (range << range.leading_zeros()).wrapping_sub(1);
    loop {
        let m = u64::from(rng.next_u32()) * u64::from(range);
        if (m as u32) <= zone {
            return low.wrapping_add((m >> 32) as u32);
        }
    }
}

/// An index into a slice of `len` (rand 0.8's `gen_index`: 32-bit draws when `len` fits in u32).
fn index<R: Rng + ?Sized>(rng: &mut R, len: usize) -> usize {
    if len <= u32::MAX as usize {
        u32_inclusive(rng, 0, len as u32 - 1) as usize
    } else {
        below(rng, len)
    }
}

/// A uniform `f64` in `[0, 1)` from the top 53 bits of a word (rand 0.8's `gen::<f64>()`).
pub fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p` in `[0, 1]` (rand 0.8's `gen_bool`).
pub fn chance<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    assert!((0.0..=1.0).contains(&p), "chance({p})");
    if p == 1.0 {
        return true;
    }
    rng.next_u64() < (p * 2.0 * (1u64 << 63) as f64) as u64
}

/// Fisher–Yates from the end (rand 0.8's `SliceRandom::shuffle`).
pub fn shuffle<T, R: Rng + ?Sized>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        items.swap(i, index(rng, i + 1));
    }
}

/// One element, uniformly (rand 0.8's `SliceRandom::choose`).
pub fn choose<'a, T, R: Rng + ?Sized>(items: &'a [T], rng: &mut R) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[index(rng, items.len())])
}

/// `amount` distinct elements (all of them when fewer) in random order (rand 0.8's
/// `SliceRandom::choose_multiple`, i.e. `seq::index::sample`).
pub fn choose_multiple<T: Copy, R: Rng + ?Sized>(items: &[T], rng: &mut R, amount: usize) -> Vec<T> {
    let amount = amount.min(items.len());
    sample_indices(rng, items.len(), amount).into_iter().map(|i| items[i]).collect()
}

/// One element with probability proportional to `weight` (rand 0.8's
/// `SliceRandom::choose_weighted` over f64 weights). None when empty, a weight is negative or NaN,
/// or all are zero.
pub fn choose_weighted<'a, T, R: Rng + ?Sized>(
    items: &'a [T],
    rng: &mut R,
    weight: impl Fn(&T) -> f64,
) -> Option<&'a T> {
    let mut weights = items.iter().map(weight);
    let mut total = weights.next()?;
    if total.is_nan() || total < 0.0 {
        return None;
    }
    let mut cumulative = Vec::with_capacity(items.len() - 1);
    for w in weights {
        if w.is_nan() || w < 0.0 {
            return None;
        }
        cumulative.push(total);
        total += w;
    }
    if total == 0.0 {
        return None;
    }
    let chosen = UniformF64::new(0.0, total).sample(rng);
    Some(&items[cumulative.partition_point(|w| *w <= chosen)])
}

/// rand 0.8's `Uniform<f64>` over `[low, high)`, as `WeightedIndex` draws with it.
struct UniformF64 {
    low: f64,
    scale: f64,
}

impl UniformF64 {
    fn new(low: f64, high: f64) -> Self {
        assert!(low < high, "UniformF64::new({low}, {high})");
        let max_rand = f64::from_bits((u64::MAX >> 12) | (1023 << 52)) - 1.0;
        let mut scale = high - low;
        assert!(scale.is_finite(), "UniformF64::new: range overflow");
        while scale * max_rand + low >= high {
            scale = f64::from_bits(scale.to_bits() - 1);
        }
        UniformF64 { low, scale }
    }

    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let value1_2 = f64::from_bits((rng.next_u64() >> 12) | (1023 << 52));
        (value1_2 - 1.0) * self.scale + self.low
    }
}

/// rand 0.8's `seq::index::sample`: `amount` distinct indices below `length`, in random order,
/// by the algorithm it picks for those sizes.
fn sample_indices<R: Rng + ?Sized>(rng: &mut R, length: usize, amount: usize) -> Vec<usize> {
    assert!(amount <= length, "amount {amount} > length {length}");
    if length > u32::MAX as usize {
        return sample_rejection_usize(rng, length, amount);
    }
    let (length, amount) = (length as u32, amount as u32);
    let big = usize::from(length >= 500_000);
    let indices = if amount < 163 {
        const C: [[f32; 2]; 2] = [[1.6, 8.0 / 45.0], [10.0, 70.0 / 9.0]];
        let m4 = C[0][big] * amount as f32;
        if amount > 11 && (length as f32) < (C[1][big] + m4) * amount as f32 {
            sample_inplace(rng, length, amount)
        } else {
            sample_floyd(rng, length, amount)
        }
    } else {
        const C: [f32; 2] = [270.0, 330.0 / 9.0];
        if (length as f32) < C[big] * amount as f32 {
            sample_inplace(rng, length, amount)
        } else {
            sample_rejection_u32(rng, length, amount)
        }
    };
    indices.into_iter().map(|i| i as usize).collect()
}

fn sample_floyd<R: Rng + ?Sized>(rng: &mut R, length: u32, amount: u32) -> Vec<u32> {
    let floyd_shuffle = amount < 50;
    let mut indices = Vec::with_capacity(amount as usize);
    for j in length - amount..length {
        let t = u32_inclusive(rng, 0, j);
        if floyd_shuffle {
            if let Some(pos) = indices.iter().position(|&x| x == t) {
                indices.insert(pos, j);
                continue;
            }
        } else if indices.contains(&t) {
            indices.push(j);
            continue;
        }
        indices.push(t);
    }
    if !floyd_shuffle {
        for i in (1..amount).rev() {
            indices.swap(i as usize, u32_inclusive(rng, 0, i) as usize);
        }
    }
    indices
}

fn sample_inplace<R: Rng + ?Sized>(rng: &mut R, length: u32, amount: u32) -> Vec<u32> {
    let mut indices: Vec<u32> = (0..length).collect();
    for i in 0..amount {
        let j = u32_inclusive(rng, i, length - 1);
        indices.swap(i as usize, j as usize);
    }
    indices.truncate(amount as usize);
    indices
}

/// rand 0.8's `Uniform::new(0, length)` sampled repeatedly (the exact rejection zone, unlike
/// `gen_range`), skipping repeats.
fn sample_rejection_u32<R: Rng + ?Sized>(rng: &mut R, length: u32, amount: u32) -> Vec<u32> {
    let zone = u32::MAX - (u32::MAX - length + 1) % length;
    let mut seen = std::collections::HashSet::with_capacity(amount as usize);
    let mut indices = Vec::with_capacity(amount as usize);
    while indices.len() < amount as usize {
        let m = u64::from(rng.next_u32()) * u64::from(length);
        if (m as u32) <= zone && seen.insert((m >> 32) as u32) {
            indices.push((m >> 32) as u32);
        }
    }
    indices
}

fn sample_rejection_usize<R: Rng + ?Sized>(rng: &mut R, length: usize, amount: usize) -> Vec<usize> {
    let range = length as u64;
    let zone = u64::MAX - (u64::MAX - range + 1) % range;
    let mut seen = std::collections::HashSet::with_capacity(amount);
    let mut indices = Vec::with_capacity(amount);
    while indices.len() < amount {
        let m = u128::from(rng.next_u64()) * u128::from(range);
        if (m as u64) <= zone && seen.insert((m >> 64) as usize) {
            indices.push((m >> 64) as usize);
        }
    }
    indices
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values were drawn with rand 0.8.5 / rand_chacha 0.3 (`shuffle`, `gen_range`,
    // `choose_multiple`, `choose`, `choose_weighted`, `gen::<f64>`, `gen_bool`) from the same seeds.

    #[test]
    fn the_chacha8_stream_and_the_draws_are_rand_0_8s() {
        let mut v: Vec<usize> = (0..12).collect();
        shuffle(&mut v, &mut derive_rng(7, &["epoch", "0"]));
        assert_eq!(v, [3, 10, 0, 2, 4, 9, 1, 8, 5, 7, 11, 6]);

        let mut rng = derive_rng(7, &["select", "1", "0"]);
        let b: Vec<usize> = (0..6).map(|_| below(&mut rng, 1000)).collect();
        assert_eq!(b, [779, 503, 346, 251, 159, 172]);

        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let items: Vec<usize> = (0..30).collect();
        assert_eq!(choose_multiple(&items, &mut rng, 2), [3, 18]);
        assert_eq!(
            choose_multiple(&items, &mut rng, 20),
            [19, 3, 27, 11, 24, 7, 4, 20, 14, 26, 16, 6, 22, 9, 25, 2, 0, 29, 23, 18]
        );
        let c: Vec<usize> = (0..5).map(|_| *choose(&items, &mut rng).unwrap()).collect();
        assert_eq!(c, [22, 28, 24, 0, 7]);

        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let w = [0.5, 2.0, 0.0, 1.0];
        let cw: Vec<usize> = (0..8).map(|_| *choose_weighted(&[0, 1, 2, 3], &mut rng, |&i| w[i]).unwrap()).collect();
        assert_eq!(cw, [3, 0, 3, 3, 1, 3, 0, 1]);

        let mut rng = ChaCha8Rng::seed_from_u64(5);
        assert_eq!([unit(&mut rng), unit(&mut rng)], [0.20124970334780368, 0.7151805398233817]);
        let ch: Vec<bool> = (0..8).map(|_| chance(&mut rng, 0.5)).collect();
        assert_eq!(ch, [false, false, true, true, false, false, false, false]);
    }

    #[test]
    fn nothing_to_choose_from_gives_none() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(choose::<usize, _>(&[], &mut rng).is_none());
        assert!(choose_weighted::<usize, _>(&[], &mut rng, |_| 1.0).is_none());
        assert!(choose_weighted(&[1, 2], &mut rng, |_| 0.0).is_none());
        assert!(choose_weighted(&[1, 2], &mut rng, |_| f64::NAN).is_none());
        assert_eq!(choose_multiple(&[1, 2], &mut rng, 5).len(), 2);
    }
}
