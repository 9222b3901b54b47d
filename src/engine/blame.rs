//! Where each line of a candidate's text came from: the candidate (and round) that first wrote
//! it, followed down the lineage from the seed with the same line diff the Candidate view uses
//! (`similar`), and what wrote that candidate — a reflection (the minibatch it read, its
//! feedback, a person's guidance) or a person's own edit.

use super::event::{Event, Origin};
use super::pareto::CandidateId;
use super::state::{CommitBuffer, RunState};
use std::collections::BTreeMap;

/// One line of a candidate's text and the candidate that first wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlameLine {
    pub text: String,
    pub by: CandidateId,
}

/// What wrote a candidate's new lines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Author {
    pub round: u64,
    pub origin: Option<Origin>,
    /// The candidate it was made from (the first parent).
    pub parent: Option<CandidateId>,
    /// A person's note: why they added it (a hand edit), or how a review item got here.
    pub note: Option<String>,
    /// The reflection that wrote it, per component it rewrote: the minibatch it read and each
    /// example's feedback.
    pub reflections: BTreeMap<String, Vec<(String, String)>>,
    /// The note a person guided its reflection with.
    pub guided: Option<String>,
}

impl Author {
    /// Who wrote it, in a few words: "the seed", "a reflection in round 3", "a person (note)".
    pub fn describe(&self, id: CandidateId) -> String {
        match self.origin {
            None | Some(Origin::Seed) => format!("#{id}: the seed"),
            Some(Origin::Human) => format!(
                "#{id}: written by a person in round {}{}",
                self.round,
                self.note.as_deref().map(|n| format!(" ({})", crate::text::sanitize(n))).unwrap_or_default()
            ),
            Some(Origin::Merge) => format!("#{id}: a merge in round {}", self.round),
            Some(Origin::Mutation) => {
                let mut s = format!(
                    "#{id}: a reflection in round {} on #{}",
                    self.round,
                    self.parent.map(|p| p.to_string()).unwrap_or_default()
                );
                if let Some(g) = &self.guided {
                    s.push_str(&format!(", guided by a person: \"{}\"", crate::text::sanitize(g)));
                }
                if let Some(n) = &self.note {
                    s.push_str(&format!(" ({})", crate::text::sanitize(n)));
                }
                s
            }
        }
    }
}

/// Component `component` of candidate `id`, line by line, each with the candidate that first
/// wrote it. The lineage is followed through each candidate's first parent, or for a merge the
/// parent whose text of this component it took.
pub fn blame(state: &RunState, id: CandidateId, component: &str) -> Vec<BlameLine> {
    let text_of = |c: CandidateId| state.candidates.get(c).and_then(|r| r.texts.get(component)).map(String::as_str);
    // The path from the root to `id`.
    let mut path = vec![id];
    let mut at = id;
    while let Some(rec) = state.candidates.get(at) {
        let from = rec
            .parents
            .iter()
            .copied()
            .find(|p| text_of(*p) == text_of(at))
            .or_else(|| rec.parents.first().copied())
            .filter(|p| *p < at && !path.contains(p));
        match from {
            Some(p) => {
                path.push(p);
                at = p;
            }
            None => break,
        }
    }
    path.reverse();
    let mut lines: Vec<BlameLine> = Vec::new();
    let mut prev: Option<&str> = None;
    for c in path {
        let Some(text) = text_of(c) else { continue };
        lines = match prev {
            None => text.lines().map(|l| BlameLine { text: l.to_string(), by: c }).collect(),
            Some(before) => {
                // Lines compare as lines: the last one with or without its newline.
                let ended = |t: &str| if t.ends_with('\n') { t.to_string() } else { format!("{t}\n") };
                let (before, after) = (ended(before), ended(text));
                let diff = similar::TextDiff::from_lines(&before, &after);
                let mut old = lines.into_iter();
                let mut next = Vec::new();
                for change in diff.iter_all_changes() {
                    match change.tag() {
                        similar::ChangeTag::Equal => {
                            if let Some(l) = old.next() {
                                next.push(l);
                            }
                        }
                        similar::ChangeTag::Delete => {
                            old.next();
                        }
                        similar::ChangeTag::Insert => next
                            .push(BlameLine { text: change.value().trim_end_matches(['\n', '\r']).to_string(), by: c }),
                    }
                }
                next
            }
        };
        prev = Some(text);
    }
    lines
}

