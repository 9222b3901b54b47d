//! Every random choice comes from an RNG derived from the run seed and a label naming the choice
//! (round, slot, purpose), so the outcome never depends on call order or timing, and resuming
//! needs no saved RNG state.

use rand::SeedableRng;
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
