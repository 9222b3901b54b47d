//! Where each line of a candidate's text came from: the candidate (and round) that first wrote
//! it, followed down the lineage from the seed with the same line diff the Candidate view uses
//! (`similar`), and what wrote that candidate — a reflection (the minibatch it read, its
//! feedback, a person's guidance) or a person's own edit. A review item a person edited before
//! approving it is two writers: its reflection's lines are the reflection's, the lines the person
//! changed are the person's.

use super::event::{Event, HumanAction, Origin, ReviewKind};
use super::pareto::CandidateId;
use super::state::{CommitBuffer, RunState};
use crate::project::Candidate;
use std::collections::BTreeMap;

/// One line of a candidate's text and what first wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlameLine {
    pub text: String,
    /// The candidate that first had it.
    pub by: CandidateId,
    /// A person wrote it (a hand edit, or an edit of a review item before approving it).
    pub by_hand: bool,
    /// The round it was written in: its reflection's, or the round a person's decision took
    /// effect in.
    pub round: u64,
}

/// The reflection that wrote a candidate (or the review item it came from).
#[derive(Debug, Clone, PartialEq)]
pub struct Reflected {
    pub round: u64,
    pub parent: CandidateId,
    /// Per component it rewrote: the minibatch's examples it read, each with its feedback.
    pub read: BTreeMap<String, Vec<(String, String)>>,
    /// The note a person guided it with.
    pub guided: Option<String>,
}

/// The review item a candidate was, and whether a person edited it before approving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reviewed {
    pub item: u64,
    pub edited: bool,
}

/// What wrote a candidate's new lines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Author {
    /// The round it joined the run in.
    pub round: u64,
    pub origin: Option<Origin>,
    /// The candidate it was made from (the first parent).
    pub parent: Option<CandidateId>,
    /// A person's note: why they added it, or how a review item got here.
    pub note: Option<String>,
    pub reflection: Option<Reflected>,
    pub review: Option<Reviewed>,
    /// For a review item a person edited: the texts proposed, before the edit.
    pub proposed: Option<Candidate>,
}

impl Author {
    /// The round the lines it wrote by hand (`by_hand`), or the others, were written in.
    pub fn written_in(&self, by_hand: bool) -> u64 {
        match &self.reflection {
            Some(r) if !by_hand => r.round,
            _ => self.round,
        }
    }

    /// Who wrote its lines (`by_hand`: the ones a person wrote), in a few words: "#0 r0: the
    /// seed", "#3 r2: a reflection in round 2 on #1", "#4 r5 ✎: written by a person in round 5".
    pub fn describe(&self, id: CandidateId, by_hand: bool) -> String {
        let s = |t: &str| crate::text::sanitize(t);
        let round = self.written_in(by_hand);
        let mark = if by_hand { " ✎" } else { "" };
        let what = match (self.origin, self.review) {
            (None | Some(Origin::Seed), _) => "the seed".to_string(),
            (_, Some(Reviewed { item, edited: true })) if by_hand => {
                format!("a person's edit in round {round} of review item {item}, before approving it")
            }
            (_, Some(Reviewed { item, edited: true })) if self.reflection.is_none() => {
                format!("what review item {item} proposed, before a person edited it")
            }
            (Some(Origin::Human), review) if !review.is_some_and(|r| r.edited) => format!(
                "written by a person in round {round}{}",
                self.note.as_deref().map(|n| format!(" ({})", s(n))).unwrap_or_default()
            ),
            (Some(Origin::Merge), _) => format!("a merge in round {round}{}", self.reviewed()),
            _ => {
                let on = self.reflection.as_ref().map(|r| r.parent).or(self.parent);
                let mut t =
                    format!("a reflection in round {round} on #{}", on.map(|p| p.to_string()).unwrap_or_default());
                if let Some(g) = self.reflection.as_ref().and_then(|r| r.guided.as_ref()) {
                    t.push_str(&format!(", guided by a person: \"{}\"", s(g)));
                }
                match (self.review, &self.note) {
                    (Some(_), _) => t.push_str(&self.reviewed()),
                    // An older log names the review item in the note only.
                    (None, Some(n)) => t.push_str(&format!(" ({})", s(n))),
                    (None, None) => {}
                }
                t
            }
        };
        format!("#{id} r{round}{mark}: {what}")
    }

    /// ", approved by a person in round 7 (review item 2)", or " (review item 2)" for an item a
    /// person edited (the edit is its own writer).
    fn reviewed(&self) -> String {
        match self.review {
            Some(Reviewed { item, edited: true }) => format!(" (review item {item})"),
            Some(Reviewed { item, edited: false }) => {
                format!(", approved by a person in round {} (review item {item})", self.round)
            }
            None => String::new(),
        }
    }
}

