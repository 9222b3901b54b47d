//! The manual merge screen: for each component, which of the two marked candidates its text comes
//! from (the merge rules' choice first, marked "rules"), then the merged texts.

use super::{heading, inner, one_line, pane, text_lines, Ctx, Outcome, Scroll};
use crate::engine::event::HumanAction;
use crate::engine::{CandidateId, Origin};
use crate::project::Candidate;
use crate::tui::keymap::{Action, Keymap};
use crate::tui::model::Model;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

/// The manual merge screen: for each component, which of the two marked candidates it comes from.
#[derive(Debug)]
pub struct MergeView {
    pub a: CandidateId,
    pub b: CandidateId,
    pub names: Vec<String>,
    pub from: Vec<CandidateId>,
    /// What the merge rules chose, to show where the person departs from them.
    pub default_from: Vec<CandidateId>,
    pub cursor: usize,
    pub scroll: Scroll,
}

/// The mark key: marks or unmarks candidate `c` for a manual merge (at most two, the oldest
/// dropped); says what happened and, with two marked, how to merge them.
pub fn toggle_mark(marked: &mut Vec<CandidateId>, c: CandidateId, m: &Model, keymap: &Keymap) -> String {
    if c >= m.state.candidates.len() {
        return "no candidate to mark yet".into();
    }
    if let Some(i) = marked.iter().position(|m| *m == c) {
        marked.remove(i);
        return format!("#{c} unmarked");
    }
    marked.push(c);
    let dropped = (marked.len() > 2).then(|| marked.remove(0));
    if marked.len() < 2 {
        return format!("#{c} marked; mark one more to merge them");
    }
    let k = keymap.describe(Action::MergeMarked);
    let (a, b) = (marked[0], marked[1]);
    match dropped {
        Some(d) => format!("#{c} marked (#{d} unmarked: a merge takes two); {k} merges #{a} and #{b}"),
        None => format!("#{a} and #{b} marked; {k} merges them"),
    }
}

impl MergeView {
    /// The screen for the two marked candidates; Err: why it cannot open.
    pub fn open(ctx: &Ctx) -> Result<MergeView, String> {
        if ctx.marked.len() != 2 {
            return Err(format!(
                "mark two candidates first ({} marks the selected one); {} marked",
                ctx.keymap.describe(Action::Mark),
                ctx.marked.len()
            ));
        }
        if let Some(why) = ctx.model.why_not_live("a manual merge") {
            return Err(why);
        }
        Ok(MergeView::new(ctx.model, ctx.marked[0], ctx.marked[1]))
    }

    /// The screen for merging `a` and `b`, starting from what gepa's merge rules would take.
    pub fn new(m: &Model, a: CandidateId, b: CandidateId) -> MergeView {
        let st = &m.state;
        let texts: Vec<Candidate> = st.candidates.iter().map(|c| c.texts.clone()).collect();
        let parents: Vec<Vec<CandidateId>> = st.candidates.iter().map(|c| c.parents.clone()).collect();
        let scores = st.val_means();
        let lineage = crate::engine::merge::Lineage { texts: &texts, parents: &parents, scores: &scores };
        let defaults = lineage.default_sources(a, b);
        let names = st.components.clone();
        let from: Vec<CandidateId> = names.iter().map(|n| defaults.get(n).copied().unwrap_or(a)).collect();
        MergeView { a, b, names, default_from: from.clone(), from, cursor: 0, scroll: Scroll::default() }
    }

    pub fn texts(&self, model: &Model) -> Candidate {
        self.names
            .iter()
            .zip(&self.from)
            .map(|(n, c)| (n.clone(), model.state.candidates[*c].texts.get(n).cloned().unwrap_or_default()))
            .collect()
    }

