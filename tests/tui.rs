//! The workbench as a person sees it: snapshots of every view at 80×24 and 160×48 for a small fixed
//! run (the scripted GEPA problem of tests/common), key sequences driven through the `App` with no
//! terminal, and the model's fold checked against the engine's.

mod common;

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};
use gepa_tui::engine::run::load_events;
use gepa_tui::engine::{Engine, EngineOptions, Event, RunState};
use gepa_tui::project::Project;
use gepa_tui::tui::app::{App, DiffMode, MatrixPane, View};
use gepa_tui::tui::keymap::Keymap;
use gepa_tui::tui::model::Model;
use gepa_tui::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const OPT: &str =
    "max_metric_calls = 120\nminibatch_size = 3\nproposals_per_round = 2\nseed = 7\nmerge = true\nmax_merges = 2";
const RUN_ID: &str = "20261125-000000-f1x7";

struct Fixture {
    _tmp: tempfile::TempDir,
    project: Project,
    events: Vec<Event>,
}

/// Runs the scripted problem once per test process and keeps its events, with a fixed run id.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("proj");
        common::write_project(&dir, OPT);
        let run_dir = record_run(&dir);
        let (mut events, _) = load_events(&run_dir, false).unwrap();
        for ev in &mut events {
            if let Event::RunStarted { run_id, .. } = ev {
                *run_id = RUN_ID.to_string();
            }
        }
        let project = Project::load(&dir).unwrap();
        Fixture { _tmp: tmp, project, events }
    })
}

/// Runs the scripted problem to the end in `dir`; returns the run folder.
fn record_run(dir: &Path) -> PathBuf {
    let (project, task) = common::load(dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (engine, _h) = Engine::create(project, task, EngineOptions::default()).unwrap();
        engine.run().await.unwrap().run_dir
    })
}

fn model() -> Model {
    let f = fixture();
    Model::from_events(&f.events).with_project(&f.project)
}

fn app_with(theme: Theme) -> App {
    App::new(model(), Keymap::default(), theme)
}

fn app() -> App {
    app_with(Theme::default())
}