/// Component `component` of candidate `id`, line by line, each with what first wrote it. The
/// lineage is followed through each candidate's first parent, or the parent whose text of this
/// component it took (a merge); an edited review item is diffed in two steps, parent → what was
/// proposed (the reflection's lines) → what the person sent (theirs).
pub fn blame(
    state: &RunState,
    authors: &BTreeMap<CandidateId, Author>,
    id: CandidateId,
    component: &str,
) -> Vec<BlameLine> {
    let text_of = |c: CandidateId| state.candidates.get(c).and_then(|r| r.texts.get(component)).map(String::as_str);
    let proposed_of = |c: CandidateId| {
        authors.get(&c).and_then(|a| a.proposed.as_ref()).and_then(|t| t.get(component)).map(String::as_str)
    };
    // The path from the root to `id`.
    let mut path = vec![id];
    let mut at = id;
    while let Some(rec) = state.candidates.get(at) {
        let base = proposed_of(at).or(text_of(at));
        let from = rec
            .parents
            .iter()
            .copied()
            .find(|p| text_of(*p) == base)
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
        let author = authors.get(&c);
        let line = |t: &str, by_hand: bool| BlameLine {
            text: t.to_string(),
            by: c,
            by_hand,
            round: author.map_or_else(|| state.candidates[c].round, |a| a.written_in(by_hand)),
        };
        let hand = state.candidates[c].origin == Origin::Human;
        let steps = match proposed_of(c) {
            Some(proposed) => vec![(proposed, false), (text, true)],
            None => vec![(text, hand)],
        };
        for (after, by_hand) in steps {
            lines = match prev {
                None => after.lines().map(|l| line(l, by_hand)).collect(),
                Some(before) => rewrite(lines, before, after, |l| line(l, by_hand)),
            };
            prev = Some(after);
        }
    }
    lines
}

/// `lines` (the blame of `before`) carried to `after`: kept lines keep their writer, inserted
/// ones are `new`'s.
fn rewrite(lines: Vec<BlameLine>, before: &str, after: &str, new: impl Fn(&str) -> BlameLine) -> Vec<BlameLine> {
    // Lines compare as lines: the last one with or without its newline.
    let ended = |t: &str| if t.ends_with('\n') { t.to_string() } else { format!("{t}\n") };
    let (before, after) = (ended(before), ended(after));
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut old = lines.into_iter();
    let mut next = Vec::new();
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Equal => next.extend(old.next()),
            similar::ChangeTag::Delete => {
                old.next();
            }
            similar::ChangeTag::Insert => next.push(new(change.value().trim_end_matches(['\n', '\r']))),
        }
    }
    next
}

/// The writers of `lines` (candidate, by hand), in order, each once.
pub fn writers(lines: &[BlameLine]) -> Vec<(CandidateId, bool)> {
    let mut out: Vec<(CandidateId, bool)> = lines.iter().map(|l| (l.by, l.by_hand)).collect();
    out.sort();
    out.dedup();
    out
}

/// One round's proposals as planned: the parent, the minibatch and a person's guidance.
#[derive(Debug, Clone)]
struct Planned {
    parent: CandidateId,
    minibatch: Vec<String>,
    guided: Option<String>,
}

/// One reflection of the round being committed: its slot, component, new text and what it read.
#[derive(Debug, Clone)]
struct Wrote {
    slot: usize,
    component: String,
    new_text: String,
    read: Vec<(String, String)>,
}

/// What wrote each candidate, folded from the run's committed events (the workbench feeds it as
/// rounds commit; `authors` folds a whole log).
#[derive(Debug, Clone, Default)]
pub struct Authorship {
    pub authors: BTreeMap<CandidateId, Author>,
    /// The round being committed: its proposals by slot, and its reflections (slot, component,
    /// new text, what it read). Dropped when the round is folded.
    planned: BTreeMap<usize, Planned>,
    reflections: Vec<Wrote>,
    round: u64,
    /// Review items waiting for a decision: the reflection that wrote each, and its texts.
    pending: BTreeMap<u64, (Option<Reflected>, Candidate)>,
}