    /// ← → choose a side for the component under the cursor; Enter sends the merged candidate.
    pub fn handle(&mut self, action: Action, ctx: &Ctx) -> Outcome {
        if let Some(done) = self.scroll.handle(action) {
            return done;
        }
        match action {
            Action::Up => self.cursor = self.cursor.saturating_sub(1),
            Action::Down => self.cursor = (self.cursor + 1).min(self.names.len().saturating_sub(1)),
            Action::Left | Action::Right => {
                let side = if action == Action::Left { self.a } else { self.b };
                if let Some(f) = self.from.get_mut(self.cursor) {
                    *f = side;
                }
            }
            Action::Back | Action::Quit => {
                return Outcome::Close("merge cancelled; nothing sent (the marks stay)".into())
            }
            Action::Open | Action::Save => {
                let texts = self.texts(ctx.model);
                let st = &ctx.model.state;
                if let Some(same) = [self.a, self.b].into_iter().find(|c| st.candidates[*c].texts == texts) {
                    return Outcome::Flash(format!(
                        "those choices give #{same}'s texts unchanged; take at least one component from each side"
                    ));
                }
                if let Some(why) = ctx.model.why_not_live("a manual merge") {
                    return Outcome::Flash(why);
                }
                return Outcome::Send(HumanAction::AddCandidate {
                    texts,
                    parents: vec![self.a, self.b],
                    origin: Origin::Merge,
                    note: "manual merge".into(),
                });
            }
            _ => return Outcome::Ignored,
        }
        Outcome::Done
    }

    pub fn hints(&self) -> Vec<Action> {
        use Action::*;
        vec![Left, Right, Down, Open, Back, Help]
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (m, theme) = (ctx.model, ctx.theme);
        let mg = &*self;
        frame.render_widget(Clear, area);
        let title = format!(" Merge #{} and #{} by hand ", mg.a, mg.b);
        frame.render_widget(pane(title, theme, true), area);
        let body = inner(area);
        let rows = mg.names.len() as u16 + 2;
        let [choices, preview] =
            Layout::vertical([Constraint::Length(rows.min(body.height)), Constraint::Min(0)]).areas(body);
        let score = |c: usize| {
            m.state.candidates.get(c).filter(|r| !r.val_scores.is_empty()).map(|r| format!(" (val {:.3})", r.val_mean))
        };
        let mut lines = vec![Line::from(vec![
            Span::styled("per component, ← takes ", theme.muted),
            Span::styled(format!("#{}{}", mg.a, score(mg.a).unwrap_or_default()), theme.accent),
            Span::styled(", → takes ", theme.muted),
            Span::styled(format!("#{}{}", mg.b, score(mg.b).unwrap_or_default()), theme.accent),
        ])];
        let w = mg.names.iter().map(|n| n.chars().count()).max().unwrap_or(0).clamp(9, 18);
        for (i, name) in mg.names.iter().enumerate() {
            let from = mg.from[i];
            let same = m.state.candidates[mg.a].texts.get(name) == m.state.candidates[mg.b].texts.get(name);
            let cur = i == mg.cursor;
            let side = |c: usize| {
                let chosen = from == c;
                let label = if chosen { format!("[#{c}]") } else { format!(" #{c} ") };
                Span::styled(label, if chosen { theme.selection } else { theme.muted })
            };
            let mut spans = vec![
                Span::styled(if cur { "▶ " } else { "  " }, theme.accent),
                Span::styled(
                    format!("{:<w$} ", crate::text::truncate_chars(&one_line(name), w)),
                    if cur { theme.title } else { theme.text },
                ),
                side(mg.a),
                Span::raw("  "),
                side(mg.b),
            ];
            if same {
                spans.push(Span::styled("  same text on both sides", theme.muted));
            } else if from == mg.default_from[i] {
                spans.push(Span::styled("  (the merge rules' choice)", theme.muted));
            } else {
                spans.push(Span::styled(
                    "  (the rules would take #".to_string() + &mg.default_from[i].to_string() + ")",
                    theme.warning,
                ));
            }
            lines.push(Line::from(spans));
        }
        frame.render_widget(Paragraph::new(lines), choices);
        let texts = mg.texts(m);
        let mut out = Vec::new();
        for (name, from) in mg.names.iter().zip(&mg.from) {
            let other = if *from == mg.a { mg.b } else { mg.a };
            let chosen = texts.get(name).map(String::as_str).unwrap_or("");
            let left_out = m.state.candidates[other].texts.get(name).map(String::as_str).unwrap_or("");
            if left_out == chosen {
                out.push(heading(format!("── {} · from #{from} (same in #{other}) ──", one_line(name)), theme));
                out.extend(text_lines(chosen, theme.text));
            } else {
                // What the choice brings, against the side left out.
                out.push(heading(format!("── {} · from #{from} · diff against #{other} ──", one_line(name)), theme));
                out.extend(super::candidate::word_diff(left_out, chosen, theme));
            }
            out.push(Line::raw(""));
        }
        let at = self.scroll.at(super::wrapped_rows(&out, preview.width), preview.height);
        frame.render_widget(Paragraph::new(out).wrap(Wrap { trim: false }).scroll((at, 0)), preview);
    }
}
