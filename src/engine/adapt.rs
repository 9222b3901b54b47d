//! When reflections keep making no child to test, the engine changes how it asks, by itself, within
//! what the user allowed (`[reflection] adapt`, on by default), and says why it stops when nothing
//! it may try is left.
//!
//! The rule: among the last `WINDOW` proposals that reflected (a parent perfect on its minibatch is
//! not the reflection's fault and does not count), when `TRIGGER` or more made no child (every
//! answer cut off, the parent's text returned unchanged, an empty answer, a failed call), the next
//! step of the ladder is taken and the window starts afresh. Why 4 of 5: a reflection model that
//! works makes a child most of the time (on the samples, with a 1.5B model, about 1 proposal in 5
//! made none); the chance that 4 of 5 fail at that rate is under 1 %, so a working run is not
//! disturbed, while the stalls measured with a 1.5B model (14 to 24 proposals in a row with no
//! child) are caught after 4 or 5 proposals, a few metric calls each at most.
//!
//! The decision is taken at a round's commit from the committed proposals only, recorded as a
//! `reflection_adapted` event of that round, and every plan records how many steps are in force
//! for it (`PlannedProposal::adaptations`): so a resumed run, a replay and any pipeline lag take
//! the same steps at the same rounds.

use crate::project::config::TemplateKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Proposals that reflected, looked back over.
pub const WINDOW: usize = 5;
/// Of those, how many made no child for the next step to be taken.
pub const TRIGGER: usize = 4;
/// The temperature re-asks are made at once the engine turns to sampling (a recorded draw).
pub const REASK_TEMPERATURE: f64 = 0.7;

/// Why a proposal that reflected made no child to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoChild {
    /// Every answer was cut off.
    CutOff,
    /// The answer was the parent's text.
    Unchanged,
    /// The answer held no text, or no instruction (`reflect::holds_no_instruction`).
    Empty,
    /// The reflection call failed for this request.
    Failed,
}

impl NoChild {
    /// `returned the instruction unchanged`, for one proposal or many.
    pub fn describe(self, n: u64) -> String {
        let were = if n == 1 { "was" } else { "were" };
        match self {
            NoChild::CutOff => format!("{n} {were} cut off at max_tokens"),
            NoChild::Unchanged => format!("{n} returned the instruction unchanged"),
            NoChild::Empty => format!("{n} answered with no instruction"),
            NoChild::Failed => format!("{n} failed"),
        }
    }
}

/// One change of course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AdaptStep {
    /// Reflections use this built-in template instead.
    Template { template: TemplateKind },
    /// Re-asks (of a cut-off or unchanged answer) are made at this temperature, each a recorded
    /// draw, so a model at temperature 0 gives a different answer.
    ReaskTemperature { temperature: f64 },
    /// A cut-off answer is asked again with this many tokens.
    RetryTokens { max_tokens: u32 },
}

impl AdaptStep {
    /// `now re-asking at temperature 0.7`.
    pub fn now(&self) -> String {
        match self {
            AdaptStep::Template { template } => format!("now using the {} template", template.name()),
            AdaptStep::ReaskTemperature { temperature } => format!("now re-asking at temperature {temperature}"),
            AdaptStep::RetryTokens { max_tokens } => format!("now re-asking cut-off answers with {max_tokens} tokens"),
        }
    }

    /// `temperature 0.7`, for the list of what was tried.
    pub fn tried(&self) -> String {
        match self {
            AdaptStep::Template { template } => format!("the {} template", template.name()),
            AdaptStep::ReaskTemperature { temperature } => format!("re-asks at temperature {temperature}"),
            AdaptStep::RetryTokens { max_tokens } => format!("re-asks with {max_tokens} tokens"),
        }
    }
}

/// What the user allowed the engine to try, from the settings (the ladder's rungs).
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    pub adapt: bool,
    /// The built-in template in use; None when the user wrote their own (`template_file`).
    pub template: Option<TemplateKind>,
    /// The reflection model's temperature (None: the provider's default, which samples).
    pub temperature: Option<f64>,
    /// Tokens a cut-off answer is asked again with (None: the model's own limit is unknown).
    pub retry_max_tokens: Option<u32>,
    /// Times a cut-off answer is asked again (0: never, so more room cannot help).
    pub truncation_retries: u32,
}