impl Authorship {
    /// Takes one committed event.
    pub fn commit(&mut self, ev: &Event) {
        match ev {
            Event::RoundStarted { round, proposals, .. } => {
                self.round = *round;
                for p in proposals {
                    let guided = p.guide.as_ref().map(|g| g.note.clone());
                    self.planned.insert(p.slot, Planned { parent: p.parent, minibatch: p.minibatch.clone(), guided });
                }
            }
            Event::Reflection { slot, component, dataset, new_text, .. } => {
                // The records are the minibatch's examples, in order.
                let ids = self.planned.get(slot).map(|p| p.minibatch.as_slice()).unwrap_or(&[]);
                let read = dataset
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let id = ids.get(i).cloned().unwrap_or_else(|| format!("example {}", i + 1));
                        (id, r.feedback.clone())
                    })
                    .collect();
                self.reflections.push(Wrote {
                    slot: *slot,
                    component: component.clone(),
                    new_text: new_text.clone(),
                    read,
                });
            }
            Event::ReviewQueued { item } => {
                let reflected = match (item.kind, item.parents.first()) {
                    (ReviewKind::Mutation, Some(p)) => self.reflected(*p, &item.texts, &item.changed),
                    _ => None,
                };
                self.pending.insert(item.item, (reflected, item.texts.clone()));
            }
            Event::Human { action: HumanAction::Veto { item, .. }, .. } => {
                self.pending.remove(item);
            }
            Event::CandidateAdded { id, texts, parents, origin, changed, round, note, review_item, .. } => {
                let mut a = Author {
                    round: *round,
                    origin: Some(*origin),
                    parent: parents.first().copied(),
                    note: note.clone(),
                    ..Default::default()
                };
                match review_item {
                    Some(item) => {
                        let edited = *origin == Origin::Human;
                        let (reflected, proposed) = self.pending.remove(item).unzip();
                        a.reflection = reflected.flatten();
                        a.review = Some(Reviewed { item: *item, edited });
                        a.proposed = proposed.filter(|_| edited);
                    }
                    None if *origin == Origin::Mutation => {
                        a.reflection = parents.first().and_then(|p| self.reflected(*p, texts, changed));
                    }
                    None => {}
                }
                self.authors.insert(*id, a);
            }
            Event::RoundFinished { .. } => {
                self.planned.clear();
                self.reflections.clear();
            }
            _ => {}
        }
    }

    /// The reflection of the round being committed that wrote `texts` from `parent`: the first
    /// proposal on that parent whose reflections wrote every changed component so.
    fn reflected(&self, parent: CandidateId, texts: &Candidate, changed: &[String]) -> Option<Reflected> {
        let wrote = |slot: usize, c: &String| {
            self.reflections.iter().find(|w| w.slot == slot && &w.component == c && texts.get(c) == Some(&w.new_text))
        };
        let (slot, p) = self
            .planned
            .iter()
            .find(|(slot, p)| p.parent == parent && changed.iter().all(|c| wrote(**slot, c).is_some()))?;
        let read = changed.iter().filter_map(|c| wrote(*slot, c).map(|r| (c.clone(), r.read.clone()))).collect();
        Some(Reflected { round: self.round, parent, read, guided: p.guided.clone() })
    }
}

/// What wrote each candidate, from the run's events.
pub fn authors(events: &[Event]) -> BTreeMap<CandidateId, Author> {
    let mut commits = CommitBuffer::default();
    let mut fold = Authorship::default();
    for ev in events {
        for c in commits.feed(ev, ev) {
            fold.commit(c);
        }
    }
    fold.authors
}

/// The blame of every component of candidate `id` as plain text (`gepa-tui export --blame`):
/// each line prefixed with what wrote it (✎: a person), then who wrote each of those.
pub fn plain_text(state: &RunState, authors: &BTreeMap<CandidateId, Author>, id: CandidateId) -> String {
    let mut out = String::new();
    let mut all: Vec<BlameLine> = Vec::new();
    let Some(cand) = state.candidates.get(id) else { return out };
    for name in cand.texts.keys() {
        out.push_str(&format!("── {} of candidate #{id} ──\n", crate::text::sanitize(name)));
        let lines = blame(state, authors, id, name);
        for line in &lines {
            let mark = if line.by_hand { '✎' } else { ' ' };
            out.push_str(&format!("#{:<3} r{:<3}{mark}│ {}\n", line.by, line.round, crate::text::sanitize(&line.text)));
        }
        all.extend(lines);
        out.push('\n');
    }
    out.push_str("── who wrote the lines ──\n");
    for (c, by_hand) in writers(&all) {
        let a = authors.get(&c).cloned().unwrap_or_default();
        out.push_str(&a.describe(c, by_hand));
        out.push('\n');
        let read = a.reflection.as_ref().filter(|_| !by_hand).map(|r| &r.read);
        for (component, fed) in read.into_iter().flatten() {
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
