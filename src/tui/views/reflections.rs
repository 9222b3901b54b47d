//! Reflections: every proposal (newest first): what became of the child, its minibatch answers,
//! the new text as a diff against the parent, the reflective dataset sent, the reflection prompt
//! and the model's answer. A reply cut off at max_tokens is flagged where it cannot be missed: its
//! new text may be a broken half-prompt.

use super::candidate::word_diff;
use super::{
    answers_line, fmt_score, fmt_tokens, heading, inner, one_line, pane, step, text_lines, Ctx, ListLayout, Outcome,
    Scroll, View,
};
use crate::engine::reflect::format_dataset;
use crate::engine::ProposalOutcome;
use crate::tui::keymap::Action;
use crate::tui::model::Model;
use crate::tui::model::Proposal;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// A glyph and a word for a proposal's outcome.
pub fn outcome_label(p: &Proposal, theme: &Theme) -> (&'static str, String, Style) {
    if let Some(mg) = &p.merge {
        return if mg.accepted {
            ("✓", "merged".into(), theme.score_high)
        } else {
            ("✗", "merge rejected".into(), theme.score_low)
        };
    }
    match &p.outcome {
        None => ("…", "running".into(), theme.muted),
        Some(ProposalOutcome::Accepted { .. }) => ("✓", "accepted".into(), theme.score_high),
        Some(ProposalOutcome::Rejected { .. }) => ("✗", "rejected".into(), theme.score_low),
        Some(ProposalOutcome::NotSelected { .. }) => ("~", "passed, not selected".into(), theme.muted),
        Some(ProposalOutcome::SameAsPending { item, .. }) => ("~", format!("same as review item {item}"), theme.muted),
        Some(ProposalOutcome::Unchanged) => ("=", "unchanged".into(), theme.muted),
        Some(ProposalOutcome::SkippedPerfect) => ("○", "skipped: perfect".into(), theme.muted),
        Some(ProposalOutcome::ReflectionFailed { .. }) => ("!", "reflection failed".into(), theme.error),
        Some(ProposalOutcome::ReflectionTruncated { .. }) => ("✂", "reflection cut off".into(), theme.warning),
        Some(ProposalOutcome::EmptyAnswer) => ("=", "no new text".into(), theme.muted),
        Some(ProposalOutcome::ProtectedTextChanged { .. }) => ("⊘", "refused: protected text".into(), theme.warning),
        Some(ProposalOutcome::GrewTooMuch { .. }) => ("⊘", "refused: grew too much".into(), theme.warning),
    }
}

/// The Reflections view's state.
#[derive(Debug, Default)]
pub struct ReflectionsView {
    /// An index into `model.proposals`; None follows the newest.
    pub selected: Option<usize>,
    pub scroll: Scroll,
    /// Where the list's rows and the detail pane were drawn (for the mouse).
    pub list: ListLayout,
    pub detail_area: Rect,
}

impl ReflectionsView {
    /// The selected proposal (the newest when none was chosen), of `n`.
    fn current(&self, n: usize) -> usize {
        self.selected.unwrap_or(n - 1).min(n - 1)
    }

    pub fn handle(&mut self, action: Action, ctx: &Ctx) -> Outcome {
        let m = ctx.model;
        let n = m.proposals.len();
        if n == 0 {
            // Nothing to open (and not the val traces either).
            return if action == Action::OpenTraces { Outcome::Done } else { Outcome::Ignored };
        }
        if let Some(done) = self.scroll.handle(action) {
            return done;
        }
        // Display order is newest first: "down" goes to an older proposal.
        let cur = self.current(n);
        let pos = n - 1 - cur;
        let new_pos = match action {
            Action::Up => step(pos, -1, n),
            Action::Down => step(pos, 1, n),
            Action::Top => 0,
            Action::Bottom => n - 1,
            Action::Open => {
                return match m.proposals.get(cur).and_then(|p| p.child) {
                    Some(c) => Outcome::Show(View::Candidate, Some(c)),
                    None => Outcome::Flash("this proposal did not become a candidate".into()),
                };
            }
            Action::OpenTraces => return Outcome::ProposalTraces(cur),
            // Another reflection on the same parent, this time with a person's note.
            Action::Guide => return super::guide_prompt(ctx, m.proposals[cur].parent, None),
            _ => return Outcome::Ignored,
        };
        let sel = n - 1 - new_pos;
        if Some(sel) != self.selected {
            self.scroll.reset();
        }
        // The newest row follows new proposals as they arrive.
        self.selected = if new_pos == 0 { None } else { Some(sel) };
        Outcome::Done
    }

