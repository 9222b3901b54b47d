//! The workbench as a person sees it: snapshots of every view at 80×24 and 160×48 for a small fixed
//! run (the scripted GEPA problem of tests/common), key sequences driven through the `App` with no
//! terminal, and the model's fold checked against the engine's. Human in the loop: keys drive
//! approve / veto / edit / merge / add, checked on the commands the App sends, and with a real
//! engine in approve mode (decisions recorded, pending items back after a stop and reopen).

mod common;

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};
use gepa_tui::engine::event::HumanAction;
use gepa_tui::engine::run::load_events;
use gepa_tui::engine::{Engine, EngineOptions, Event, Notice, Origin, RunState};
use gepa_tui::project::config::ReviewPolicy;
use gepa_tui::project::Project;
use gepa_tui::tui::app::{App, DiffMode, EngineCommand, MatrixPane, View};
use gepa_tui::tui::keymap::{Keymap, Layer};
use gepa_tui::tui::model::Model;
use gepa_tui::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One round at a time: no work planned ahead fills the response cache, so what was paid and what
/// was replayed (on the dashboard) do not depend on timing.
const OPT: &str = "max_metric_calls = 120\nminibatch_size = 3\nproposals_per_round = 2\nseed = 7\nmerge = true\nmax_merges = 2\npipeline_lag = 1";
const RUN_ID: &str = "20261125-000000-f1x7";

struct Fixture {
    _tmp: tempfile::TempDir,
    project: Project,
    events: Vec<Event>,
}

/// Runs the scripted problem once per test process and keeps its events, with a fixed run id.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| record_fixture(OPT, vec![]))
}

/// Runs the scripted problem with `opt` (and `acts` sent as it starts) and keeps its events,
/// with a fixed run id.
fn record_fixture(opt: &str, acts: Vec<HumanAction>) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, opt);
    let run_dir = record_run_with(&dir, acts);
    let (mut events, _) = load_events(&run_dir, false).unwrap();
    for ev in &mut events {
        if let Event::RunStarted { run_id, .. } = ev {
            *run_id = RUN_ID.to_string();
        }
    }
    let project = Project::load(&dir).unwrap();
    Fixture { _tmp: tmp, project, events }
}

/// Every sibling that passes its minibatch is kept, so this run of the scripted problem has what
/// the plain fixture lacks: branches, merges, children that change the `format` component, and a
/// candidate off every front (a hand edit, sent as the run starts, that dropped the seed's rule A).
const OPT_RICH: &str = "max_metric_calls = 200\nminibatch_size = 3\nproposals_per_round = 2\naccept_per_round = \"all\"\nseed = 7\nmerge = true\nmax_merges = 2\npipeline_lag = 1";

fn rich_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let lost_rule_a = [
            ("instruction".to_string(), "Answer the item.".to_string()),
            ("format".to_string(), "Reply with the code only.".to_string()),
        ];
        let edit = HumanAction::AddCandidate {
            texts: lost_rule_a.into(),
            parents: vec![0],
            origin: Origin::Human,
            note: "a hand edit".into(),
        };
        record_fixture(OPT_RICH, vec![edit])
    })
}

fn app_of(f: &Fixture) -> App {
    let mut a = App::new(Model::from_events(&f.events).with_project(&f.project), Keymap::default(), Theme::default());
    a.select_candidate(0);
    a
}

fn rich_app() -> App {
    app_of(rich_fixture())
}

/// Runs the scripted problem to the end in `dir`; returns the run folder.
fn record_run(dir: &Path) -> PathBuf {
    record_run_with(dir, vec![])
}

/// `record_run`, with `acts` sent to the engine before it starts.
fn record_run_with(dir: &Path, acts: Vec<HumanAction>) -> PathBuf {
    let (project, task) = common::load(dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (engine, h) = Engine::create(project, task, EngineOptions::default()).unwrap();
        for a in acts {
            h.act(a);
        }
        engine.run().await.unwrap().run_dir
    })
}

fn model() -> Model {
    let f = fixture();
    Model::from_events(&f.events).with_project(&f.project)
}

/// The fixture run with the seed selected, so key-driven tests count rows from the top.
fn app_with(theme: Theme) -> App {
    let mut a = App::new(model(), Keymap::default(), theme);
    a.select_candidate(0);
    a
}

fn app() -> App {
    app_with(Theme::default())
}

fn draw(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| app.render(f)).unwrap();
    term.backend().buffer().clone()
}

/// The screen as plain text, one line per row.
fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent { code, modifiers: KeyModifiers::NONE, kind: KeyEventKind::Press, state: KeyEventState::NONE }
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
}

fn press_code(app: &mut App, code: KeyCode, times: usize) {
    for _ in 0..times {
        app.on_key(key(code));
    }
}

/// Puts the app where each snapshot should be: candidate and traces views on the best candidate,
/// so a diff and a failing trace are on screen.
fn at_view(view: View) -> App {
    let mut a = app();
    let best = a.model.state.best().unwrap();
    if matches!(view, View::Candidate | View::Traces) {
        a.select_candidate(best);
    }
    a.goto(view);
    a
}

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn snap_name(view: View) -> &'static str {
    match view {
        View::Dashboard => "1_dashboard",
        View::Frontier => "2_frontier",
        View::WinMatrix => "3_win_matrix",
        View::Candidate => "4_candidate",
        View::Traces => "5_traces",
        View::Reflections => "6_reflections",
        View::Review => "7_review",
    }
}

/// The fixture's last round ran past the budget (a round under way finishes): the gauge says by
/// how much, from what the log records, instead of a full bar at "100%".
#[test]
fn the_dashboard_shows_a_budget_overshoot_as_it_is() {
    let (used, max) = fixture()
        .events
        .iter()
        .find_map(|e| match e {
            Event::Finished { metric_calls, .. } => Some((*metric_calls, 120)),
            _ => None,
        })
        .unwrap();
    assert!(used > max, "the fixture overshoots its budget of {max}: {used}");
    let pct = (used as f64 / max as f64 * 100.0).round();
    let mut a = at_view(View::Dashboard);
    for (w, h) in SIZES {
        let screen = text(&draw(&mut a, w, h));
        assert!(screen.contains(&format!("{used} / {max} ({pct}%, {} over)", used - max)), "{screen}");
    }
}

#[test]
fn every_view_at_both_sizes() {
    for view in View::ALL {
        for (w, h) in SIZES {
            let mut a = at_view(view);
            let buf = draw(&mut a, w, h);
            let name = format!("{}_{w}x{h}", snap_name(view));
            if view == View::WinMatrix {
                // The heat map's colours matter: the Buffer's Debug form keeps every style.
                insta::assert_snapshot!(name, format!("{buf:?}"));
            } else {
                insta::assert_snapshot!(name, text(&buf));
            }
        }
    }
}

#[test]
fn help_overlay_and_start_screen() {
    // The help lists the view's own keymap table first, then the global one: nothing of its own
    // on the Dashboard; sort, filter and the plot's keys in the Frontier; approve and veto in Review.
    let mut a = app();
    press(&mut a, "?");
    let help = text(&draw(&mut a, 80, 24));
    // Cut at 80x24, and it says so: how many lines are below; scrolled to the end, above.
    assert!(help.contains("more below") && !help.contains("more above"), "{help}");
    insta::assert_snapshot!("help_80x24", help);
    press_code(&mut a, KeyCode::PageDown, 20);
    let end = text(&draw(&mut a, 80, 24));
    assert!(end.contains("more above") && !end.contains("more below"), "{end}");
    assert!(end.contains("the wheel scrolls"), "the last line is in view:\n{end}");
    press(&mut a, "?");
    press(&mut a, "?");
    // At 160x48 it fits whole, in two columns (the view's keys and the editor's and input line's
    // beside the global ones): every key's description is on the screen, nothing above or below.
    let wide = text(&draw(&mut a, 160, 48));
    assert!(!wide.contains("more below") && !wide.contains("more above"), "fits at 160x48:\n{wide}");
    let km = Keymap::default();
    for layer in [Layer::Global, Layer::Editor, Layer::Input] {
        for (action, _) in km.layer_bindings(layer) {
            let d: String = action.description_in(layer).chars().take(28).collect();
            assert!(wide.contains(&d), "{d:?} ({}) at 160x48:\n{wide}", action.name());
        }
    }
    insta::assert_snapshot!("help_dashboard_160x48", wide);
    press(&mut a, "?");
    press(&mut a, "2?");
    let frontier = text(&draw(&mut a, 80, 24));
    assert!(frontier.contains("In the Frontier") && frontier.contains("change the sort order"), "{frontier}");
    insta::assert_snapshot!("help_frontier_80x24", frontier);
    press(&mut a, "7?");
    let review = text(&draw(&mut a, 160, 48));
    assert!(review.contains("In the Review queue") && !review.contains("change the sort order"), "{review}");
    insta::assert_snapshot!("help_review_160x48", review);

    let entries: Vec<_> = vec![
        gepa_tui::tui::start::RunEntry {
            id: RUN_ID.into(),
            finished: true,
            running: None,
            best_val: Some(a.model.state.best_val()),
            test_score: a.model.state.test_score,
            candidates: Some(a.model.state.candidates.len() as u64),
            metric_calls: Some(a.model.state.metric_calls),
            stop_reason: a.model.state.finished.clone(),
        },
        gepa_tui::tui::start::RunEntry {
            id: "20261124-235959-0a0a".into(),
            finished: false,
            running: None,
            best_val: None,
            test_score: None,
            candidates: None,
            metric_calls: None,
            stop_reason: None,
        },
    ];
    let s = gepa_tui::tui::start::StartScreen::new(entries, "my-project".into(), Keymap::default(), Theme::default());
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|fr| gepa_tui::tui::views::start::render(fr, fr.area(), &s, &s.theme)).unwrap();
    insta::assert_snapshot!("start_80x24", text(term.backend().buffer()));
}

#[test]
fn no_color_keeps_the_glyphs_and_drops_the_colours() {
    let mut a = app_with(Theme::default().without_colour());
    a.goto(View::WinMatrix);
    let buf = draw(&mut a, 80, 24);
    let t = text(&buf);
    assert!(t.contains('█') && t.contains('·'), "{t}");
    for cell in buf.content() {
        assert!(cell.fg == ratatui::style::Color::Reset && cell.bg == ratatui::style::Color::Reset, "{cell:?}");
    }
}

#[test]
fn a_reopened_run_opens_on_its_best_candidate_until_the_user_picks_one() {
    let m = model();
    let best = m.state.best().unwrap();
    assert_ne!(best, 0, "the fixture's best must not be the seed for this test to mean anything");
    let mut a = App::new(m, Keymap::default(), Theme::default());
    assert_eq!(a.selected, best);
    press(&mut a, "4");
    assert!(text(&draw(&mut a, 160, 48)).contains(&format!("Candidate #{best}")));
    // Once the user moves, later events no longer move the selection.
    press(&mut a, "2");
    press_code(&mut a, KeyCode::Home, 1);
    let picked = a.selected;
    assert_ne!(picked, best);
    assert!(!a.follow_best);
    a.on_notice(Notice::Warning("nothing".into()));
    assert_eq!(a.selected, picked);
}

#[test]
fn enter_on_a_heat_map_cell_shows_that_trace() {
    let mut a = app();
    press(&mut a, "3");
    assert_eq!(a.view, View::WinMatrix);
    // Down twice: candidate #2; right three times: the fourth example in column order.
    press_code(&mut a, KeyCode::Down, 2);
    press_code(&mut a, KeyCode::Right, 3);
    let example = a.views.matrix.example_order(&a.model)[3];
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.view, View::Traces);
    assert_eq!(a.selected, 2);
    assert_eq!(a.views.traces.example, Some(example));
    let id = a.model.state.val_ids[example].clone();
    let screen = text(&draw(&mut a, 160, 48));
    assert!(screen.contains("Trace of #2"), "{screen}");
    assert!(screen.contains(&format!("{id} · val {} of", example + 1)), "{screen}");
    // The trace shows the rendered messages that candidate #2 sent.
    let first_line = a.model.state.candidates[2].texts["instruction"].clone();
    assert!(screen.contains(&first_line[..first_line.len().min(40)]), "{screen}");

    // After sorting by difficulty the same keys land on the hardest example.
    let mut a = app();
    press(&mut a, "3s");
    let hardest = a.views.matrix.example_order(&a.model)[0];
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.views.traces.example, Some(hardest));
    let m = &a.model;
    assert!((0..m.state.val_ids.len()).all(|i| m.difficulty(i) >= m.difficulty(hardest)));
}

