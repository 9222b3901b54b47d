//! Traces: for the selected candidate, each val example (failures first) with its input fields, the
//! rendered messages of every step, the output, the expected answer, the score and the feedback;
//! or, opened with `t` from Reflections, the same for a proposal's minibatch (parent, then child).
//! `/` searches inputs, messages, outputs and feedback. `x` excludes the example under the cursor
//! from the run (with a reason) and `f` corrects one of its fields; excluded and fixed examples
//! are marked (⊘, ✎) in the list and said so above the trace.

use super::input::{InputLine, InputTarget};
use super::{fmt_score, heading, inner, one_line, pane, step, text_lines, Ctx, ListLayout, Outcome, Scroll, View};
use crate::engine::decision::value_text;
use crate::eval::ExampleEval;
use crate::llm::Role;
use crate::project::Split;
use crate::tui::keymap::Action;
use crate::tui::model::{Model, Stage};
use crate::tui::views::win_matrix::glyph;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Whose evaluation a row is: the selected candidate's on val, or one side of a proposal's
/// minibatch test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    Val,
    Parent,
    Child,
}

impl Whose {
    pub fn as_str(self) -> &'static str {
        match self {
            Whose::Val => "",
            Whose::Parent => "parent",
            Whose::Child => "child",
        }
    }
}

impl std::fmt::Display for Whose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A list row's name: the example id, after whose run it is on a minibatch.
fn row_label(whose: Whose, example_id: &str) -> String {
    match whose {
        Whose::Val => one_line(example_id),
        w => format!("{w} {}", one_line(example_id)),
    }
}

/// The example a person is excluding or fixing (the prompt for the reason or the value is open).
#[derive(Debug, Clone, PartialEq)]
pub struct DataMark {
    pub split: Split,
    pub example: String,
    /// For a fix: the fields it can correct (the evaluator's reference fields first), and which.
    pub fields: Vec<String>,
    pub at: usize,
}

impl DataMark {
    pub fn field(&self) -> &str {
        self.fields.get(self.at).map(String::as_str).unwrap_or("")
    }

    /// The prompt's label for a fix of the current field.
    pub fn fix_label(&self) -> String {
        format!("{} {} · {}", self.split.as_str(), self.example, self.field())
    }
}

