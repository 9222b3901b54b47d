//! What the committed state says of itself: val means, the best, the fronts and their holders,
//! the objectives' bests and the non-dominated set (result.json's report).

use super::{CandidateRecord, RunState};
use crate::engine::event::ObjectiveBest;
use crate::engine::pareto::{non_dominated, CandidateId};
use crate::project::config::Frontier;
use std::collections::{BTreeMap, BTreeSet};

/// What result.json says of the objectives: the frontier, each objective's best, and the
/// candidates no other beats on everything at once.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ObjectiveReport {
    /// The fronts selection worked over (absent: `instance`).
    #[serde(default, skip_serializing_if = "Frontier::is_instance")]
    pub frontier: Frontier,
    /// Per objective: the candidate with the best val mean on it, and that mean shown the natural
    /// way round (tokens and USD as counted, lower is better for them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objectives: BTreeMap<String, ObjectiveResult>,
    /// The candidates no other beats on the main val mean and every objective at once (at least
    /// as good on all, better on one). Empty without objectives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_dominated: Vec<CandidateId>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ObjectiveResult {
    pub best_candidate: CandidateId,
    pub value: f64,
    pub lower_is_better: bool,
}

impl RunState {
    pub fn val_means(&self) -> Vec<f64> {
        self.candidates.iter().map(|c| c.val_mean).collect()
    }

    /// Highest val mean; the earliest on ties.
    pub fn best(&self) -> Option<CandidateId> {
        if self.candidates.is_empty() {
            return None;
        }
        Some(crate::engine::select::idxmax(&self.val_means()))
    }

    pub fn best_val(&self) -> f64 {
        self.best().map(|b| self.candidates[b].val_mean).unwrap_or(0.0)
    }

    /// The holders of each front the run's `frontier` selects over, as gepa's
    /// `_get_pareto_front_mapping` (core/state.py): parent selection, domination removal and the
    /// merge pool all take these.
    pub fn front_sets(&self) -> Vec<BTreeSet<CandidateId>> {
        // An excluded val example has no front (as if it were not in val).
        let instance = || {
            self.fronts.entries.iter().enumerate().filter(|(i, _)| self.val_counted(*i)).map(|(_, e)| e.holders.clone())
        };
        let objective = || self.objective_fronts.values().map(|e| e.holders.clone());
        match self.frontier {
            Frontier::Instance => instance().collect(),
            Frontier::Objective => objective().collect(),
            Frontier::Hybrid => instance().chain(objective()).collect(),
            Frontier::Cartesian => self.cartesian_fronts.values().map(|e| e.holders.clone()).collect(),
        }
    }

    /// How many fronts the run's `frontier` selects over (`front_sets().len()`, without building them).
    pub fn front_count(&self) -> usize {
        let instance = self.fronts.entries.len() - self.data.excluded_val.len().min(self.fronts.entries.len());
        let objective = self.objective_fronts.len();
        match self.frontier {
            Frontier::Instance => instance,
            Frontier::Objective => objective,
            Frontier::Hybrid => instance + objective,
            Frontier::Cartesian => self.cartesian_fronts.len(),
        }
    }

    /// How many of the selected fronts (`front_sets`) each candidate holds.
    pub fn fronts_held(&self) -> BTreeMap<CandidateId, usize> {
        let mut freq = BTreeMap::new();
        for f in self.front_sets() {
            for c in f {
                *freq.entry(c).or_insert(0) += 1;
            }
        }
        freq
    }

    /// Every objective some scored candidate has, by name.
    pub fn objective_names(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self.candidates.iter().flat_map(|c| c.objectives.keys()).collect();
        names.into_iter().cloned().collect()
    }

    /// The candidate with the highest val mean on `objective` (the earliest on ties) and that mean.
    pub fn objective_best(&self, objective: &str) -> Option<(CandidateId, f64)> {
        let mut best: Option<(CandidateId, f64)> = None;
        for c in &self.candidates {
            if let Some(v) = c.objectives.get(objective) {
                if best.is_none_or(|(_, b)| *v > b) {
                    best = Some((c.id, *v));
                }
            }
        }
        best
    }

    /// Every objective's best candidate and its val mean (as recorded, higher is better).
    pub fn objective_bests(&self) -> BTreeMap<String, ObjectiveBest> {
        self.objective_names()
            .into_iter()
            .filter_map(|n| self.objective_best(&n).map(|(candidate, value)| (n, ObjectiveBest { candidate, value })))
            .collect()
    }

    /// result.json's account of the objectives.
    pub fn objective_report(&self) -> ObjectiveReport {
        let bests = self.objective_bests();
        ObjectiveReport {
            frontier: self.frontier,
            non_dominated: if bests.is_empty() { Vec::new() } else { self.non_dominated() },
            objectives: bests
                .into_iter()
                .map(|(n, b)| {
                    let r = ObjectiveResult {
                        best_candidate: b.candidate,
                        value: crate::eval::objective::natural(&n, b.value),
                        lower_is_better: crate::eval::objective::lower_is_better(&n),
                    };
                    (n, r)
                })
                .collect(),
        }
    }

    /// The scored candidates no other one beats on the main val mean and every objective at once
    /// (at least as good on all, better on one); a missing objective counts as the worst.
    pub fn non_dominated(&self) -> Vec<CandidateId> {
        let names = self.objective_names();
        let scored: Vec<&CandidateRecord> = self.candidates.iter().filter(|c| !c.val_scores.is_empty()).collect();
        let points: Vec<Vec<f64>> = scored
            .iter()
            .map(|c| {
                std::iter::once(c.val_mean)
                    .chain(names.iter().map(|n| c.objectives.get(n).copied().unwrap_or(f64::NEG_INFINITY)))
                    .collect()
            })
            .collect();
        non_dominated(&points).into_iter().map(|i| scored[i].id).collect()
    }
}