/// What wrote each candidate, from the run's committed events.
pub fn authors(events: &[Event]) -> BTreeMap<CandidateId, Author> {
    let mut commits = CommitBuffer::default();
    let committed: Vec<&Event> = events.iter().flat_map(|ev| commits.feed(ev, ev)).collect();
    let mut out = BTreeMap::new();
    // Reflections and guidance by (round, slot), to find the ones that wrote each child.
    let mut wrote: BTreeMap<(u64, String, String), Vec<(String, String)>> = BTreeMap::new();
    let mut guides: BTreeMap<(u64, CandidateId), String> = BTreeMap::new();
    let mut minibatches: BTreeMap<(u64, usize), Vec<String>> = BTreeMap::new();
    for ev in &committed {
        match ev {
            Event::Reflection { round, slot, component, dataset, new_text, .. } => {
                // The records are the minibatch's examples, in order.
                let ids = minibatches.get(&(*round, *slot));
                let fed = dataset
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let id = ids.and_then(|m| m.get(i)).cloned().unwrap_or_else(|| format!("example {}", i + 1));
                        (id, r.feedback.clone())
                    })
                    .collect();
                wrote.insert((*round, component.clone(), new_text.clone()), fed);
            }
            Event::RoundStarted { round, proposals, .. } => {
                for p in proposals {
                    minibatches.insert((*round, p.slot), p.minibatch.clone());
                    if let Some(g) = &p.guide {
                        guides.insert((*round, p.parent), g.note.clone());
                    }
                }
            }
            Event::CandidateAdded { id, texts, parents, origin, changed, round, note, .. } => {
                let mut a = Author {
                    round: *round,
                    origin: Some(*origin),
                    parent: parents.first().copied(),
                    note: note.clone(),
                    ..Default::default()
                };
                for c in changed {
                    if let Some(fed) = texts.get(c).and_then(|t| wrote.get(&(*round, c.clone(), t.clone()))) {
                        a.reflections.insert(c.clone(), fed.clone());
                    }
                }
                if let Some(p) = a.parent {
                    a.guided = guides.get(&(*round, p)).cloned();
                }
                out.insert(*id, a);
            }
            _ => {}
        }
    }
    out
}

/// The blame of every component of candidate `id` as plain text (`gepa-tui export --blame`):
/// each line prefixed with the candidate that wrote it, then who wrote each of those candidates.
pub fn plain_text(state: &RunState, authors: &BTreeMap<CandidateId, Author>, id: CandidateId) -> String {
    let mut out = String::new();
    let mut who: Vec<CandidateId> = Vec::new();
    let Some(cand) = state.candidates.get(id) else { return out };
    for name in cand.texts.keys() {
        out.push_str(&format!("── {} of candidate #{id} ──\n", crate::text::sanitize(name)));
        for line in blame(state, id, name) {
            let round = state.candidates.get(line.by).map_or(0, |c| c.round);
            out.push_str(&format!("#{:<3} r{:<3} │ {}\n", line.by, round, crate::text::sanitize(&line.text)));
            if !who.contains(&line.by) {
                who.push(line.by);
            }
        }
        out.push('\n');
    }
    who.sort();
    out.push_str("── who wrote the lines ──\n");
    for c in who {
        let a = authors.get(&c).cloned().unwrap_or_default();
        out.push_str(&a.describe(c));
        out.push('\n');
        for (component, fed) in &a.reflections {
            out.push_str(&format!("   it read, for {}:\n", crate::text::sanitize(component)));
            for (example, feedback) in fed {
                out.push_str(&format!(
                    "     {}: {}\n",
                    crate::text::sanitize(example),
                    crate::text::truncate_chars(&crate::text::sanitize(feedback).replace('\n', " "), 160)
                ));
            }
        }
    }
    out
}
