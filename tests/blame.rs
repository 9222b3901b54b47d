//! Blame: each line of a candidate's text is attributed to the candidate that first wrote it, and
//! a person's hand edit to that person's decision (with its note), as `gepa-tui export --blame`
//! prints it.

mod common;

use assert_cmd::Command;
use gepa_tui::engine::event::HumanAction;
use gepa_tui::engine::{Engine, EngineOptions, Origin, RunState};

#[test]
fn a_hand_edits_lines_are_the_persons_and_the_rest_keep_their_author() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, "max_metric_calls = 60\nminibatch_size = 3\nseed = 3");
    let (project, task) = common::load(&dir);
    let seed = project.seed.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut texts = seed.clone();
    let edited = format!("{}\nNever guess: say \"not sure\".\nName the group's rule.", seed["instruction"]);
    texts.insert("instruction".into(), edited.clone());
    let run_dir = rt.block_on(async move {
        let (engine, h) =
            Engine::create(project, task, EngineOptions { auto_approve: true, ..Default::default() }).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        h.act(HumanAction::AddCandidate { texts, parents: vec![0], origin: Origin::Human, note: "no guessing".into() });
        engine.run().await.unwrap();
        run_dir
    });
    let (events, _) = gepa_tui::engine::run::load_events(&run_dir, false).unwrap();
    let state = RunState::from_events(&events);
    let human = state.candidates.iter().find(|c| c.origin == Origin::Human).expect("the hand edit joined").id;

    let lines = gepa_tui::engine::blame::blame(&state, human, "instruction");
    let got: Vec<(&str, usize)> = lines.iter().map(|l| (l.text.as_str(), l.by)).collect();
    let seed_line = seed["instruction"].as_str();
    assert_eq!(
        got,
        [(seed_line, 0), ("Never guess: say \"not sure\".", human), ("Name the group's rule.", human)],
        "the seed's line stays the seed's; the two lines the person wrote are theirs"
    );
    // An untouched component is the seed's throughout.
    assert!(gepa_tui::engine::blame::blame(&state, human, "format").iter().all(|l| l.by == 0));

    // The same as plain text, with who wrote what.
    let run = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::cargo_bin("gepa-tui")
        .unwrap()
        .args(["export", "--blame", "--run", &run, "--candidate", &human.to_string()])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let round = state.candidates[human].round;
    assert!(text.contains(&format!("#{human:<3} r{round:<3} │ Never guess: say \"not sure\".")), "{text}");
    assert!(text.contains(&format!("#0   r0   │ {seed_line}")), "{text}");
    assert!(text.contains(&format!("#{human}: written by a person in round {round} (no guessing)")), "{text}");
}

/// A child a reflection wrote names that reflection: the minibatch it read and the feedback.
#[test]
fn a_reflections_lines_name_the_feedback_it_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(&dir, "max_metric_calls = 80\nminibatch_size = 3\nseed = 3");
    let (project, task) = common::load(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let run_dir = rt.block_on(async move {
        let (engine, _h) =
            Engine::create(project, task, EngineOptions { auto_approve: true, ..Default::default() }).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        engine.run().await.unwrap();
        run_dir
    });
    let (events, _) = gepa_tui::engine::run::load_events(&run_dir, false).unwrap();
    let state = RunState::from_events(&events);
    let authors = gepa_tui::engine::blame::authors(&events);
    let child = state.candidates.iter().find(|c| c.origin == Origin::Mutation).expect("a mutation was accepted");
    let component = &child.changed[0];
    let lines = gepa_tui::engine::blame::blame(&state, child.id, component);
    // The lines the parent did not have are the child's.
    let parent_text = &state.candidates[child.parents[0]].texts[component];
    for l in &lines {
        let new = !parent_text.lines().any(|p| p == l.text);
        assert_eq!(l.by == child.id, new, "{l:?}");
    }
    // Its reflection read the minibatch of its round, and the feedback names the group's rule.
    let a = &authors[&child.id];
    let fed = &a.reflections[component];
    let planned = events
        .iter()
        .find_map(|e| match e {
            gepa_tui::engine::Event::RoundStarted { round, proposals, .. } if *round == child.round => {
                Some(proposals[0].minibatch.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(fed.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), planned);
    assert!(fed.iter().any(|(_, f)| f.contains("needs rule")), "{fed:?}");
}

/// The Candidate view's blame mode (`d` twice from the diff against the parent: another, blame) on the recorded
/// support-triage run, at 80×24 and 160×48: beside each line who wrote it, then who they are.
#[test]
fn the_candidate_views_blame_on_a_recorded_sample() {
    use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-projects/support-triage");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("support-triage");
    common::copy_tree(&sample, &dir, &["runs"]);
    let out =
        Command::cargo_bin("gepa-tui").unwrap().args(["run", "--headless", "--offline"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run_dir = std::fs::read_dir(dir.join(".gepa/runs")).unwrap().flatten().next().unwrap().path();
    let (events, _) = gepa_tui::engine::run::load_events(&run_dir, false).unwrap();
    let project = gepa_tui::project::Project::load(&dir).unwrap();
    let model = gepa_tui::tui::model::Model::from_events(&events).with_project(&project);
    let best = model.state.best().unwrap();
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut app = gepa_tui::tui::app::App::new(
            model.clone(),
            gepa_tui::tui::keymap::Keymap::default(),
            gepa_tui::tui::theme::Theme::default(),
        );
        app.select_candidate(best);
        for c in "4dd".chars() {
            app.on_key(KeyEvent {
                code: KeyCode::Char(c),
                modifiers: KeyModifiers::NONE,
                kind: KeyEventKind::Press,
                state: KeyEventState::NONE,
            });
        }
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        term.draw(|f| app.render(f)).unwrap();
        let buf = term.backend().buffer().clone();
        let mut screen = String::new();
        for y in 0..h {
            let line: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
            screen.push_str(line.trim_end());
            screen.push('\n');
        }
        // Run ids and folders differ between runs: the screen is the same otherwise.
        let screen = screen.replace(&run_dir.file_name().unwrap().to_string_lossy().to_string(), "RUN");
        assert!(screen.contains("blame: who wrote each line"), "{screen}");
        insta::assert_snapshot!(format!("blame_support_triage_{w}x{h}"), screen);
    }
}
