//! `[optimizer] val_repeats = k` (gepa #133, #139): a system that samples is scored on each val
//! example k times, each a draw and a metric call, and the example's score is the mean of its
//! draws. Checked against what a noisy scripted model answered, as it recorded it itself.

mod common;

use gepa_tui::engine::run::load_events;
use gepa_tui::engine::{Engine, EngineOptions, Event, RunResult, RunState};
use gepa_tui::eval::Task;
use gepa_tui::llm::scripted::ScriptedBackend;
use gepa_tui::llm::{AttemptError, ChatBackend, ChatRequest};
use gepa_tui::project::Project;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::rt;

/// What the noisy task model answered: (the draw's place, whether the answer was right).
type Answered = Arc<Mutex<Vec<(String, bool)>>>;

/// The scripted problem with the task model sampling (temperature 0.7), `extra` under [optimizer].
fn noisy_project(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, dir) = common::scripted_project(extra);
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    let cold = "model = \"scripted-task\"\nbase_url = \"http://127.0.0.1:9/v1\"\ntemperature = 0.0";
    assert!(toml.contains(cold));
    let warm = cold.replace("temperature = 0.0", "temperature = 0.7");
    std::fs::write(dir.join("gepa.toml"), toml.replace(cold, &warm)).unwrap();
    (t, dir)
}

/// Right when the prompt has the example's rule (as the scripted problem), and right by luck on
/// about one draw in three without it: decided by the draw's place, so the same place (a resume,
/// a replay) answers the same and another place draws anew.
fn noisy_task(answered: Answered) -> Arc<ScriptedBackend> {
    Arc::new(ScriptedBackend::new(move |req: &ChatRequest| {
        use std::hash::{Hash, Hasher};
        let place = req.draw.as_ref().map(|d| d.to_string()).unwrap_or_default();
        let mut h = std::hash::DefaultHasher::new();
        // The place within the run (not the run's id): every run of the project draws alike.
        place.split_once('/').map_or("", |(_, within)| within).hash(&mut h);
        let group = req.messages.last().unwrap().content.chars().last().unwrap();
        let mut reply = common::task_reply(req);
        if reply == "not sure" && h.finish().is_multiple_of(3) {
            reply = format!("{group}-ok");
        }
        answered.lock().unwrap().push((place, reply == format!("{group}-ok")));
        Ok::<_, AttemptError>(reply)
    }))
}

fn task_for(dir: &Path, answered: Answered) -> (Arc<Project>, Arc<Task>) {
    let project = Arc::new(Project::load(dir).unwrap());
    let refl: Arc<dyn ChatBackend> =
        Arc::new(ScriptedBackend::new(|req: &ChatRequest| Ok::<_, AttemptError>(common::reflection_reply(req))));
    let models = Arc::new(common::models_from(&project, noisy_task(answered), refl));
    (project.clone(), Arc::new(Task::new(project, models).unwrap()))
}

/// Runs the project; the result and the committed events.
fn run(dir: &Path, answered: Answered, opts: EngineOptions) -> (RunResult, Vec<Event>) {
    let (r, events) = run_log(dir, answered, opts);
    (r, common::committed(&events))
}

/// Runs the project; the result and the whole log.
fn run_log(dir: &Path, answered: Answered, opts: EngineOptions) -> (RunResult, Vec<Event>) {
    let (project, task) = task_for(dir, answered);
    rt().block_on(async {
        let out = Engine::create(project, task, opts).unwrap().0.run().await.unwrap();
        let (events, _) = load_events(&out.run_dir, false).unwrap();
        (out.result.unwrap(), events)
    })
}

fn fold(events: &[Event]) -> RunState {
    let mut s = RunState::default();
    events.iter().for_each(|e| s.apply(e));
    s
}

/// What a run decided, apart from its id, time and which replies were paid or replayed.
fn decided(r: &RunResult) -> (f64, f64, Option<f64>, usize, u64, usize) {
    (r.best_val_score, r.seed_val_score, r.test_score, r.candidates, r.metric_calls, r.best_candidate)
}

