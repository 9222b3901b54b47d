//! Human in the loop, in the engine: approve, veto with a reason, edit, manual merge, and pausing.

mod common;

use gepa_tui::engine::event::{HumanAction, ReviewItem};
use gepa_tui::engine::run::load_events;
use gepa_tui::engine::{Engine, EngineHandle, EngineOptions, Event, Notice, Origin, RunResult, RunState};
use std::path::{Path, PathBuf};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

const OPT: &str = "max_metric_calls = 140\nminibatch_size = 3\nproposals_per_round = 1\nseed = 3\n\n[review]\nmutations = \"approve\"\nmax_pending = 1";

fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proj");
    common::write_project(&p, OPT);
    (dir, p)
}

/// Runs the engine, answering each review item with `decide`, and pausing for a moment around
/// events when `pause_every` is set. Returns the result and the run folder.
fn drive(
    dir: &Path,
    decide: impl Fn(&ReviewItem, &RunState) -> Vec<HumanAction> + Send + 'static,
    pause_every: Option<usize>,
) -> (RunResult, PathBuf) {
    let (project, task) = common::load(dir);
    let drive = async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) =
            Engine::create(project, task, EngineOptions { notices: Some(tx), ..Default::default() }).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        let jh = tokio::spawn(engine.run());
        let mut n = 0usize;
        let mut state = RunState::default();
        while let Some(notice) = rx.recv().await {
            let Notice::Event(ev) = notice else { continue };
            n += 1;
            state.apply(&ev);
            if let Event::ReviewQueued { item } = &*ev {
                for a in decide(item, &state) {
                    h.act(a);
                }
            }
            if pause_every.is_some_and(|k| n.is_multiple_of(k)) {
                pause_briefly(&h).await;
            }
        }
        (jh.await.unwrap().unwrap().result.unwrap(), run_dir)
    };
    // A run waiting on a decision that never comes would hang: fail instead.
    rt().block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(120), drive).await.expect("the run got stuck")
    })
}

async fn pause_briefly(h: &EngineHandle) {
    h.pause();
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    h.resume();
}

fn events(run_dir: &Path) -> Vec<Event> {
    load_events(run_dir, false).unwrap().0
}

#[test]
fn approved_children_join_the_pool_and_every_decision_is_recorded() {
    let (_t, dir) = project();
    let (r, run_dir) = drive(&dir, |item, _| vec![HumanAction::Approve { item: item.item }], None);
    let evs = common::committed(&events(&run_dir));
    let queued = evs.iter().filter(|e| matches!(e, Event::ReviewQueued { .. })).count();
    let approvals =
        evs.iter().filter(|e| matches!(e, Event::Human { action: HumanAction::Approve { .. }, .. })).count();
    assert!(queued > 0);
    assert_eq!(queued, approvals, "every queued item got its decision before the run finished");
    // Each approval became a candidate scored on val.
    let approved_added = evs
        .iter()
        .filter(|e| matches!(e, Event::CandidateAdded { note: Some(n), .. } if n.starts_with("approved")))
        .count();
    assert_eq!(approved_added, approvals);
    assert_eq!(r.candidates, 1 + approvals);
    assert!(r.best_val_score > r.seed_val_score);
    // Replaying the events rebuilds the same state.
    let s = RunState::from_events(&evs);
    assert_eq!(s.candidates.len(), r.candidates);
    assert!(s.review_queue.is_empty());
}

#[test]
fn a_veto_reason_reaches_the_next_reflection_on_that_component() {
    let (_t, dir) = project();
    const REASON: &str = "Do not list rules one by one; explain the grouping";
    let (_, run_dir) = drive(
        &dir,
        |item, _| {
            if item.item == 0 {
                vec![HumanAction::Veto { item: 0, reason: Some(REASON.into()) }]
            } else {
                vec![HumanAction::Approve { item: item.item }]
            }
        },
        None,
    );
    let evs = evs_after_veto(&run_dir);
    let (veto_round, vetoed_components) = evs.0;
    let later: Vec<&Event> = evs
        .1
        .iter()
        .filter(|e| matches!(e, Event::Reflection { round, component, .. } if *round >= veto_round && vetoed_components.contains(component)))
        .collect();
    assert!(!later.is_empty(), "a later reflection on the vetoed component happened");
    for e in later {
        let Event::Reflection { prompt, .. } = e else { unreachable!() };
        assert!(prompt.contains(REASON), "the reviewer's reason is in the reflection prompt");
    }
    // Reflections on it before the veto did not carry it.
    let Event::Reflection { prompt, .. } = evs.1.iter().find(|e| matches!(e, Event::Reflection { .. })).unwrap() else {
        unreachable!()
    };
    assert!(!prompt.contains(REASON));
}

fn evs_after_veto(run_dir: &Path) -> ((u64, Vec<String>), Vec<Event>) {
    let evs = common::committed(&events(run_dir));
    let item0 = evs
        .iter()
        .find_map(|e| match e {
            Event::ReviewQueued { item } if item.item == 0 => Some(item.clone()),
            _ => None,
        })
        .unwrap();
    let round = evs
        .iter()
        .find_map(|e| match e {
            Event::Human { round, action: HumanAction::Veto { item: 0, .. }, .. } => Some(*round),
            _ => None,
        })
        .unwrap();
    ((round, item0.changed), evs)
}