impl Allowed {
    /// The next step to take after `taken`, for a window whose commonest failure is `why`: what
    /// addresses that failure first, then the rest. None when nothing is left.
    pub fn next(&self, taken: &[AdaptStep], why: NoChild) -> Option<AdaptStep> {
        if !self.adapt {
            return None;
        }
        let template = self.template.map(|t| AdaptStep::Template { template: t.other() });
        let temperature = self
            .temperature
            .filter(|t| *t < REASK_TEMPERATURE)
            .map(|_| AdaptStep::ReaskTemperature { temperature: REASK_TEMPERATURE });
        let tokens = self
            .retry_max_tokens
            .filter(|_| self.truncation_retries > 0)
            .map(|n| AdaptStep::RetryTokens { max_tokens: n.saturating_mul(2) });
        // More room helps only an answer that was cut off.
        // A re-ask's temperature helps an answer that is re-asked (unchanged); an answer with no
        // instruction was already re-asked with the other template (or a note): that template
        // for every reflection first.
        let order = match why {
            NoChild::CutOff => [tokens, template, temperature],
            NoChild::Unchanged => [temperature, template, None],
            NoChild::Empty => [template, temperature, None],
            NoChild::Failed => [template, temperature, None],
        };
        let kind = |s: &AdaptStep| std::mem::discriminant(s);
        order.into_iter().flatten().find(|s| !taken.iter().any(|t| kind(t) == kind(s)))
    }

    /// The reflection settings in force with `steps` taken.
    pub fn in_force(&self, steps: &[AdaptStep]) -> InForce {
        let mut f = InForce { template: None, reask_temperature: None, retry_max_tokens: self.retry_max_tokens };
        for s in steps {
            match s {
                AdaptStep::Template { template } => f.template = Some(*template),
                AdaptStep::ReaskTemperature { temperature } => f.reask_temperature = Some(*temperature),
                AdaptStep::RetryTokens { max_tokens } => f.retry_max_tokens = Some(*max_tokens),
            }
        }
        f
    }
}

/// How a proposal asks, with the steps in force for it.
#[derive(Debug, Clone, PartialEq)]
pub struct InForce {
    /// A built-in template replacing the configured one.
    pub template: Option<TemplateKind>,
    /// Re-asks at this temperature (None: the model's).
    pub reask_temperature: Option<f64>,
    /// A cut-off answer's re-ask gets this many tokens (None: the model's max_tokens).
    pub retry_max_tokens: Option<u32>,
}

/// The run's record of proposals that made no child, folded from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adaptation {
    /// The last proposals that reflected since the last step (oldest first): why each made no
    /// child, or None when it made one.
    pub window: Vec<Option<NoChild>>,
    /// The steps taken, in order, with the round each was taken at and why.
    pub steps: Vec<AdaptStep>,
    pub taken: Vec<Taken>,
    /// Proposals in a row that reflected and made no child, by why.
    pub streak: BTreeMap<NoChild, u64>,
}

/// A step as the run recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Taken {
    pub round: u64,
    pub step: AdaptStep,
    pub why: NoChild,
    /// Of the last `of` proposals, `no_child` made none.
    pub no_child: usize,
    pub of: usize,
}

impl Taken {
    /// `reflections keep returning the instruction unchanged (4 of the last 5): now re-asking at
    /// temperature 0.7`.
    pub fn message(&self) -> String {
        let what = match self.why {
            NoChild::CutOff => "reflections keep being cut off at max_tokens",
            NoChild::Unchanged => "reflections keep returning the instruction unchanged",
            NoChild::Empty => "reflections keep answering with no instruction",
            NoChild::Failed => "reflections keep failing",
        };
        format!("{what} ({} of the last {}): {}", self.no_child, self.of, self.step.now())
    }
}

impl Adaptation {
    /// One proposal's outcome (`ProposalOutcome::no_child`): None when it does not count.
    pub fn record(&mut self, made: Option<Option<NoChild>>) {
        let Some(made) = made else { return };
        self.window.push(made);
        if self.window.len() > WINDOW {
            self.window.remove(0);
        }
        match made {
            Some(why) => *self.streak.entry(why).or_default() += 1,
            None => self.streak.clear(),
        }
    }

    /// A step taken: the window starts afresh.
    pub fn take(&mut self, t: &Taken) {
        self.steps.push(t.step.clone());
        self.taken.push(t.clone());
        self.window.clear();
    }

    /// Whether the window calls for a change: how many made no child, and the commonest reason
    /// (the latest on ties).
    pub fn due(&self) -> Option<(usize, NoChild)> {
        let failed: Vec<NoChild> = self.window.iter().flatten().copied().collect();
        if failed.len() < TRIGGER {
            return None;
        }
        let mut counts: BTreeMap<NoChild, usize> = BTreeMap::new();
        for w in &failed {
            *counts.entry(*w).or_default() += 1;
        }
        let top = counts.values().copied().max().unwrap_or(0);
        let why = failed.iter().rev().find(|w| counts[w] == top).copied()?;
        Some((failed.len(), why))
    }

