//! Review: children that passed their test and wait for a person (`[review]` set to "approve").
//! The list of pending items, and for the selected one: a word-level diff against its parent (for
//! a merge, each component against the parent it did not come from), the examples of its test
//! with scores before → after, the reflection's reasoning and its cost. What happens to a decision
//! is shown until the engine records it: sent, then applied in a round, then gone from the queue.

use super::candidate::word_diff;
use super::editor::EditTarget;
use super::input::{InputLine, InputTarget};
use super::{
    answers_line, fmt_score, heading, inner, one_line, pane, parents_label, step, text_lines, Ctx, ListLayout, Outcome,
    Scroll, View,
};
use crate::engine::decision::policy_word;
use crate::engine::event::{HumanAction, ReviewItem, ReviewKind};
use crate::tui::keymap::Action;
use crate::tui::model::{Model, Proposal};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// The Review view's state.
#[derive(Debug, Default)]
pub struct ReviewView {
    /// The selected item's number; None (or an item no longer pending) selects the first.
    pub item: Option<u64>,
    pub scroll: Scroll,
    /// Where the list's rows and the detail pane were drawn (for the mouse).
    pub list: ListLayout,
    pub detail_area: Rect,
}

impl ReviewView {
    /// The selected review item (the first when none is chosen or the chosen one is gone).
    pub fn selected_item<'m>(&self, m: &'m Model) -> Option<&'m ReviewItem> {
        let q = &m.state.review_queue;
        self.item.and_then(|n| q.iter().find(|i| i.item == n)).or(q.first())
    }

    /// The selected item if a decision can be taken on it now; else why not.
    fn actionable_item(&self, m: &Model, what: &str) -> Result<ReviewItem, String> {
        let Some(it) = self.selected_item(m).cloned() else {
            return Err("the review queue is empty".into());
        };
        if let Some(why) = m.why_not_live(what) {
            return Err(why);
        }
        if let Some(why) = m.item_taken(it.item) {
            return Err(why);
        }
        Ok(it)
    }

    fn select(&mut self, m: &Model, n: u64) {
        if Some(n) != self.selected_item(m).map(|i| i.item) {
            self.scroll.reset();
        }
        self.item = Some(n);
    }

    pub fn handle(&mut self, action: Action, ctx: &Ctx) -> Outcome {
        let m = ctx.model;
        let items: Vec<u64> = m.state.review_queue.iter().map(|i| i.item).collect();
        let pos = self.selected_item(m).and_then(|it| items.iter().position(|n| *n == it.item)).unwrap_or(0);
        if let Some(done) = self.scroll.handle(action) {
            return done;
        }
        let new_pos = match action {
            Action::Up => step(pos, -1, items.len()),
            Action::Down => step(pos, 1, items.len()),
            Action::Top => 0,
            Action::Bottom => items.len().saturating_sub(1),
            Action::Approve => {
                return match self.actionable_item(m, "approving") {
                    Ok(it) => Outcome::Send(HumanAction::Approve { item: it.item }),
                    Err(e) => Outcome::Flash(e),
                }
            }
            Action::Veto => {
                return match self.actionable_item(m, "vetoing") {
                    Ok(it) => Outcome::Prompt(InputLine::new(InputTarget::VetoReason { item: it.item }, "")),
                    Err(e) => Outcome::Flash(e),
                }
            }
            Action::Edit | Action::EditExternal => {
                return match self.actionable_item(m, "editing") {
                    Ok(it) => Outcome::Edit {
                        target: EditTarget::ReviewItem { item: it.item },
                        texts: it.texts,
                        external: action == Action::EditExternal,
                    },
                    Err(e) => Outcome::Flash(e),
                }
            }
            Action::Open => {
                // Enter on an item shows its parent in the Candidate view.
                return match self.selected_item(m).and_then(|it| it.parents.first().copied()) {
                    Some(p) => Outcome::Show(View::Candidate, Some(p)),
                    None => Outcome::Done,
                };
            }
            _ => return Outcome::Ignored,
        };
        if let Some(&n) = items.get(new_pos) {
            self.select(m, n);
        }
        Outcome::Done
    }

    pub fn click(&mut self, pos: Position, ctx: &Ctx) -> Outcome {
        let m = ctx.model;
        match self.list.row_at(pos).and_then(|r| m.state.review_queue.get(r)).map(|i| i.item) {
            Some(n) => {
                self.select(m, n);
                Outcome::Done
            }
            None => Outcome::Ignored,
        }
    }

    pub fn hints(&self, ctx: &Ctx) -> Vec<Action> {
        use Action::*;
        if ctx.model.state.review_queue.is_empty() {
            vec![ToggleMutationReview, ToggleMergeReview]
        } else {
            vec![Approve, Veto, Edit, EditExternal, ApproveAll]
        }
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let queue = &ctx.model.state.review_queue;
        if queue.is_empty() {
            return render_empty(frame, area, ctx);
        }
        let (list_area, detail_area) = if area.width >= 110 {
            let [a, b] = Layout::horizontal([Constraint::Length(44), Constraint::Min(40)]).areas(area);
            (a, b)
        } else {
            let h = (queue.len() as u16 + 3).clamp(4, (area.height / 3).max(4));
            let [a, b] = Layout::vertical([Constraint::Length(h), Constraint::Min(3)]).areas(area);
            (a, b)
        };
        self.render_list(frame, list_area, ctx);
        if let Some(it) = self.selected_item(ctx.model) {
            self.render_detail(frame, detail_area, ctx, it);
        }
    }
}

