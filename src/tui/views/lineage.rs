//! The whole run's lineage as a tree, from the seed down: every candidate under its first parent
//! (a merge names its second), with its origin, val mean and whether it is on a front, as gepa's
//! `candidate_tree.html` draws it. The Frontier view shows it in place of the table (`L`); ↑ ↓ walk
//! it in tree order and Enter opens a candidate, as in the table.

use super::{fmt_score, inner, one_line, pane, Ctx};
use crate::engine::CandidateId;
use crate::tui::keymap::{Action, Layer};
use crate::tui::model::Model;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// One row of the tree: the candidate and the branch drawing before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: CandidateId,
    pub prefix: String,
}

/// Every candidate in tree order (depth first from each root, children by id), with the
/// `├─ └─ │` drawing of where it hangs. A candidate hangs under its first parent; one without
/// a parent it could hang under (a seed, a candidate added from a folder) is a root.
pub fn tree(m: &Model) -> Vec<Node> {
    let cands = &m.state.candidates;
    let mut children: Vec<Vec<CandidateId>> = vec![Vec::new(); cands.len()];
    let mut roots = Vec::new();
    for c in cands {
        match c.parents.first().filter(|p| **p < c.id) {
            Some(&p) => children[p].push(c.id),
            None => roots.push(c.id),
        }
    }
    let mut out = Vec::with_capacity(cands.len());
    // (candidate, prefix for its line, prefix for its children)
    let mut stack: Vec<(CandidateId, String, String)> =
        roots.into_iter().rev().map(|r| (r, String::new(), String::new())).collect();
    while let Some((c, prefix, child_prefix)) = stack.pop() {
        out.push(Node { id: c, prefix });
        let kids = &children[c];
        for (k, &kid) in kids.iter().enumerate().rev() {
            let last = k + 1 == kids.len();
            let (branch, cont) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
            // Deep chains stop indenting, so a long run stays readable.
            let deep = child_prefix.chars().count() >= 30;
            let next = if deep { child_prefix.clone() } else { format!("{child_prefix}{cont}") };
            stack.push((kid, format!("{child_prefix}{branch}"), next));
        }
    }
    out
}

/// Draws the rows `rows` (ids in tree order, maybe filtered) from `offset`, the selected one
/// highlighted. `nodes` gives each id's drawing.
pub fn render(frame: &mut Frame, area: Rect, ctx: &Ctx, nodes: &[Node], rows: &[CandidateId], offset: usize) {
    let (m, theme) = (ctx.model, ctx.theme);
    let body = inner(area);
    let best = m.state.best();
    let held = m.fronts_held();
    let prefix_of = |id: CandidateId| nodes.iter().find(|n| n.id == id).map(|n| n.prefix.as_str()).unwrap_or("");
    let lines: Vec<Line> = rows
        .iter()
        .skip(offset)
        .take(body.height as usize)
        .map(|&id| {
            let c = &m.state.candidates[id];
            let selected = id == ctx.selected;
            let st = |style: ratatui::style::Style| if selected { theme.selection } else { style };
            let on_front = held.get(id).copied().unwrap_or(0) > 0;
            let scored = !c.val_scores.is_empty();
            let mut val_style = if scored { theme.score(c.val_mean) } else { theme.muted };
            if Some(id) == best {
                val_style = val_style.add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
            }
            let mut spans = vec![
                Span::styled(if on_front { "★ " } else { "  " }, st(theme.accent)),
                Span::styled(prefix_of(id).to_string(), st(theme.border)),
                Span::styled(format!("#{id} "), st(theme.text)),
                Span::styled(if scored { fmt_score(c.val_mean) } else { "…".into() }, st(val_style)),
                Span::styled(format!(" {}", super::origin_label(m, c)), st(theme.muted)),
            ];
            if c.parents.len() > 1 {
                let others: Vec<String> = c.parents[1..].iter().map(|p| format!("#{p}")).collect();
                spans.push(Span::styled(format!(" with {}", others.join("+")), st(theme.muted)));
            }
            if !c.changed.is_empty() {
                spans.push(Span::styled(format!(" · {}", one_line(&c.changed.join(","))), st(theme.muted)));
            }
            Line::from(spans)
        })
        .collect();
    let title = Line::from(vec![
        Span::styled(format!(" Lineage: {} candidates ", m.state.candidates.len()), theme.title),
        Span::styled(
            format!("· ★ on a front · {} shows the table ", ctx.keymap.describe_in(Layer::Frontier, Action::Lineage)),
            theme.muted,
        ),
    ]);
    frame.render_widget(Paragraph::new(lines).block(pane(title, theme, true)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed #0 with children #1 and #3; #2 under #1; #4 a merge of #2 and #3 (under #2); #5 added
    /// from a folder (a second root).
    #[test]
    fn every_candidate_hangs_under_its_first_parent() {
        let mut m = Model::default();
        let texts = crate::project::Candidate::new();
        m.state.add_provisional(&texts, 0);
        for p in [0, 1, 0, 2, 0] {
            m.state.add_provisional(&texts, p);
        }
        // Make #0 the seed, #4 a merge of #2 and #3, #5 a root of its own.
        m.state.candidates[0].parents.clear();
        m.state.candidates[4].parents = vec![2, 3];
        m.state.candidates[5].parents.clear();
        let drawn: Vec<String> = tree(&m).iter().map(|n| format!("{}#{}", n.prefix, n.id)).collect();
        assert_eq!(drawn, ["#0", "├─ #1", "│  └─ #2", "│     └─ #4", "└─ #3", "#5"]);
    }
}