    pub fn click(&mut self, pos: Position, ctx: &Ctx) -> Outcome {
        let n = ctx.model.proposals.len();
        match self.list.row_at(pos).filter(|row| *row < n) {
            Some(row) => {
                self.selected = if row == 0 { None } else { Some(n - 1 - row) };
                self.scroll.reset();
                Outcome::Done
            }
            None => Outcome::Ignored,
        }
    }

    pub fn hints(&self) -> Vec<Action> {
        use Action::*;
        vec![Open, OpenTraces, Guide, PageDown]
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (m, theme) = (ctx.model, ctx.theme);
        let n = m.proposals.len();
        if n == 0 {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    "No proposals yet: they start once the seed is scored on val.",
                    theme.muted,
                ))
                .block(pane(" Reflections ", theme, true)),
                area,
            );
            return;
        }
        let list_w = if area.width >= 120 { 44 } else { 30 };
        let [list_area, detail_area] =
            Layout::horizontal([Constraint::Length(list_w), Constraint::Min(20)]).areas(area);
        let truncated = m.proposals.iter().filter(|p| p.truncated()).count();
        let mut title = vec![Span::styled(format!(" Proposals: {n} "), theme.title)];
        if truncated > 0 {
            // "cut off" fits the narrow list's title where "truncated" did not (80 columns).
            title.push(Span::styled(format!("· ⚠ {truncated} cut off "), theme.warning));
        }
        let changes = m.state.adapt.taken.len();
        if changes > 0 {
            title.push(Span::styled(format!("· ⟳ {changes} "), theme.warning));
        }
        frame.render_widget(pane(Line::from(title), theme, true), list_area);
        let body = inner(list_area);
        self.list.area = body;
        self.detail_area = detail_area;
        let sel = self.current(n);
        let pos = n - 1 - sel;
        let off = self.list.window(pos, body.height as usize, n);
        let items: Vec<Line> = (0..n)
            .rev()
            .skip(off)
            .take(body.height as usize)
            .map(|i| {
                let p = &m.proposals[i];
                let (g, _, gstyle) = outcome_label(p, theme);
                let what = match &p.merge {
                    Some(mg) => format!("merge #{}+#{}", mg.id1, mg.id2),
                    None => format!("#{} {}", p.parent, one_line(&p.components.join(","))),
                };
                let child = p.child.map(|c| format!(" → #{c}")).unwrap_or_default();
                let row_style = if i == sel {
                    theme.selection
                } else if p.committed {
                    theme.text
                } else {
                    theme.muted
                };
                let mut spans = vec![
                    Span::styled(format!("{g} "), if i == sel { theme.selection } else { gstyle }),
                    Span::styled(format!("r{}.{} {what}{child}", p.round, p.slot), row_style),
                ];
                if p.guide.is_some() {
                    spans.push(Span::styled(" ✎", if i == sel { theme.selection } else { theme.accent }));
                }
                if p.truncated() {
                    spans.push(Span::styled(" ⚠", theme.warning));
                }
                Line::from(spans)
            })
            .collect();
        frame.render_widget(Paragraph::new(items), body);

        let p = &m.proposals[sel];
        let lines = detail(m, p, theme);
        let body_area = super::inner(detail_area);
        let at = self.scroll.at(super::wrapped_rows(&lines, body_area.width), body_area.height);
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)).block(pane(
                format!(" Round {} · slot {} ", p.round, p.slot),
                theme,
                false,
            )),
            detail_area,
        );
    }
}

