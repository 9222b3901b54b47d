//! System-aware merge (gepa `proposer/merge.py`): combine two frontier candidates that descend from a
//! common ancestor, taking for each component the text that moved away from the ancestor.

use super::pareto::CandidateId;
use super::rng::{chance, choose, choose_multiple, choose_weighted};
use crate::project::Candidate;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Merges already tried, so the same one is not proposed twice (gepa's `merges_performed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeHistory {
    /// (i, j, ancestor) triplets attempted.
    pub triplets: Vec<(CandidateId, CandidateId, CandidateId)>,
    /// (i, j, which candidate each component came from) descriptions attempted.
    pub descriptions: Vec<(CandidateId, CandidateId, Vec<CandidateId>)>,
}

impl MergeHistory {
    /// Remembers a merge tried (or in flight), each triplet and description once.
    pub fn record(&mut self, id1: CandidateId, id2: CandidateId, ancestor: CandidateId, sources: &[CandidateId]) {
        if !self.triplets.contains(&(id1, id2, ancestor)) {
            self.triplets.push((id1, id2, ancestor));
        }
        let desc = (id1, id2, sources.to_vec());
        if !self.descriptions.contains(&desc) {
            self.descriptions.push(desc);
        }
    }
}

/// A merge ready to be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergePlan {
    pub id1: CandidateId,
    pub id2: CandidateId,
    pub ancestor: CandidateId,
    pub texts: Candidate,
    /// For each component (in name order), the candidate its text came from.
    pub sources: Vec<CandidateId>,
}

/// The lineage the merge rules read: texts, parents and val means of every candidate.
pub struct Lineage<'a> {
    pub texts: &'a [Candidate],
    pub parents: &'a [Vec<CandidateId>],
    pub scores: &'a [f64],
}

impl Lineage<'_> {
    fn ancestors(&self, node: CandidateId) -> BTreeSet<CandidateId> {
        let mut found = BTreeSet::new();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            for &p in &self.parents[n] {
                if found.insert(p) {
                    stack.push(p);
                }
            }
        }
        found
    }

    /// Some component equals the ancestor's in one descendant and differs between the two.
    fn has_desirable_components(&self, anc: CandidateId, i: CandidateId, j: CandidateId) -> bool {
        self.texts[anc].iter().any(|(name, a)| {
            let (ti, tj) = (&self.texts[i][name], &self.texts[j][name]);
            (a == ti || a == tj) && ti != tj
        })
    }

    fn filter_ancestors(
        &self,
        i: CandidateId,
        j: CandidateId,
        common: &BTreeSet<CandidateId>,
        h: &MergeHistory,
    ) -> Vec<CandidateId> {
        common
            .iter()
            .copied()
            .filter(|&a| !h.triplets.contains(&(i, j, a)))
            .filter(|&a| !(self.scores[a] > self.scores[i] || self.scores[a] > self.scores[j]))
            .filter(|&a| self.has_desirable_components(a, i, j))
            .collect()
    }

    fn find_common_ancestor_pair<R: Rng>(
        &self,
        rng: &mut R,
        pool: &[CandidateId],
        h: &MergeHistory,
    ) -> Option<(CandidateId, CandidateId, CandidateId)> {
        for _ in 0..10 {
            if pool.len() < 2 {
                return None;
            }
            let pair: Vec<CandidateId> = choose_multiple(pool, rng, 2);
            let (mut i, mut j) = (pair[0], pair[1]);
            if j < i {
                std::mem::swap(&mut i, &mut j);
            }
            let (ai, aj) = (self.ancestors(i), self.ancestors(j));
            if ai.contains(&j) || aj.contains(&i) {
                continue;
            }
            let common: BTreeSet<CandidateId> = ai.intersection(&aj).copied().collect();
            let common = self.filter_ancestors(i, j, &common, h);
            if !common.is_empty() {
                // Weighted by the ancestor's score, as gepa's `rng.choices(weights=agg_scores)`.
                let anc = *choose_weighted(&common, rng, |&a| self.scores[a].max(0.0) + 1e-12)
                    .expect("non-empty with positive weights");
                return Some((i, j, anc));
            }
        }
        None
    }

    /// Picks a pair from `pool` (the frontier's dominators) and builds the merged texts; records the
    /// attempt in `h`. None when no pair qualifies.
    pub fn plan_merge<R: Rng>(&self, rng: &mut R, pool: &[CandidateId], h: &mut MergeHistory) -> Option<MergePlan> {
        if pool.len() < 2 || self.texts.len() < 3 {
            return None;
        }
        for _ in 0..10 {
            let Some((id1, id2, anc)) = self.find_common_ancestor_pair(rng, pool, h) else {
                continue;
            };
            if h.triplets.contains(&(id1, id2, anc)) {
                continue;
            }
            let mut texts = self.texts[anc].clone();
            let mut sources = Vec::new();
            for (name, a) in &self.texts[anc] {
                let (t1, t2) = (&self.texts[id1][name], &self.texts[id2][name]);
                let from = if (a == t1 || a == t2) && t1 != t2 {
                    // One side kept the ancestor's text: take the side that changed it.
                    if a == t1 {
                        id2
                    } else {
                        id1
                    }
                } else if a != t1 && a != t2 {
                    // Both changed it: the better parent's, a coin flip on a tie.
                    if self.scores[id1] > self.scores[id2] {
                        id1
                    } else if self.scores[id2] > self.scores[id1] {
                        id2
                    } else if chance(rng, 0.5) {
                        id1
                    } else {
                        id2
                    }
                } else {
                    id1
                };
                texts.insert(name.clone(), self.texts[from][name].clone());
                sources.push(from);
            }
            let desc = (id1, id2, sources.clone());
            if h.descriptions.contains(&desc) {
                continue;
            }
            h.descriptions.push(desc);
            h.triplets.push((id1, id2, anc));
            return Some(MergePlan { id1, id2, ancestor: anc, texts, sources });
        }
        None
    }
}