fn draw(app: &App, w: u16, h: u16) -> Buffer {
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

#[test]
fn every_view_at_both_sizes() {
    for view in View::ALL {
        for (w, h) in SIZES {
            let a = at_view(view);
            let buf = draw(&a, w, h);
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
    let mut a = app();
    press(&mut a, "?");
    insta::assert_snapshot!("help_80x24", text(&draw(&a, 80, 24)));

    let entries: Vec<_> = vec![
        gepa_tui::tui::start::RunEntry {
            id: RUN_ID.into(),
            finished: true,
            best_val: Some(a.model.state.best_val()),
            test_score: a.model.state.test_score,
            candidates: Some(a.model.state.candidates.len() as u64),
            metric_calls: Some(a.model.state.metric_calls),
            stop_reason: a.model.state.finished.clone(),
        },
        gepa_tui::tui::start::RunEntry {
            id: "20261124-235959-0a0a".into(),
            finished: false,
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
    let buf = draw(&a, 80, 24);
    let t = text(&buf);
    assert!(t.contains('█') && t.contains('·'), "{t}");
    for cell in buf.content() {
        assert!(cell.fg == ratatui::style::Color::Reset && cell.bg == ratatui::style::Color::Reset, "{cell:?}");
    }
}

#[test]
fn enter_on_a_heat_map_cell_shows_that_trace() {
    let mut a = app();
    press(&mut a, "3");
    assert_eq!(a.view, View::WinMatrix);
    // Down twice: candidate #2; right three times: the fourth example in column order.
    press_code(&mut a, KeyCode::Down, 2);
    press_code(&mut a, KeyCode::Right, 3);
    let example = a.example_order()[3];
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.view, View::Traces);
    assert_eq!(a.selected, 2);
    assert_eq!(a.traces.example, Some(example));
    let id = a.model.state.val_ids[example].clone();
    let screen = text(&draw(&a, 160, 48));
    assert!(screen.contains("Trace of #2"), "{screen}");
    assert!(screen.contains(&format!("{id} · val {} of", example + 1)), "{screen}");
    // The trace shows the rendered messages that candidate #2 sent.
    let first_line = a.model.state.candidates[2].texts["instruction"].clone();
    assert!(screen.contains(&first_line[..first_line.len().min(40)]), "{screen}");

    // After sorting by difficulty the same keys land on the hardest example.
    let mut a = app();
    press(&mut a, "3s");
    let hardest = a.example_order()[0];
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.traces.example, Some(hardest));
    let m = &a.model;
    assert!((0..m.state.val_ids.len()).all(|i| m.difficulty(i) >= m.difficulty(hardest)));
}

#[test]
fn pairwise_cell_opens_the_diff_of_the_pair() {
    let mut a = app();
    press(&mut a, "3w");
    assert_eq!(a.matrix.pane, MatrixPane::Pairwise);
    press_code(&mut a, KeyCode::Down, 1);
    press_code(&mut a, KeyCode::Right, 2);
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.view, View::Candidate);
    assert_eq!((a.selected, a.candidate.compare, a.candidate.diff), (1, 2, DiffMode::Other));
    assert!(text(&draw(&a, 160, 48)).contains("diff against #2"));
}

#[test]
fn enter_on_a_frontier_row_opens_that_candidate() {
    let mut a = app();
    press(&mut a, "2");
    press(&mut a, "s"); // by val mean, best first; the cursor stays on the same candidate
    let rows = a.frontier_rows().clone();
    press(&mut a, "g");
    assert_eq!(a.selected, rows[0]);
    press_code(&mut a, KeyCode::Down, 1);
    press_code(&mut a, KeyCode::Enter, 1);
    assert_eq!(a.view, View::Candidate);
    assert_eq!(a.selected, rows[1]);
    assert!(text(&draw(&a, 80, 24)).contains(&format!("Candidate #{}", rows[1])));
}

#[test]
fn frontier_filter_narrows_the_rows_and_esc_clears_it() {
    let mut a = app();
    press(&mut a, "2/merge");
    assert!(a.input.is_some());
    let rows = a.frontier_rows().clone();
    assert!(rows.iter().all(|c| a.model.state.candidates[*c].origin.as_str() == "merge"), "{rows:?}");
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(a.input.is_none());
    assert_eq!(a.frontier.filter, "merge");
    press_code(&mut a, KeyCode::Esc, 1);
    assert_eq!(a.frontier_rows().len(), a.model.state.candidates.len());
}

#[test]
fn help_tab_cycling_and_release_events() {
    let mut a = app();
    press(&mut a, "?");
    assert!(a.help);
    assert!(text(&draw(&a, 80, 24)).contains("show or hide this help"));
    press_code(&mut a, KeyCode::Esc, 1);
    assert!(!a.help);

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
    draw(&a, 160, 48);
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
    draw(&a, 160, 48);
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

#[test]
fn model_fold_matches_the_engine_fold_at_every_prefix() {
    let f = fixture();
    for cut in (0..=f.events.len()).step_by(7).chain([f.events.len()]) {
        let m = Model::from_events(&f.events[..cut]);
        assert_eq!(m.state, RunState::from_events(&f.events[..cut]), "after {cut} events");
        assert_eq!(m.val_evals.len(), m.state.candidates.len());
    }
    let m = model();
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

/// Writes a demo project with one finished and one interrupted run (for screenshots and trying the
/// binary by hand): `GEPA_TUI_DEMO_DIR=/tmp/demo cargo test --test tui demo -- --ignored`.
#[test]
#[ignore]
fn demo_project() {
    let Some(dir) = std::env::var_os("GEPA_TUI_DEMO_DIR").map(PathBuf::from) else { return };
    common::write_project(&dir, OPT);
    let finished = record_run(&dir);
    let id = finished.file_name().unwrap().to_string_lossy().to_string();
    // A copy cut mid-run: resumable, and replayable offline from the cache.
    let cut_dir = dir.join(".gepa/runs").join(format!("{id}-cut"));
    std::fs::create_dir_all(&cut_dir).unwrap();
    std::fs::copy(finished.join("gepa.toml"), cut_dir.join("gepa.toml")).unwrap();
    let ev = std::fs::read(finished.join("events.jsonl")).unwrap();
    std::fs::write(cut_dir.join("events.jsonl"), &ev[..ev.len() / 3]).unwrap();
    eprintln!("demo project in {}: runs {id} (finished) and {id}-cut (resumable)", dir.display());
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
    if std::process::Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed");
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
    draw(&a, 80, 24);
    let max = a.reflections.scroll.max.get();
    assert!(max > 10, "the reflection detail is longer than the screen");
    press_code(&mut a, KeyCode::PageDown, 1000);
    assert_eq!(a.reflections.scroll.pos, max);
    press_code(&mut a, KeyCode::PageUp, 1);
    assert_eq!(a.reflections.scroll.pos, max - 10);
    let screen = text(&draw(&a, 80, 24));
    assert!(!screen.contains("Minibatch scores"), "scrolled past the top part:\n{screen}");
}

#[test]
fn trace_search_keeps_the_matching_examples_failures_first() {
    let mut a = app();
    let best = a.model.state.best().unwrap();
    a.select_candidate(best);
    press(&mut a, "5/group a");
    let rows = a.trace_rows();
    let evals = &a.model.val_evals[best];
    assert!(!rows.is_empty());
    for w in rows.windows(2) {
        assert!(evals[w[0]].score <= evals[w[1]].score, "failures first");
    }
    for &r in &rows {
        let ex = &a.model.examples[&evals[r].example_id];
        assert!(ex.field_text("input").unwrap().contains("group A"), "{:?}", ex);
    }
    press_code(&mut a, KeyCode::Enter, 1);
    assert!(text(&draw(&a, 80, 24)).contains("\"group a\""));
}