fn kind_word(k: ReviewKind) -> &'static str {
    match k {
        ReviewKind::Mutation => "mutation",
        ReviewKind::Merge => "merge",
    }
}

/// The item's state in a few words, when a decision is on its way or applied.
fn decision_label(ctx: &Ctx, item: u64) -> Option<(String, bool)> {
    let (round, a) = ctx.model.item_decision(item)?;
    Some(match round {
        None => (format!("{} sent", a.word()), false),
        Some(r) => (format!("{} applied in round {r}", a.word()), true),
    })
}

fn policy_line(ctx: &Ctx, theme: &Theme) -> Line<'static> {
    let (m, g) = ctx.model.review_policy();
    let k = |a: Action| ctx.keymap.keys_for(a).first().map(|k| k.to_string()).unwrap_or_default();
    Line::from(vec![
        Span::styled("mutations ", theme.muted),
        Span::styled(policy_word(m), theme.accent),
        Span::styled(format!(" ({}) · merges ", k(Action::ToggleMutationReview)), theme.muted),
        Span::styled(policy_word(g), theme.accent),
        Span::styled(format!(" ({})", k(Action::ToggleMergeReview)), theme.muted),
    ])
}

impl ReviewView {
    fn render_list(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let theme = ctx.theme;
        let queue = &ctx.model.state.review_queue;
        let body = inner(area);
        // What waiting costs: the metric calls (and money) the pending items already spent, unused
        // until someone decides.
        let state = &ctx.model.state;
        let spent: u64 = state
            .review_queue
            .iter()
            .map(|it| {
                it.examples.len() as u64 * if it.kind == crate::engine::event::ReviewKind::Mutation { 2 } else { 1 }
            })
            .sum();
        let share = if state.settings.max_metric_calls > 0 {
            100.0 * spent as f64 / state.settings.max_metric_calls as f64
        } else {
            0.0
        };
        let mut title = vec![Span::styled(format!(" Review: {} pending ", queue.len()), theme.title)];
        if spent > 0 {
            // Metric calls (and their share of the budget) spent on items nobody has looked at yet.
            title.push(Span::styled(format!("· {spent} calls ({share:.0}%) spent "), theme.muted));
        }
        title.push(Span::styled(if ctx.model.paused() { "· engine paused " } else { "" }, theme.warning));
        frame.render_widget(pane(Line::from(title), theme, false), area);
        if body.height == 0 {
            return;
        }
        frame.render_widget(Paragraph::new(policy_line(ctx, theme)), Rect { height: 1, ..body });
        let rows_area = Rect { y: body.y + 1, height: body.height.saturating_sub(1), ..body };
        self.list.area = rows_area;
        let sel = self.selected_item(ctx.model).map(|i| i.item);
        let pos = queue.iter().position(|i| Some(i.item) == sel).unwrap_or(0);
        let off = self.list.window(pos, rows_area.height as usize, queue.len());
        let lines: Vec<Line> = queue
            .iter()
            .skip(off)
            .take(rows_area.height as usize)
            .map(|it| {
                let (ps, cs): (f64, f64) = (it.parent_scores.iter().sum(), it.child_scores.iter().sum());
                let selected = Some(it.item) == sel;
                let st = |s| if selected { theme.selection } else { s };
                let what = match it.kind {
                    ReviewKind::Merge => format!("merge {} ", parents_label(&it.parents)),
                    ReviewKind::Mutation => {
                        format!("{} {} ", parents_label(&it.parents), one_line(&it.changed.join(",")))
                    }
                };
                let mut spans = vec![
                    Span::styled(if selected { "▶" } else { " " }, st(theme.accent)),
                    Span::styled(format!("{:>3} ", it.item), st(theme.accent)),
                    Span::styled(what, st(theme.text)),
                    Span::styled(format!("{ps:.1}→{cs:.1}"), st(theme.muted)),
                ];
                if let Some((label, applied)) = decision_label(ctx, it.item) {
                    spans.push(Span::styled(
                        format!(" · {label}"),
                        st(if applied { theme.accent } else { theme.warning }),
                    ));
                }
                Line::from(spans)
            })
            .collect();
        let used = lines.len() as u16;
        frame.render_widget(Paragraph::new(lines), rows_area);
        // Room left under the items (a tall pane): the decisions taken so far.
        let rest = Rect { y: rows_area.y + used + 1, height: rows_area.height.saturating_sub(used + 1), ..rows_area };
        if rest.height >= 3 && !ctx.model.decisions.is_empty() {
            let mut out = vec![heading("── decisions so far ──", theme)];
            out.extend(decision_lines(ctx, theme, rest.height as usize - 1));
            frame.render_widget(Paragraph::new(out), rest);
        }
    }
}