#[test]
fn an_edited_item_is_scored_with_the_person_s_texts() {
    let (_t, dir) = project();
    let (_, run_dir) = drive(
        &dir,
        |item, _| {
            if item.item == 0 {
                let mut texts = item.texts.clone();
                texts.insert("instruction".into(), "Answer the item. rule A rule B rule C rule D".into());
                vec![HumanAction::Edit { item: 0, texts }]
            } else {
                vec![HumanAction::Approve { item: item.item }]
            }
        },
        None,
    );
    let s = RunState::from_events(&events(&run_dir));
    let edited = s.candidates.iter().find(|c| c.origin == Origin::Human).expect("the edited candidate is in the pool");
    assert_eq!(edited.texts["instruction"], "Answer the item. rule A rule B rule C rule D");
    assert!(!edited.val_scores.is_empty(), "scored on val");
    // Rules A-D cover 8 of 16 val examples, whatever the format component says.
    assert!(edited.val_mean >= 0.5);
}

#[test]
fn a_manual_merge_and_a_hand_edit_become_candidates() {
    let (_t, dir) = project();
    let (_, run_dir) = drive(
        &dir,
        |item, state| {
            let mut acts = vec![HumanAction::Approve { item: item.item }];
            // With the second item, also hand-edit the seed.
            if item.item == 1 {
                let mut texts = state.candidates[0].texts.clone();
                texts.insert("format".into(), "Reply with the code only. rule H".into());
                acts.push(HumanAction::AddCandidate {
                    texts,
                    parents: vec![0],
                    origin: Origin::Human,
                    note: "hand edit".into(),
                });
            }
            acts
        },
        None,
    );
    let evs = events(&run_dir);
    let s = RunState::from_events(&evs);
    let h = s.candidates.iter().find(|c| c.origin == Origin::Human).expect("the hand edit was added");
    assert_eq!(h.parents, vec![0]);
    assert_eq!(h.changed, vec!["format".to_string()]);
    assert!(!h.val_scores.is_empty());
    // A manual merge of two candidates, taken per component.
    let (_t2, dir2) = project();
    let (project, task) = common::load(&dir2);
    let r = rt().block_on(async move {
        let (engine, h) =
            Engine::create(project, task, EngineOptions { auto_approve: true, ..Default::default() }).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        let mut texts = std::collections::BTreeMap::new();
        texts.insert("instruction".to_string(), "Answer the item. rule A rule C".to_string());
        texts.insert("format".to_string(), "Reply with the code only. rule E".to_string());
        h.act(HumanAction::AddCandidate {
            texts,
            parents: vec![0],
            origin: Origin::Merge,
            note: "manual merge".into(),
        });
        engine.run().await.unwrap();
        run_dir
    });
    let s = RunState::from_events(&events(&r));
    let m = s.candidates.iter().find(|c| c.origin == Origin::Merge).expect("the manual merge was added");
    assert_eq!(m.texts["format"], "Reply with the code only. rule E");
    assert!(!m.val_scores.is_empty());
}

/// Pausing and resuming at many moments changes nothing: same decisions => same result.
#[test]
fn a_paused_and_resumed_run_equals_an_unpaused_one() {
    let decide = |item: &ReviewItem, _: &RunState| {
        if item.item % 3 == 1 {
            vec![HumanAction::Veto { item: item.item, reason: Some("too long".into()) }]
        } else {
            vec![HumanAction::Approve { item: item.item }]
        }
    };
    let (_t, a_dir) = project();
    let (mut a, _) = drive(&a_dir, decide, None);
    let (_t2, b_dir) = project();
    let (mut b, _) = drive(&b_dir, decide, Some(3));
    for r in [&mut a, &mut b] {
        r.run_id.clear();
        r.wall_seconds = 0.0;
    }
    assert_eq!(a, b);
}

#[test]
fn invalid_actions_are_refused_with_a_warning_and_change_nothing() {
    let (_t, dir) = project();
    let (project, task) = common::load(&dir);
    let warnings = rt().block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) = Engine::create(
            project,
            task,
            EngineOptions { notices: Some(tx), auto_approve: true, ..Default::default() },
        )
        .unwrap();
        h.act(HumanAction::Approve { item: 99 });
        h.act(HumanAction::AddCandidate {
            texts: Default::default(),
            parents: vec![0],
            origin: Origin::Human,
            note: "missing components".into(),
        });
        let jh = tokio::spawn(engine.run());
        let mut w = Vec::new();
        while let Some(n) = rx.recv().await {
            if let Notice::Refused { why, .. } = n {
                w.push(why);
            }
        }
        jh.await.unwrap().unwrap();
        w
    });
    assert!(warnings.iter().any(|w| w.contains("no pending review item 99")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("components")), "{warnings:?}");
}

