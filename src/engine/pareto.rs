//! Pareto fronts (per val example, per objective, per (example, objective)) and the reference's
//! domination filter.

use std::collections::{BTreeMap, BTreeSet};

pub type CandidateId = usize;

/// The best score seen on one val example and every candidate holding it.
/// Ties are kept (equal adds, strictly greater replaces), as in gepa's `update_pareto_front`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrontEntry {
    pub best: f64,
    pub holders: BTreeSet<CandidateId>,
}

impl FrontEntry {
    /// A front nobody holds yet.
    pub fn empty() -> Self {
        FrontEntry { best: f64::NEG_INFINITY, holders: BTreeSet::new() }
    }

    /// Offers a candidate's score: strictly greater replaces the holders, equal joins them.
    pub fn offer(&mut self, candidate: CandidateId, score: f64) {
        if score > self.best {
            self.best = score;
            self.holders.clear();
            self.holders.insert(candidate);
        } else if score == self.best {
            self.holders.insert(candidate);
        }
    }
}

/// Fronts keyed by an objective's name, or by (val example index, objective name): gepa's
/// `program_at_pareto_front_objectives` and `program_at_pareto_front_cartesian` (core/state.py).
pub type KeyedFronts<K> = BTreeMap<K, FrontEntry>;

/// Offers a score to the front under `key`, creating it on first sight.
pub fn offer_keyed<K: Ord>(fronts: &mut KeyedFronts<K>, key: K, candidate: CandidateId, score: f64) {
    fronts.entry(key).or_insert_with(FrontEntry::empty).offer(candidate, score);
}

/// Indices of the points no other point dominates: another point dominates one when it is at
/// least as good on every coordinate and better on one (higher is better; equal points are all
/// kept).
pub fn non_dominated(points: &[Vec<f64>]) -> Vec<usize> {
    let dominates = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y);
    (0..points.len()).filter(|&i| !points.iter().any(|q| dominates(q, &points[i]))).collect()
}

/// One front per val example, indexed like the val split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParetoFronts {
    pub entries: Vec<FrontEntry>,
}

impl ParetoFronts {
    pub fn new(n_val: usize) -> Self {
        Self { entries: vec![FrontEntry::empty(); n_val] }
    }

    /// Records a candidate's score on val example `idx`.
    pub fn update(&mut self, idx: usize, candidate: CandidateId, score: f64) {
        self.entries[idx].offer(candidate, score);
    }

    /// How many fronts each candidate is on.
    pub fn fronts_held(&self) -> BTreeMap<CandidateId, usize> {
        let mut freq = BTreeMap::new();
        for e in &self.entries {
            for &c in &e.holders {
                *freq.entry(c).or_insert(0) += 1;
            }
        }
        freq
    }

    pub fn on_frontier(&self) -> BTreeSet<CandidateId> {
        self.entries.iter().flat_map(|e| e.holders.iter().copied()).collect()
    }
}

/// Drops dominated candidates from the fronts, greedily, lowest aggregate score first: a candidate is
/// dominated when every front it is on also holds another surviving candidate. Mirrors gepa's
/// `remove_dominated_programs` (programs sorted ascending by score, restart after each removal).
/// `scores[c]` is candidate c's val mean. Returns the filtered fronts (same indexing).
pub fn remove_dominated(fronts: &[BTreeSet<CandidateId>], scores: &[f64]) -> Vec<BTreeSet<CandidateId>> {
    let mut programs: Vec<CandidateId> =
        fronts.iter().flatten().copied().collect::<BTreeSet<_>>().into_iter().collect();
    // Stable sort by ascending score; ties keep ascending id order (Python's sort is stable over
    // dict insertion order, which is first appearance; ids ascend in practice).
    programs.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut dominated: BTreeSet<CandidateId> = BTreeSet::new();
    loop {
        let mut removed = false;
        for &y in &programs {
            if dominated.contains(&y) {
                continue;
            }
            let is_dominated = fronts
                .iter()
                .filter(|f| f.contains(&y))
                .all(|f| f.iter().any(|&other| other != y && !dominated.contains(&other)));
            if is_dominated {
                dominated.insert(y);
                removed = true;
                break;
            }
        }
        if !removed {
            break;
        }
    }
    fronts.iter().map(|f| f.iter().copied().filter(|c| !dominated.contains(c)).collect()).collect()
}

