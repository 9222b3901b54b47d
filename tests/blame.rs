//! Blame: each line of a candidate's text is attributed to the candidate that first wrote it, and
//! a person's hand edit to that person's decision (with its note), as `gepa-tui export --blame`
//! prints it.

mod common;

use assert_cmd::Command;
use gepa_tui::engine::event::HumanAction;
use gepa_tui::engine::{Engine, EngineOptions, Origin, RunState};

/// `gepa-tui export --blame` of candidate `id` of the run in `run_dir`: what it printed.
fn export_blame(dir: &std::path::Path, run_dir: &std::path::Path, id: usize) -> String {
    let run = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::cargo_bin("gepa-tui")
        .unwrap()
        .args(["export", "--blame", "--run", &run, "--candidate", &id.to_string()])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

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
    let authors = gepa_tui::engine::blame::authors(&events);

    let lines = gepa_tui::engine::blame::blame(&state, &authors, human, "instruction");
    let got: Vec<(&str, usize, bool)> = lines.iter().map(|l| (l.text.as_str(), l.by, l.by_hand)).collect();
    let seed_line = seed["instruction"].as_str();
    assert_eq!(
        got,
        [
            (seed_line, 0, false),
            ("Never guess: say \"not sure\".", human, true),
            ("Name the group's rule.", human, true)
        ],
        "the seed's line stays the seed's; the two lines the person wrote are theirs"
    );
    // An untouched component is the seed's throughout.
    assert!(gepa_tui::engine::blame::blame(&state, &authors, human, "format").iter().all(|l| l.by == 0));

    // The same as plain text, with who wrote what.
    let text = export_blame(&dir, &run_dir, human);
    let round = state.candidates[human].round;
    assert!(text.contains(&format!("#{human:<3} r{round:<3}✎│ Never guess: say \"not sure\".")), "{text}");
    assert!(text.contains(&format!("#0   r0   │ {seed_line}")), "{text}");
    assert!(
        text.contains(&format!("#{human} r{round} ✎: written by a person in round {round} (no guessing)")),
        "{text}"
    );
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
    let lines = gepa_tui::engine::blame::blame(&state, &authors, child.id, component);
    // The lines the parent did not have are the child's.
    let parent_text = &state.candidates[child.parents[0]].texts[component];
    for l in &lines {
        let new = !parent_text.lines().any(|p| p == l.text);
        assert_eq!(l.by == child.id, new, "{l:?}");
        assert!(!l.by_hand, "a reflection's line is no person's: {l:?}");
    }
    // Its reflection read the minibatch of its round, and the feedback names the group's rule.
    let a = &authors[&child.id];
    let reflected = a.reflection.as_ref().expect("the reflection that wrote it");
    assert_eq!((reflected.round, reflected.parent), (child.round, child.parents[0]));
    let fed = &reflected.read[component];
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
/// support-triage run, at 80×24 and 160×48: beside each line who wrote it, a line cursor that `j` moves (drawn
/// in the selection colour), and on enter the writer of the line under it: the reflection and the feedback
/// its minibatch gave.
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
    let run = run_dir.file_name().unwrap().to_string_lossy().to_string();
    let (events, _) = gepa_tui::engine::run::load_events(&run_dir, false).unwrap();
    let project = gepa_tui::project::Project::load(&dir).unwrap();
    let model = gepa_tui::tui::model::Model::from_events(&events).with_project(&project);
    let best = model.state.best().unwrap();
    let theme = gepa_tui::tui::theme::Theme::default();
    let selection = theme.selection.bg.expect("the dark theme's selection has a background");
    let key = |code: KeyCode| KeyEvent {
        code,
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    };
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut app =
            gepa_tui::tui::app::App::new(model.clone(), gepa_tui::tui::keymap::Keymap::default(), theme.clone());
        app.select_candidate(best);
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        // The screen as text (run ids differ between runs), and the rows drawn in the selection colour.
        let mut draw = |app: &mut gepa_tui::tui::app::App| {
            term.draw(|f| app.render(f)).unwrap();
            let buf = term.backend().buffer().clone();
            let (mut screen, mut selected) = (String::new(), Vec::new());
            for y in 0..h {
                let line: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
                // (Row 0 is the tabs: the active tab is drawn selected.)
                if y > 0 && (0..w).any(|x| buf[(x, y)].bg == selection) {
                    selected.push(line.trim_end().to_string());
                }
                screen.push_str(line.trim_end());
                screen.push('\n');
            }
            (screen.replace(&run, "RUN"), selected)
        };
        for c in "4dd".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        let (screen, selected) = draw(&mut app);
        assert!(screen.contains("blame · enter: who wrote the line"), "{screen}");
        assert_eq!(selected.len(), 1, "the cursor is on the first line, one row: {selected:?}");
        assert!(selected[0].contains("#0   r0   │ Route the customer message"), "{selected:?}");
        insta::assert_snapshot!(format!("blame_support_triage_{w}x{h}"), screen);

        // Six lines down: the first rule the reflection of round 1 wrote (wrapped over rows, all highlighted).
        for _ in 0..6 {
            app.on_key(key(KeyCode::Char('j')));
        }
        let (_, selected) = draw(&mut app);
        assert!(selected[0].contains("#1   r1   │ - **Rule 1**: House rule 6"), "{selected:?}");
        assert!(selected.iter().all(|r| r.contains("│ ")) && selected.len() >= 2, "{selected:?}");
        app.on_key(key(KeyCode::Enter));
        let (screen, _) = draw(&mut app);
        assert!(screen.contains("Line 7 of instruction"), "{screen}");
        assert!(screen.contains("#1 r1: a reflection in round 1 on #0"), "{screen}");
        assert!(
            screen.contains("It read the minibatch of round 1 (tr-18, tr-19, tr-20), for instruction:"),
            "{screen}"
        );
        insta::assert_snapshot!(format!("blame_line_support_triage_{w}x{h}"), screen);

        // esc closes the writer; the cursor stays.
        app.on_key(key(KeyCode::Esc));
        let (screen, selected) = draw(&mut app);
        assert!(!screen.contains("Line 7 of instruction"), "{screen}");
        assert!(selected[0].contains("- **Rule 1**"), "{selected:?}");
    }
}

