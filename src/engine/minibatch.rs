//! Epoch-shuffled minibatches over the train split (gepa `EpochShuffledBatchSampler`).
//!
//! Minibatch k is a pure function of (seed, k): epoch e = k*size / padded_len is shuffled with an
//! RNG derived from (seed, e), so nothing about the sampler needs saving to resume.
//!
//! When a person excludes train examples, a new era of the sampler begins at the first minibatch
//! drawn after it (`era_minibatch`): the same walk over the examples left, its epochs counted
//! from the era's start and shuffled with RNGs that also name that start. See `data_fixes.rs`.

use super::rng::{derive_rng, shuffle};

/// The train indices of minibatch number `k` (0-based, counted over the whole run).
pub fn minibatch(seed: u64, n_train: usize, size: usize, k: u64) -> Vec<usize> {
    walk(seed, None, n_train, size, k)
}

/// Minibatch `k` (counted over the whole run, `k >= from`) of the era that began at minibatch
/// `from`, over `n_left` examples (indices into the examples left, in file order): minibatch
/// `from` starts that era's first epoch.
pub fn era_minibatch(seed: u64, from: u64, n_left: usize, size: usize, k: u64) -> Vec<usize> {
    walk(seed, Some(from), n_left, size, k.saturating_sub(from))
}

fn walk(seed: u64, era: Option<u64>, n_train: usize, size: usize, k: u64) -> Vec<usize> {
    assert!(n_train > 0 && size > 0);
    let order = epoch_order(seed, era, n_train, size, 0);
    let len = order.len() as u64;
    let start = k * size as u64;
    let epoch = start / len;
    let order = if epoch == 0 { order } else { epoch_order(seed, era, n_train, size, epoch) };
    let offset = (start % len) as usize;
    order[offset..offset + size].to_vec()
}

/// One epoch's shuffled order, padded to a multiple of `size` with the least used ids. As in gepa,
/// ties among least-used go to the most recently appended, i.e. padding walks back from the end.
fn epoch_order(seed: u64, era: Option<u64>, n_train: usize, size: usize, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n_train).collect();
    let epoch = epoch.to_string();
    let mut rng = match era {
        None => derive_rng(seed, &["epoch", &epoch]),
        Some(from) => derive_rng(seed, &["epoch", &epoch, "era", &from.to_string()]),
    };
    shuffle(&mut order, &mut rng);
    let rem = n_train % size;
    if rem != 0 {
        let pad = size - rem;
        for i in 0..pad {
            order.push(order[n_train - 1 - (i % n_train)]);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_covers_every_example_once() {
        let mut seen: Vec<usize> = (0..4).flat_map(|k| minibatch(3, 12, 3, k)).collect();
        seen.sort();
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn padding_repeats_from_the_end_and_epochs_differ() {
        // 10 examples, size 3 -> padded to 12; epoch 0 = minibatches 0..4.
        let e0: Vec<usize> = (0..4).flat_map(|k| minibatch(1, 10, 3, k)).collect();
        assert_eq!(e0.len(), 12);
        assert_eq!(e0[10], e0[9]);
        assert_eq!(e0[11], e0[8]);
        let e1: Vec<usize> = (4..8).flat_map(|k| minibatch(1, 10, 3, k)).collect();
        assert_ne!(e0, e1);
        assert_eq!(minibatch(1, 10, 3, 5), minibatch(1, 10, 3, 5));
    }

    /// An era that starts at minibatch 7 walks a full epoch of the examples left from there: every
    /// one of them once in the next four minibatches, whatever position the old walk was at.
    #[test]
    fn an_era_starts_a_fresh_epoch_over_the_examples_left() {
        let mut seen: Vec<usize> = (7..11).flat_map(|k| era_minibatch(3, 7, 11, 3, k)).collect();
        assert_eq!(seen.len(), 12);
        seen.sort();
        seen.dedup();
        assert_eq!(seen, (0..11).collect::<Vec<_>>());
        // Another start is another shuffle; the same start is the same one.
        assert_ne!(era_minibatch(3, 7, 11, 3, 7), era_minibatch(3, 8, 11, 3, 8));
        assert_eq!(era_minibatch(3, 7, 11, 3, 9), era_minibatch(3, 7, 11, 3, 9));
    }
}