/// A decision taken in a round that never committed (the run was stopped mid-round) is not lost:
/// resuming applies it again, and nobody has to decide twice.
#[test]
fn a_decision_in_an_abandoned_round_survives_the_resume() {
    use std::sync::{Arc, OnceLock};
    let (_t, dir) = project();
    let handle: Arc<OnceLock<EngineHandle>> = Arc::new(OnceLock::new());
    let h2 = handle.clone();
    // Reflection 1 makes item 0; the person approves it; the round that applies the approval
    // stops at its reflection (number 2), before it commits.
    let hook: common::ReflectionHook = Arc::new(move |k| {
        if k == 2 {
            h2.get().unwrap().stop();
        }
    });
    let (proj, task) = common::load_with(&dir, Some(hook));
    let run_id = rt().block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) =
            Engine::create(proj, task, EngineOptions { notices: Some(tx), ..Default::default() }).unwrap();
        handle.set(h.clone()).ok().unwrap();
        let id = engine.run_id().to_string();
        let jh = tokio::spawn(engine.run());
        while let Some(n) = rx.recv().await {
            if let Notice::Event(ev) = n {
                if let Event::ReviewQueued { item } = &*ev {
                    h.act(HumanAction::Approve { item: item.item });
                }
            }
        }
        assert!(jh.await.unwrap().unwrap().result.is_none(), "stopped mid-round");
        id
    });
    let run_dir = dir.join(".gepa/runs").join(&run_id);
    let evs = events(&run_dir);
    assert!(evs.iter().any(|e| matches!(e, Event::Human { action: HumanAction::Approve { item: 0 }, .. })));
    assert!(RunState::from_events(&evs).review_item(0).is_some(), "the approval's round was not committed");

    // Resume, approving only items queued from now on: item 0 must not need a second decision.
    let (proj, task) = common::load(&dir);
    let r = rt().block_on(async {
        let run = async {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let (engine, h) =
                Engine::resume(proj, task, &run_id, EngineOptions { notices: Some(tx), ..Default::default() }).unwrap();
            let jh = tokio::spawn(engine.run());
            while let Some(n) = rx.recv().await {
                if let Notice::Event(ev) = n {
                    if let Event::ReviewQueued { item } = &*ev {
                        h.act(HumanAction::Approve { item: item.item });
                    }
                }
            }
            jh.await.unwrap().unwrap()
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), run).await.expect("the run waited for item 0 again")
    });
    assert!(r.result.is_some());
    let s = RunState::from_events(&events(&run_dir));
    assert!(s.candidates.iter().any(|c| c.note.as_deref().is_some_and(|n| n.contains("review item 0"))));
}

/// Identical children are one review item (a small model often proposes the same text twice): the
/// second is recorded as "same as review item N", not queued again. (`max_pending` is not reached
/// here: one item waits.)
#[test]
fn identical_children_are_one_review_item() {
    use gepa_tui::llm::scripted::ScriptedBackend;
    use gepa_tui::llm::{AttemptError, ChatBackend, ChatRequest};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proj");
    common::write_project(
        &p,
        "max_metric_calls = 60\nseed = 3\ncomponent_selection = \"all\"\n\n[review]\nmutations = \"approve\"\nmax_pending = 3",
    );
    let project = Arc::new(gepa_tui::project::Project::load(&p).unwrap());
    let task: Arc<dyn ChatBackend> =
        Arc::new(ScriptedBackend::new(|req: &ChatRequest| Ok::<_, AttemptError>(common::task_reply(req))));
    // Whatever it reads, the reflection model proposes the same instruction.
    let refl: Arc<dyn ChatBackend> = Arc::new(ScriptedBackend::new(|_: &ChatRequest| {
        Ok::<_, AttemptError>("```\nAnswer the item. rule A rule B rule C rule D rule E rule F\n```".to_string())
    }));
    let models = common::models_from(&project, task, refl);
    let task = Arc::new(gepa_tui::eval::Task::new(project.clone(), Arc::new(models)).unwrap());
    let run_dir = rt().block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, h) =
            Engine::create(project, task, EngineOptions { notices: Some(tx), ..Default::default() }).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        let jh = tokio::spawn(engine.run());
        let mut approved = false;
        while let Some(n) = rx.recv().await {
            // Once the budget is used, the person approves what waits.
            if let Notice::Status(s) = n {
                if !approved && s.activity.contains("wait for review before the run finishes") {
                    h.approve_all();
                    approved = true;
                }
            }
        }
        jh.await.unwrap().unwrap();
        run_dir
    });
    let mut commits = gepa_tui::engine::state::CommitBuffer::default();
    let evs: Vec<Event> = events(&run_dir).iter().flat_map(|e| commits.feed(e, e.clone())).collect();
    let queued = evs.iter().filter(|e| matches!(e, Event::ReviewQueued { .. })).count();
    let same = evs
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ProposalFinished {
                    outcome: gepa_tui::engine::ProposalOutcome::SameAsPending { item: 0, .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(queued, 1, "one item for one text");
    assert!(same >= 1, "the other passing children joined item 0");
}