/// The candidates that survive domination removal, each with the number of fronts it holds,
/// in ascending id order.
pub fn dominators(fronts: &[BTreeSet<CandidateId>], scores: &[f64]) -> Vec<(CandidateId, usize)> {
    let filtered = remove_dominated(fronts, scores);
    let mut freq: BTreeMap<CandidateId, usize> = BTreeMap::new();
    for f in &filtered {
        for &c in f {
            *freq.entry(c).or_insert(0) += 1;
        }
    }
    freq.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[usize]) -> BTreeSet<usize> {
        v.iter().copied().collect()
    }

    #[test]
    fn ties_are_kept_and_strictly_greater_replaces() {
        let mut f = ParetoFronts::new(2);
        f.update(0, 0, 0.5);
        f.update(0, 1, 0.5);
        assert_eq!(f.entries[0].holders, set(&[0, 1]));
        f.update(0, 2, 0.7);
        assert_eq!(f.entries[0].holders, set(&[2]));
        f.update(0, 3, 0.6);
        assert_eq!(f.entries[0].holders, set(&[2]));
        assert_eq!(f.entries[1].holders, set(&[]));
    }

    /// Fronts: e0={0,1}, e1={1}, e2={2}. Scores: c0=0.3, c1=0.6, c2=0.5.
    /// Ascending by score: 0, 2, 1. c0 is on e0 only, and e0 also holds c1 (surviving) -> dominated.
    /// Restart: c2 is on e2 alone -> not dominated; c1 is on e1 alone -> not dominated. Stop.
    /// Survivors: c1 (2 fronts: e0, e1), c2 (1 front).
    #[test]
    fn removes_candidates_whose_every_front_has_another_holder() {
        let fronts = vec![set(&[0, 1]), set(&[1]), set(&[2])];
        let scores = vec![0.3, 0.6, 0.5];
        assert_eq!(dominators(&fronts, &scores), vec![(1, 2), (2, 1)]);
    }

    /// Two candidates tie on every front: e0={0,1}, e1={0,1}; c0=0.5, c1=0.5.
    /// Ascending (stable): 0, 1. c0: every front also holds c1 -> dominated, removed.
    /// Restart: c1: e0's other holder c0 is removed -> not dominated. Only c1 survives with 2 fronts.
    /// The greedy order matters: exactly one of a tied pair survives, never both removed.
    #[test]
    fn greedy_removal_keeps_one_of_a_tied_pair() {
        let fronts = vec![set(&[0, 1]), set(&[0, 1])];
        assert_eq!(dominators(&fronts, &[0.5, 0.5]), vec![(1, 2)]);
    }

    /// Lowest mean goes first: c1 (0.2) is checked before c0 (0.9) even though its id is larger.
    /// e0={0,1}: c1 is dominated (c0 also holds e0); c0 then stands alone.
    #[test]
    fn lowest_mean_is_removed_first() {
        let fronts = vec![set(&[0, 1])];
        assert_eq!(dominators(&fronts, &[0.9, 0.2]), vec![(0, 1)]);
    }

    /// Points (main, brevity): c0 (0.9, 0.1), c1 (0.5, 0.5), c2 (0.5, 0.4), c3 (0.9, 0.1).
    /// c2 is dominated by c1 (equal main, lower brevity); c0 and c3 are equal, neither dominates.
    #[test]
    fn non_dominated_keeps_trade_offs_and_equal_points() {
        let pts = vec![vec![0.9, 0.1], vec![0.5, 0.5], vec![0.5, 0.4], vec![0.9, 0.1]];
        assert_eq!(non_dominated(&pts), vec![0, 1, 3]);
        assert_eq!(non_dominated(&[]), Vec::<usize>::new());
    }

    /// A chain: e0={0,1}, e1={1,2}, e2={2}. Scores c0=0.1, c1=0.2, c2=0.3.
    /// c0: e0 also holds c1 -> removed. c1: e0 now holds only c1 -> survives. c2: e2 alone -> survives.
    /// Survivors: c1 (e0, e1) and c2 (e1, e2).
    #[test]
    fn chain_of_overlaps() {
        let fronts = vec![set(&[0, 1]), set(&[1, 2]), set(&[2])];
        assert_eq!(dominators(&fronts, &[0.1, 0.2, 0.3]), vec![(1, 2), (2, 2)]);
    }
}