impl Lineage<'_> {
    /// For a merge a person asked for: which of `id1`/`id2` each component should come from by the
    /// merge rules (the side that changed it from their latest common ancestor; the better one when
    /// both did; `id1` when neither did or there is no common ancestor).
    pub fn default_sources(&self, id1: CandidateId, id2: CandidateId) -> BTreeMap<String, CandidateId> {
        let common: BTreeSet<CandidateId> = self.ancestors(id1).intersection(&self.ancestors(id2)).copied().collect();
        // The latest common ancestor: ids grow with time.
        let anc = common.iter().next_back().copied();
        self.texts[id1]
            .keys()
            .map(|name| {
                let (t1, t2) = (&self.texts[id1][name], &self.texts[id2][name]);
                let from = match anc.map(|a| &self.texts[a][name]) {
                    _ if t1 == t2 => id1,
                    Some(a) if a == t1 => id2,
                    Some(a) if a == t2 => id1,
                    _ if self.scores[id2] > self.scores[id1] => id2,
                    _ => id1,
                };
                (name.clone(), from)
            })
            .collect()
    }
}

/// Val example indices to score a merge on first: up to `n` spread over where id1 wins, where id2
/// wins, and where they tie (gepa's `select_eval_subsample_for_merged_program`).
pub fn merge_subsample<R: Rng>(s1: &[f64], s2: &[f64], n: usize, rng: &mut R) -> Vec<usize> {
    let all: Vec<usize> = (0..s1.len().min(s2.len())).collect();
    let p1: Vec<usize> = all.iter().copied().filter(|&i| s1[i] > s2[i]).collect();
    let p2: Vec<usize> = all.iter().copied().filter(|&i| s2[i] > s1[i]).collect();
    let p3: Vec<usize> = all.iter().copied().filter(|&i| s1[i] == s2[i]).collect();
    let n_each = n.div_ceil(3).max(1);
    let mut selected: Vec<usize> = Vec::new();
    for bucket in [p1, p2, p3] {
        if selected.len() >= n {
            break;
        }
        let available: Vec<usize> = bucket.into_iter().filter(|i| !selected.contains(i)).collect();
        let take = available.len().min(n_each).min(n - selected.len());
        selected.extend(choose_multiple(&available, rng, take));
    }
    let remaining = n - selected.len();
    if remaining > 0 {
        let unused: Vec<usize> = all.iter().copied().filter(|i| !selected.contains(i)).collect();
        if unused.len() >= remaining {
            selected.extend(choose_multiple(&unused, rng, remaining));
        } else if !all.is_empty() {
            for _ in 0..remaining {
                selected.push(*choose(&all, rng).expect("non-empty"));
            }
        }
    }
    selected.truncate(n);
    selected
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn cand(a: &str, b: &str) -> Candidate {
        [("a".to_string(), a.to_string()), ("b".to_string(), b.to_string())].into_iter().collect()
    }

    /// Seed 0 = (A0, B0). Child 1 changed component a -> (A1, B0). Child 2 changed b -> (A0, B2).
    /// Common ancestor of 1 and 2 is 0 (score 0.2, not above either child's 0.5/0.6).
    /// Component a: ancestor equals child 2's, differs from child 1's -> take child 1's A1.
    /// Component b: ancestor equals child 1's -> take child 2's B2. Merge = (A1, B2), sources [1, 2].
    #[test]
    fn takes_each_component_from_the_side_that_changed_it() {
        let texts = vec![cand("A0", "B0"), cand("A1", "B0"), cand("A0", "B2")];
        let parents = vec![vec![], vec![0], vec![0]];
        let scores = vec![0.2, 0.5, 0.6];
        let lin = Lineage { texts: &texts, parents: &parents, scores: &scores };
        let mut h = MergeHistory::default();
        let plan = lin.plan_merge(&mut ChaCha8Rng::seed_from_u64(0), &[1, 2], &mut h).unwrap();
        assert_eq!(plan.texts, cand("A1", "B2"));
        assert_eq!((plan.id1, plan.id2, plan.ancestor), (1, 2, 0));
        assert_eq!(plan.sources, vec![1, 2]);
        // The same merge is never proposed twice.
        assert!(lin.plan_merge(&mut ChaCha8Rng::seed_from_u64(0), &[1, 2], &mut h).is_none());
    }

    /// Both children changed a: the better one (2, score 0.6) gives its text. b: only 1 changed it.
    #[test]
    fn both_changed_takes_the_better_parent() {
        let texts = vec![cand("A0", "B0"), cand("A1", "B1"), cand("A2", "B0")];
        let parents = vec![vec![], vec![0], vec![0]];
        let scores = vec![0.2, 0.5, 0.6];
        let lin = Lineage { texts: &texts, parents: &parents, scores: &scores };
        let plan = lin.plan_merge(&mut ChaCha8Rng::seed_from_u64(1), &[1, 2], &mut MergeHistory::default()).unwrap();
        assert_eq!(plan.texts, cand("A2", "B1"));
    }

    /// An ancestor scoring above a descendant is filtered out; so is a pair where one candidate
    /// descends from the other (2's parent is 1).
    #[test]
    fn refuses_better_ancestor_and_direct_lineage() {
        let texts = vec![cand("A0", "B0"), cand("A1", "B0"), cand("A0", "B2")];
        let lin = Lineage { texts: &texts, parents: &[vec![], vec![0], vec![0]], scores: &[0.7, 0.5, 0.6] };
        assert!(lin.plan_merge(&mut ChaCha8Rng::seed_from_u64(0), &[1, 2], &mut MergeHistory::default()).is_none());
        let lin = Lineage { texts: &texts, parents: &[vec![], vec![0], vec![1]], scores: &[0.2, 0.5, 0.6] };
        assert!(lin.plan_merge(&mut ChaCha8Rng::seed_from_u64(0), &[1, 2], &mut MergeHistory::default()).is_none());
    }

    /// Manual merge defaults: 1 changed a, 2 changed b (both from seed 0) -> a from 1, b from 2.
    /// Both changed a (1 better) -> a from 1.
    #[test]
    fn manual_merge_defaults_follow_the_rules() {
        let texts = vec![cand("A0", "B0"), cand("A1", "B0"), cand("A0", "B2")];
        let lin = Lineage { texts: &texts, parents: &[vec![], vec![0], vec![0]], scores: &[0.2, 0.5, 0.6] };
        let d = lin.default_sources(1, 2);
        assert_eq!((d["a"], d["b"]), (1, 2));
        let texts = vec![cand("A0", "B0"), cand("A1", "B0"), cand("A2", "B0")];
        let lin = Lineage { texts: &texts, parents: &[vec![], vec![0], vec![0]], scores: &[0.2, 0.7, 0.6] };
        assert_eq!(lin.default_sources(1, 2)["a"], 1);
    }

    /// s1 wins on 0,1; s2 wins on 2; ties on 3,4,5. n=5 -> ceil(5/3)=2 from each bucket (only 1 in p2),
    /// so 2 + 1 + 2 = 5 distinct examples covering every bucket.
    #[test]
    fn subsample_spreads_over_wins_and_ties() {
        let s1 = [1.0, 1.0, 0.0, 0.5, 0.5, 0.5];
        let s2 = [0.0, 0.0, 1.0, 0.5, 0.5, 0.5];
        let sel = merge_subsample(&s1, &s2, 5, &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(sel.len(), 5);
        assert!(sel.contains(&0) && sel.contains(&1) && sel.contains(&2));
        assert_eq!(sel.iter().collect::<BTreeSet<_>>().len(), 5);
    }
}