/// `t` in Reflections opens the proposal's minibatch in Traces: the parent's runs, then the
/// child's, with the messages each sent; ← → move between proposals; esc goes back.
#[test]
fn t_in_reflections_shows_the_minibatch_traces_of_that_proposal() {
    let mut a = app();
    press(&mut a, "6");
    let n = a.model.proposals.len();
    let newest = &a.model.proposals[n - 1];
    let (parent, child) = (newest.parent_evals.clone(), newest.child_evals.clone());
    assert!(!parent.is_empty() && !child.is_empty(), "the fixture's newest proposal ran its minibatch");
    press(&mut a, "t");
    assert_eq!(a.view, View::Traces);
    assert_eq!(a.views.traces.proposal, Some(n - 1));
    let rows: Vec<(String, String)> = a
        .views
        .traces
        .rows(&a.model, a.selected)
        .iter()
        .map(|&i| a.views.traces.evals(&a.model, a.selected)[i])
        .map(|(w, e)| (w.to_string(), e.example_id.clone()))
        .collect();
    let want: Vec<(String, String)> = parent
        .iter()
        .map(|e| ("parent".to_string(), e.example_id.clone()))
        .chain(child.iter().map(|e| ("child".to_string(), e.example_id.clone())))
        .collect();
    assert_eq!(rows, want, "the parent's runs, then the child's, in minibatch order");
    // The child's trace shows the messages the child sent: its text for the changed component.
    press_code(&mut a, KeyCode::Down, parent.len());
    let screen = text(&draw(&mut a, 160, 48));
    let p = &a.model.proposals[n - 1];
    assert!(screen.contains(&format!("r{}.{} minibatch", p.round, p.slot)), "{screen}");
    assert!(screen.contains(&format!("the child's run in r{}.{}'s minibatch", p.round, p.slot)), "{screen}");
    let sent = &child[0].trace.steps[0].messages[0].content;
    assert!(screen.contains(sent.lines().next().unwrap()), "the child's system message:\n{screen}");
    // ← goes to the older proposal, esc back to Reflections; 5 is the candidate's val traces again.
    press_code(&mut a, KeyCode::Left, 1);
    assert_eq!(a.views.traces.proposal, Some(n - 2));
    press_code(&mut a, KeyCode::Esc, 1);
    assert_eq!(a.view, View::Reflections);
    press(&mut a, "t5");
    assert_eq!((a.view, a.views.traces.proposal), (View::Traces, None));
}

#[test]
fn pairwise_cell_opens_the_diff_of_the_pair() {
    let mut a = app();
    press(&mut a, "3w");
    assert_eq!(a.views.matrix.pane, MatrixPane::Pairwise);
    press_code(&mut a, KeyCode::Down, 1);
    press_code(&mut a, KeyCode::Right, 2);
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.view, View::Candidate);
    assert_eq!((a.selected, a.views.candidate.compare, a.views.candidate.diff), (1, 2, DiffMode::Other));
    assert!(text(&draw(&mut a, 160, 48)).contains("diff against #2"));
}

#[test]
fn enter_on_a_frontier_row_opens_that_candidate() {
    let mut a = app();
    press(&mut a, "2");
    press(&mut a, "s"); // by val mean, best first; the cursor stays on the same candidate
    let rows = a.views.frontier.rows(&a.model).clone();
    press(&mut a, "g");
    assert_eq!(a.selected, rows[0]);
    press_code(&mut a, KeyCode::Down, 1);
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.view, View::Candidate);
    assert_eq!(a.selected, rows[1]);
    assert!(text(&draw(&mut a, 80, 24)).contains(&format!("Candidate #{}", rows[1])));
}

#[test]
fn frontier_filter_narrows_the_rows_and_esc_clears_it() {
    let mut a = rich_app();
    press(&mut a, "2/merge");
    assert!(a.input().is_some());
    let mut rows = a.views.frontier.rows(&a.model).clone();
    rows.sort();
    // The merges, as the log records them.
    let merges: Vec<usize> = rich_fixture()
        .events
        .iter()
        .filter_map(|e| match e {
            Event::CandidateAdded { id, origin: Origin::Merge, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert!(merges.len() >= 2, "the fixture has merges: {merges:?}");
    assert_eq!(rows, merges, "the filter keeps the merges and only them");
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(a.input().is_none());
    assert_eq!(a.views.frontier.filter, "merge");
    press_code(&mut a, KeyCode::Esc, 1);
    assert_eq!(a.views.frontier.rows(&a.model).len(), a.model.state.candidates.len());
}

#[test]
fn help_tab_cycling_and_release_events() {
    let mut a = app();
    press(&mut a, "?");
    assert!(a.help().is_some());
    assert!(text(&draw(&mut a, 80, 24)).contains("show or hide this help"));
    press_code(&mut a, KeyCode::Esc, 1);
    assert!(a.help().is_none());

    let mut seen = vec![a.view];
    for _ in 0..7 {
        press_code(&mut a, KeyCode::Tab, 1);
        seen.push(a.view);
    }
    assert_eq!(&seen[..7], &View::ALL[..]);
    assert_eq!(seen[7], View::Dashboard);
    a.on_key(KeyEvent {
        code: KeyCode::BackTab,
        modifiers: KeyModifiers::SHIFT,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    });
    assert_eq!(a.view, View::Review);

    // A key release (kitty keyboard protocol) does nothing.
    a.on_key(KeyEvent {
        code: KeyCode::Char('2'),
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Release,
        state: KeyEventState::NONE,
    });
    assert_eq!(a.view, View::Review);
    press(&mut a, "q");
    assert!(a.quit);
}

#[test]
fn mouse_clicks_on_tabs_and_scrolls() {
    let mut a = app();
    draw(&mut a, 160, 48);
    let (_, x, _, _) = gepa_tui::tui::views::tabs::layout(160).into_iter().find(|(v, ..)| *v == View::Traces).unwrap();
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x + 1,
        row: 0,
        modifiers: KeyModifiers::NONE,
    };
    a.on_terminal_event(&TermEvent::Mouse(click));
    assert_eq!(a.view, View::Traces);
    a.goto(View::Frontier);
    draw(&mut a, 160, 48);
    let wheel = MouseEvent { kind: MouseEventKind::ScrollDown, column: 10, row: 10, modifiers: KeyModifiers::NONE };
    a.on_terminal_event(&TermEvent::Mouse(wheel));
    assert_eq!(a.selected, 1);
}

#[test]
fn pausing_a_browsed_run_says_why_not() {
    let mut a = app();
    press(&mut a, " ");
    assert!(a.commands.is_empty());
    assert!(a.flash.as_deref().unwrap().contains("finished"));
}

/// The pause state has one writer, the engine handle (through the event loop): space asks, and a
/// second space before the engine answered asks to resume; a stale status does not undo it.
#[test]
fn space_asks_the_engine_and_the_handle_says_whether_it_paused() {
    let mut a = app();
    a.model.attached = true;
    a.model.state.finished = None;
    press(&mut a, " ");
    assert_eq!(a.commands, vec![EngineCommand::Pause]);
    assert!(!a.model.paused(), "not paused until the engine says so");
    press(&mut a, " ");
    assert_eq!(a.commands, vec![EngineCommand::Pause, EngineCommand::Resume]);
    a.commands.clear();
    assert!(a.model.set_paused(true));
    a.on_notice(Notice::Status(gepa_tui::engine::Status::default()));
    assert!(a.model.paused(), "a status sent before the pause is stale");
    press(&mut a, " ");
    assert_eq!(a.commands, vec![EngineCommand::Resume]);
}

#[test]
fn branching_asks_once_then_names_the_selected_candidate() {
    let mut a = app();
    a.select_candidate(1);
    press(&mut a, "b");
    assert_eq!(a.branch, None, "one press only says what will happen");
    let said = a.flash.clone().unwrap();
    assert!(said.contains("b again") && said.contains("#1"), "{said}");
    // Any other key in between disarms it: a stray `b` later does not branch.
    press(&mut a, "2");
    press(&mut a, "b");
    assert_eq!(a.branch, None);
    press(&mut a, "b");
    assert_eq!(a.branch, Some(1));
    assert!(!a.quit, "branching is not quitting: the workbench opens the new run");
}

/// What a run's log says at each prefix, folded naively and independently of `RunState`: a
/// round's candidates and val scores count once its `round_finished` is in; each val example's
/// front holds every candidate with the best score on it (ties kept).
struct NaiveFold {
    candidates: Vec<(usize, Vec<usize>, gepa_tui::project::Candidate)>,
    val_means: Vec<f64>,
    fronts: Vec<std::collections::BTreeSet<usize>>,
    metric_calls: u64,
}

fn naive_fold(events: &[Event]) -> NaiveFold {
    use std::collections::{BTreeMap, BTreeSet};
    let mut val_ids = Vec::new();
    let mut pending: BTreeMap<u64, Vec<&Event>> = BTreeMap::new();
    let mut candidates = Vec::new();
    let mut scores: Vec<BTreeMap<String, f64>> = Vec::new();
    let mut metric_calls = 0;
    for ev in events {
        match ev {
            Event::RunStarted { val_ids: v, .. } => val_ids = v.clone(),
            Event::CandidateAdded { round, .. } => pending.entry(*round).or_default().push(ev),
            Event::ValEvaluated { round, .. } => {
                pending.entry(round.expect("the fixture's val scores name their round")).or_default().push(ev)
            }
            Event::RoundFinished { round, metric_calls: m, .. } => {
                metric_calls = *m;
                for ev in pending.remove(round).unwrap_or_default() {
                    match ev {
                        Event::CandidateAdded { id, parents, texts, .. } => {
                            assert_eq!(*id, candidates.len(), "ids in order");
                            candidates.push((*id, parents.clone(), texts.clone()));
                            scores.push(BTreeMap::new());
                        }
                        Event::ValEvaluated { candidate, evals, .. } => {
                            scores[*candidate].extend(evals.iter().map(|e| (e.example_id.clone(), e.score)));
                        }
                        _ => unreachable!(),
                    }
                }
            }
            _ => {}
        }
    }
    let val_means = scores.iter().map(|s| s.values().sum::<f64>() / val_ids.len() as f64).collect();
    let fronts = val_ids
        .iter()
        .map(|id| {
            let best = scores.iter().filter_map(|s| s.get(id)).copied().fold(f64::NEG_INFINITY, f64::max);
            (0..scores.len()).filter(|&c| scores[c].get(id) == Some(&best)).collect::<BTreeSet<_>>()
        })
        .filter(|f| !f.is_empty())
        .collect();
    NaiveFold { candidates, val_means, fronts, metric_calls }
}

/// The workbench's model, folded from every prefix of a run's log, agrees with a naive fold of
/// the same prefix written here: the candidates, their val means, the fronts, the metric calls.
#[test]
fn model_fold_matches_the_engine_fold_at_every_prefix() {
    for f in [fixture(), rich_fixture()] {
        for cut in 0..=f.events.len() {
            let m = Model::from_events(&f.events[..cut]);
            let want = naive_fold(&f.events[..cut]);
            let got: Vec<_> = m.state.candidates.iter().map(|c| (c.id, c.parents.clone(), c.texts.clone())).collect();
            assert_eq!(got, want.candidates, "candidates after {cut} events");
            assert_eq!(m.state.val_means(), want.val_means, "val means after {cut} events");
            let fronts: Vec<_> = m.state.front_sets().into_iter().filter(|f| !f.is_empty()).collect();
            assert_eq!(fronts, want.fronts, "fronts after {cut} events");
            assert_eq!(m.state.metric_calls, want.metric_calls, "metric calls after {cut} events");
            assert_eq!(m.val_evals.len(), m.state.candidates.len());
        }
    }
    let m = Model::from_events(&rich_fixture().events);
    // Every accepted proposal is linked to the candidate it became.
    let accepted = m
        .proposals
        .iter()
        .filter(|p| matches!(p.outcome, Some(gepa_tui::engine::ProposalOutcome::Accepted { .. })))
        .count();
    let linked = m.proposals.iter().filter(|p| p.child.is_some() && p.merge.is_none()).count();
    assert_eq!(accepted, linked);
    assert!(m.state.candidates.len() >= 3, "the fixture should have a real frontier");
}

/// Kills this test's private tmux server however the test ends.
struct TmuxServer(String);

impl TmuxServer {
    fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux").arg("-L").arg(&self.0).args(args).output().unwrap()
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "smoke"]).stdout).into_owned()
    }
    fn wait_for(&self, what: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(60), "`{what}` never appeared; the screen:\n{s}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The real binary in a pseudo-terminal (tmux): resumes an interrupted run offline (every reply
/// from the cache), shows the frontier, quits with `q`, and leaves the terminal as it found it:
/// the shell's screen back, cooked mode on.
#[test]
fn the_binary_runs_offline_shows_the_frontier_and_restores_the_terminal() {
    if !common::have_tmux("the_binary_runs_offline_shows_the_frontier_and_restores_the_terminal") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, OPT);
    let finished = record_run(&dir);
    let cut = dir.join(".gepa/runs/interrupted");
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::copy(finished.join("gepa.toml"), cut.join("gepa.toml")).unwrap();
    let ev = std::fs::read(finished.join("events.jsonl")).unwrap();
    std::fs::write(cut.join("events.jsonl"), &ev[..ev.len() / 3]).unwrap();

    let tmux = TmuxServer(format!("gepa-tui-smoke-{}", std::process::id()));
    let out = tmux.run(&["new-session", "-d", "-x", "100", "-y", "30", "-s", "smoke", "sh"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cmd = format!(
        "clear; echo before-the-tui; {} --run interrupted --offline {}; echo exit=$?; stty -a | tr ' ;' '\\n\\n' | grep -x icanon",
        env!("CARGO_BIN_EXE_gepa-tui"),
        dir.display()
    );
    tmux.run(&["send-keys", "-t", "smoke", &cmd, "Enter"]);
    // The engine replays the rest of the run from the cache and finishes.
    tmux.wait_for("✓ finished");
    tmux.run(&["send-keys", "-t", "smoke", "2"]);
    let s = tmux.wait_for("Frontier:");
    assert!(s.contains("#0") && s.contains("seed"), "{s}");
    tmux.run(&["send-keys", "-t", "smoke", "q"]);
    let s = tmux.wait_for("exit=");
    assert!(s.contains("exit=0"), "{s}");
    assert!(s.contains("before-the-tui"), "the shell's screen is back:\n{s}");
    assert!(!s.contains("Frontier:"), "the alternate screen is gone:\n{s}");
    let s = tmux.wait_for("icanon");
    assert!(s.lines().any(|l| l.trim() == "icanon"), "cooked mode restored:\n{s}");
    assert!(s.contains("run interrupted finished"), "{s}");
}

#[test]
fn scrolling_stops_at_the_end_and_comes_straight_back() {
    let mut a = app();
    press(&mut a, "6");
    draw(&mut a, 80, 24);
    let max = a.views.reflections.scroll.max;
    assert!(max > 10, "the reflection detail is longer than the screen");
    press_code(&mut a, KeyCode::PageDown, 1000);
    assert_eq!(a.views.reflections.scroll.pos, max);
    press_code(&mut a, KeyCode::PageUp, 1);
    assert_eq!(a.views.reflections.scroll.pos, max - 10);
    let screen = text(&draw(&mut a, 80, 24));
    assert!(!screen.contains("Minibatch scores"), "scrolled past the top part:\n{screen}");
}

#[test]
fn trace_search_keeps_the_matching_examples_failures_first() {
    let mut a = app();
    // The seed answers group A only: of items 100–109 (groups E F G H A B C D E F) it gets one right.
    a.select_candidate(0);
    press(&mut a, "5/ITEM 10");
    let rows = a.views.traces.rows(&a.model, a.selected);
    let evals = &a.model.val_evals[0];
    let mut ids: Vec<&str> = rows.iter().map(|&r| evals[r].example_id.as_str()).collect();
    let scores: Vec<f64> = rows.iter().map(|&r| evals[r].score).collect();
    assert_eq!(scores.iter().filter(|s| **s > 0.0).count(), 1, "one success among failures: {ids:?} {scores:?}");
    assert_eq!(scores.last(), Some(&1.0), "failures first: {ids:?} {scores:?}");
    assert_eq!(ids.pop(), Some("ex104"), "the one in group A");
    ids.sort();
    let mut all = ids.clone();
    all.push("ex104");
    all.sort();
    assert_eq!(
        all,
        (100..110).map(|i| format!("ex{i}")).collect::<Vec<_>>(),
        "the search matches the input, ignoring case"
    );
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(text(&draw(&mut a, 80, 24)).contains("\"ITEM 10\""));
}

// ---------------------------------------------------------------------------------------------
// Human in the loop: the Review view, the editor, manual merges and candidates from folders.
// ---------------------------------------------------------------------------------------------

const OPT_REVIEW: &str = "max_metric_calls = 120\nminibatch_size = 3\nproposals_per_round = 2\nseed = 7\n\n[review]\nmutations = \"approve\"\nmax_pending = 2";

fn ctrl(c: char) -> KeyEvent {
    KeyEvent {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::CONTROL,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    }
}

/// The editor's undo and redo and the input line's enter and esc are keymap tables too: rebound
/// in keymap.toml's [editor] and [input], the new keys act and the old ones no longer do.
#[test]
fn editor_undo_and_input_line_keys_are_keymap_layers() {
    let mut a = at_view(View::Frontier);
    a.model.attached = true;
    a.model.state.finished = None;
    a.keymap
        .apply_overrides("[editor]\n\"ctrl-u\" = \"undo\"\n\"ctrl-z\" = \"none\"\n[input]\n\"ctrl-g\" = \"back\"\n")
        .unwrap();
    press(&mut a, "e");
    let before = a.editor().expect("the editor is open").texts();
    press(&mut a, "abc");
    assert_ne!(a.editor().unwrap().texts(), before);
    a.on_key(ctrl('z'));
    assert_ne!(a.editor().unwrap().texts(), before, "ctrl-z is unbound in [editor] here");
    a.on_key(ctrl('u'));
    assert_eq!(a.editor().unwrap().texts(), before, "ctrl-u undoes the typing");
    press_code(&mut a, KeyCode::Esc, 1);
    assert!(a.editor().is_none());
    // The filter line: ctrl-g now cancels it (esc still does: the default stays).
    press(&mut a, "/merge");
    assert!(a.input().is_some());
    a.on_key(ctrl('g'));
    assert!(a.input().is_none(), "ctrl-g closes the input line");
    // The help lists both tables with the keys in force.
    press(&mut a, "?");
    let help = text(&draw(&mut a, 160, 48));
    assert!(help.contains("In the editor") && help.contains("ctrl-u  undo the last change"), "{help}");
    assert!(help.contains("On the input line") && help.contains("ctrl-g"), "{help}");
    // A view key keeps its view's name in the Frontier's help too.
    assert!(help.contains("2  frontier: every candidate"), "{help}");
}

/// Runs an approve-mode engine until its review queue is full and it waits for a person, then
/// stops it (as `q` does): returns the run folder.
fn run_until_waiting(rt: &tokio::runtime::Runtime, dir: &Path) -> PathBuf {
    let (project, task) = common::load(dir);
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) =
            Engine::create(project, task, EngineOptions { notices: Some(tx), ..Default::default() }).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        let jh = tokio::spawn(engine.run());
        let wait = async {
            while let Some(n) = rx.recv().await {
                if let Notice::Status(s) = n {
                    if s.activity.starts_with("waiting for review") {
                        break;
                    }
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait).await.expect("the queue never filled");
        h.stop();
        let out = jh.await.unwrap().unwrap();
        assert!(out.result.is_none(), "stopped, resumable");
        run_dir
    })
}

struct ReviewFixture {
    _tmp: tempfile::TempDir,
    project: Project,
    events: Vec<Event>,
}

/// An approve-mode run of the scripted problem stopped while two items wait for review.
fn review_fixture() -> &'static ReviewFixture {
    static F: OnceLock<ReviewFixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("proj");
        common::write_project(&dir, OPT_REVIEW);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let run_dir = run_until_waiting(&rt, &dir);
        let (mut events, _) = load_events(&run_dir, false).unwrap();
        for ev in &mut events {
            if let Event::RunStarted { run_id, .. } = ev {
                *run_id = RUN_ID.to_string();
            }
        }
        let project = Project::load(&dir).unwrap();
        ReviewFixture { _tmp: tmp, project, events }
    })
}