    /// `24 proposals in a row made no child to test (20 returned the instruction unchanged, 4 were
    /// cut off at max_tokens)`.
    pub fn streak_text(&self) -> Option<String> {
        let total: u64 = self.streak.values().sum();
        if total == 0 {
            return None;
        }
        let parts: Vec<String> = self.streak.iter().map(|(w, n)| w.describe(*n)).collect();
        let s = if total == 1 { "" } else { "s" };
        Some(format!("{total} proposal{s} in a row made no child to test ({})", parts.join(", ")))
    }

    /// What was tried, for a stop reason: the re-asks made for the failures of the streak, then
    /// the steps taken.
    pub fn tried_text(&self, al: &Allowed) -> String {
        let adapt = al.adapt;
        let mut tried = Vec::new();
        if let (Some(n), true) = (al.retry_max_tokens, self.streak.contains_key(&NoChild::CutOff)) {
            tried.push(format!("re-asking cut-off answers with {n} tokens"));
        }
        if adapt && self.streak.contains_key(&NoChild::Unchanged) {
            tried.push("re-asking an unchanged answer with a note naming the failed examples".to_string());
        }
        if adapt && self.streak.contains_key(&NoChild::Empty) {
            tried.push(match al.template {
                Some(_) => "re-asking an answer that held no instruction with the other built-in template".to_string(),
                None => "re-asking an answer that held no instruction with a note saying so".to_string(),
            });
        }
        tried.extend(self.steps.iter().map(AdaptStep::tried));
        if !adapt {
            tried.push("nothing more ([reflection] adapt = false)".into());
        }
        tried.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Allowed {
        Allowed {
            adapt: true,
            template: Some(TemplateKind::Gepa),
            temperature: Some(0.0),
            retry_max_tokens: Some(900),
            truncation_retries: 1,
        }
    }

    #[test]
    fn what_was_tried_names_the_re_asks_made_for_the_streak() {
        let mut a = Adaptation::default();
        for _ in 0..3 {
            a.record(Some(Some(NoChild::Empty)));
        }
        let al = allowed();
        let tried = a.tried_text(&al);
        assert_eq!(tried, "re-asking an answer that held no instruction with the other built-in template");
        // With a template of the user's, the re-ask is a note.
        let own = Allowed { template: None, ..allowed() };
        assert_eq!(a.tried_text(&own), "re-asking an answer that held no instruction with a note saying so");
        assert_eq!(a.tried_text(&Allowed { adapt: false, ..allowed() }), "nothing more ([reflection] adapt = false)");
        a.record(Some(Some(NoChild::Unchanged)));
        let no_room = Allowed { retry_max_tokens: None, ..allowed() };
        assert!(a.tried_text(&no_room).starts_with("re-asking an unchanged answer with a note"));
    }

    #[test]
    fn four_of_the_last_five_without_a_child_call_for_a_step() {
        let mut a = Adaptation::default();
        // Unchanged, a child, unchanged, a perfect parent (not counted).
        for o in [Some(Some(NoChild::Unchanged)), Some(None), Some(Some(NoChild::Unchanged)), None] {
            a.record(o);
        }
        assert_eq!(a.due(), None, "two of three do not count yet; a perfect parent is not counted");
        a.record(Some(Some(NoChild::Unchanged)));
        assert_eq!(a.due(), None);
        a.record(Some(Some(NoChild::CutOff)));
        assert_eq!(a.due(), Some((4, NoChild::Unchanged)));
        assert_eq!(a.streak_text().unwrap(), "3 proposals in a row made no child to test (1 was cut off at max_tokens, 2 returned the instruction unchanged)");
    }

    #[test]
    fn the_ladder_addresses_the_failure_first_and_runs_out() {
        let al = allowed();
        let first = al.next(&[], NoChild::CutOff).unwrap();
        assert_eq!(first, AdaptStep::RetryTokens { max_tokens: 1800 });
        let second = al.next(std::slice::from_ref(&first), NoChild::Unchanged).unwrap();
        assert_eq!(second, AdaptStep::ReaskTemperature { temperature: REASK_TEMPERATURE });
        let third = al.next(&[first.clone(), second.clone()], NoChild::Unchanged).unwrap();
        assert_eq!(third, AdaptStep::Template { template: TemplateKind::Compact });
        assert_eq!(al.next(&[first, second.clone(), third.clone()], NoChild::Unchanged), None);
        // More room is offered only for answers cut off.
        assert_eq!(al.next(&[second, third], NoChild::Unchanged), None);
        assert_eq!(Allowed { adapt: false, ..al.clone() }.next(&[], NoChild::CutOff), None);
        // A template of the user's own is never swapped; a sampling model is not heated.
        let own = Allowed { template: None, temperature: Some(1.0), retry_max_tokens: None, ..al };
        assert_eq!(own.next(&[], NoChild::Unchanged), None);
    }
}