/// The proposal's own cost: its reflection calls, its minibatch evaluations and, when it became a
/// candidate, that candidate's val pass; in dollars when the project prices its models, in tokens
/// always.
fn spend_line(m: &Model, p: &Proposal, theme: &Theme) -> Line<'static> {
    let val = p.child.and_then(|c| m.val_evals.get(c)).map(Vec::as_slice);
    let s = p.spend(val);
    let priced = s.usd() > 0.0;
    let part = |usd: f64, tokens: u64| {
        if priced {
            format!("${usd:.5} ({} tokens)", fmt_tokens(tokens))
        } else {
            format!("{} tokens", fmt_tokens(tokens))
        }
    };
    let reflections = match s.reflection_calls {
        0 => "no reflection".to_string(),
        n => format!(
            "{n} reflection call{} {}",
            if n == 1 { "" } else { "s" },
            part(s.reflection_usd, s.reflection_tokens)
        ),
    };
    let mut text = format!(
        "cost {}: {reflections}, {} minibatch evaluation{} {}",
        if priced { format!("${:.5}", s.usd()) } else { format!("{} tokens", fmt_tokens(s.tokens())) },
        s.evals_run,
        if s.evals_run == 1 { "" } else { "s" },
        part(s.eval_usd, s.eval_tokens),
    );
    if s.evals_reused > 0 {
        text.push_str(&format!(" (+{} reused, free)", s.evals_reused));
    }
    if val.is_some_and(|v| !v.is_empty()) {
        text.push_str(&format!(", val {}", part(s.val_usd, s.val_tokens)));
    }
    Line::styled(text, theme.muted)
}