/// The review fixture in an app that believes an engine is attached (decisions become commands).
fn review_app() -> App {
    let f = review_fixture();
    let mut m = Model::from_events(&f.events).with_project(&f.project);
    m.attached = true;
    let mut a = App::new(m, Keymap::default(), Theme::default());
    a.goto(View::Review);
    a
}

fn acts(a: &App) -> Vec<HumanAction> {
    a.commands
        .iter()
        .filter_map(|c| match c {
            EngineCommand::Act(h) => Some(h.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn review_view_with_pending_items_at_both_sizes() {
    let mut a = review_app();
    assert_eq!(a.model.state.review_queue.len(), 2, "the fixture waits on two items");
    for (w, h) in SIZES {
        let screen = text(&draw(&mut a, w, h));
        insta::assert_snapshot!(format!("7_review_pending_{w}x{h}"), screen);
    }
}

/// A screen attached to a run another process runs (the review fixture's run, its lock held here
/// as the headless process would hold it): the header says who runs it; an approval goes into the
/// run's inbox as `gepa-tui steer` writes it, shows as sent, and as taken (round N) once the run's
/// answer is there.
#[test]
fn an_attached_screen_says_who_runs_it_and_shows_a_decision_sent_then_taken() {
    use gepa_tui::engine::steer;
    use gepa_tui::tui::remote::{Follower, Remote};
    let f = review_fixture();
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join(RUN_ID);
    std::fs::create_dir_all(&run_dir).unwrap();
    let log: String = f.events.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
    std::fs::write(run_dir.join("events.jsonl"), log).unwrap();
    let _lock = gepa_tui::store::RunLock::acquire(&run_dir).unwrap();
    let (mut follower, holder, events) = Follower::open(&run_dir).unwrap().expect("held");
    assert_eq!(events, f.events);
    assert_eq!(holder.pid, std::process::id());
    let mut m = Model::from_events(&events).with_project(&f.project);
    m.attached = true;
    // A fixed holder, so the snapshot does not depend on this machine.
    m.remote =
        Some(Remote::new(gepa_tui::store::LockHolder { pid: 4242, host: "build-1".into(), since: 1_796_634_720 }));
    let mut a = App::new(m, Keymap::default(), Theme::default());
    a.goto(View::Review);
    let item = a.model.state.review_queue[0].item;
    press(&mut a, "a");
    for cmd in std::mem::take(&mut a.commands) {
        follower.send(&mut a, cmd);
    }
    let inbox = std::fs::read_to_string(run_dir.join(steer::INBOX)).unwrap();
    let req: steer::SteerRequest = serde_json::from_str(inbox.lines().next().unwrap()).unwrap();
    assert_eq!(req.action, HumanAction::Approve { item }, "sent through the inbox as steer sends it");
    let sent = text(&draw(&mut a, 80, 24));
    assert!(sent.contains("attached to pid 4242 on build-1 since 2026-12-07 09:12 UTC"), "{sent}");
    assert!(sent.contains(&format!("approval of item {item}: sent")) && !sent.contains("sent →"), "{sent}");
    // The run's answer, as the engine appends it.
    let ack = steer::SteerAnswer::taken(&req.id, 7);
    std::fs::write(run_dir.join(steer::ANSWERS), serde_json::to_string(&ack).unwrap() + "\n").unwrap();
    follower.poll(&mut a);
    for (w, h) in SIZES {
        let screen = text(&draw(&mut a, w, h));
        assert!(screen.contains(&format!("approval of item {item}: sent → taken (round 7)")), "{screen}");
        insta::assert_snapshot!(format!("attached_decision_taken_{w}x{h}"), screen);
    }
    // The process lets go: the screen says so and is a browse.
    drop(_lock);
    follower.poll(&mut a);
    let gone = text(&draw(&mut a, 80, 24));
    assert!(gone.contains("pid 4242 let go of the run before it finished: it is resumable"), "{gone}");
    assert!(!a.model.can_act());
}

/// A decision the engine refuses comes back typed: the one sent is no longer on its way (another
/// sent decision stays), and the status bar says why.
#[test]
fn a_refused_decision_is_no_longer_shown_as_sent() {
    let mut a = review_app();
    let (first, second) = (a.model.state.review_queue[0].item, a.model.state.review_queue[1].item);
    press(&mut a, "ajx");
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.model.sent.len(), 2);
    let why = format!("no pending review item {second}");
    a.on_notice(Notice::Refused { action: HumanAction::Veto { item: second, reason: None }, why: why.clone() });
    assert_eq!(a.model.sent, vec![HumanAction::Approve { item: first }]);
    assert_eq!(a.flash.as_deref(), Some(format!("the engine ignored: {why}").as_str()));
    assert!(a.model.warnings.iter().any(|w| w.contains(&why)));
}

#[test]
fn approve_sends_approve_for_the_selected_item_and_shows_it_until_recorded() {
    let mut a = review_app();
    let second = a.model.state.review_queue[1].item;
    press(&mut a, "ja");
    assert_eq!(acts(&a), vec![HumanAction::Approve { item: second }]);
    let screen = text(&draw(&mut a, 160, 48));
    assert!(screen.contains("approve sent; applied at the start of the next round"), "{screen}");
    // Pressing it again does not send twice.
    press(&mut a, "a");
    assert_eq!(acts(&a).len(), 1);
    assert!(a.flash.as_deref().unwrap().contains("already has a decision"));
    // The engine records it in the next round: the item shows as applied, no longer "sent".
    let round = a.model.state.round.unwrap() + 1;
    a.on_notice(Notice::Event(Box::new(Event::Human {
        round,
        action: HumanAction::Approve { item: second },
        request: None,
    })));
    assert!(a.model.sent.is_empty());
    assert_eq!(a.flash.as_deref(), Some(format!("approve applied in round {round}").as_str()));
    let screen = text(&draw(&mut a, 160, 48));
    assert!(screen.contains(&format!("approve applied in round {round}")), "{screen}");
}

#[test]
fn veto_carries_the_typed_reason_and_esc_cancels() {
    let mut a = review_app();
    let first = a.model.state.review_queue[0].item;
    press(&mut a, "x");
    assert!(text(&draw(&mut a, 80, 24)).contains(&format!("veto item {first}")));
    press(&mut a, "abc");
    press_code(&mut a, KeyCode::Esc, 1);
    assert!(a.commands.is_empty(), "esc cancels the veto");
    press(&mut a, "xdo not hard-code the answer");
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(acts(&a), vec![HumanAction::Veto { item: first, reason: Some("do not hard-code the answer".into()) }]);
    // A veto without a reason is a veto too.
    press(&mut a, "jx");
    press_code(&mut a, KeyCode::Enter, 1);
    let second = a.model.state.review_queue[1].item;
    assert_eq!(acts(&a)[1], HumanAction::Veto { item: second, reason: None });
}

#[test]
fn edit_then_approve_sends_the_edited_texts() {
    let mut a = review_app();
    let it = a.model.state.review_queue[0].clone();
    press(&mut a, "e");
    assert!(a.editor().is_some());
    let screen = text(&draw(&mut a, 80, 24));
    assert!(screen.contains(&format!("Edit item {}, then approve", it.item)), "{screen}");
    // Keys that mean something elsewhere are text here.
    press(&mut a, "Be brief. aq");
    press_code(&mut a, KeyCode::Backspace, 2);
    // The second component: append at the end of its text.
    press_code(&mut a, KeyCode::Tab, 1);
    a.on_key(ctrl('e')); // unbound in the editor: nothing happens
    let end = KeyEvent {
        code: KeyCode::End,
        modifiers: KeyModifiers::CONTROL,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    };
    a.on_key(end);
    press_code(&mut a, KeyCode::Enter, 1);
    press(&mut a, "No prose.");
    insta::assert_snapshot!("review_editor_80x24", text(&draw(&mut a, 80, 24)));
    a.on_key(ctrl('s'));
    assert!(a.editor().is_none());
    let mut want = it.texts.clone();
    want.insert("instruction".into(), format!("Be brief. {}", it.texts["instruction"]));
    want.insert("format".into(), format!("{}\nNo prose.", it.texts["format"]));
    assert_eq!(acts(&a), vec![HumanAction::Edit { item: it.item, texts: want }]);
}

#[test]
fn esc_in_the_editor_asks_before_dropping_edits() {
    let mut a = review_app();
    press(&mut a, "ehello");
    press_code(&mut a, KeyCode::Esc, 1);
    assert!(a.editor().is_some(), "the first esc only warns");
    assert!(a.flash.as_deref().unwrap().contains("esc again discards"));
    press_code(&mut a, KeyCode::Esc, 1);
    assert!(a.editor().is_none() && a.commands.is_empty());
    // Unchanged texts saved from the editor are a plain approval.
    press(&mut a, "e");
    a.on_key(ctrl('s'));
    let first = a.model.state.review_queue[0].item;
    assert_eq!(acts(&a), vec![HumanAction::Approve { item: first }]);
}

#[test]
fn approve_all_and_policy_toggle() {
    let mut a = review_app();
    press(&mut a, "A");
    assert_eq!(a.commands, vec![EngineCommand::ApproveAll]);
    assert_eq!(a.model.sent.len(), 2);
    press(&mut a, "p");
    assert_eq!(acts(&a), vec![HumanAction::SetPolicy { mutations: ReviewPolicy::Auto, merges: ReviewPolicy::Auto }]);
    assert_eq!(a.model.review_policy().0, ReviewPolicy::Auto);
    // q with decisions still on their way asks first.
    press(&mut a, "q");
    assert!(!a.quit);
    assert!(a.flash.as_deref().unwrap().contains("not recorded for good yet"));
    press(&mut a, "q");
    assert!(a.quit);
}

#[test]
fn with_auto_approve_the_review_view_shows_auto_and_refuses_the_toggle() {
    // The review fixture's gepa.toml says mutations = "approve"; --auto-approve overrides it in
    // the engine, so the screen must say so too and not offer a policy the engine ignores.
    let mut a = review_app();
    assert_eq!(a.model.review_policy().0, ReviewPolicy::Approve);
    a.model.auto_approve = true;
    assert_eq!(a.model.review_policy(), (ReviewPolicy::Auto, ReviewPolicy::Auto));
    press(&mut a, "p");
    assert!(a.commands.is_empty(), "nothing sent");
    assert!(a.flash.as_deref().unwrap().contains("--auto-approve"), "{:?}", a.flash);
}

#[test]
fn a_browsed_run_explains_that_decisions_need_a_live_run() {
    let f = review_fixture();
    let mut a = App::new(Model::from_events(&f.events).with_project(&f.project), Keymap::default(), Theme::default());
    for k in ["7a", "x", "e", "A", "p", "+", "2e"] {
        press(&mut a, k);
        assert!(a.commands.is_empty() && a.editor().is_none() && a.input().is_none(), "{k}");
        assert!(a.flash.as_deref().unwrap().contains("needs a live run"), "{k}: {:?}", a.flash);
    }
}

#[test]
fn hand_edit_of_a_candidate_becomes_a_new_human_candidate() {
    let mut a = app();
    a.model.attached = true;
    press(&mut a, "4");
    a.select_candidate(1);
    press(&mut a, "e");
    a.on_key(ctrl('s'));
    assert!(a.commands.is_empty(), "unchanged texts are not a new candidate");
    assert!(a.editor().is_some());
    press(&mut a, "Think first. ");
    a.on_key(ctrl('s'));
    let mut texts = a.model.state.candidates[1].texts.clone();
    let i = texts.get_mut("instruction").unwrap();
    *i = format!("Think first. {i}");
    assert_eq!(
        acts(&a),
        vec![HumanAction::AddCandidate {
            texts,
            parents: vec![1],
            origin: Origin::Human,
            note: "edited by hand".into()
        }]
    );
}

#[test]
fn manual_merge_of_two_marked_candidates() {
    let mut a = rich_app();
    a.model.attached = true;
    press(&mut a, "2");
    press(&mut a, "M");
    assert!(a.merge().is_none() && a.flash.as_deref().unwrap().contains("mark two"));
    // #3 changed the seed's format, #5 both texts: #3's instruction with #5's format is new.
    let (x, y) = (3, 5);
    a.select_candidate(x);
    press(&mut a, "m");
    a.select_candidate(y);
    press(&mut a, "m");
    assert_eq!(a.marked, vec![x, y]);
    assert!(text(&draw(&mut a, 80, 24)).contains(&format!("#{y}◆")));
    press(&mut a, "M");
    let mg = a.merge().expect("the merge screen");
    let st = &a.model.state;
    let texts: Vec<_> = st.candidates.iter().map(|c| c.texts.clone()).collect();
    let parents: Vec<_> = st.candidates.iter().map(|c| c.parents.clone()).collect();
    let scores = st.val_means();
    let rules =
        gepa_tui::engine::merge::Lineage { texts: &texts, parents: &parents, scores: &scores }.default_sources(x, y);
    let defaults: Vec<usize> = st.components.iter().map(|n| rules[n]).collect();
    assert_eq!(mg.from, defaults, "the merge rules' choice comes first");
    insta::assert_snapshot!("merge_80x24", text(&draw(&mut a, 80, 24)));
    // Take the instruction from one side and the format from the other.
    press_code(&mut a, KeyCode::Left, 1);
    press_code(&mut a, KeyCode::Down, 1);
    press_code(&mut a, KeyCode::Right, 1);
    let c = a.model.state.candidates.clone();
    let want: gepa_tui::project::Candidate = [
        ("format".to_string(), c[y].texts["format"].clone()),
        ("instruction".to_string(), c[x].texts["instruction"].clone()),
    ]
    .into();
    let order = a.model.state.components.clone();
    assert_eq!(order, vec!["instruction".to_string(), "format".to_string()]);
    assert!(c.iter().all(|k| k.texts != want), "the fixture's merge must be a new candidate");
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(
        acts(&a),
        vec![HumanAction::AddCandidate {
            texts: want,
            parents: vec![x, y],
            origin: Origin::Merge,
            note: "manual merge".into()
        }]
    );
    assert!(a.merge().is_none() && a.marked.is_empty());
}

/// Help opens over the merge screen and lists the merge screen's keys; closing it gives the keys
/// back to the merge screen, and quit under it cancels the merge instead of leaving.
#[test]
fn help_over_the_merge_screen_lists_its_keys_and_gives_them_back() {
    let mut a = app();
    a.model.attached = true;
    press(&mut a, "2");
    for c in [1, 2] {
        a.select_candidate(c);
        press(&mut a, "m");
    }
    press(&mut a, "M");
    assert!(a.merge().is_some());
    press(&mut a, "?");
    assert!(a.help().is_some() && a.merge().is_some());
    assert_eq!(a.layer(), gepa_tui::tui::keymap::Layer::Help);
    let shown = text(&draw(&mut a, 80, 24));
    assert!(shown.contains("On the merge screen") && shown.contains("([merge],"), "{shown}");
    // What the keys do here, not what they do in the views; and only the global keys that act here.
    assert!(shown.contains("take this component from the left"), "{shown}");
    assert!(shown.contains("pause or resume"), "{shown}");
    assert!(!shown.contains("In the Frontier") && !shown.contains("dashboard:"), "{shown}");
    press(&mut a, "?");
    assert!(a.help().is_none() && a.merge().is_some(), "help closes back onto the merge screen");
    // Pause acts over the merge screen; a view key does nothing there.
    press(&mut a, " 1");
    assert_eq!(a.commands, vec![gepa_tui::tui::app::EngineCommand::Pause]);
    assert!(a.merge().is_some() && a.view == gepa_tui::tui::app::View::Frontier);
    a.commands.clear();
    press(&mut a, "?");
    press(&mut a, "q");
    assert!(a.help().is_none() && a.merge().is_none() && !a.quit, "q under the help cancels the merge");
    assert_eq!(a.marked, vec![1, 2], "a cancelled merge keeps its marks");
}

#[test]
fn a_candidate_from_a_folder_and_a_missing_file_is_an_error_that_keeps_the_path() {
    let mut a = app();
    a.model.attached = true;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("variant");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("instruction.md"), "Answer. rule A rule B").unwrap();
    press(&mut a, "2+");
    press(&mut a, &dir.display().to_string());
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(a.commands.is_empty());
    let input = a.input().expect("the prompt stays open with what was typed");
    assert_eq!(input.text, dir.display().to_string());
    assert!(input.error.as_deref().unwrap().contains("format.md"), "{:?}", input.error);
    assert!(text(&draw(&mut a, 160, 48)).contains("format.md"));
    std::fs::write(dir.join("format.md"), "Code only.").unwrap();
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(a.input().is_none());
    assert_eq!(
        acts(&a),
        vec![HumanAction::AddCandidate {
            texts: [
                ("format".to_string(), "Code only.".to_string()),
                ("instruction".to_string(), "Answer. rule A rule B".to_string())
            ]
            .into(),
            parents: vec![],
            origin: Origin::Human,
            note: format!("added from {}", dir.display()),
        }]
    );
}

/// The whole loop with a real engine: the App is fed the engine's notices, a person presses `7`
/// and `a` whenever an item waits, and the App's commands go to the engine's handle, as the event
/// loop does. Every queued item is approved, recorded, and joins the frontier.
#[test]
fn approving_in_the_workbench_drives_a_real_engine_to_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, &OPT_REVIEW.replace("max_metric_calls = 120", "max_metric_calls = 80"));
    let (project, task) = common::load(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (app, run_dir) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) =
            Engine::create(project.clone(), task, EngineOptions { notices: Some(tx), ..Default::default() }).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        let jh = tokio::spawn(engine.run());
        let mut a = App::new(Model::new().with_project(&project), Keymap::default(), Theme::default());
        a.model.attached = true;
        a.goto(View::Review);
        let mut hand_edited = false;
        let drive = async {
            while let Some(n) = rx.recv().await {
                a.on_notice(n);
                // Once the seed is scored, a hand edit of it from the Candidate view.
                if !hand_edited && !a.model.state.candidates.is_empty() {
                    hand_edited = true;
                    a.select_candidate(0);
                    press(&mut a, "4eHand: ");
                    a.on_key(ctrl('s'));
                    assert!(a.editor().is_none());
                    press(&mut a, "7");
                }
                if a.views.review.selected_item(&a.model).is_some_and(|it| a.model.item_decision(it.item).is_none()) {
                    press(&mut a, "a");
                    assert!(text(&draw(&mut a, 80, 24)).contains("sent; applied at the start of the next round"));
                }
                for c in a.commands.drain(..) {
                    match c {
                        EngineCommand::Act(x) => h.act(x),
                        EngineCommand::ApproveAll => h.approve_all(),
                        _ => {}
                    }
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), drive).await.expect("the run got stuck");
        a.model.engine_done = true;
        assert!(jh.await.unwrap().unwrap().result.is_some(), "the run finished");
        (a, run_dir)
    });
    let evs = load_events(&run_dir, false).unwrap().0;
    // A decision carried by a round that was planned again is recorded again in the new plan:
    // count what the fold kept.
    let kept = common::committed(&evs);
    let queued: Vec<u64> = kept
        .iter()
        .filter_map(|e| match e {
            Event::ReviewQueued { item } => Some(item.item),
            _ => None,
        })
        .collect();
    let approved: Vec<u64> = kept
        .iter()
        .filter_map(|e| match e {
            Event::Human { action: HumanAction::Approve { item }, .. } => Some(*item),
            _ => None,
        })
        .collect();
    assert!(!queued.is_empty());
    assert_eq!(queued, approved, "every item was approved from the workbench, once");
    assert!(app.model.sent.is_empty() && app.model.state.review_queue.is_empty());
    assert_eq!(app.model.state, RunState::from_events(&evs), "the workbench saw what was recorded");
    // The approved children and the hand edit are candidates now, in the frontier like any other.
    let n = app.model.state.candidates.len();
    assert_eq!(n, 2 + approved.len());
    let human: Vec<_> = app.model.state.candidates.iter().filter(|c| c.origin == Origin::Human).collect();
    assert_eq!(human.len(), 1);
    assert_eq!(human[0].parents, vec![0]);
    assert!(human[0].texts["instruction"].starts_with("Hand: "), "{:?}", human[0].texts);
    assert!(!human[0].val_scores.is_empty(), "scored on val");
    let mut a = app;
    a.goto(View::Frontier);
    let screen = text(&draw(&mut a, 160, 48));
    assert!(screen.contains(&format!("Frontier: {n} candidates")) && screen.contains("mutation"), "{screen}");
    assert!(screen.contains("human"), "{screen}");
    a.goto(View::Review);
    let screen = text(&draw(&mut a, 160, 48));
    assert!(screen.contains(&format!("item {} approved", approved[0])), "the decisions are listed:\n{screen}");
}