/// The committed decisions, newest first, one line each.
fn decision_lines(ctx: &Ctx, theme: &Theme, max: usize) -> Vec<Line<'static>> {
    ctx.model
        .decisions
        .iter()
        .rev()
        .take(max)
        .map(|(round, a)| {
            let what = a.describe();
            Line::from(vec![Span::styled(format!("r{round:<3} "), theme.muted), Span::styled(what, theme.text)])
        })
        .collect()
}

/// The proposal (or merge attempt) the item came from: its outputs and feedback per example.
fn proposal_for<'m>(m: &'m Model, it: &ReviewItem) -> Option<&'m Proposal> {
    m.proposals.iter().rev().find(|p| {
        p.round == it.round
            && p.child_texts.as_ref() == Some(&it.texts)
            && Some(p.parent) == it.parents.first().copied()
    })
}

impl ReviewView {
    fn render_detail(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx, it: &ReviewItem) {
        let theme = ctx.theme;
        let lines = detail_lines(ctx, it, theme);
        let title = Line::from(vec![
            Span::styled(format!(" Item {} ", it.item), theme.title),
            Span::styled(
                format!(
                    "· {} of {} · round {} · cost ${:.4} ",
                    kind_word(it.kind),
                    parents_label(&it.parents),
                    it.round,
                    it.cost_usd
                ),
                theme.muted,
            ),
        ]);
        let body = inner(area);
        self.detail_area = body;
        let at = self.scroll.at(super::wrapped_rows(&lines, body.width), body.height);
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)).block(pane(title, theme, true)),
            area,
        );
    }
}