fn detail(m: &Model, p: &Proposal, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    let (g, word, style) = outcome_label(p, theme);
    let became = |lines: &mut Vec<Line<'static>>| {
        if let Some(c) = p.child {
            let val = m.state.candidates.get(c).filter(|r| !r.val_scores.is_empty()).map(|r| r.val_mean);
            let mut spans = vec![Span::styled(format!("became candidate #{c}"), theme.accent)];
            if let Some(v) = val {
                spans.push(Span::styled(format!(" · val {}", fmt_score(v)), theme.score(v)));
            }
            spans.push(Span::styled(" (enter opens it)", theme.muted));
            lines.push(Line::from(spans));
        }
    };
    if let Some(mg) = &p.merge {
        lines.push(Line::from(vec![
            Span::styled(format!("{g} {word}"), style),
            Span::styled(format!(": #{} and #{} (common ancestor #{})", mg.id1, mg.id2, mg.ancestor), theme.text),
        ]));
        lines.push(Line::styled(
            format!(
                "on {} val examples: #{} {:.2}, #{} {:.2}, merged {:.2} (accepted when ≥ the better parent)",
                mg.subsample.len(),
                mg.id1,
                mg.id1_sum,
                mg.id2,
                mg.id2_sum,
                mg.merged_sum
            ),
            theme.muted,
        ));
        became(&mut lines);
        if let Some(texts) = &p.child_texts {
            for (name, text) in texts {
                lines.push(heading(format!("── Merged {} ──", one_line(name)), theme));
                lines.extend(text_lines(text, theme.text));
            }
        }
        return lines;
    }
    // The run's changes of course: the one this round's commit took, and those it was asked with.
    for t in m.state.adapt.taken.iter().filter(|t| t.round == p.round) {
        lines.push(Line::styled(format!("⟳ after this round, {}", one_line(&t.message())), theme.warning));
    }
    if p.adaptations > 0 {
        let asked: Vec<String> = m.state.adapt.taken.iter().take(p.adaptations).map(|t| t.step.tried()).collect();
        lines.push(Line::styled(format!("asked with the run's changes of course: {}", asked.join(", ")), theme.muted));
    }
    let mut head = vec![Span::styled(format!("{g} {word}"), style)];
    match &p.outcome {
        Some(ProposalOutcome::Accepted { parent_sum, child_sum } | ProposalOutcome::Rejected { parent_sum, child_sum }) => {
            // Which side of the parent the child fell, whatever the run's acceptance rule.
            let how = match child_sum.total_cmp(parent_sum) {
                std::cmp::Ordering::Greater => "strictly better",
                std::cmp::Ordering::Equal => "equal",
                std::cmp::Ordering::Less => "worse",
            };
            head.push(Span::styled(format!(": minibatch {parent_sum:.2} → {child_sum:.2} ({how})"), theme.text))
        }
        Some(ProposalOutcome::NotSelected { parent_sum, child_sum }) => head.push(Span::styled(
            format!(": minibatch {parent_sum:.2} → {child_sum:.2}; another proposal of the round gained more"),
            theme.text,
        )),
        Some(ProposalOutcome::SameAsPending { item, parent_sum, child_sum }) => head.push(Span::styled(
            format!(": minibatch {parent_sum:.2} → {child_sum:.2}; the same texts already wait as review item {item}"),
            theme.text,
        )),
        Some(ProposalOutcome::ReflectionFailed { error }) => {
            head.push(Span::styled(format!(": {}", one_line(error)), theme.error))
        }
        Some(ProposalOutcome::ProtectedTextChanged { component, missing }) => head.push(Span::styled(
            format!(
                ": the new text for {} dropped or changed {} protected passage{}; refused before it was evaluated (no metric call spent)",
                one_line(component),
                missing.len(),
                if missing.len() == 1 { "" } else { "s" }
            ),
            theme.warning,
        )),
        Some(ProposalOutcome::GrewTooMuch { component, parent_chars, child_chars, max_growth }) => {
            head.push(Span::styled(
                format!(
                    ": the new text for {} grew {} characters ({parent_chars} → {child_chars}), more than its max_growth of {max_growth}; refused before it was evaluated (no metric call spent)",
                    one_line(component),
                    child_chars - parent_chars
                ),
                theme.warning,
            ))
        }
        Some(ProposalOutcome::ReflectionTruncated { attempts }) => head.push(Span::styled(
            format!(
                ": all {attempts} answers were cut off before the new text ended; none was tried (raise the reflection model's max_tokens, or try [reflection] template = \"compact\")"
            ),
            theme.warning,
        )),
        _ => {}
    }
    if !p.committed {
        head.push(Span::styled(" (round in progress)", theme.muted));
    }
    lines.push(Line::from(head));
    lines.push(Line::styled(
        format!(
            "parent #{} · rewriting {} · minibatch {}",
            p.parent,
            one_line(&p.components.join(", ")),
            one_line(&p.minibatch.join(", "))
        ),
        theme.muted,
    ));
    lines.push(spend_line(m, p, theme));
    if let Some(g) = &p.guide {
        lines.push(Line::from(vec![
            Span::styled("✎ guided by you: ", theme.accent),
            Span::styled(format!("\"{}\"", one_line(&g.note)), theme.text),
        ]));
        if let Some(ex) = &g.example {
            let score = p.guide_evals.first().map(|e| format!(" (the parent scored {} on it)", fmt_score(e.score)));
            lines.push(Line::styled(
                format!(
                    "  with the {} example you pointed at, {}, in its reflective dataset{}",
                    ex.split.as_str(),
                    one_line(&ex.id),
                    score.unwrap_or_default()
                ),
                theme.muted,
            ));
        }
    }
    if let Some(ProposalOutcome::ProtectedTextChanged { missing, .. }) = &p.outcome {
        lines.push(heading("── Protected text the new text lost ──", theme));
        for span in missing {
            lines.extend(text_lines(span, theme.warning));
        }
    }
    became(&mut lines);
    if p.truncated() && !matches!(p.outcome, Some(ProposalOutcome::ReflectionTruncated { .. })) {
        // Only with [reflection] use_cut_off_answers: the fragment was used as it stood.
        lines.push(Line::styled(
            "⚠ TRUNCATED: the reflection answer was cut off at max_tokens; the new text may be a broken half-prompt.",
            theme.warning,
        ));
    }
    if !p.parent_evals.is_empty() {
        lines.push(heading("── Minibatch scores (parent → child) ──", theme));
        for pe in &p.parent_evals {
            let mut spans = vec![
                Span::styled(format!("{:<14}", one_line(&pe.example_id)), theme.text),
                Span::styled(fmt_score(pe.score), theme.score(pe.score)),
            ];
            let ce = p.child_evals.iter().find(|c| c.example_id == pe.example_id);
            if let Some(ce) = ce {
                spans.push(Span::styled(" → ", theme.muted));
                spans.push(Span::styled(fmt_score(ce.score), theme.score(ce.score)));
            }
            lines.push(Line::from(spans));
            // Why a child fell short is in what it answered and what the evaluator said of it.
            // A mutation's minibatch is of train; a merge's subsample of val.
            let split = if p.merge.is_some() { crate::project::Split::Val } else { crate::project::Split::Train };
            lines.extend(answers_line(m, split, &pe.example_id, Some(pe), ce, 2, theme));
            if let Some(ce) = ce.filter(|c| c.score < 1.0 && c.error.is_none()) {
                if let Some(first) = ce.feedback.lines().find(|l| !l.trim().is_empty()) {
                    lines.push(Line::styled(
                        format!("  child's feedback: {}", crate::text::truncate_chars(&one_line(first), 160)),
                        theme.muted,
                    ));
                }
            }
        }
    }
    // What the reflection proposed, as a diff against the parent's text: for a rejected child this
    // is the only place its text can be read.
    for r in &p.reflections {
        let comp = one_line(&r.component);
        let before = m.state.candidates.get(p.parent).and_then(|c| c.texts.get(&r.component));
        match before {
            // A cut-off answer is never used; an empty one gave nothing to try.
            _ if r.new_text.trim().is_empty() => {
                let why =
                    if r.truncated { "the answer was cut off, so it was not used" } else { "the answer held none" };
                lines.push(heading(format!("── No new text for {comp}: {why} ──"), theme));
            }
            Some(b) if b != &r.new_text => {
                lines.push(heading(format!("── New text for {comp} (diff against #{}) ──", p.parent), theme));
                lines.extend(word_diff(b, &r.new_text, theme));
            }
            Some(_) => {
                lines.push(heading(format!("── New text for {comp}: the same as #{}'s ──", p.parent), theme));
            }
            None => {
                lines.push(heading(format!("── New text for {comp} ──"), theme));
                lines.extend(text_lines(&r.new_text, theme.text));
            }
        }
    }
    for r in &p.reflections {
        let comp = one_line(&r.component);
        if r.truncated {
            lines.push(Line::styled(format!("⚠ the answer for `{comp}` stopped at max_tokens"), theme.warning));
        }
        lines.push(heading(format!("── Reflective dataset sent ({comp}) ──"), theme));
        lines.extend(text_lines(&format_dataset(&r.dataset), theme.text));
        lines.push(heading(format!("── Reflection prompt ({comp}) ──"), theme));
        lines.extend(text_lines(&r.prompt, theme.text));
        for (k, cut) in r.cut_answers.iter().enumerate() {
            lines.push(heading(format!("── Answer {} was cut off: not used, asked again ──", k + 1), theme));
            lines.extend(text_lines(cut, theme.muted));
        }
        for echo in &r.unchanged_answers {
            lines.push(heading(
                "── An answer returned the instruction unchanged: asked again with a note naming the failed examples ──"
                    .to_string(),
                theme,
            ));
            lines.extend(text_lines(echo, theme.muted));
        }
        for empty in &r.empty_answers {
            let how = match r.reasked_with {
                Some(t) => format!("with the {} template (the prompt above)", t.name()),
                None => "with a note saying so".to_string(),
            };
            lines.push(heading(format!("── An answer held no instruction: asked again {how} ──"), theme));
            lines.extend(text_lines(empty, theme.muted));
        }
        lines.push(heading(
            format!("── Answer{} (${:.5}) ──", if r.truncated { ", TRUNCATED" } else { "" }, r.cost_usd),
            theme,
        ));
        lines.extend(text_lines(&r.answer, theme.text));
    }
    if p.reflections.is_empty() && p.outcome.is_none() {
        lines.push(Line::styled("waiting for the parent's minibatch scores and the reflection…", theme.muted));
    }
    lines
}