/// Quitting in the middle of a review loses nothing: the pending items are in the events, so a
/// reopened run shows them and its engine waits on them; approving them then finishes the run.
#[test]
fn pending_items_come_back_after_quitting_and_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, OPT_REVIEW);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let run_dir = run_until_waiting(&rt, &dir);
    let run_id = run_dir.file_name().unwrap().to_string_lossy().to_string();
    let before = RunState::from_events(&load_events(&run_dir, false).unwrap().0).review_queue;
    assert_eq!(before.len(), 2);

    // Reopen: the workbench builds its model from the events, as `gepa-tui --run` does.
    let (project, task) = common::load(&dir);
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) =
            Engine::resume(project.clone(), task, &run_id, EngineOptions { notices: Some(tx), ..Default::default() })
                .unwrap();
        assert_eq!(engine.state().review_queue, before, "the engine has them back");
        let mut a = App::new(
            Model::from_events(&load_events(&run_dir, false).unwrap().0).with_project(&project),
            Keymap::default(),
            Theme::default(),
        );
        a.model.attached = true;
        assert_eq!(a.model.state.review_queue, before, "the workbench shows them");
        press(&mut a, "7");
        let screen = text(&draw(&mut a, 80, 24));
        assert!(screen.contains("Review: 2 pending"), "{screen}");
        let jh = tokio::spawn(engine.run());
        press(&mut a, "A");
        let drive = async {
            while let Some(n) = rx.recv().await {
                a.on_notice(n);
                if a.model.state.review_queue.iter().any(|it| a.model.item_decision(it.item).is_none()) {
                    press(&mut a, "A");
                }
                for c in a.commands.drain(..) {
                    match c {
                        EngineCommand::Act(x) => h.act(x),
                        EngineCommand::ApproveAll => h.approve_all(),
                        _ => {}
                    }
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), drive).await.expect("the run got stuck");
        assert!(jh.await.unwrap().unwrap().result.is_some());
    });
    let evs = common::committed(&load_events(&run_dir, false).unwrap().0);
    for it in &before {
        assert!(
            evs.iter()
                .any(|e| matches!(e, Event::Human { action: HumanAction::Approve { item }, .. } if *item == it.item)),
            "item {} was decided after reopening",
            it.item
        );
    }
}