/// A review item a person edits before approving it: the lines the reflection wrote stay the
/// reflection's (with the feedback it read), the lines the person wrote are the person's decision.
#[test]
fn a_review_item_edited_before_approval_splits_its_lines_between_reflection_and_person() {
    use gepa_tui::engine::{Event, Notice};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    common::write_project(
        &dir,
        "max_metric_calls = 120\nminibatch_size = 3\nproposals_per_round = 1\nseed = 3\n\n[review]\nmutations = \"approve\"\nmax_pending = 1",
    );
    // A seed of two lines: the scripted reflection adds rules to the last one.
    std::fs::write(dir.join("prompts/instruction.md"), "Route each item.\nAnswer the item. rule A").unwrap();
    let (project, task) = common::load(&dir);
    const MINE: &str = "Never guess: say \"not sure\".";
    let run_dir = common::rt().block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) =
            Engine::create(project, task, EngineOptions { notices: Some(tx), ..Default::default() }).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        let jh = tokio::spawn(engine.run());
        while let Some(n) = rx.recv().await {
            let Notice::Event(ev) = n else { continue };
            if let Event::ReviewQueued { item } = &*ev {
                let action = if item.item == 0 {
                    let mut texts = item.texts.clone();
                    let t = texts.get_mut("instruction").unwrap();
                    *t = format!("{}\n{MINE}", t.trim_end());
                    HumanAction::Edit { item: 0, texts }
                } else {
                    HumanAction::Approve { item: item.item }
                };
                h.act(action);
            }
        }
        jh.await.unwrap().unwrap();
        run_dir
    });
    let (events, _) = gepa_tui::engine::run::load_events(&run_dir, false).unwrap();
    let state = RunState::from_events(&events);
    let authors = gepa_tui::engine::blame::authors(&events);
    let item0 = events
        .iter()
        .find_map(|e| match e {
            Event::ReviewQueued { item } if item.item == 0 => Some(item.clone()),
            _ => None,
        })
        .expect("item 0 was queued");
    let proposed = item0.texts["instruction"].lines().nth(1).unwrap().to_string();
    assert!(proposed.starts_with("Answer the item. rule A rule "), "the reflection added a rule: {proposed}");
    let edited = state.candidates.iter().find(|c| c.origin == Origin::Human).expect("the edited item joined").id;

    let lines = gepa_tui::engine::blame::blame(&state, &authors, edited, "instruction");
    let got: Vec<(&str, usize, bool)> = lines.iter().map(|l| (l.text.as_str(), l.by, l.by_hand)).collect();
    assert_eq!(
        got,
        [("Route each item.", 0, false), (proposed.as_str(), edited, false), (MINE, edited, true)],
        "the seed's line, the reflection's line, the person's line"
    );
    // Who they are: the reflection of item 0's round with the feedback it read, and the person's edit.
    let a = &authors[&edited];
    let reflection = a.reflection.as_ref().expect("the reflection that wrote the item");
    assert_eq!(reflection.round, item0.round);
    assert_eq!(reflection.read["instruction"].iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), item0.examples);
    assert!(reflection.read["instruction"].iter().any(|(_, f)| f.contains("needs rule")));
    let edit = events
        .iter()
        .find_map(|e| match e {
            Event::Human { round, action: HumanAction::Edit { item: 0, .. }, .. } => Some(*round),
            _ => None,
        })
        .unwrap();
    assert_eq!(a.review, Some(gepa_tui::engine::blame::Reviewed { item: 0, edited: true }));
    assert_eq!(a.round, edit);
    // An item approved as it was is its reflection's, with the round it was queued in (not the approval's).
    let (approved, by) =
        authors.iter().find(|(_, a)| a.review.is_some_and(|r| !r.edited)).expect("a later item was approved as it was");
    let queued = events
        .iter()
        .find_map(|e| match e {
            Event::ReviewQueued { item } if Some(item.item) == by.review.map(|r| r.item) => Some(item.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(by.reflection.as_ref().map(|r| (r.round, r.parent)), Some((queued.round, queued.parents[0])));
    assert!(by.round > queued.round, "approved in a later round than it was proposed in");
    assert!(gepa_tui::engine::blame::blame(&state, &authors, *approved, "instruction")
        .iter()
        .all(|l| !l.by_hand && (l.by != *approved || l.round == queued.round)));
    // The workbench folds the same authors as its rounds commit.
    let model = gepa_tui::tui::model::Model::from_events(&events);
    assert_eq!(model.authorship.authors, authors);

    // `export --blame` says the same.
    let text = export_blame(&dir, &run_dir, edited);
    let r = item0.round;
    assert!(text.contains(&format!("#{edited:<3} r{r:<3} │ {proposed}")), "{text}");
    assert!(text.contains(&format!("#{edited:<3} r{edit:<3}✎│ {MINE}")), "{text}");
    assert!(text.contains(&format!("#{edited} r{r}: a reflection in round {r} on #0 (review item 0)")), "{text}");
    assert!(
        text.contains(&format!(
            "#{edited} r{edit} ✎: a person's edit in round {edit} of review item 0, before approving it"
        )),
        "{text}"
    );
}