const OPT: &str = "max_metric_calls = 400\npipeline_lag = 1\nseed = 1\nval_repeats = 3\nmerge = true\nmax_merges = 3";

#[test]
fn each_val_example_is_scored_k_times_and_its_score_is_the_mean_of_the_draws() {
    let (_t, dir) = noisy_project(OPT);
    let answered: Answered = Default::default();
    let (r, events) = run(&dir, answered.clone(), EngineOptions::default());
    let state = fold(&events);
    let answered = answered.lock().unwrap().clone();
    // The seed's val pass: 16 examples, three draws each, all first draws then all second ones.
    let seed: Vec<_> = events
        .iter()
        .find_map(|e| match e {
            Event::ValEvaluated { candidate: 0, evals, .. } => Some(evals.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(seed.len(), 48);
    assert_eq!(seed.iter().map(|e| e.repeat).collect::<Vec<_>>(), [[0; 16], [1; 16], [2; 16]].concat());
    let mut noisy = 0;
    for (i, id) in state.val_ids.iter().enumerate() {
        // The model's own record of its three answers at this example's places.
        let first = format!("/eval=seed/example={id}");
        let draws: Vec<f64> = ["".to_string(), "/repeat=1".into(), "/repeat=2".into()]
            .iter()
            .map(|r| {
                // The system's one step, `answer`, is the draw below the example's.
                let at = format!("{first}{r}/step=answer");
                let hits: Vec<bool> = answered.iter().filter(|(p, _)| p.ends_with(&at)).map(|(_, ok)| *ok).collect();
                assert_eq!(hits.len(), 1, "{at} asked {} times", hits.len());
                f64::from(u8::from(hits[0]))
            })
            .collect();
        noisy += usize::from(draws.iter().any(|d| *d != draws[0]));
        let mean = draws.iter().sum::<f64>() / 3.0;
        assert!((state.candidates[0].val_scores[i] - mean).abs() < 1e-12, "{id}: {draws:?}");
        assert_eq!(state.candidates[0].val_draws[i], draws, "{id}");
    }
    assert!(noisy >= 3, "the draws hardly differ ({noisy} of 16 examples): the test says nothing");
    assert!((r.seed_val_score - state.candidates[0].val_mean).abs() < 1e-12);
    // Every draw is a metric call: what the model was asked, less the test split's (not counted).
    let counted = answered.iter().filter(|(p, _)| !p.contains("/eval=test/")).count() as u64;
    assert_eq!(r.metric_calls, counted, "{r:?}");
    assert!(r.candidates >= 2, "nothing found past the seed: {r:?}");
    // Every candidate was scored on every example three times, the draws in their places even
    // where they were served from the evaluation cache.
    let order = [[0; 16], [1; 16], [2; 16]].concat();
    for e in &events {
        if let Event::ValEvaluated { candidate, evals, .. } = e {
            assert_eq!(evals.iter().map(|e| e.repeat).collect::<Vec<_>>(), order, "candidate {candidate}");
        }
    }
    let merges: Vec<(usize, bool)> = events
        .iter()
        .filter_map(|e| match e {
            Event::MergeAttempted { evals, accepted, .. } => Some((evals.len(), *accepted)),
            _ => None,
        })
        .collect();
    assert!(merges.iter().any(|(_, ok)| *ok), "no merge passed: {merges:?}");
    assert!(merges.iter().all(|(n, _)| n % 3 == 0), "a merge's subsample is scored three times: {merges:?}");
}

/// A run cut anywhere (as kill -9 leaves it) resumes to the uninterrupted result, and a replay of
/// its draws ends the same without asking the task model anything.
#[test]
fn a_repeated_val_run_resumes_and_replays_to_the_same_result() {
    let (_t, dir) = noisy_project(OPT);
    let (full, events) = run(&dir, Default::default(), EngineOptions::default());
    let scores: Vec<Vec<f64>> = fold(&events).candidates.iter().map(|c| c.val_scores.clone()).collect();
    let run_dir = dir.join(".gepa/runs").join(&full.run_id);
    let log = std::fs::read(run_dir.join("events.jsonl")).unwrap();
    let len = log.len();
    for cut in [len / 4, len / 2 + 11, len - 3] {
        let id = format!("cut-{cut}");
        let copy = dir.join(".gepa/runs").join(&id);
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(run_dir.join("gepa.toml"), copy.join("gepa.toml")).unwrap();
        std::fs::write(copy.join("events.jsonl"), &log[..cut]).unwrap();
        let (project, task) = task_for(&dir, Default::default());
        let resumed = rt().block_on(async {
            Engine::resume(project, task, &id, EngineOptions::default()).unwrap().0.run().await.unwrap()
        });
        assert_eq!(decided(&resumed.result.unwrap()), decided(&full), "cut at byte {cut} of {len}");
        let (events, _) = load_events(&copy, false).unwrap();
        let resumed: Vec<Vec<f64>> =
            fold(&common::committed(&events)).candidates.iter().map(|c| c.val_scores.clone()).collect();
        assert_eq!(resumed, scores, "cut at byte {cut}");
    }
    let answered: Answered = Default::default();
    let replay = EngineOptions { draws_of: Some(full.run_id.clone()), ..Default::default() };
    let (replayed, _) = run(&dir, answered.clone(), replay);
    assert_eq!(decided(&replayed), decided(&full));
    assert_eq!(answered.lock().unwrap().len(), 0, "a replay asked the task model again");
}

#[test]
fn val_repeats_is_checked_when_the_project_loads() {
    let (_t, dir) = noisy_project("val_repeat = 3");
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("unknown key `val_repeat` in [optimizer]; did you mean `val_repeats`?"), "{err}");
    let (_t, dir) = noisy_project("val_repeats = 0");
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("[optimizer] val_repeats must be at least 1"), "{err}");
    // At temperature 0 every repeat would get the same reply: refused, naming the line and the model.
    let (_t, dir) = common::scripted_project("val_repeats = 3");
    let err = Project::load(&dir).unwrap_err().to_string();
    let line =
        std::fs::read_to_string(dir.join("gepa.toml")).unwrap().lines().position(|l| l.starts_with("val_repeats"));
    assert!(err.contains(&format!("gepa.toml:{}:", line.unwrap() + 1)), "{err}");
    assert!(err.contains("no model the evaluation uses samples: [models.task]"), "{err}");
    let (_t, dir) = noisy_project("val_repeats = 3");
    assert_eq!(Project::load(&dir).unwrap().config.optimizer.val_repeats, 3);
}

fn screen(app: &mut gepa_tui::tui::app::App, w: u16, h: u16) -> String {
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    term.draw(|f| app.render(f)).unwrap();
    let buf = term.backend().buffer().clone();
    (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>().trim_end().to_string() + "\n").collect()
}

/// The Frontier shows each candidate's val mean with its spread over the repeats (the standard
/// deviation of its three per-repeat val means, worked out here from the recorded draws), and
/// the win matrix counts a win only where it holds over every draw. Snapshots at both sizes.
#[test]
fn the_frontier_shows_the_mean_and_spread_and_the_win_matrix_wins_over_every_draw() {
    use gepa_tui::tui::app::{App, MatrixPane, View};
    let (_t, dir) = noisy_project(OPT);
    let (_, mut events) = run_log(&dir, Default::default(), EngineOptions::default());
    for ev in &mut events {
        if let Event::RunStarted { run_id, .. } = ev {
            *run_id = "20261207-000000-rep3".into();
        }
    }
    let project = Project::load(&dir).unwrap();
    let model = gepa_tui::tui::model::Model::from_events(&events).with_project(&project);
    let mut app = App::new(model, Default::default(), Default::default());
    app.select_candidate(0);
    app.goto(View::Frontier);
    let wide = screen(&mut app, 160, 48);
    let mut labels = Vec::new();
    for ev in common::committed(&events) {
        let Event::ValEvaluated { candidate, evals, .. } = ev else { continue };
        let means: Vec<f64> =
            (0..3).map(|r| evals.iter().filter(|e| e.repeat == r).map(|e| e.score).sum::<f64>() / 16.0).collect();
        let mean = means.iter().sum::<f64>() / 3.0;
        let sd = (means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let label = format!("{mean:.3}±{sd:.2}");
        let id = format!("#{candidate}");
        let row = wide.lines().find(|l| l.contains('±') && l.split_whitespace().any(|w| w == id)).unwrap_or_default();
        assert!(row.contains(&label), "candidate {candidate}: {label} not in `{row}`\n{wide}");
        labels.push(label);
    }
    assert!(labels.iter().any(|l| !l.ends_with("±0.00")), "no spread to show: {labels:?}");
    insta::assert_snapshot!("val_repeats_frontier_160x48", wide);
    insta::assert_snapshot!("val_repeats_frontier_80x24", screen(&mut app, 80, 24));
    // The pairwise matrix: a win holds over every draw of the example, else it is a tie.
    let state = &app.model.state;
    let (a, b) = (0, state.best().unwrap());
    let (mut w, mut t, mut l) = (0, 0, 0);
    for (x, y) in state.candidates[a].val_draws.iter().zip(&state.candidates[b].val_draws) {
        let (worst_x, best_x) = (x.iter().copied().fold(9.0, f64::min), x.iter().copied().fold(-9.0, f64::max));
        let (worst_y, best_y) = (y.iter().copied().fold(9.0, f64::min), y.iter().copied().fold(-9.0, f64::max));
        match (worst_x > best_y, worst_y > best_x) {
            (true, _) => w += 1,
            (_, true) => l += 1,
            _ => t += 1,
        }
    }
    assert_eq!(app.model.wins_ties_losses(a, b), (w, t, l));
    app.goto(View::WinMatrix);
    app.views.matrix.pane = MatrixPane::Pairwise;
    insta::assert_snapshot!("val_repeats_pairwise_160x48", screen(&mut app, 160, 48));
    insta::assert_snapshot!("val_repeats_pairwise_80x24", screen(&mut app, 80, 24));
}

/// A person's fix of a val example scores every recorded draw again (each repeat's own output),
/// and the example's score is the mean of the draws scored again.
#[test]
fn a_fixed_val_example_has_every_draw_scored_again() {
    use gepa_tui::engine::event::HumanAction;
    let (_t, dir) = noisy_project(OPT);
    let (project, task) = task_for(&dir, Default::default());
    // ex100 is a group E example: right answers say "E-ok"; from now on "not sure" is right.
    let fix = HumanAction::FixExample {
        split: gepa_tui::project::Split::Val,
        example: "ex100".into(),
        field: "expected".into(),
        value: "not sure".into(),
    };
    let events = rt().block_on(async {
        let (engine, h) = Engine::create(project, task, EngineOptions::default()).unwrap();
        h.act(fix);
        let out = engine.run().await.unwrap();
        common::committed(&load_events(&out.run_dir, false).unwrap().0)
    });
    let at = events.iter().position(|e| matches!(e, Event::ExampleFixed { .. })).expect("the fix was taken");
    let before = fold(&events[..at]);
    let Event::ExampleFixed { rescored, .. } = &events[at] else { unreachable!() };
    assert!(!before.candidates.is_empty());
    assert_eq!(rescored.len(), 3 * before.candidates.len(), "every draw of every earlier candidate");
    let after = fold(&events[..=at]);
    for c in &before.candidates {
        let old = &c.val_draws[0];
        // Exact match flips: an output that was right ("E-ok") is wrong now, and the reverse.
        let flipped: Vec<f64> = old.iter().map(|s| 1.0 - s).collect();
        let again: Vec<f64> = rescored.iter().filter(|r| r.candidate == c.id).map(|r| r.eval.score).collect();
        assert_eq!(again, flipped, "candidate {}", c.id);
        assert_eq!(after.candidates[c.id].val_draws[0], flipped, "candidate {}", c.id);
        let mean = flipped.iter().sum::<f64>() / 3.0;
        assert!((after.candidates[c.id].val_scores[0] - mean).abs() < 1e-12);
    }
    assert!(
        before.candidates.iter().any(|c| c.val_draws[0].iter().any(|s| *s != c.val_draws[0][0])),
        "no draw of ex100 differed from another: the test says little"
    );
}