#[test]
fn a_merge_item_shows_which_parent_each_component_came_from() {
    let mut a = app();
    a.model.attached = true;
    let c = a.model.state.candidates.clone();
    // `sources` is in name order (format, instruction): the format from #1, the instruction from #2.
    let texts: gepa_tui::project::Candidate = [
        ("format".to_string(), "Reply with the code only, in capitals.".to_string()),
        ("instruction".to_string(), c[2].texts["instruction"].clone()),
    ]
    .into();
    a.model.state.review_queue.push(gepa_tui::engine::event::ReviewItem {
        item: 9,
        kind: gepa_tui::engine::event::ReviewKind::Merge,
        round: 4,
        parents: vec![1, 2],
        texts,
        changed: vec!["instruction".into()],
        sources: vec![1, 2],
        examples: vec!["ex100".into(), "ex101".into()],
        parent_scores: vec![1.0, 0.0],
        child_scores: vec![1.0, 1.0],
        reasoning: String::new(),
        cost_usd: 0.0123,
    });
    a.goto(View::Review);
    let screen = text(&draw(&mut a, 160, 48));
    assert!(screen.contains("merge #1+#2"), "{screen}");
    assert!(screen.contains("Item 9 · merge of #1+#2 · round 4 · cost $0.0123"), "{screen}");
    assert!(screen.contains("instruction · from #2 · diff against #1"), "{screen}");
    assert!(screen.contains("val subsample: 2 examples · 1.000 → 2.000"), "{screen}");
    // #1 and #2 share their format text; the merge's own format shows as a diff against it.
    assert!(screen.contains("format · diff against #1 and #2 (same in both)"), "{screen}");
}

/// docs/keys.md's table is generated from the keymap; this keeps them equal.
#[test]
fn the_docs_keys_table_matches_the_keymap() {
    let want = gepa_tui::tui::views::help::readme_keys(&Keymap::default());
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/keys.md")).unwrap();
    assert!(page.contains(&want), "docs/keys.md's table should be this one (from the keymap):\n{want}");
}

/// Every binding of the default keymap, in every table, is on docs/keys.md, in its table's row
/// with its label there: read from the page, not from the generator, so a key the table leaves
/// out fails here.
#[test]
fn the_docs_keys_page_lists_every_binding_of_every_table() {
    use gepa_tui::tui::keymap::Layer;
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/keys.md")).unwrap();
    let km = Keymap::default();
    let rows: Vec<&str> = page.lines().filter(|l| l.starts_with("| ")).collect();
    let row_of = |layer: Layer| {
        let title = layer.title().trim_start_matches("in the ").trim_start_matches("on the ");
        rows.iter().find(|r| r.split(" | ").next().is_some_and(|w| w.ends_with(title))).copied()
    };
    let mut missing = Vec::new();
    let all = km.bindings();
    assert!(all.len() > 60, "{} bindings", all.len());
    for (layer, key, action) in all {
        // A global key a view's table takes over is listed in that view's row instead.
        if layer == Layer::Global && km.action_at(Layer::Global, key) != Some(action) {
            continue;
        }
        let Some(row) = row_of(layer) else {
            missing.push(format!("no row for [{}]", layer.name()));
            continue;
        };
        let item = row.split(" · ").find(|i| i.contains(&format!("`{key}`")));
        if !item.is_some_and(|i| i.trim_end_matches(" |").ends_with(action.label_in(layer))) {
            missing.push(format!("[{}] {key} = {}", layer.name(), action.name()));
        }
    }
    assert!(missing.is_empty(), "docs/keys.md leaves out:\n{}", missing.join("\n"));
}

#[test]
fn a_pasted_prompt_lands_in_the_editor_whole_and_clicks_choose_review_items() {
    let mut a = review_app();
    draw(&mut a, 160, 48);
    let second = a.model.state.review_queue[1].item;
    let area = a.views.review.list.area;
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: area.x + 2,
        row: area.y + 1,
        modifiers: KeyModifiers::NONE,
    };
    a.on_terminal_event(&TermEvent::Mouse(click));
    assert_eq!(a.views.review.selected_item(&a.model).unwrap().item, second);
    press(&mut a, "e");
    a.on_key(KeyEvent {
        code: KeyCode::End,
        modifiers: KeyModifiers::CONTROL,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    });
    a.on_terminal_event(&TermEvent::Paste("\nLine one.\nLine two, with a \u{1b}[31mcolour\u{1b}[0m.".into()));
    a.on_key(ctrl('s'));
    let HumanAction::Edit { item, texts } = &acts(&a)[0] else { panic!("{:?}", a.commands) };
    assert_eq!(*item, second);
    assert!(texts["instruction"].ends_with("\nLine one.\nLine two, with a colour."), "{texts:?}");
}

#[test]
fn what_comes_back_from_the_external_editor_is_sent_or_kept() {
    use gepa_tui::tui::app::ExternalOutcome;
    use gepa_tui::tui::views::editor::EditTarget;
    let mut a = review_app();
    let it = a.model.state.review_queue[0].clone();
    press(&mut a, "E");
    let request = a.external.take().expect("a request for the event loop");
    assert_eq!(request.target, EditTarget::ReviewItem { item: it.item });
    // The editor failed half-way: nothing is sent, and its text opens in the inline editor.
    let mut half = it.texts.clone();
    half.insert("format".into(), "half-written".into());
    a.external_edit_done(
        request.clone(),
        ExternalOutcome { texts: half.clone(), error: Some("`vi` exited with 1".into()) },
    );
    assert!(a.commands.is_empty());
    assert_eq!(a.editor().unwrap().texts(), half);
    assert!(a.flash.as_deref().unwrap().contains("exited with 1"));
    // Saved from there, it is the edit.
    a.on_key(ctrl('s'));
    assert_eq!(acts(&a), vec![HumanAction::Edit { item: it.item, texts: half }]);

    // Nothing changed in the editor: nothing is sent.
    let mut a = review_app();
    press(&mut a, "E");
    let request = a.external.take().unwrap();
    a.external_edit_done(request.clone(), ExternalOutcome { texts: request.texts.clone(), error: None });
    assert!(a.commands.is_empty() && a.editor().is_none());
    assert!(a.flash.as_deref().unwrap().contains("nothing sent"));
}