fn detail_lines(ctx: &Ctx, it: &ReviewItem, theme: &Theme) -> Vec<Line<'static>> {
    let m = &ctx.model;
    let mut lines = Vec::new();
    if let Some(InputLine { target: InputTarget::VetoReason { item }, .. }) = ctx.prompt {
        if *item == it.item {
            let on =
                if it.changed.is_empty() { "its components".to_string() } else { one_line(&it.changed.join(", ")) };
            lines.push(Line::styled(
                format!("✗ vetoing item {item}: type why (optional) below; the reason is given to later reflections on {on}. enter vetoes, esc cancels."),
                theme.warning,
            ));
            lines.push(Line::raw(""));
        }
    }
    match m.item_decision(it.item) {
        Some((None, a)) => {
            let what = match a {
                HumanAction::Veto { reason: Some(r), .. } => format!("veto sent (reason: {})", one_line(r)),
                a => format!("{} sent", a.word()),
            };
            lines.push(Line::styled(format!("⧗ {what}; {}", ctx.model.when_applied()), theme.warning));
            lines.push(Line::raw(""));
        }
        Some((Some(r), a)) => {
            let after = match a {
                HumanAction::Veto { .. } => "it leaves the queue when the round ends",
                _ => "it is being scored on val, then joins the pool",
            };
            lines.push(Line::styled(format!("✓ {} applied in round {r}: {after}", a.word()), theme.accent));
            lines.push(Line::raw(""));
        }
        None if !m.can_act() => {
            lines.push(Line::styled("This run is not live here: decisions need a running engine.", theme.muted));
            lines.push(Line::raw(""));
        }
        None => {}
    }

    // The texts: a merge shows each component with the parent it came from, diffed against the other.
    // `sources` follows the components in name order.
    let mut by_name: Vec<&String> = m.state.components.iter().collect();
    by_name.sort();
    for name in &m.state.components {
        let k = by_name.iter().position(|n| *n == name).unwrap_or(0);
        let child = it.texts.get(name).map(String::as_str).unwrap_or("");
        let parent_text = |p: usize| m.state.candidates.get(p).and_then(|c| c.texts.get(name)).map(String::as_str);
        let (label, base) = match it.kind {
            ReviewKind::Merge if it.parents.len() == 2 => {
                let src = it.sources.get(k).copied().unwrap_or(it.parents[0]);
                let other = if src == it.parents[0] { it.parents[1] } else { it.parents[0] };
                let (t0, t1) = (parent_text(it.parents[0]), parent_text(it.parents[1]));
                if t0 == t1 && t0 == Some(child) {
                    (format!("── {} · same in #{} and #{} ──", one_line(name), it.parents[0], it.parents[1]), None)
                } else if t0 == t1 {
                    let label = format!(
                        "── {} · diff against #{} and #{} (same in both) ──",
                        one_line(name),
                        it.parents[0],
                        it.parents[1]
                    );
                    (label, t0)
                } else {
                    (format!("── {} · from #{src} · diff against #{other} ──", one_line(name)), parent_text(other))
                }
            }
            _ => {
                let p = it.parents.first().copied().unwrap_or(0);
                match parent_text(p) {
                    Some(t) if t != child => {
                        (format!("── {} · changed · diff against #{p} ──", one_line(name)), Some(t))
                    }
                    _ => (format!("── {} · unchanged from #{p} ──", one_line(name)), None),
                }
            }
        };
        lines.push(heading(label, theme));
        match base {
            Some(b) if b != child => lines.extend(word_diff(b, child, theme)),
            _ if it.kind == ReviewKind::Merge => lines.extend(text_lines(child, theme.muted)),
            _ => {}
        }
        lines.push(Line::raw(""));
    }

    let proposal = proposal_for(ctx.model, it);
    let (ps, cs): (f64, f64) = (it.parent_scores.iter().sum(), it.child_scores.iter().sum());
    let test = if it.kind == ReviewKind::Merge { "val subsample" } else { "minibatch" };
    // A mutation is tested on a train minibatch; a merge on a val subsample.
    let split = if it.kind == ReviewKind::Merge { crate::project::Split::Val } else { crate::project::Split::Train };
    lines.push(heading(
        format!("── {test}: {} examples · {} → {} ──", it.examples.len(), fmt_score(ps), fmt_score(cs)),
        theme,
    ));
    let idw = it.examples.iter().map(|e| e.chars().count()).max().unwrap_or(0).min(16);
    for (i, ex) in it.examples.iter().enumerate() {
        let before = it.parent_scores.get(i).copied();
        let after = it.child_scores.get(i).copied();
        let (arrow, st) = match (before, after) {
            (Some(b), Some(a)) if a > b => ("▲", theme.score_high),
            (Some(b), Some(a)) if a < b => ("▼", theme.score_low),
            _ => ("=", theme.muted),
        };
        let s = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        let mut spans = vec![
            Span::styled(format!("  {:<idw$} ", crate::text::truncate_chars(&one_line(ex), idw)), theme.text),
            Span::styled(s(before), before.map(|v| theme.score(v)).unwrap_or(theme.muted)),
            Span::styled(" → ", theme.muted),
            Span::styled(s(after), after.map(|v| theme.score(v)).unwrap_or(theme.muted)),
            Span::styled(format!(" {arrow} "), st),
        ];
        if let Some(input) = m.example(split, ex).and_then(|e| e.field_text("input")) {
            spans.push(Span::styled(crate::text::truncate_chars(&one_line(&input), 60), theme.muted));
        }
        lines.push(Line::from(spans));
        // What each side answered.
        let find = |evals: &'_ [crate::eval::ExampleEval]| evals.iter().find(|e| &e.example_id == ex).cloned();
        let (pe, ce) = proposal.map(|p| (find(&p.parent_evals), find(&p.child_evals))).unwrap_or((None, None));
        lines.extend(answers_line(m, split, ex, pe.as_ref(), ce.as_ref(), idw + 5, theme));
    }
    lines.push(Line::raw(""));
    if !it.reasoning.trim().is_empty() {
        lines.push(heading("── the reflection's answer ──", theme));
        lines.extend(text_lines(it.reasoning.trim(), theme.muted));
    }
    lines
}

fn render_empty(frame: &mut Frame, area: Rect, ctx: &Ctx) {
    let (m, theme) = (ctx.model, ctx.theme);
    let mut lines = vec![Line::styled("The review queue is empty.", theme.title), Line::raw("")];
    lines.push(policy_line(ctx, theme));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "With \"approve\", a child that passes its minibatch test waits here for a person instead of being scored \
         on val (set it in gepa.toml's [review], or switch it here while a run is live).",
        theme.text,
    ));
    let sent: Vec<&HumanAction> = m.sent.iter().filter(|a| crate::tui::model::action_item(a).is_none()).collect();
    if !sent.is_empty() {
        lines.push(Line::raw(""));
        for a in sent {
            lines.push(Line::styled(format!("⧗ {} sent; {}", a.noun(), ctx.model.when_applied()), theme.warning));
        }
    }
    if !m.decisions.is_empty() {
        lines.push(Line::raw(""));
        lines.push(heading("── decisions so far (newest first) ──", theme));
        lines.extend(decision_lines(ctx, theme, 20));
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane(" Review queue ", theme, true)),
        area,
    );
}
