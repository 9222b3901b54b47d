//! One record of a run's settings: what the command line set when the run started holds on a
//! plain resume, a resume with a bigger budget records the change, and the engine's stop rule,
//! the workbench's gauge and ETA, the progress line's status and result.json all read the same
//! budget; the seed cannot change on resume.

mod common;

use gepa_tui::engine::run::load_events;
use gepa_tui::engine::settings::Overrides;
use gepa_tui::engine::{Engine, EngineHandle, EngineOptions, Event, Notice, RunResult, RunState, Status};
use gepa_tui::tui::app::App;
use gepa_tui::tui::keymap::Keymap;
use gepa_tui::tui::model::Model;
use gepa_tui::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// gepa.toml says 800: every budget below comes from the command line.
const OPT: &str = "max_metric_calls = 800\nminibatch_size = 3\nproposals_per_round = 1\nseed = 3\npipeline_lag = 1";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn budget(n: u64) -> Overrides {
    Overrides { max_metric_calls: Some(n), ..Default::default() }
}

/// A run started with `--max-metric-calls 80` and stopped at its second reflection (resumable).
fn stopped_run() -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, OPT);
    let handle: Arc<OnceLock<EngineHandle>> = Arc::new(OnceLock::new());
    let h2 = handle.clone();
    let hook: common::ReflectionHook = Arc::new(move |k| {
        if k == 2 {
            h2.get().unwrap().stop();
        }
    });
    let (project, task) = common::load_with(&dir, Some(hook));
    let run_id = rt().block_on(async {
        let opts = EngineOptions { overrides: budget(80), ..Default::default() };
        let (engine, h) = Engine::create(project, task, opts).unwrap();
        handle.set(h).ok().unwrap();
        let id = engine.run_id().to_string();
        assert!(engine.run().await.unwrap().result.is_none(), "stopped, not finished");
        id
    });
    (tmp, dir, run_id)
}

/// Resumes with `overrides`, keeping every live status the engine sent.
fn resume(dir: &Path, run_id: &str, overrides: Overrides) -> anyhow::Result<(RunResult, Vec<Status>)> {
    let (project, task) = common::load(dir);
    rt().block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = EngineOptions { notices: Some(tx), overrides, ..Default::default() };
        let (engine, _h) = Engine::resume(project, task, run_id, opts)?;
        let result = engine.run().await?.result.expect("finished");
        let mut statuses = Vec::new();
        while let Ok(n) = rx.try_recv() {
            if let Notice::Status(s) = n {
                statuses.push(s);
            }
        }
        Ok((result, statuses))
    })
}

fn events_of(dir: &Path, run_id: &str) -> Vec<Event> {
    load_events(&dir.join(".gepa/runs").join(run_id), false).unwrap().0
}

/// The dashboard's gauge line as drawn.
fn gauge(events: &[Event]) -> String {
    let mut app = App::new(Model::from_events(events), Keymap::default(), Theme::default());
    let mut term = Terminal::new(TestBackend::new(120, 32)).unwrap();
    term.draw(|f| app.render(f)).unwrap();
    let buf = term.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .find(|l| l.contains(" / ") && l.contains('%'))
        .unwrap_or_else(|| panic!("no gauge on the dashboard"))
}

#[test]
fn a_resume_with_a_bigger_budget_runs_to_it_and_the_gauge_the_eta_and_result_json_agree() {
    let (_t, dir, run_id) = stopped_run();
    let before = events_of(&dir, &run_id);
    let stopped_at = RunState::from_events(&before).metric_calls;
    assert!(stopped_at < 80, "stopped before the budget: {stopped_at}");
    let Some(Event::RunStarted { settings: Some(s), max_metric_calls, .. }) = before.first() else {
        panic!("run_started records the settings")
    };
    assert_eq!((s.max_metric_calls, *max_metric_calls), (80, 80), "the budget in force, not gepa.toml's 800");

    let (result, statuses) = resume(&dir, &run_id, budget(100)).unwrap();
    let events = events_of(&dir, &run_id);
    // The change is recorded once, as a settings_changed after the resume.
    let changed: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::SettingsChanged { .. })).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    let Event::SettingsChanged { settings, changed: keys } = changed[0] else { unreachable!() };
    assert_eq!((settings.max_metric_calls, keys.clone()), (100, vec!["max_metric_calls".to_string()]));

    // The stop rule: the run went past the old budget and stopped on the new one.
    assert!(result.metric_calls > 80, "ran on past the old budget: {}", result.metric_calls);
    assert!(result.stop_reason.contains("budget of 100 metric calls"), "{}", result.stop_reason);
    // result.json says the same stop.
    let on_disk: RunResult = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".gepa/runs").join(&run_id).join("result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!((on_disk.stop_reason, on_disk.metric_calls), (result.stop_reason.clone(), result.metric_calls));
    // The fold every reader uses holds the new budget.
    assert_eq!(RunState::from_events(&events).settings.max_metric_calls, 100);
    // The progress line's status (and its ETA) counts towards 100.
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| s.max_metric_calls == 100), "{:?}", statuses.last());
    // The gauge reads the recorded budget: "N / 100", never "N / 80 (100%+)".
    let line = gauge(&events);
    assert!(line.contains(&format!("{} / 100 (", result.metric_calls)), "{line}");
    // The workbench's ETA counts the calls left to 100 at this session's pace.
    let resumed_at = events.iter().position(|e| matches!(e, Event::Resumed { .. })).unwrap();
    let mut model = Model::from_events(&events[..resumed_at + 2]);
    model.session_start_calls = stopped_at;
    model.on_notice(Notice::Status(Status { metric_calls: stopped_at + 10, elapsed_secs: 20.0, ..Default::default() }));
    let left = 100 - (stopped_at + 10);
    assert_eq!(model.eta_secs(), Some(2.0 * left as f64));
}

#[test]
fn a_budget_given_at_the_start_holds_on_a_plain_resume() {
    let (_t, dir, run_id) = stopped_run();
    let (result, statuses) = resume(&dir, &run_id, Overrides::default()).unwrap();
    assert!(result.stop_reason.contains("budget of 80 metric calls"), "{}", result.stop_reason);
    assert!(result.metric_calls <= 80 + 3, "{}", result.metric_calls);
    assert!(statuses.iter().all(|s| s.max_metric_calls == 80));
    let events = events_of(&dir, &run_id);
    assert!(!events.iter().any(|e| matches!(e, Event::SettingsChanged { .. })), "nothing changed");
    assert!(gauge(&events).contains(" / 80 ("));
}

#[test]
fn the_seed_cannot_change_on_resume_and_nothing_is_written() {
    let (_t, dir, run_id) = stopped_run();
    let before = std::fs::read_to_string(dir.join(".gepa/runs").join(&run_id).join("events.jsonl")).unwrap();
    let err = resume(&dir, &run_id, Overrides { seed: Some(9), ..Default::default() }).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "cannot resume run {run_id}: seed cannot change when a run is resumed: the run has seed = 3"
        )),
        "{err}"
    );
    assert!(err.contains("--seed asks for 9"), "{err}");
    let after = std::fs::read_to_string(dir.join(".gepa/runs").join(&run_id).join("events.jsonl")).unwrap();
    assert_eq!(before, after, "a refused resume writes nothing");
    // The same seed again is no change.
    assert!(resume(&dir, &run_id, Overrides { seed: Some(3), ..Default::default() }).is_ok());
}