/// A copy of the support-triage sample and a tmux session (120×36, a shell) to run the real
/// binary on it; None when tmux is not installed (the test skips, saying so; under CI it fails).
fn sample_in_tmux(name: &str) -> Option<(tempfile::TempDir, PathBuf, TmuxServer)> {
    if !common::have_tmux(&format!("tmux smoke test `{name}`")) {
        return None;
    }
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-projects/support-triage");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("support-triage");
    common::copy_tree(&sample, &dir, &["runs"]);
    let tmux = TmuxServer(format!("gepa-tui-{name}-{}", std::process::id()));
    let out = tmux.run(&["new-session", "-d", "-x", "120", "-y", "36", "-s", "smoke", "sh"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some((tmp, dir, tmux))
}

/// The README's quick start, as a person does it: the workbench on the support-triage sample,
/// offline; Enter starts a run, which replays the recorded one to the end; the frontier shows;
/// `q` leaves and the terminal is restored. (In a copy, so the repository is not written to.)
#[test]
fn the_quick_start_replays_the_sample_offline_in_the_workbench() {
    let Some((_tmp, dir, tmux)) = sample_in_tmux("quick") else { return };
    let cmd = format!(
        "clear; echo before-the-tui; {} {} --offline; echo exit=$?; stty -a | tr ' ;' '\\n\\n' | grep -x icanon",
        env!("CARGO_BIN_EXE_gepa-tui"),
        dir.display()
    );
    tmux.run(&["send-keys", "-t", "smoke", &cmd, "Enter"]);
    tmux.wait_for("New run");
    tmux.run(&["send-keys", "-t", "smoke", "Enter"]);
    let s = tmux.wait_for("✓ finished");
    assert!(!s.contains("no cached reply"), "{s}");
    tmux.run(&["send-keys", "-t", "smoke", "2"]);
    let s = tmux.wait_for("Frontier:");
    assert!(s.contains("#0") && s.contains("seed"), "{s}");
    tmux.run(&["send-keys", "-t", "smoke", "q"]);
    let s = tmux.wait_for("exit=");
    assert!(s.contains("exit=0"), "{s}");
    assert!(s.contains("before-the-tui") && !s.contains("Frontier:"), "the shell's screen is back:\n{s}");
    let s = tmux.wait_for("icanon");
    assert!(s.lines().any(|l| l.trim() == "icanon"), "cooked mode restored:\n{s}");
}

/// The branch key in the real binary: after the sample's replay, `b` `b` on the best candidate
/// starts a new run whose seed is that candidate's texts; leaving says what became of both runs.
#[test]
fn branching_from_the_workbench_starts_a_run_seeded_with_the_candidate() {
    let Some((_tmp, dir, tmux)) = sample_in_tmux("branch") else { return };
    let cmd = format!("clear; {} {} --offline; echo exit=$?", env!("CARGO_BIN_EXE_gepa-tui"), dir.display());
    tmux.run(&["send-keys", "-t", "smoke", &cmd, "Enter"]);
    tmux.wait_for("New run");
    tmux.run(&["send-keys", "-t", "smoke", "Enter"]);
    tmux.wait_for("✓ finished");
    let runs = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d.join(".gepa/runs")).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    let first = runs(&dir).pop().unwrap();
    let (events, _) = load_events(&first, false).unwrap();
    let state = RunState::from_events(&events);
    let best = state.best().unwrap();
    assert!(best > 0, "the recording found a better candidate than the seed");

    // The workbench follows the best candidate, so `b` `b` branches from it.
    tmux.run(&["send-keys", "-t", "smoke", "2", "b"]);
    tmux.wait_for(&format!("again: a new run from #{best}'s texts"));
    tmux.run(&["send-keys", "-t", "smoke", "b"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Run ids made in the same second do not sort by time: the new run is the other one.
    let new_run = loop {
        let all = runs(&dir);
        if let Some(new) = all.iter().find(|r| **r != first && r.join("events.jsonl").is_file()) {
            break new.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no second run appeared:\n{}", tmux.screen());
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The workbench now shows the new run, and where its seed came from.
    tmux.wait_for(&format!("run {}", new_run.file_name().unwrap().to_string_lossy()));
    let first_id = first.file_name().unwrap().to_string_lossy().into_owned();
    tmux.wait_for(&format!("seeded     {first_id} #{best}"));
    tmux.run(&["send-keys", "-t", "smoke", "q"]);
    let s = tmux.wait_for("exit=");
    // Offline, the branched run stops (resumably) at the first request the recording does not
    // cover, unless `q` came first.
    let offline_stop = s.contains("exit=3") && s.contains("--offline is set");
    assert!(s.contains("exit=0") || offline_stop, "{s}");
    assert!(s.contains(&format!("run {first_id} finished")), "what became of the first run:\n{s}");

    let (events, _) = load_events(&new_run, false).unwrap();
    let branched = RunState::from_events(&events);
    assert_eq!(branched.candidates[0].texts, state.candidates[best].texts, "the new run's seed is #{best}'s texts");
    // Each run's log is in its own folder.
    let log = std::fs::read_to_string(new_run.join("tui.log")).unwrap_or_default();
    assert!(log.contains("starting run"), "the new run's tui.log:\n{log}");
}

/// A decision sent just as the engine ends (it finished, or stopped first) was never taken: the
/// workbench says so instead of showing it as "sent" for ever.
#[test]
fn a_decision_the_engine_never_took_is_reported_when_it_ends() {
    let mut a = review_app();
    press(&mut a, "a");
    assert_eq!(acts(&a).len(), 1);
    assert_eq!(a.model.sent.len(), 1);
    a.model.engine_ended();
    assert!(a.model.sent.is_empty());
    press(&mut a, "1");
    let screen = text(&draw(&mut a, 120, 36));
    assert!(screen.contains("1 decision sent to the engine was not applied"), "{screen}");
}

/// A reflection cut off at max_tokens and asked again shows the cut answer as not used; one cut
/// off every time ends as "reflection cut off", with what to do about it.
#[test]
fn cut_off_reflections_are_shown_as_such_in_reflections() {
    use gepa_tui::llm::{ChatRequest, RawReply, ScriptedBackend, Usage};
    use std::sync::Arc;
    // Reflections on a minibatch holding ex15 are cut off every time; the others once, then whole.
    let refl = Arc::new(ScriptedBackend::raw(|req: &ChatRequest| {
        let always = req.messages[0].content.contains("item 15 of");
        let (text, truncated) = if req.messages.len() > 1 && !always {
            (common::reflection_reply(&ChatRequest::new(vec![req.messages[0].clone()])), false)
        } else {
            ("Here is a better instruction:\n```\nAnswer the it".to_string(), true)
        };
        Ok(RawReply { text, truncated, usage: Usage::default(), hold: None })
    }));
    let (_tmp, mut a) = reflections_of_a_scripted_run("max_metric_calls = 60\nmax_rounds = 6\nseed = 3", refl);
    // The first proposal, last in the list (minibatch ex15, ex0, ex20 with seed 3): every answer
    // cut off, none tried.
    press(&mut a, "G");
    let screen = text(&draw(&mut a, 160, 300));
    assert!(screen.contains("✂ r1.0"), "{screen}");
    assert!(screen.contains("all 2 answers were cut off before the new text ended; none was tried"), "{screen}");
    assert!(screen.contains("was cut off: not used, asked again"), "{screen}");
    assert!(screen.contains("No new text for instruction: the answer was cut off, so it was not used"), "{screen}");
    // The list's title says how many were cut off, whole even at 80 columns.
    let narrow = text(&draw(&mut a, 80, 24));
    let title = narrow.lines().find(|l| l.contains("Proposals:")).unwrap_or_default();
    assert!(title.contains(" cut off "), "{narrow}");
    assert!(!screen.contains("broken half-prompt"), "{screen}");
    // Later proposals were cut once and asked again; some child came of it.
    assert!(screen.contains("✓ r"), "{screen}");
}

/// The scripted problem with objectives on and the hybrid frontier: the seed keeps the shortest
/// prompt while its children score higher.
fn objectives_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let opt = format!("{OPT}\nfrontier = \"hybrid\"\nobjectives = [\"prompt_tokens\", \"output_tokens\"]");
        record_fixture(&opt, vec![])
    })
}

fn objectives_app() -> App {
    app_of(objectives_fixture())
}

/// At wide sizes the Frontier shows the selected candidate's texts beside the table, diffed
/// against its parent; `D` hides it there and shows it under the table at 80x24; J scrolls it.
#[test]
fn frontier_detail_pane_at_both_sizes() {
    let mut a = at_view(View::Frontier);
    let best = a.model.state.best().unwrap();
    a.select_candidate(best);
    let parent = a.model.state.candidates[best].parents[0];
    let wide = text(&draw(&mut a, 160, 48));
    assert!(wide.contains(&format!("#{best} · diff against #{parent}")), "{wide}");
    insta::assert_snapshot!("frontier_detail_160x48", wide);
    let narrow = text(&draw(&mut a, 80, 24));
    assert!(!narrow.contains("diff against"), "no room at 80x24 until asked:\n{narrow}");
    press(&mut a, "D");
    let narrow = text(&draw(&mut a, 80, 24));
    assert!(narrow.contains(&format!("#{best} · diff against #{parent}")), "{narrow}");
    insta::assert_snapshot!("frontier_detail_80x24", narrow);
    press(&mut a, "D");
    assert!(!text(&draw(&mut a, 160, 48)).contains("diff against"), "D hides it at wide sizes too");
}

/// `L` in the Frontier shows the whole run's lineage as a tree; ↑ ↓ walk it in tree order and
/// Enter opens the candidate, as in the table.
#[test]
fn lineage_tree_walks_and_opens_a_candidate() {
    let mut a = rich_app();
    press(&mut a, "2L");
    for (w, h) in SIZES {
        let screen = text(&draw(&mut a, w, h));
        assert!(screen.contains("Lineage: 9 candidates"), "{screen}");
        // #0 branches three ways (a hand edit, then two mutations); the merge of #2 and #3 hangs under #2.
        assert!(screen.contains("├─ #1 0.000 human") && screen.contains("└─ #3 0.250 mutation"), "{screen}");
        assert!(screen.contains("│  └─ #4 0.500 merge with #3"), "{screen}");
        insta::assert_snapshot!(format!("lineage_{w}x{h}"), screen);
    }
    // Tree order, as the screen shows it: not id order.
    let order: Vec<usize> = gepa_tui::tui::views::lineage::tree(&a.model).iter().map(|n| n.id).collect();
    assert_eq!(order, vec![0, 1, 2, 4, 5, 7, 8, 6, 3]);
    press(&mut a, "jjjj");
    assert_eq!(a.selected, 5, "the fifth row down is #5");
    press(&mut a, "jjj");
    assert_eq!(a.selected, 6, "after #8 comes its great-uncle #6");
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!((a.view, a.selected), (View::Candidate, 6));
    press(&mut a, "2L");
    assert!(text(&draw(&mut a, 80, 24)).contains("Frontier: 9 candidates"), "L goes back to the table");
}

/// The rich fixture as a person sees it: a merge row (two parents), a row off every front (no ★,
/// 0 fronts), and a child whose `format` differs from its parent's, diffed in the Candidate view.
#[test]
fn merges_a_row_off_the_front_and_a_format_diff_at_both_sizes() {
    let mut a = rich_app();
    press(&mut a, "2");
    for (w, h) in SIZES {
        let screen = text(&draw(&mut a, w, h));
        assert!(screen.contains("Frontier: 9 candidates · 8 on a front"), "{screen}");
        let row = |id: &str| screen.lines().find(|l| l.contains(&format!(" {id} "))).unwrap_or_default().to_string();
        assert!(row("#4").contains("#2+#3") && row("#4").contains("merge"), "{screen}");
        assert!(!row("#1").contains('★') && row("#1").contains("0/16"), "#1 is on no front:\n{screen}");
        assert!(row("#2").contains('★'), "{screen}");
        insta::assert_snapshot!(format!("rich_frontier_{w}x{h}"), screen);
    }
    a.select_candidate(3);
    press(&mut a, "4");
    for (w, h) in SIZES {
        let screen = text(&draw(&mut a, w, h));
        assert!(screen.contains("Candidate #3 · mutation of #0"), "{screen}");
        assert!(screen.contains("instruction (same as #0)") && screen.contains("format (differs from #0)"), "{screen}");
        insta::assert_snapshot!(format!("rich_candidate_format_diff_{w}x{h}"), screen);
    }
}

/// The Frontier view has a column per objective, the natural way round (tokens, not negated),
/// and `s` goes on from the fixed orders to each objective, best first (fewest tokens).
#[test]
fn frontier_shows_and_sorts_by_each_objective() {
    let mut a = objectives_app();
    press(&mut a, "2");
    let wide = text(&draw(&mut a, 160, 48));
    assert!(wide.contains("fronts  output_tok prompt_tok test"), "{wide}");
    assert!(wide.contains("(hybrid)"), "{wide}");
    // The seed's two texts: "Answer the item. rule A" and "Reply with the code only.", 6 + 6.
    let seed_row = wide.lines().find(|l| l.contains("#0 ") && l.contains(" seed ")).unwrap();
    assert!(seed_row.contains(" 12 "), "{seed_row}");
    press(&mut a, "ssss");
    assert_eq!(a.flash.as_deref(), Some("sorted by output_tokens ↑"));
    press(&mut a, "s");
    assert_eq!(a.flash.as_deref(), Some("sorted by prompt_tokens ↑"));
    let rows = a.views.frontier.rows(&a.model).clone();
    assert_eq!(rows[0], 0, "the seed has the shortest prompt");
    let tokens = |c: usize| -a.model.state.candidates[c].objectives["prompt_tokens"];
    assert!(rows.windows(2).all(|w| tokens(w[0]) <= tokens(w[1])), "{rows:?}");
    // At 80 columns only the objective sorted by fits; a `+1` column says one is left out.
    let narrow = text(&draw(&mut a, 80, 24));
    assert!(narrow.contains("prompt_ +1  test"), "{narrow}");
    assert!(!narrow.contains("output_tok"), "{narrow}");
    press(&mut a, "s");
    assert_eq!(a.flash.as_deref(), Some("sorted by id"));
}

/// The trade-off pane: `o` shows it, `X` / `Y` choose the axes (never both the same), the
/// candidates no other beats on both axes are listed and joined, the selected one is marked.
#[test]
fn trade_off_plot_axes_front_and_selection() {
    let mut a = objectives_app();
    press(&mut a, "2o");
    assert!(a.views.frontier.trade_off);
    let screen = text(&draw(&mut a, 80, 24));
    assert!(screen.contains("Trade-off: val (↑ better) against output_tokens (← better)"), "{screen}");
    press(&mut a, "X");
    assert_eq!(a.flash.as_deref(), Some("trade-off: val against prompt_tokens"));
    press(&mut a, "X"); // the next is val, which y holds: skipped
    assert_eq!(a.flash.as_deref(), Some("trade-off: val against output_tokens"));
    press(&mut a, "XY"); // y moves off val, skipping x's prompt_tokens
    assert_eq!(a.flash.as_deref(), Some("trade-off: output_tokens against prompt_tokens"));
    press(&mut a, "Y");
    assert_eq!(a.flash.as_deref(), Some("trade-off: val against prompt_tokens"));

    // Not beaten on both: by hand over (fewest prompt tokens, highest val mean).
    let st = &a.model.state;
    let pt = |c: usize| -st.candidates[c].objectives["prompt_tokens"];
    let val = |c: usize| st.candidates[c].val_mean;
    let want: Vec<usize> = (0..st.candidates.len())
        .filter(|&c| {
            !(0..st.candidates.len()).any(|o| pt(o) <= pt(c) && val(o) >= val(c) && (pt(o) < pt(c) || val(o) > val(c)))
        })
        .collect();
    let (_, front) = gepa_tui::tui::views::trade_off::points(&a.model, "prompt_tokens", "val");
    assert_eq!(front, want);
    assert!(front.contains(&0), "the seed is the shortest: {front:?}");
    let val0 = val(0);
    let screen = text(&draw(&mut a, 160, 48));
    let ids = want.iter().map(|c| format!("#{c}")).collect::<Vec<_>>().join(" ");
    assert!(screen.contains(&format!("not beaten on both (joined): {ids}")), "{screen}");
    assert!(screen.contains(&format!("selected #0: prompt_tokens 12 · val {val0:.3}")), "{screen}");
    // The selected point and the caption's key: two blocks.
    assert_eq!(screen.matches('█').count(), 2, "{screen}");
    press(&mut a, "o");
    assert!(!text(&draw(&mut a, 80, 24)).contains("Trade-off"));
}

#[test]
fn trade_off_plot_at_both_sizes() {
    let mut a = objectives_app();
    let best = a.model.state.best().unwrap();
    press(&mut a, "2oX");
    a.select_candidate(best - 1);
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("trade_off_{w}x{h}"), text(&draw(&mut a, w, h)));
    }
}

/// A run without objectives says how to get some instead of drawing an empty plot.
#[test]
fn trade_off_without_objectives_says_how_to_switch_them_on() {
    let mut a = app();
    press(&mut a, "2o");
    let screen = text(&draw(&mut a, 80, 24));
    assert!(screen.contains("records no objectives"), "{screen}");
    assert!(screen.contains("[\"prompt_tokens\"]"), "{screen}");
}

/// `v` in the Win matrix shows each objective in turn instead of the main score, then the main
/// score again: the heat map's title and row labels follow, and wins/ties/losses count on it.
#[test]
fn win_matrix_shows_an_objective_instead_of_the_main_score() {
    let mut a = objectives_app();
    press(&mut a, "3v");
    assert_eq!(a.views.matrix.objective.as_deref(), Some("output_tokens"));
    let screen = text(&draw(&mut a, 160, 48));
    assert!(screen.contains("Heat map: output_tokens (scaled, best █)"), "{screen}");
    assert!(screen.contains("Wins/ties/losses on output_tokens"), "{screen}");
    // Fewer output tokens win: counted by hand from the recorded per-example values.
    let st = &a.model.state;
    let last = st.candidates.len() - 1;
    let per = |c: usize| st.candidates[c].val_objectives.iter().map(|m| m["output_tokens"]).collect::<Vec<_>>();
    let (p0, pl) = (per(0), per(last));
    let wins = pl.iter().zip(&p0).filter(|(x, y)| x > y).count();
    let losses = pl.iter().zip(&p0).filter(|(x, y)| x < y).count();
    assert_eq!(a.model.wins_ties_losses_on(last, 0, "output_tokens"), (wins, p0.len() - wins - losses, losses));
    press(&mut a, "v");
    assert_eq!(a.views.matrix.objective.as_deref(), Some("prompt_tokens"));
    let screen = text(&draw(&mut a, 160, 48));
    // The seed's row label is its prompt length, 12 tokens.
    assert!(screen.lines().any(|l| l.contains("#0   ★    12 ")), "{screen}");
    press(&mut a, "v");
    assert_eq!(a.views.matrix.objective, None);
    assert!(text(&draw(&mut a, 160, 48)).contains("Heat map: 5 candidates"));
}

/// The Candidate view names the candidate's objective means; a trace, that example's values.
#[test]
fn candidate_and_trace_show_the_objectives() {
    let mut a = objectives_app();
    press(&mut a, "4");
    let screen = text(&draw(&mut a, 160, 48));
    // The seed answers 2 of 16 val examples right ("A-ok", 1 token) and says "not sure" (2) to the rest.
    assert!(screen.contains("objectives (val mean): output_tokens 1.9 · prompt_tokens 12"), "{screen}");
    press(&mut a, "5");
    let screen = text(&draw(&mut a, 160, 48));
    assert!(screen.contains("objectives: output_tokens 2 · prompt_tokens 12"), "{screen}");
}