/// A field's value as the fix prompt starts it: a string as it is, other JSON compact.
pub fn value_for_prompt(v: Option<&serde_json::Value>) -> String {
    match v {
        None => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The Traces view's state.
#[derive(Debug, Default)]
pub struct TracesView {
    /// The example being excluded or fixed, while its prompt is open.
    pub pending: Option<DataMark>,
    /// Some(k): the minibatch evaluations of proposal k (`model.proposals[k]`: the parent's, then
    /// the child's) instead of the selected candidate's val evaluations.
    pub proposal: Option<usize>,
    /// The selected row's evaluation (an index into `evals`).
    pub example: Option<usize>,
    pub query: String,
    pub scroll: Scroll,
    /// Where the list's rows and the detail pane were drawn (for the mouse).
    pub list: ListLayout,
    pub detail_area: Rect,
}

impl TracesView {
    /// What a person did (or is doing) to the example: the open prompt's explanation, its
    /// exclusion and its corrected fields, each with where it stands.
    fn change_lines(&self, ctx: &Ctx, split: Split, id: &str) -> Vec<Line<'static>> {
        let (m, theme) = (ctx.model, ctx.theme);
        let mut lines = Vec::new();
        let marking = self.pending.as_ref().filter(|p| p.split == split && p.example == id);
        if let (Some(p), Some(input)) = (marking, ctx.prompt) {
            let text = match input.target {
                InputTarget::ExcludeReason => format!(
                    "⊘ excluding {} example {}: type why below (required). From the next round it counts in no \
                     mean or front and is not evaluated again; the data file is not touched. enter excludes, esc \
                     cancels.",
                    split.as_str(),
                    one_line(id)
                ),
                InputTarget::FixValue => format!(
                    "✎ correcting `{}` of {} example {}: type the value below (tab: another field).{} The data \
                     file is not touched. enter sends, esc cancels.",
                    one_line(p.field()),
                    split.as_str(),
                    one_line(id),
                    if split == Split::Val {
                        " Every candidate's recorded output on it is scored again against it."
                    } else {
                        " Later minibatches use it."
                    }
                ),
                _ => String::new(),
            };
            if !text.is_empty() {
                lines.push(Line::styled(text, theme.warning));
            }
        }
        let change = m.example_change(split, id);
        let stage = |s: Stage| match s {
            Stage::Sent => "sent, applied at the start of the next round".to_string(),
            Stage::Applied(r) => format!("taken in round {r}, counts when it ends"),
            Stage::Committed => "by you".to_string(),
        };
        if let Some((reason, s)) = &change.excluded {
            let what =
                if split == Split::Val { "it counts in no val mean or front" } else { "no later minibatch draws it" };
            lines.push(Line::styled(
                format!("⊘ excluded from this run ({}): {}; {what}", stage(*s), one_line(reason)),
                theme.warning,
            ));
        }
        for (field, value, s) in &change.fixes {
            let old = m.example(split, id).and_then(|ex| ex.fields.get(field)).map(value_text);
            lines.push(Line::styled(
                format!(
                    "✎ {} corrected ({}): {} → {}",
                    one_line(field),
                    stage(*s),
                    one_line(&old.unwrap_or_else(|| "(none)".into())),
                    one_line(&value_text(value))
                ),
                theme.warning,
            ));
        }
        lines
    }

    /// The evaluations listed, each with whose it is (the selected candidate's on val, or the
    /// parent's and the child's on a proposal's minibatch).
    pub fn evals<'m>(&self, m: &'m Model, selected: usize) -> Vec<(Whose, &'m ExampleEval)> {
        match self.proposal.and_then(|k| m.proposals.get(k)) {
            Some(p) => p
                .parent_evals
                .iter()
                .map(|e| (Whose::Parent, e))
                .chain(p.child_evals.iter().map(|e| (Whose::Child, e)))
                .collect(),
            None => m.val_evals.get(selected).map(|v| v.iter().map(|e| (Whose::Val, e)).collect()).unwrap_or_default(),
        }
    }

    /// Which split the listed examples are of: val, or a proposal's minibatch (train; a merge's
    /// subsample is of val).
    pub fn split(&self, m: &Model) -> Split {
        match self.proposal.and_then(|k| m.proposals.get(k)) {
            Some(p) if p.merge.is_none() => Split::Train,
            _ => Split::Val,
        }
    }

    /// The list's rows (indexes into `evals`), filtered by the search query: on val, failures
    /// first (errors, then lowest score), examples excluded from the run last; on a minibatch,
    /// in its order.
    pub fn rows(&self, m: &Model, selected: usize) -> Vec<usize> {
        let evals = self.evals(m, selected);
        let q = self.query.to_lowercase();
        let split = self.split(m);
        let mut rows: Vec<usize> = (0..evals.len())
            .filter(|&i| {
                if q.is_empty() {
                    return true;
                }
                let e = evals[i].1;
                let hay = |s: &str| s.to_lowercase().contains(&q);
                hay(&e.example_id)
                    || hay(&e.output)
                    || hay(&e.feedback)
                    || e.error.as_deref().is_some_and(hay)
                    || e.trace.steps.iter().any(|s| s.messages.iter().any(|m| hay(&m.content)))
                    || m.example(split, &e.example_id).is_some_and(|ex| ex.fields.values().any(|v| hay(&v.to_string())))
            })
            .collect();
        // A minibatch keeps its order (parent's, then child's); val puts failures first.
        if self.proposal.is_none() {
            let out = |e: &ExampleEval| m.state.data.is_excluded(Split::Val, &e.example_id);
            rows.sort_by(|a, b| {
                let (ea, eb) = (evals[*a].1, evals[*b].1);
                out(ea)
                    .cmp(&out(eb))
                    .then(eb.error.is_some().cmp(&ea.error.is_some()))
                    .then(ea.score.total_cmp(&eb.score))
                    .then(a.cmp(b))
            });
        }
        rows
    }

    /// The example under the cursor: its id.
    fn example_at_cursor(&self, m: &Model, selected: usize) -> Option<String> {
        let rows = self.rows(m, selected);
        let evals = self.evals(m, selected);
        let row = self.example.filter(|e| rows.contains(e)).or(rows.first().copied())?;
        Some(evals.get(row)?.1.example_id.clone())
    }

    /// `x` and `f`: opens the prompt for an exclusion's reason or a fix's value, for the example
    /// under the cursor.
    fn mark(&mut self, action: Action, ctx: &Ctx) -> Outcome {
        let m = ctx.model;
        let exclude = action == Action::ExcludeExample;
        let Some(id) = self.example_at_cursor(m, ctx.selected) else {
            return Outcome::Flash("no example here to mark".into());
        };
        if let Some(why) = m.why_not_live(if exclude { "excluding an example" } else { "fixing an example" }) {
            return Outcome::Flash(why);
        }
        let split = self.split(m);
        let change = m.example_change(split, &id);
        if let Some((_, stage)) = change.excluded {
            let when = match stage {
                Stage::Committed => "already",
                _ => "about to be",
            };
            return Outcome::Flash(format!(
                "{} example {} is {when} excluded from this run",
                split.as_str(),
                one_line(&id)
            ));
        }
        let mut mark = DataMark { split, example: id.clone(), fields: vec![], at: 0 };
        if exclude {
            let label = format!("exclude {} example {} · reason", split.as_str(), id);
            self.pending = Some(mark);
            return Outcome::Prompt(InputLine::new(InputTarget::ExcludeReason, "").with_label(label));
        }
        mark.fields = m.fix_fields(split, &id);
        if mark.fields.is_empty() {
            return Outcome::Flash(format!("example {} has no field to correct", one_line(&id)));
        }
        let text = value_for_prompt(m.field_value(split, &id, mark.field()).as_ref());
        let label = mark.fix_label();
        self.pending = Some(mark);
        Outcome::Prompt(InputLine::new(InputTarget::FixValue, text).with_label(label))
    }

    /// On the selected candidate's val evaluations: at `example` (clearing the search), or from
    /// the top.
    pub fn show_val(&mut self, example: Option<usize>) {
        self.proposal = None;
        if example.is_some() {
            self.query.clear();
        }
        self.example = example;
        self.scroll.reset();
    }

    /// On proposal `k`'s minibatch: what parent and child were sent and said. Err: why not.
    pub fn show_proposal(&mut self, m: &Model, k: usize) -> Result<(), String> {
        let Some(p) = m.proposals.get(k) else { return Err("no such proposal".into()) };
        if p.parent_evals.is_empty() && p.child_evals.is_empty() {
            return Err("this proposal has no minibatch evaluations (yet)".into());
        }
        self.proposal = Some(k);
        self.example = None;
        self.list.offset = 0;
        self.scroll.reset();
        Ok(())
    }

    /// The search as typed so far.
    pub fn set_query(&mut self, text: String) {
        self.query = text;
        self.list.offset = 0;
        self.scroll.reset();
    }

    pub fn handle(&mut self, action: Action, ctx: &Ctx) -> Outcome {
        let rows = self.rows(ctx.model, ctx.selected);
        let pos = self.example.and_then(|e| rows.iter().position(|r| *r == e)).unwrap_or(0);
        if let Some(done) = self.scroll.handle(action) {
            return done;
        }
        let new_pos = match action {
            Action::Up => step(pos, -1, rows.len()),
            Action::Down => step(pos, 1, rows.len()),
            Action::Top => 0,
            Action::Bottom => rows.len().saturating_sub(1),
            // On a proposal's minibatch, ← → go to the older / newer proposal.
            Action::Left | Action::Right if self.proposal.is_some() => {
                let k = self.proposal.unwrap_or(0);
                let next = if action == Action::Left { k.checked_sub(1) } else { Some(k + 1) };
                return match next.filter(|&j| j < ctx.model.proposals.len()) {
                    Some(j) => match self.show_proposal(ctx.model, j) {
                        Ok(()) => Outcome::Done,
                        Err(e) => Outcome::Flash(e),
                    },
                    None => Outcome::Flash("no more proposals that way".into()),
                };
            }
            Action::Left => return Outcome::Select(step(ctx.selected, -1, ctx.n_candidates())),
            Action::Right => return Outcome::Select(step(ctx.selected, 1, ctx.n_candidates())),
            Action::Search => return Outcome::Prompt(InputLine::new(InputTarget::TraceSearch, self.query.clone())),
            Action::ExcludeExample | Action::FixExample => return self.mark(action, ctx),
            Action::Guide => return self.guide(ctx, &rows),
            Action::Back if !self.query.is_empty() => {
                self.query.clear();
                return Outcome::Done;
            }
            Action::Back if self.proposal.is_some() => {
                // Back to the proposal these minibatch traces came from.
                self.proposal = None;
                return Outcome::Show(View::Reflections, None);
            }
            _ => return Outcome::Ignored,
        };
        if let Some(&e) = rows.get(new_pos) {
            if self.example != Some(e) {
                self.scroll.reset();
            }
            self.example = Some(e);
        }
        Outcome::Done
    }

    /// The guide key: a note for a reflection on the candidate whose trace is shown, with the
    /// example under the cursor (a val example of the selected candidate; on a proposal's
    /// minibatch, a train example of its parent, or of its child once that is a candidate).
    fn guide(&self, ctx: &Ctx, rows: &[usize]) -> Outcome {
        let m = ctx.model;
        let evals = self.evals(m, ctx.selected);
        let shown = self.example.filter(|e| rows.contains(e)).or(rows.first().copied());
        let Some((whose, e)) = shown.and_then(|i| evals.get(i).copied()) else {
            return super::guide_prompt(ctx, ctx.selected, None);
        };
        let proposal = self.proposal.and_then(|k| m.proposals.get(k));
        let (candidate, split) = match (whose, proposal) {
            (Whose::Parent, Some(p)) => (p.parent, crate::project::Split::Train),
            (Whose::Child, Some(p)) => (p.child.unwrap_or(p.parent), crate::project::Split::Train),
            _ => (ctx.selected, crate::project::Split::Val),
        };
        let ids = if split == crate::project::Split::Val { &m.state.val_ids } else { &m.state.train_ids };
        let example = ids.iter().position(|id| *id == e.example_id).map(|i| (split, i));
        super::guide_prompt(ctx, candidate, example)
    }

    pub fn click(&mut self, pos: Position, ctx: &Ctx) -> Outcome {
        let row = self.list.row_at(pos);
        if let Some(&e) = row.and_then(|r| self.rows(ctx.model, ctx.selected).get(r).copied()).as_ref() {
            self.example = Some(e);
            self.scroll.reset();
            return Outcome::Done;
        }
        Outcome::Ignored
    }

    pub fn hints(&self) -> Vec<Action> {
        use Action::*;
        let mut h = vec![Guide, Search, Left, Right, ExcludeExample, FixExample];
        // Opened from a proposal, esc goes back to the Reflections.
        if self.proposal.is_some() {
            h.push(Back);
        }
        h
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (m, theme) = (ctx.model, ctx.theme);
        let evals = self.evals(m, ctx.selected);
        // On a proposal's minibatch: which proposal, for the titles.
        let proposal = self.proposal.and_then(|k| m.proposals.get(k)).map(|p| format!("r{}.{}", p.round, p.slot));
        if evals.is_empty() {
            let msg = if m.state.candidates.is_empty() {
                "No candidate yet.".to_string()
            } else {
                format!("Candidate #{} has no val evaluations yet.", ctx.selected)
            };
            frame.render_widget(
                Paragraph::new(Span::styled(msg, theme.muted)).block(pane(" Traces ", theme, true)),
                area,
            );
            return;
        }
        let list_w = if area.width >= 120 { 36 } else { 26 };
        let [list_area, detail_area] =
            Layout::horizontal([Constraint::Length(list_w), Constraint::Min(20)]).areas(area);
        let rows = self.rows(m, ctx.selected);
        let split = self.split(m);
        let failing = evals
            .iter()
            .filter(|(_, e)| e.error.is_some() || e.score < 1.0)
            .filter(|(_, e)| !m.state.data.is_excluded(split, &e.example_id))
            .count();
        let what = match &proposal {
            Some(p) => format!(" {p} minibatch "),
            None => format!(" #{} on val ", ctx.selected),
        };
        let title = if self.query.is_empty() {
            // "below 1" is shortened on a minibatch, whose longer name must fit a narrow list.
            let below =
                if proposal.is_some() { format!("· {failing} < 1 ") } else { format!("· {failing} below 1 ") };
            vec![Span::styled(what, theme.title), Span::styled(below, theme.muted)]
        } else {
            // Narrow lists have room for the query or the counts, and the query matters more.
            vec![
                Span::styled(
                    match &proposal {
                        Some(p) => format!(" {p} "),
                        None => format!(" #{} ", ctx.selected),
                    },
                    theme.title,
                ),
                Span::styled(format!("\"{}\" {}/{} ", one_line(&self.query), rows.len(), evals.len()), theme.warning),
            ]
        };
        frame.render_widget(pane(Line::from(title), theme, true), list_area);
        let list_body = inner(list_area);
        self.list.area = list_body;
        self.detail_area = detail_area;
        let selected = self.example.filter(|e| rows.contains(e)).or(rows.first().copied());
        let pos = selected.and_then(|s| rows.iter().position(|r| *r == s)).unwrap_or(0);
        let off = self.list.window(pos, list_body.height as usize, rows.len());
        let items: Vec<Line> = rows
            .iter()
            .skip(off)
            .take(list_body.height as usize)
            .map(|&i| {
                let (whose, e) = evals[i];
                let failed = e.error.is_some();
                let change = m.example_change(split, &e.example_id);
                // ⊘: out of the run (counts for nothing); ✎: a field corrected.
                let out = change.excluded.is_some();
                // ⧗: a program ran out of its timeout (not an answer the candidate gave).
                let g = if out {
                    "⊘"
                } else if e.timed_out.is_some() {
                    "⧗"
                } else {
                    glyph(Some(e.score), failed)
                };
                let style = if Some(i) == selected {
                    theme.selection
                } else if out {
                    theme.muted
                } else {
                    theme.text
                };
                let fixed = if change.fixes.is_empty() { "" } else { " ✎" };
                Line::from(vec![
                    Span::styled(
                        format!("{g} "),
                        if Some(i) == selected {
                            theme.selection
                        } else if out {
                            theme.muted
                        } else if failed {
                            theme.error
                        } else {
                            theme.score(e.score)
                        },
                    ),
                    Span::styled(format!("{} {}{fixed}", fmt_score(e.score), row_label(whose, &e.example_id)), style),
                ])
            })
            .collect();
        if rows.is_empty() {
            frame.render_widget(Paragraph::new(Span::styled("nothing matches (esc clears)", theme.muted)), list_body);
        } else {
            frame.render_widget(Paragraph::new(items), list_body);
        }

        let Some(sel) = selected else {
            frame.render_widget(pane(" Trace ", theme, false), detail_area);
            return;
        };
        let (whose, e) = evals[sel];
        let mut lines: Vec<Line> = Vec::new();
        let place = match &proposal {
            Some(p) => format!(" · the {whose}'s run in {p}'s minibatch · score "),
            None => format!(" · val {} of {} · score ", sel + 1, evals.len()),
        };
        lines.push(Line::from(vec![
            Span::styled(one_line(&e.example_id), theme.accent),
            Span::styled(place, theme.muted),
            Span::styled(fmt_score(e.score), theme.score(e.score)),
            Span::styled(format!(" · ${:.5}", e.cost_usd), theme.muted),
        ]));
        if !e.objectives.is_empty() {
            lines.push(Line::styled(format!("objectives: {}", super::objectives_summary(&e.objectives)), theme.muted));
        }
        lines.extend(self.change_lines(ctx, split, &e.example_id));
        if let Some(err) = &e.error {
            lines.push(heading(
                match e.timed_out {
                    Some(t) => format!("── Timed out: {} ran past {} timeout_secs ──", t.what(), t.section()),
                    None => "── Error ──".to_string(),
                },
                theme,
            ));
            lines.extend(text_lines(err, theme.error));
        }
        if let Some(ex) = m.example(split, &e.example_id) {
            lines.push(heading("── Input ──", theme));
            // Fields as the run uses them: a committed fix replaces the file's value (marked ✎).
            let committed = m.state.data.apply(split, ex);
            for (k, v) in &committed.fields {
                if k == "id" || m.expected_field.as_deref() == Some(k.as_str()) {
                    continue;
                }
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let mut first = text_lines(&text, theme.text);
                if let Some(l0) = first.first_mut() {
                    l0.spans.insert(0, Span::styled(format!("{}: ", one_line(k)), theme.muted));
                    if ex.fields.get(k) != Some(v) {
                        l0.spans.push(Span::styled(" ✎ corrected", theme.warning));
                    }
                }
                lines.extend(first);
            }
        }
        if let Some(exp) = m.expected(split, &e.example_id) {
            lines.push(heading("── Expected ──", theme));
            lines.extend(text_lines(&exp, theme.text));
        }
        for (k, step) in e.trace.steps.iter().enumerate() {
            lines.push(heading(
                format!("── Step {}: {} ({}) ──", k + 1, one_line(&step.name), one_line(&step.model)),
                theme,
            ));
            for msg in &step.messages {
                let role = match msg.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                lines.push(Line::styled(format!("[{role}]"), theme.accent));
                lines.extend(text_lines(&msg.content, theme.text));
            }
            lines.push(Line::styled("[reply]", theme.accent));
            if step.truncated {
                lines.push(Line::styled("⚠ cut off at max_tokens", theme.warning));
            }
            lines.extend(text_lines(&step.output, theme.text));
        }
        if let Some(pt) = &e.trace.program_trace {
            lines.push(heading("── Program trace ──", theme));
            lines.extend(text_lines(&serde_json::to_string_pretty(pt).unwrap_or_default(), theme.text));
        }
        if let Some(stderr) = e.trace.stderr.as_deref().filter(|s| !s.trim().is_empty()) {
            lines.push(heading("── Stderr ──", theme));
            lines.extend(text_lines(stderr, theme.muted));
        }
        lines.push(heading("── Output ──", theme));
        lines.extend(text_lines(&e.output, theme.text));
        lines.push(heading("── Feedback ──", theme));
        lines.extend(text_lines(&e.feedback, theme.text));
        let body_area = super::inner(detail_area);
        let at = self.scroll.at(super::wrapped_rows(&lines, body_area.width), body_area.height);
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)).block(pane(
                match &proposal {
                    Some(p) => format!(" Trace: {p}, {whose} "),
                    None => format!(" Trace of #{} ", ctx.selected),
                },
                theme,
                false,
            )),
            detail_area,
        );
    }
}
