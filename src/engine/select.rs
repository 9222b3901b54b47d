//! Parent selection strategies (gepa `strategies/candidate_selector.py`).

use super::pareto::{dominators, CandidateId};
use super::rng::{below, unit};
use crate::project::config::{AcceptPerRound, CandidateSelection};
use crate::project::Candidate;
use rand::Rng;
use std::collections::BTreeSet;

/// Index of the highest score; the first one on ties (Python's `lst.index(max(lst))`).
pub fn idxmax(scores: &[f64]) -> CandidateId {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}

/// Samples a survivor of domination removal with probability proportional to the fronts it holds.
pub fn sample_pareto<R: Rng>(fronts: &[BTreeSet<CandidateId>], scores: &[f64], rng: &mut R) -> CandidateId {
    let weighted = dominators(fronts, scores);
    let total: usize = weighted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        // No fronts held at all (an empty val set cannot happen; kept total for safety).
        return idxmax(scores);
    }
    let mut pick = below(rng, total);
    for (c, n) in &weighted {
        if pick < *n {
            return *c;
        }
        pick -= n;
    }
    unreachable!("pick < total")
}

/// Chooses the parent for one proposal. `fronts` are the holders per val example, `scores` each
/// candidate's val mean.
pub fn select_parent<R: Rng>(
    strategy: CandidateSelection,
    fronts: &[BTreeSet<CandidateId>],
    scores: &[f64],
    epsilon: f64,
    top_k: usize,
    rng: &mut R,
) -> CandidateId {
    match strategy {
        CandidateSelection::Pareto => sample_pareto(fronts, scores, rng),
        CandidateSelection::CurrentBest => idxmax(scores),
        CandidateSelection::EpsilonGreedy => {
            if unit(rng) < epsilon {
                below(rng, scores.len())
            } else {
                idxmax(scores)
            }
        }
        CandidateSelection::TopKPareto => {
            // Restrict the fronts to the k best by val mean, as gepa's TopKParetoCandidateSelector.
            let mut order: Vec<CandidateId> = (0..scores.len()).collect();
            order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
            let top: BTreeSet<CandidateId> = order.into_iter().take(top_k.max(1)).collect();
            let filtered: Vec<BTreeSet<CandidateId>> = fronts
                .iter()
                .map(|f| f.intersection(&top).copied().collect())
                .filter(|f: &BTreeSet<_>| !f.is_empty())
                .collect();
            if filtered.is_empty() {
                idxmax(scores)
            } else {
                sample_pareto(&filtered, scores, rng)
            }
        }
    }
}