/// The dashboard names each objective's best value and who holds it; a run without objectives
/// shows no such line.
#[test]
fn dashboard_names_the_best_on_each_objective() {
    let mut a = objectives_app();
    press(&mut a, "1");
    let screen = text(&draw(&mut a, 160, 48));
    // The Run pane is narrow: its line wraps after the first objective.
    let at = screen.lines().position(|l| l.contains("best on")).unwrap_or_else(|| panic!("{screen}"));
    let pane: String = screen.lines().skip(at).take(2).collect();
    assert!(pane.contains("best on    output_tokens 1.1 #4 ·"), "{pane}");
    assert!(pane.contains("prompt_tokens 12 #0"), "{pane}");
    let mut plain = app();
    press(&mut plain, "1");
    assert!(!text(&draw(&mut plain, 160, 48)).contains("best on"));
}

/// The fixture as if its engine were still running (decisions become commands), on the Traces of
/// the best candidate.
fn live_traces() -> App {
    let mut a = at_view(View::Traces);
    a.model.attached = true;
    a.model.state.finished = None;
    a
}

/// The example under the Traces cursor.
fn traces_cursor(a: &App) -> String {
    let rows = a.views.traces.rows(&a.model, a.selected);
    let evals = a.views.traces.evals(&a.model, a.selected);
    let row = a.views.traces.example.filter(|e| rows.contains(e)).unwrap_or(rows[0]);
    evals[row].1.example_id.clone()
}

/// The workbench sends only what the engine takes, and says why not in the engine's words: the
/// last val example still in the run cannot be excluded (the engine keeps one), so excluding every
/// val example by keys sends all but the last, and the last prompt says why and stays open.
#[test]
fn the_workbench_refuses_what_the_engine_would_refuse_in_its_words() {
    let mut a = live_traces();
    let n = a.model.state.val_ids.len();
    assert!(n >= 2, "the fixture has {n} val examples");
    for i in 0..n {
        press(&mut a, "x");
        assert!(a.input().is_some(), "the reason prompt for the {i}th example: {:?}", a.flash);
        press(&mut a, "wrong label");
        press_code(&mut a, KeyCode::Enter, 1);
        if i + 1 < n {
            assert!(a.input().is_none(), "example {i} sent: {:?}", a.input());
            press(&mut a, "j");
        }
    }
    assert_eq!(acts(&a).len(), n - 1, "{:?}", acts(&a));
    let why = a.input().and_then(|i| i.error.clone()).expect("the last prompt stays open, saying why");
    assert!(why.contains("is the only val example left in this run; it cannot be excluded"), "{why}");
    assert!(why.contains("nothing was sent"), "{why}");
}

/// `x` excludes the example under the cursor, with the reason typed (required); `f` corrects a
/// field, starting from its value (tab: the next field); each is sent as the engine's decision.
/// Then the engine's events mark both in the list and above the trace, and the dashboard counts
/// them. Snapshots: the reason prompt, and the marked Traces at both sizes.
#[test]
fn excluding_and_fixing_an_example_by_keys_in_traces() {
    use gepa_tui::engine::event::FieldChange;
    use gepa_tui::project::Split;
    let mut a = live_traces();
    let first = traces_cursor(&a);
    press(&mut a, "x");
    let input = a.input().expect("the reason prompt");
    assert!(input.label.as_deref().unwrap().contains(&format!("exclude val example {first}")), "{input:?}");
    insta::assert_snapshot!("traces_exclude_prompt_80x24", text(&draw(&mut a, 80, 24)));
    // No reason: nothing is sent and the prompt says why.
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(a.commands.is_empty());
    assert!(a.input().unwrap().error.as_deref().unwrap().contains("reason is required"));
    press(&mut a, "label is wrong");
    press_code(&mut a, KeyCode::Enter, 1);
    let exclude =
        HumanAction::ExcludeExample { split: Split::Val, example: first.clone(), reason: "label is wrong".into() };
    assert_eq!(acts(&a), vec![exclude.clone()]);
    assert!(a.input().is_none());
    assert!(a.flash.as_deref().unwrap().contains(&format!("val example {first} excluded: label is wrong")));
    // Once sent, a second exclusion of it is refused at once.
    press(&mut a, "x");
    assert!(a.input().is_none() && a.flash.as_deref().unwrap().contains("about to be excluded"), "{:?}", a.flash);

    // Fix the next example: the prompt starts from its expected answer; tab goes to the next field
    // and back; the corrected value replaces it.
    press(&mut a, "j");
    let second = traces_cursor(&a);
    assert_ne!(second, first);
    press(&mut a, "f");
    let was = a.model.example(Split::Val, &second).unwrap().fields["expected"].as_str().unwrap().to_string();
    assert_eq!(a.input().unwrap().text, was);
    assert!(a.input().unwrap().label.as_deref().unwrap().ends_with("· expected"));
    press_code(&mut a, KeyCode::Tab, 1);
    assert!(a.input().unwrap().label.as_deref().unwrap().ends_with("· input"), "{:?}", a.input());
    let n_fields = a.views.traces.pending.as_ref().unwrap().fields.len();
    press_code(&mut a, KeyCode::Tab, n_fields - 1);
    assert_eq!(a.input().unwrap().text, was);
    // The same value is not a fix.
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(a.input().unwrap().error.as_deref().unwrap().contains("change it first"));
    press_code(&mut a, KeyCode::Backspace, was.chars().count());
    press(&mut a, "Z-ok");
    press_code(&mut a, KeyCode::Enter, 1);
    let fix = HumanAction::FixExample {
        split: Split::Val,
        example: second.clone(),
        field: "expected".into(),
        value: "Z-ok".into(),
    };
    assert_eq!(acts(&a), vec![exclude.clone(), fix.clone()]);

    // The engine takes both in the next round and commits it: every candidate's output on the
    // fixed example scored again by the project's own evaluator, as the engine does it ("Z-ok" is
    // nobody's answer: all 0, and the feedback says what was expected now).
    let round = a.model.state.round.unwrap() + 1;
    let f = fixture();
    let (project, task) = common::load(&f.project.root);
    let recorded = gepa_tui::engine::data_fixes::committed_val_evals(&f.events, &[second.as_str()]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (fixed, _, _) = rt
        .block_on(gepa_tui::engine::data_fixes::rescore_fixes(
            &task,
            &project,
            &a.model.state,
            round,
            &[exclude.clone(), fix.clone()],
            &recorded,
            &gepa_tui::llm::Draw::stream(RUN_ID).at("round", round),
        ))
        .unwrap();
    let [Event::ExampleFixed { rescored, changes, .. }] = fixed.as_slice() else { panic!("{fixed:?}") };
    assert_eq!(
        changes,
        &vec![FieldChange { field: "expected".into(), old: Some(was.clone().into()), new: "Z-ok".into() }]
    );
    assert!(rescored.iter().all(|r| r.eval.score == 0.0 && r.eval.feedback.contains("Z-ok")), "{rescored:?}");
    let mut finished = None;
    for ev in fixture().events.iter().rev() {
        if let Event::RoundFinished { .. } = ev {
            finished = Some(ev.clone());
            break;
        }
    }
    let Some(Event::RoundFinished { metric_calls, cost_usd, best, best_val, input_tokens, output_tokens, .. }) =
        finished
    else {
        panic!("the fixture has rounds")
    };
    let events = vec![
        Event::RoundStarted { round, proposals: vec![], planned_after: Some(round - 1), merge: None },
        Event::Human { round, action: exclude, request: None },
        Event::Human { round, action: fix, request: None },
        fixed[0].clone(),
        Event::RoundFinished {
            round,
            metric_calls,
            cost_usd,
            cost_usd_replayed: 0.0,
            cost_usd_dropped: 0.0,
            best,
            best_val,
            merges_due: 0,
            found_new: false,
            input_tokens,
            output_tokens,
            objective_bests: Default::default(),
        },
    ];
    for ev in events {
        a.on_notice(Notice::Event(Box::new(ev)));
    }
    assert!(a.model.sent.is_empty(), "both decisions came back from the engine");
    assert!(a.model.state.data.is_excluded(Split::Val, &first));
    a.flash = None;
    a.views.traces.example = None;
    let small = text(&draw(&mut a, 80, 24));
    assert!(small.contains('⊘') && small.contains('✎'), "{small}");
    insta::assert_snapshot!("traces_marked_80x24", small);
    // The excluded example is listed last; above its trace, what was done and why.
    press(&mut a, "G");
    assert_eq!(traces_cursor(&a), first);
    let wide = text(&draw(&mut a, 160, 48));
    assert!(wide.contains("⊘ excluded from this run (by you): label is wrong"), "{wide}");
    insta::assert_snapshot!("traces_marked_160x48", wide);
    press(&mut a, "1");
    let dash = text(&draw(&mut a, 80, 24));
    assert!(dash.contains("1 excluded · 1 fixed"), "{dash}");
}

/// On a proposal's minibatch the examples are train ones; a run that is not live refuses.
#[test]
fn a_minibatch_example_is_a_train_one_and_a_finished_run_cannot_be_changed() {
    let mut a = live_traces();
    let k = a.model.proposals.iter().position(|p| p.merge.is_none() && !p.parent_evals.is_empty()).unwrap();
    a.views.traces.show_proposal(&a.model, k).unwrap();
    press(&mut a, "x");
    let label = a.input().unwrap().label.clone().unwrap();
    assert!(label.starts_with("exclude train example "), "{label}");
    press_code(&mut a, KeyCode::Esc, 1);
    assert!(a.input().is_none() && a.views.traces.pending.is_none());
    assert!(a.flash.as_deref().unwrap().contains("nothing sent"));

    let mut a = at_view(View::Traces);
    press(&mut a, "x");
    assert!(a.input().is_none());
    assert!(a.flash.as_deref().unwrap().contains("needs a live run"), "{:?}", a.flash);
    press(&mut a, "f");
    assert!(a.flash.as_deref().unwrap().contains("needs a live run"), "{:?}", a.flash);
}

// ---------------------------------------------------------------------------------------------
// Steering beyond approve and veto: guide a reflection with a note, protect text.

/// `n` on a failing trace: a note prompt naming the candidate and the example; Enter sends a guide
/// with both, an empty note keeps the prompt open with why, esc sends nothing.
#[test]
fn guide_from_a_failing_trace_sends_the_note_with_that_example() {
    let mut a = app();
    a.model.attached = true;
    press(&mut a, "5");
    // Failures first: the seed's top row is a val example it fails.
    let rows = a.views.traces.rows(&a.model, 0);
    let first = a.model.val_evals[0][rows[0]].clone();
    assert!(first.score < 1.0);
    press(&mut a, "n");
    assert!(a.input().is_some(), "the note prompt is open");
    insta::assert_snapshot!("guide_note_80x24", text(&draw(&mut a, 80, 24)));
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(a.input().is_some_and(|i| i.error.is_some()), "an empty note is not sent");
    assert!(acts(&a).is_empty());
    press(&mut a, "group codes end in -ok");
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(a.input().is_none());
    let want = HumanAction::Guide {
        candidate: 0,
        note: "group codes end in -ok".into(),
        example: Some(gepa_tui::engine::event::GuideExample {
            split: gepa_tui::project::Split::Val,
            id: first.example_id.clone(),
        }),
        component: None,
    };
    assert_eq!(acts(&a), vec![want]);
    let screen = text(&draw(&mut a, 80, 24));
    assert!(screen.contains("guidance for a reflection on #0"), "{screen}");

    // From the Frontier: the selected candidate, no example; esc cancels.
    a.commands.clear();
    press(&mut a, "2n");
    assert!(a.input().is_some());
    press_code(&mut a, KeyCode::Esc, 1);
    assert!(a.input().is_none() && a.commands.is_empty());
    assert!(a.flash.as_deref().unwrap_or_default().contains("nothing sent"));
    press(&mut a, "nshorter");
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(matches!(&acts(&a)[..], [HumanAction::Guide { candidate: 0, example: None, .. }]), "{:?}", acts(&a));

    // A browsed run says guiding needs a live run; a view without candidates says where it works.
    let mut b = app();
    press(&mut b, "2n");
    assert!(b.input().is_none());
    assert!(b.flash.as_deref().unwrap_or_default().contains("needs a live run"), "{:?}", b.flash);
    press(&mut b, "1n");
    assert!(b.flash.as_deref().unwrap_or_default().contains("works in the Frontier"), "{:?}", b.flash);
}

/// In the inline editor, ctrl-k wraps the line in keep markers; saving sends the plain texts
/// (a change) and a protect for the marked line, or only the protect when nothing else changed.
#[test]
fn protecting_a_line_in_the_editor_sends_a_protect_decision() {
    let mut a = app();
    a.model.attached = true;
    a.select_candidate(1);
    press(&mut a, "4e");
    let line = a.model.state.candidates[1].texts["instruction"].lines().next().unwrap().to_string();
    a.on_key(ctrl('k'));
    let screen = text(&draw(&mut a, 80, 24));
    assert!(screen.contains("<<keep>>") && screen.contains("line protected"), "{screen}");
    a.on_key(ctrl('s'));
    assert!(a.editor().is_none());
    assert_eq!(acts(&a), vec![HumanAction::Protect { component: "instruction".into(), text: line.clone() }]);
    assert!(a.flash.as_deref().unwrap_or_default().contains("1 protected span(s) of #1 sent"), "{:?}", a.flash);

    // A change and a marked line: the new candidate's texts are plain, the line protected.
    a.commands.clear();
    a.model.sent.clear();
    press(&mut a, "e");
    a.on_key(ctrl('k'));
    a.on_key(ctrl('k'));
    assert!(!a.editor().unwrap().texts()["instruction"].contains("<<keep>>"), "a second ctrl-k unwraps");
    press(&mut a, "Think first. ");
    a.on_key(ctrl('k'));
    a.on_key(ctrl('s'));
    let sent = acts(&a);
    let HumanAction::AddCandidate { texts, .. } = &sent[0] else { panic!("{sent:?}") };
    assert!(!texts["instruction"].contains("<<keep>>"), "{texts:?}");
    let new_line = format!("Think first. {line}");
    assert!(texts["instruction"].starts_with(&new_line), "{texts:?}");
    assert_eq!(sent[1], HumanAction::Protect { component: "instruction".into(), text: new_line });

    // A marker left open is an error that keeps the editor and sends nothing.
    a.commands.clear();
    press(&mut a, "e");
    a.on_paste("<<keep>>open ");
    a.on_key(ctrl('s'));
    assert!(a.editor().is_some() && a.commands.is_empty());
    assert!(a.flash.as_deref().unwrap_or_default().contains("never closed"), "{:?}", a.flash);
}

/// The workbench drives a real engine by keys: a note typed on a failing trace of the seed and a
/// line protected in the editor are recorded, the guided proposal runs on the seed with that
/// example, and the Reflections view shows it as guided by you.
#[test]
fn guiding_and_protecting_by_keys_reach_a_real_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, "max_metric_calls = 100\nminibatch_size = 3\nproposals_per_round = 1\nseed = 3");
    let (project, task) = common::load(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (mut app, run_dir) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) = Engine::create(
            project.clone(),
            task,
            EngineOptions { notices: Some(tx), start_paused: false, ..Default::default() },
        )
        .unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        let jh = tokio::spawn(engine.run());
        let mut a = App::new(Model::new().with_project(&project), Keymap::default(), Theme::default());
        a.model.attached = true;
        let mut steered = false;
        let drive = async {
            while let Some(n) = rx.recv().await {
                a.on_notice(n);
                if !steered && a.model.val_evals.first().is_some_and(|v| !v.is_empty()) {
                    steered = true;
                    a.select_candidate(0);
                    press(&mut a, "5nthe code is the group letter and -ok");
                    press_code(&mut a, KeyCode::Enter, 1);
                    press(&mut a, "4e");
                    a.on_key(ctrl('k'));
                    a.on_key(ctrl('s'));
                }
                for c in a.commands.drain(..) {
                    if let EngineCommand::Act(x) = c {
                        h.act(x);
                    }
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), drive).await.expect("the run got stuck");
        a.model.engine_done = true;
        assert!(jh.await.unwrap().unwrap().result.is_some(), "the run finished");
        (a, run_dir)
    });
    let evs = common::committed(&load_events(&run_dir, false).unwrap().0);
    let guides: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Human { action: HumanAction::Guide { candidate, note, example, .. }, .. } => {
                Some((*candidate, note.clone(), example.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(guides.len(), 1, "{guides:?}");
    assert_eq!((guides[0].0, guides[0].1.as_str()), (0, "the code is the group letter and -ok"));
    let pointed = guides[0].2.clone().expect("with the example under the cursor");
    assert!(evs.iter().any(|e| matches!(e, Event::Human { action: HumanAction::Protect { text, .. }, .. } if text == "Answer the item. rule A")));
    assert_eq!(app.model.state.protected["instruction"], vec!["Answer the item. rule A".to_string()]);
    assert!(app.model.sent.is_empty(), "both were recorded");
    // The guided proposal is in Reflections, marked and explained.
    let k = app.model.proposals.iter().position(|p| p.guide.is_some()).expect("a guided proposal");
    app.goto(View::Reflections);
    app.views.reflections.selected = Some(k);
    let screen = text(&draw(&mut app, 160, 48));
    assert!(screen.contains("✎ guided by you: \"the code is the group letter and -ok\""), "{screen}");
    assert!(screen.contains(&format!("with the val example you pointed at, {}", pointed.id)), "{screen}");
    // The Candidate view says what is protected in the seed's instruction.
    app.select_candidate(0);
    app.goto(View::Candidate);
    let screen = text(&draw(&mut app, 160, 48));
    assert!(screen.contains("protected: \"Answer the item. rule A\""), "{screen}");
    // Its child, when it became a candidate, is on the Frontier as guided.
    if let Some(child) = app.model.proposals[k].child {
        app.goto(View::Frontier);
        let screen = text(&draw(&mut app, 160, 48));
        let row = screen.lines().find(|l| l.contains(&format!("#{child} "))).unwrap_or_default();
        assert!(row.contains("guided"), "{screen}");
    }
}

/// A guided proposal in Reflections, as a person sees it: the ✎ in the list and "guided by you"
/// with the note and the example in the detail (a run with a guide and a protected line waiting in
/// its inbox when it started: the same run every time).
#[test]
fn a_guided_proposal_in_reflections_at_both_sizes() {
    use gepa_tui::engine::event::GuideExample;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(
        &dir,
        "max_metric_calls = 60\nminibatch_size = 3\nproposals_per_round = 1\nseed = 3\npipeline_lag = 1",
    );
    let (project, task) = common::load(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let run_dir = rt.block_on(async {
        let (engine, _h) = Engine::create(project.clone(), task, EngineOptions::default()).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        let guide = HumanAction::Guide {
            candidate: 0,
            note: "each group has its own rule: name it".into(),
            example: Some(GuideExample { split: gepa_tui::project::Split::Val, id: "ex105".into() }),
            component: None,
        };
        gepa_tui::engine::steer::send(&run_dir, guide).unwrap();
        engine.run().await.unwrap().run_dir
    });
    let (mut events, _) = load_events(&run_dir, false).unwrap();
    for ev in &mut events {
        if let Event::RunStarted { run_id, .. } = ev {
            *run_id = RUN_ID.to_string();
        }
    }
    let mut a = App::new(Model::from_events(&events).with_project(&project), Keymap::default(), Theme::default());
    a.goto(View::Reflections);
    press(&mut a, "G");
    for (w, h) in SIZES {
        let screen = text(&draw(&mut a, w, h));
        assert!(screen.contains("guided by you"), "{screen}");
        insta::assert_snapshot!(format!("guided_reflection_{w}x{h}"), screen);
    }
}

/// Children refused before they were evaluated are shown as such in Reflections: the passages a
/// child lost, or how much it grew over max_growth.
#[test]
fn refused_children_are_explained_in_reflections() {
    use gepa_tui::llm::{AttemptError, ChatRequest, ScriptedBackend};
    use std::sync::Arc;
    let (_tmp, dir) = scripted_project("max_metric_calls = 80\nmax_rounds = 6\nseed = 3\npipeline_lag = 1");
    std::fs::write(dir.join("prompts/instruction.md"), "<<keep>>Answer the item.<</keep>> rule A").unwrap();
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    std::fs::write(
        dir.join("gepa.toml"),
        toml.replace("file = \"prompts/format.md\"", "file = \"prompts/format.md\"\nmax_growth = 3"),
    )
    .unwrap();
    // Reflections reword the protected sentence; on `format` they add rules (7 characters each).
    let refl = Arc::new(ScriptedBackend::new(|req: &ChatRequest| {
        Ok::<_, AttemptError>(common::reflection_reply(req).replace("Answer the item.", "Answer."))
    }));
    let mut a = reflections_of(&dir, refl);
    let n = a.model.proposals.len();
    let find = |a: &App, word: &str| {
        a.model.proposals.iter().position(|p| p.outcome.as_ref().is_some_and(|o| format!("{o:?}").starts_with(word)))
    };
    let protected = find(&a, "ProtectedTextChanged").expect("a child lost the protected sentence");
    a.views.reflections.selected = Some(protected);
    let screen = text(&draw(&mut a, 240, 48));
    assert!(screen.contains("⊘ refused: protected text"), "{screen}");
    assert!(screen.contains("dropped or changed 1 protected passage; refused before it was evaluated"), "{screen}");
    assert!(screen.contains("── Protected text the new text lost ──"), "{screen}");
    let grew = find(&a, "GrewTooMuch").expect("a format child grew too much");
    a.views.reflections.selected = Some(grew);
    let screen = text(&draw(&mut a, 240, 48));
    assert!(screen.contains("⊘ refused: grew too much"), "{screen}");
    assert!(screen.contains("more than its max_growth of 3; refused before it was evaluated"), "{screen}");
    assert!(n > 0);
}

/// Keys at the wrong moment: thousands of random presses (every bound key, editing keys, text,
/// the mouse wheel and clicks, pastes, resizes to tiny screens) over a live run's workbench never
/// panic, never leave the app unable to draw, and never quit without `q` or ctrl-c.
#[test]
fn random_keys_at_any_moment_never_break_the_workbench() {
    let alphabet: Vec<KeyEvent> = {
        let mut v: Vec<KeyEvent> =
            "q?12345678 rtabcdefghijklmnopsxyzABEGJKLMPXYD+[]/-".chars().map(|c| key(KeyCode::Char(c))).collect();
        for code in [
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::Home,
            KeyCode::End,
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Backspace,
            KeyCode::Delete,
        ] {
            v.push(key(code));
        }
        for c in ['s', 'k', 'z', 'y', 'e'] {
            v.push(ctrl(c));
        }
        v
    };
    for seed in 0..6u64 {
        let mut a = app();
        a.model.attached = true;
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        for step in 0..1500 {
            let r = next();
            let quit_key = match r % 40 {
                0 => {
                    a.on_paste("pasted <<keep>>text\nwith a line");
                    false
                }
                1 => {
                    let kind =
                        if r % 3 == 0 { MouseEventKind::ScrollDown } else { MouseEventKind::Down(MouseButton::Left) };
                    let (col, row) = ((next() % 100) as u16, (next() % 30) as u16);
                    a.on_mouse(MouseEvent { kind, column: col, row, modifiers: KeyModifiers::NONE });
                    false
                }
                _ => {
                    let k = alphabet[next() % alphabet.len()];
                    let quits = k.code == KeyCode::Char('q') || k == ctrl('c');
                    a.on_key(k);
                    quits
                }
            };
            // What the event loop would take: $EDITOR requests and branch requests.
            a.external = None;
            a.branch = None;
            if a.quit {
                assert!(quit_key, "seed {seed} step {step}: quit without q or ctrl-c");
                a.quit = false;
            }
            let (w, h) = [(80, 24), (160, 48), (20, 6), (1, 1)][next() % 4];
            draw(&mut a, w, h);
        }
    }
}

/// An answer with no instruction asked again with the other built-in template: Reflections shows
/// the first answer as not used, says which template the re-ask used, and shows that prompt.
#[test]
fn an_answer_with_no_instruction_shows_the_template_it_was_asked_again_with() {
    use gepa_tui::llm::{AttemptError, ChatRequest, ScriptedBackend};
    use std::sync::Arc;
    let refl = Arc::new(ScriptedBackend::new(|req: &ChatRequest| {
        if req.messages[0].content.starts_with("I provided an assistant") {
            Ok::<_, AttemptError>("Certainly! Please provide the new instruction.".to_string())
        } else {
            Ok(common::reflection_reply(&ChatRequest::new(vec![req.messages[0].clone()])))
        }
    }));
    let (_tmp, mut a) = reflections_of_a_scripted_run("max_metric_calls = 40\nmax_rounds = 2\nseed = 3", refl);
    let screen = text(&draw(&mut a, 160, 300));
    assert!(
        screen.contains("An answer held no instruction: asked again with the compact template (the prompt above)"),
        "{screen}"
    );
    assert!(screen.contains("Certainly! Please provide the new instruction."), "{screen}");
    assert!(screen.contains("You are improving the instruction an assistant follows."), "{screen}");
}

/// Runs the scripted project (`optimizer` in its [optimizer]) with the scripted task model and
/// `refl` as the reflection model to its end, and opens the workbench on its Reflections view.
fn reflections_of_a_scripted_run(
    optimizer: &str,
    refl: std::sync::Arc<dyn gepa_tui::llm::ChatBackend>,
) -> (tempfile::TempDir, App) {
    let (tmp, dir) = scripted_project(optimizer);
    (tmp, reflections_of(&dir, refl))
}

/// The scripted project (`optimizer` in its [optimizer]) in a temporary folder, and its path.
fn scripted_project(optimizer: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, optimizer);
    (tmp, dir)
}

/// Runs the project at `dir` with the scripted task model and `refl` as the reflection model to
/// its end, and opens the workbench on its Reflections view.
fn reflections_of(dir: &std::path::Path, refl: std::sync::Arc<dyn gepa_tui::llm::ChatBackend>) -> App {
    use gepa_tui::llm::{AttemptError, ChatBackend, ChatRequest, ScriptedBackend};
    use std::sync::Arc;
    let project = Arc::new(Project::load(dir).unwrap());
    let task: Arc<dyn ChatBackend> =
        Arc::new(ScriptedBackend::new(|req: &ChatRequest| Ok::<_, AttemptError>(common::task_reply(req))));
    let models = common::models_from(&project, task, refl);
    let task = Arc::new(gepa_tui::eval::Task::new(project.clone(), Arc::new(models)).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let run_dir = rt.block_on(async {
        let (engine, _h) = Engine::create(project.clone(), task, EngineOptions::default()).unwrap();
        engine.run().await.unwrap().run_dir
    });
    let (events, _) = load_events(&run_dir, false).unwrap();
    let mut a = App::new(Model::from_events(&events).with_project(&project), Keymap::default(), Theme::default());
    a.goto(View::Reflections);
    a
}