/// Which proposals of a round that passed their minibatch test go on to val: per slot, the
/// child's texts and its minibatch gain when it passed. gepa strategies/proposal_selection.py:
/// `best` is BestImprovement (the largest gain, the earliest slot on ties), `all`
/// AllImprovements, `top_k` TopKImprovements (sorted by gain, largest first, stable: the earlier
/// slot on ties; the first k). As gepa's engine does after selecting (core/engine.py,
/// `_run_reflective_batch`), a child whose texts an earlier chosen one has is dropped.
pub fn select_passing(passed: &[Option<(&Candidate, f64)>], mode: AcceptPerRound, k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..passed.len()).filter(|&i| passed[i].is_some()).collect();
    let gain = |i: usize| passed[i].map_or(f64::NEG_INFINITY, |p| p.1);
    let take = match mode {
        AcceptPerRound::All => order.len(),
        AcceptPerRound::Best => 1,
        AcceptPerRound::TopK => k,
    };
    if mode != AcceptPerRound::All {
        // `sort_by` is stable, as Python's `sort(reverse=True)`.
        order.sort_by(|a, b| gain(*b).total_cmp(&gain(*a)));
    }
    order.truncate(take);
    let mut chosen = vec![false; passed.len()];
    let mut kept: Vec<&Candidate> = Vec::new();
    for i in order {
        let texts = passed[i].expect("passed").0;
        if !kept.contains(&texts) {
            chosen[i] = true;
            kept.push(texts);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn set(v: &[usize]) -> BTreeSet<usize> {
        v.iter().copied().collect()
    }

    /// Fronts e0={0,1}, e1={1}, e2={2}, e3={2}; scores c0=0.3, c1=0.6, c2=0.55.
    /// c0 is dominated (its only front also holds c1). Survivors: c1 holds 2 fronts, c2 holds 2.
    /// So c0 is never picked and c1, c2 each come up about half the time.
    #[test]
    fn pareto_samples_survivors_in_proportion_to_fronts() {
        let fronts = vec![set(&[0, 1]), set(&[1]), set(&[2]), set(&[2])];
        let scores = vec![0.3, 0.6, 0.55];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            counts[select_parent(CandidateSelection::Pareto, &fronts, &scores, 0.1, 5, &mut rng)] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!((1700..2300).contains(&counts[1]), "{counts:?}");
        assert!((1700..2300).contains(&counts[2]), "{counts:?}");
    }

    /// Survivors c1 (3 fronts) and c2 (1 front): c1 is picked ~3/4 of the time.
    #[test]
    fn pareto_weights_by_front_count() {
        let fronts = vec![set(&[1]), set(&[1]), set(&[1]), set(&[2])];
        let scores = vec![0.0, 0.7, 0.3];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n1 = (0..4000)
            .filter(|_| select_parent(CandidateSelection::Pareto, &fronts, &scores, 0.1, 5, &mut rng) == 1)
            .count();
        assert!((2800..3200).contains(&n1), "{n1}");
    }

    #[test]
    fn current_best_takes_first_maximum() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let s = vec![0.2, 0.8, 0.8];
        assert_eq!(select_parent(CandidateSelection::CurrentBest, &[], &s, 0.1, 5, &mut rng), 1);
    }

    /// top_k = 1 keeps only the best candidate (c2) on the fronts; fronts it is not on are dropped.
    #[test]
    fn top_k_restricts_to_best() {
        let fronts = vec![set(&[0]), set(&[1]), set(&[2])];
        let s = vec![0.2, 0.5, 0.9];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            assert_eq!(select_parent(CandidateSelection::TopKPareto, &fronts, &s, 0.1, 1, &mut rng), 2);
        }
    }

    fn texts(t: &str) -> Candidate {
        [("p".to_string(), t.to_string())].into()
    }

    /// Gains 1, 3, 3 (the same texts as slot 1), 2, and a failed slot: TopKImprovements(2) sorts
    /// 3, 3, 2, 1 and takes slots 1 and 2; slot 2 repeats slot 1's texts, so only slot 1 goes on
    /// (gepa dedupes after selecting). k = 3 adds slot 3; `best` is slot 1; `all` every passing
    /// slot but the copy.
    #[test]
    fn passing_proposals_are_selected_as_gepas_strategies_do() {
        let (a, b, c, d) = (texts("a"), texts("b"), texts("c"), texts("d"));
        let passed = [Some((&a, 1.0)), Some((&b, 3.0)), Some((&b, 3.0)), Some((&c, 2.0)), None];
        let pick = |mode, k| select_passing(&passed, mode, k);
        assert_eq!(pick(AcceptPerRound::TopK, 2), [false, true, false, false, false]);
        assert_eq!(pick(AcceptPerRound::TopK, 3), [false, true, false, true, false]);
        assert_eq!(pick(AcceptPerRound::Best, 9), [false, true, false, false, false]);
        assert_eq!(pick(AcceptPerRound::All, 9), [true, true, false, true, false]);
        // Ties in gain go to the earlier slot.
        let tied = [Some((&c, 2.0)), Some((&d, 2.0)), Some((&a, 2.0))];
        assert_eq!(select_passing(&tied, AcceptPerRound::TopK, 2), [true, true, false]);
    }

    #[test]
    fn epsilon_greedy_mostly_exploits() {
        let s = vec![0.2, 0.9, 0.1];
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let best = (0..1000)
            .filter(|_| select_parent(CandidateSelection::EpsilonGreedy, &[], &s, 0.1, 5, &mut rng) == 1)
            .count();
        // 90% exploit + 10% * 1/3 random hits on the best.
        assert!((900..970).contains(&best), "{best}");
    }
}
