//! Steering beyond approve and veto (issue 17), in the engine: a reflection guided by a person's
//! note, text protected from mutation (decisions and `<<keep>>` markers), `max_growth`, and the
//! run folder's steering inbox, against the scripted problem of `tests/common`.

mod common;

use gepa_tui::engine::event::{Guidance, GuideExample, HumanAction, MinibatchRole};
use gepa_tui::engine::run::load_events;
use gepa_tui::engine::steer::{self, SteerAnswer};
use gepa_tui::engine::{Engine, EngineOptions, Event, ProposalOutcome, RunResult, RunState};
use gepa_tui::llm::{AttemptError, ChatBackend, ChatRequest, ScriptedBackend};
use gepa_tui::project::{Project, Split};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One proposal a round (gepa's loop), a small budget.
const OPT: &str = "max_metric_calls = 120\nminibatch_size = 3\nproposals_per_round = 1\nseed = 3";

fn project(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proj");
    common::write_project(&p, extra);
    (dir, p)
}

/// What the models were sent: every task request's messages and every reflection prompt.
#[derive(Default)]
struct Sent {
    task: Mutex<Vec<String>>,
    reflection: Mutex<Vec<String>>,
}

/// The scripted models, recording what they are sent; `rewrite` changes each reflection answer.
fn recording_task(
    project: &Arc<Project>,
    sent: &Arc<Sent>,
    rewrite: fn(String) -> String,
) -> Arc<gepa_tui::eval::Task> {
    let s = sent.clone();
    let task: Arc<dyn ChatBackend> = Arc::new(ScriptedBackend::new(move |req: &ChatRequest| {
        let all: Vec<&str> = req.messages.iter().map(|m| m.content.as_str()).collect();
        s.task.lock().unwrap().push(all.join("\n"));
        Ok::<_, AttemptError>(common::task_reply(req))
    }));
    let s = sent.clone();
    let refl: Arc<dyn ChatBackend> = Arc::new(ScriptedBackend::new(move |req: &ChatRequest| {
        s.reflection.lock().unwrap().push(req.messages.last().unwrap().content.clone());
        Ok::<_, AttemptError>(rewrite(common::reflection_reply(req)))
    }));
    let models = common::models_from(project, task, refl);
    Arc::new(gepa_tui::eval::Task::new(project.clone(), Arc::new(models)).unwrap())
}

/// Runs a new engine on `dir` with `actions` waiting in its steering inbox when it starts (as
/// `gepa-tui steer` leaves them), to the end; returns the result, the run folder and the events.
fn run_steered(
    dir: &Path,
    actions: Vec<HumanAction>,
    sent: &Arc<Sent>,
    rewrite: fn(String) -> String,
) -> (RunResult, PathBuf, Vec<Event>) {
    let project = Arc::new(Project::load(dir).unwrap());
    let task = recording_task(&project, sent, rewrite);
    let (result, run_dir) = rt().block_on(async {
        let (engine, _h) = Engine::create(project, task, EngineOptions::default()).unwrap();
        let run_dir = engine.run_dir().to_path_buf();
        for a in actions {
            steer::send(&run_dir, a).unwrap();
        }
        let out = engine.run().await.unwrap();
        (out.result.unwrap(), run_dir)
    });
    let events = load_events(&run_dir, false).unwrap().0;
    (result, run_dir, events)
}

fn same(s: String) -> String {
    s
}

fn guide(candidate: usize, note: &str, example: Option<(Split, &str)>) -> HumanAction {
    HumanAction::Guide {
        candidate,
        note: note.into(),
        example: example.map(|(split, id)| GuideExample { split, id: id.into() }),
        component: Some("instruction".into()),
    }
}

/// The metric calls each committed round spent (its `round_finished` minus the one before).
fn calls_by_round(events: &[Event]) -> std::collections::BTreeMap<u64, u64> {
    let mut out = std::collections::BTreeMap::new();
    let mut before = 0;
    for e in common::committed(events) {
        if let Event::RoundFinished { round, metric_calls, .. } = e {
            out.insert(round, metric_calls - before);
            before = metric_calls;
        }
    }
    out
}

/// Metric calls the events of a committed round account for: its evaluations not served from
/// the evaluation cache.
fn evaluations_run(events: &[Event], round: u64) -> u64 {
    let mut n = 0;
    let mut of_round = None;
    for e in common::committed(events) {
        match &e {
            Event::RoundStarted { round: r, .. } => of_round = Some(*r),
            Event::MinibatchEvaluated { evals, .. } | Event::ValEvaluated { evals, .. } if of_round == Some(round) => {
                n += evals.iter().filter(|e| !e.cached).count() as u64;
            }
            _ => {}
        }
    }
    n
}

/// The note and the example a person pointed at reach the reflection: in the prompt the
/// reflection model was sent, and in the reflective dataset recorded with it. The guided
/// proposal is the round's one proposal, counted in the budget like any other.
#[test]
fn a_guided_reflection_gets_the_note_and_the_example_and_counts_its_metric_calls() {
    let (_t, dir) = project(OPT);
    const NOTE: &str = "the code is the group letter, then -ok; group B needs rule B";
    let sent = Arc::new(Sent::default());
    // ex105 is group B: the seed (rule A only) fails it.
    let (r, _run_dir, events) = run_steered(&dir, vec![guide(0, NOTE, Some((Split::Val, "ex105")))], &sent, same);
    let events = common::committed(&events);
    assert_eq!(r.guided_proposals, 1);

    // Round 1, the first after the seed, is the guided proposal on the seed.
    let plan = events.iter().find_map(|e| match e {
        Event::RoundStarted { round: 1, proposals, .. } => Some(proposals.clone()),
        _ => None,
    });
    let plan = plan.expect("round 1 was planned");
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].parent, 0);
    assert_eq!(
        plan[0].guide,
        Some(Guidance { note: NOTE.into(), example: Some(GuideExample { split: Split::Val, id: "ex105".into() }) })
    );
    let guided: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Reflection { round: 1, prompt, dataset, .. } => Some((prompt.clone(), dataset.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(guided.len(), 1, "one reflection in the guided round");
    let (prompt, dataset) = &guided[0];
    assert!(prompt.contains(NOTE), "the note is in the prompt:\n{prompt}");
    assert!(prompt.contains("example `ex105`"), "{prompt}");
    // The pointed example, with what the parent answered and the evaluator's feedback, is the
    // last record of the dataset (after the minibatch's three).
    assert_eq!(dataset.len(), 4);
    let last = dataset.last().unwrap();
    assert_eq!(last.inputs["input"], "item 105 of group B");
    assert_eq!(last.generated_outputs, "not sure");
    assert!(last.feedback.contains("group B needs rule B"), "{}", last.feedback);
    assert!(prompt.contains("item 105 of group B"), "{prompt}");
    // What the reflection model was really sent.
    let asked = sent.reflection.lock().unwrap();
    assert!(asked.iter().any(|p| p == prompt), "the recorded prompt is the one the model got");
    assert_eq!(asked.iter().filter(|p| p.contains(NOTE)).count(), 1, "the note goes to that reflection only");

    // The parent's val evaluation of ex105 is served from the evaluation cache (scored with the
    // seed); everything else it ran is counted, as for any proposal.
    let pointed = events.iter().find_map(|e| match e {
        Event::MinibatchEvaluated { round: 1, candidate_role, evals, .. }
            if *candidate_role == MinibatchRole::GuidedExample =>
        {
            Some(evals.clone())
        }
        _ => None,
    });
    let pointed = pointed.expect("the pointed example was evaluated for the dataset");
    assert!(pointed[0].cached && pointed[0].example_id == "ex105");
    let calls = calls_by_round(&events);
    assert!(calls[&1] >= 3, "the guided round ran at least the parent's minibatch: {calls:?}");
    assert_eq!(calls[&1], evaluations_run(&events, 1));
    let s = RunState::from_events(&events);
    assert_eq!(s.guided_proposals, 1);
    assert_eq!(s.metric_calls, r.metric_calls);
}

/// Text between keep markers in a prompt file is protected and the markers never reach the task
/// model; a reflection that keeps the text (the scripted one appends rules) makes children that
/// all have it, and every reflection on the component is told to keep it.
#[test]
fn marked_text_is_protected_the_model_sees_it_plain_and_children_keep_it() {
    let (_t, dir) = project(OPT);
    std::fs::write(dir.join("prompts/instruction.md"), "<<keep>>Answer the item.<</keep>> rule A").unwrap();
    let sent = Arc::new(Sent::default());
    let (r, _, events) = run_steered(&dir, vec![], &sent, same);
    let Some(Event::RunStarted { protected, .. }) = events.first() else { panic!("no run_started") };
    assert_eq!(protected["instruction"], vec!["Answer the item.".to_string()]);
    let task = sent.task.lock().unwrap();
    assert!(!task.is_empty());
    assert!(task.iter().all(|m| !m.contains("<<keep>>") && !m.contains("<</keep>>")), "markers reached the model");
    assert!(task.iter().any(|m| m.contains("Answer the item. rule A")), "the plain text did");
    let events = common::committed(&events);
    let prompts: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Reflection { component, prompt, .. } if component == "instruction" => Some(prompt),
            _ => None,
        })
        .collect();
    assert!(!prompts.is_empty());
    for p in prompts {
        assert!(p.contains("<protected>\nAnswer the item.\n</protected>"), "{p}");
    }
    let s = RunState::from_events(&events);
    assert!(s.candidates.len() > 1, "the run found children");
    assert!(s.candidates.iter().all(|c| c.texts["instruction"].contains("Answer the item.")));
    assert_eq!(r.children_refused, 0);
}

/// A reflection that rewords protected text: the child is refused before it is evaluated (no
/// child minibatch, no metric call), with the reason recorded.
#[test]
fn a_child_that_drops_protected_text_is_refused_unevaluated() {
    let (_t, dir) = project(OPT);
    let sent = Arc::new(Sent::default());
    let protect = HumanAction::Protect { component: "instruction".into(), text: "Answer the item.".into() };
    let (r, _, events) =
        run_steered(&dir, vec![protect], &sent, |answer| answer.replace("Answer the item.", "Answer."));
    let events = common::committed(&events);
    let refused: Vec<(u64, usize)> = events
        .iter()
        .filter_map(|e| match e {
            Event::ProposalFinished {
                round,
                slot,
                outcome: ProposalOutcome::ProtectedTextChanged { component, missing },
                ..
            } => {
                assert_eq!(component, "instruction");
                assert_eq!(missing, &vec!["Answer the item.".to_string()]);
                Some((*round, *slot))
            }
            _ => None,
        })
        .collect();
    assert!(!refused.is_empty(), "some child dropped the protected sentence");
    assert_eq!(r.children_refused, refused.len() as u64);
    let calls = calls_by_round(&events);
    for (round, slot) in &refused {
        let child_runs = events.iter().any(|e| {
            matches!(e, Event::MinibatchEvaluated { round: r, slot: s, candidate_role, .. } if r == round && s == slot && *candidate_role == MinibatchRole::Child)
        });
        assert!(!child_runs, "round {round}: the refused child was evaluated");
        // Only the parent's minibatch was paid for (when it was not already in the cache).
        assert!(calls[round] <= 3, "round {round} spent {}", calls[round]);
        assert_eq!(calls[round], evaluations_run(&events, *round));
    }
    // No candidate lost the sentence.
    let s = RunState::from_events(&events);
    assert!(s.candidates.iter().all(|c| c.texts["instruction"].contains("Answer the item.")));
    // The reflections were told.
    assert!(sent.reflection.lock().unwrap().iter().any(|p| p.contains("<protected>\nAnswer the item.\n</protected>")));
}

/// `max_growth` on a component: a child whose text grows more than that over its parent's is
/// refused before it is evaluated; the other component still learns.
#[test]
fn a_child_that_grows_past_max_growth_is_refused_unevaluated() {
    let (_t, dir) = project(OPT);
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    let toml = toml.replace("file = \"prompts/instruction.md\"", "file = \"prompts/instruction.md\"\nmax_growth = 5");
    std::fs::write(dir.join("gepa.toml"), toml).unwrap();
    let sent = Arc::new(Sent::default());
    let (r, _, events) = run_steered(&dir, vec![], &sent, same);
    let events = common::committed(&events);
    let calls = calls_by_round(&events);
    let mut refused = 0;
    for e in &events {
        if let Event::ProposalFinished {
            round,
            outcome: ProposalOutcome::GrewTooMuch { component, parent_chars, child_chars, max_growth },
            child,
            ..
        } = e
        {
            refused += 1;
            assert_eq!(component, "instruction");
            assert_eq!(*max_growth, 5);
            // Each rule the scripted reflection adds is 7 characters (" rule B").
            assert!(child_chars - parent_chars >= 7, "{parent_chars} -> {child_chars}");
            assert_eq!(child.as_ref().unwrap()["instruction"].chars().count(), *child_chars);
            assert!(calls[round] <= 3, "round {round} spent {}", calls[round]);
        }
    }
    assert!(refused > 0);
    assert_eq!(r.children_refused, refused);
    let s = RunState::from_events(&events);
    let seed_len = s.candidates[0].texts["instruction"].chars().count();
    assert!(s.candidates.iter().all(|c| c.texts["instruction"].chars().count() <= seed_len + 5));
    assert!(s.candidates.len() > 1, "children that changed `format` still joined");
}

/// Requests in the inbox are answered: taken ones with their round, refused ones with why, and
/// nothing refused is recorded.
#[test]
fn the_inbox_answers_every_request_and_records_only_what_it_takes() {
    let (_t, dir) = project(OPT);
    let sent = Arc::new(Sent::default());
    let actions = vec![
        guide(99, "no such candidate", None),
        HumanAction::Protect { component: "instruction".into(), text: "not in any prompt".into() },
        HumanAction::Protect { component: "nope".into(), text: "rule A".into() },
        guide(0, "   ", None),
        guide(0, "look at the test set", Some((Split::Test, "ex200"))),
        HumanAction::Protect { component: "instruction".into(), text: "rule A".into() },
        guide(0, "first guide", None),
        guide(0, "second guide", None),
    ];
    let (r, run_dir, events) = run_steered(&dir, actions.clone(), &sent, same);
    let answers = steer::answers(&run_dir);
    let inbox = std::fs::read_to_string(run_dir.join(steer::INBOX)).unwrap();
    let ids: Vec<String> = inbox.lines().map(|l| serde_json::from_str::<steer::SteerRequest>(l).unwrap().id).collect();
    assert_eq!(ids.len(), actions.len());
    let answer = |i: usize| answers.get(&ids[i]).unwrap_or_else(|| panic!("request {i} unanswered"));
    let why = |i: usize| answer(i).why.clone().unwrap_or_default();
    assert!(!answer(0).accepted && why(0).contains("no candidate 99"), "{:?}", answer(0));
    assert!(!answer(1).accepted && why(1).contains("is not in component `instruction`"), "{:?}", answer(1));
    assert!(!answer(2).accepted && why(2).contains("no component `nope`"), "{:?}", answer(2));
    assert!(!answer(3).accepted && why(3).contains("needs a note"), "{:?}", answer(3));
    assert!(!answer(4).accepted && why(4).contains("test examples"), "{:?}", answer(4));
    // Taken: the protect and the first guide in round 1, the second guide in the next round.
    assert_eq!(answer(5), &SteerAnswer::taken(&ids[5], 1));
    assert_eq!(answer(6), &SteerAnswer::taken(&ids[6], 1));
    assert_eq!(answer(7), &SteerAnswer::taken(&ids[7], 2));
    assert_eq!(r.guided_proposals, 2);
    let humans: Vec<(u64, HumanAction, Option<String>)> = common::committed(&events)
        .into_iter()
        .filter_map(|e| match e {
            Event::Human { round, action, request } => Some((round, action, request)),
            _ => None,
        })
        .collect();
    assert_eq!(
        humans,
        vec![
            (1, actions[5].clone(), Some(ids[5].clone())),
            (1, actions[6].clone(), Some(ids[6].clone())),
            (2, actions[7].clone(), Some(ids[7].clone())),
        ]
    );
}

/// result.json without what legitimately differs between two runs (timing, the run's id).
fn comparable(mut r: RunResult) -> RunResult {
    r.wall_seconds = 0.0;
    r.evaluations_dropped = 0;
    r.run_id.clear();
    // Work planned ahead and dropped is paid, and how much of it there was is timing too.
    r.cost_usd = ((r.cost_usd - r.cost_usd_dropped + r.cost_usd_replayed) * 1e9).round() / 1e9;
    r.cost_usd_replayed = 0.0;
    r.cost_usd_dropped = 0.0;
    r
}

/// A guided, protected, pipelined run (merges on) cut at any byte of its log, as a crash leaves
/// it, and resumed with its inbox as it was: the result is the uninterrupted run's.
#[test]
fn a_steered_run_killed_at_any_point_resumes_to_the_same_result() {
    const PIPELINED: &str =
        "max_metric_calls = 160\nminibatch_size = 3\nproposals_per_round = 1\nseed = 7\nmerge = true\nmax_merges = 2\npipeline_lag = 3";
    let (_t, dir) = project(PIPELINED);
    let sent = Arc::new(Sent::default());
    let actions = vec![
        HumanAction::Protect { component: "instruction".into(), text: "Answer the item.".into() },
        guide(0, "every group has its own rule", Some((Split::Val, "ex106"))),
        guide(0, "and a train example", Some((Split::Train, "ex5"))),
    ];
    let (full, run_dir, _) = run_steered(&dir, actions, &sent, |a| a.replace("Answer the item.", "Answer it."));
    assert_eq!(full.guided_proposals, 2);
    assert!(full.children_refused > 0, "the protection refused children: {full:?}");
    let events = std::fs::read(run_dir.join("events.jsonl")).unwrap();
    let len = events.len();
    let cuts = [len / 40, len / 9 + 5, len / 4 + 3, len / 2 + 11, (len * 5) / 6 + 1, len - 3];
    for (k, cut) in cuts.into_iter().enumerate() {
        let id = format!("cut-{k}");
        let copy = dir.join(".gepa/runs").join(&id);
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(run_dir.join("gepa.toml"), copy.join("gepa.toml")).unwrap();
        std::fs::copy(run_dir.join(steer::INBOX), copy.join(steer::INBOX)).unwrap();
        std::fs::write(copy.join("events.jsonl"), &events[..cut]).unwrap();
        let project = Arc::new(Project::load(&dir).unwrap());
        let task = recording_task(&project, &sent, |a| a.replace("Answer the item.", "Answer it."));
        let resumed = rt().block_on(async {
            let (engine, _h) = Engine::resume(project, task, &id, EngineOptions::default()).unwrap();
            engine.run().await.unwrap().result.unwrap()
        });
        assert_eq!(comparable(resumed), comparable(full.clone()), "cut at byte {cut} of {len}");
        // Every request is answered once it is recorded, and none was taken twice.
        let log = load_events(&copy, false).unwrap().0;
        let recorded = steer::recorded_requests(&common::committed(&log));
        assert_eq!(recorded.len(), 3, "cut at {cut}: {recorded:?}");
    }
}

/// The guided, protected, pipelined run of `a_steered_run_killed_at_any_point_resumes_...`, to
/// the end: its result, its run folder, and its log's lines.
fn a_full_steered_run(dir: &Path, sent: &Arc<Sent>) -> (RunResult, PathBuf, Vec<String>) {
    let actions = vec![
        HumanAction::Protect { component: "instruction".into(), text: "Answer the item.".into() },
        guide(0, "every group has its own rule", Some((Split::Val, "ex106"))),
        guide(0, "and a train example", Some((Split::Train, "ex5"))),
    ];
    let (full, run_dir, _) = run_steered(dir, actions, sent, answer_it);
    assert_eq!(full.guided_proposals, 2);
    let log = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    (full, run_dir, log.lines().map(String::from).collect())
}

const PIPELINED: &str =
    "max_metric_calls = 160\nminibatch_size = 3\nproposals_per_round = 1\nseed = 7\nmerge = true\nmax_merges = 2\npipeline_lag = 3";

fn answer_it(a: String) -> String {
    a.replace("Answer the item.", "Answer it.")
}

/// The index of the first line of `lines` that `f` matches (parsed).
fn line_where(lines: &[String], f: impl Fn(&serde_json::Value) -> bool) -> usize {
    lines.iter().position(|l| f(&serde_json::from_str(l).unwrap())).expect("a line that matches")
}

/// `event` as the next line after `lines` (seq one more than the last's).
fn next_line(lines: &[String], mut event: serde_json::Value) -> String {
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    event["seq"] = (last["seq"].as_u64().unwrap() + 1).into();
    event["t"] = last["t"].clone();
    event.to_string()
}

/// Resumes a copy of `run_dir` (its settings and inbox) whose log is `lines`, with the answers
/// that log had written, as a crash left it, to the end; returns the result and the copy's folder.
fn resume_copy(dir: &Path, run_dir: &Path, id: &str, lines: &[String], sent: &Arc<Sent>) -> (RunResult, PathBuf) {
    let copy = dir.join(".gepa/runs").join(id);
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["gepa.toml", steer::INBOX] {
        std::fs::copy(run_dir.join(f), copy.join(f)).unwrap();
    }
    // The answers the killed run wrote: each request recorded in `lines` taken by its round.
    let answered: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "human" && v["request"].is_string())
        .map(|v| {
            serde_json::to_string(&SteerAnswer::taken(v["request"].as_str().unwrap(), v["round"].as_u64().unwrap()))
        })
        .map(Result::unwrap)
        .collect();
    std::fs::write(copy.join(steer::ANSWERS), answered.iter().map(|a| format!("{a}\n")).collect::<String>()).unwrap();
    std::fs::write(copy.join("events.jsonl"), format!("{}\n", lines.join("\n"))).unwrap();
    let project = Arc::new(Project::load(dir).unwrap());
    let task = recording_task(&project, sent, answer_it);
    let resumed = rt().block_on(async {
        let (engine, _h) = Engine::resume(project, task, id, EngineOptions::default()).unwrap();
        engine.run().await.unwrap().result.unwrap()
    });
    // Each request taken once, recorded with its id and answered as taken by its round.
    let log = load_events(&copy, false).unwrap().0;
    let recorded = steer::recorded_requests(&common::committed(&log));
    assert_eq!(recorded.len(), 3, "{id}: {recorded:?}");
    let answers = steer::answers(&copy);
    assert!(recorded.iter().all(|(r, round)| answers[r] == SteerAnswer::taken(r, *round)), "{id}: {answers:?}");
    (resumed, copy)
}

/// A round planned with a person's guide is dropped (`round_voided`: its plan went stale), and the
/// run is killed before the next plan takes the guide again: the log holds the guide only in the
/// dropped round, and the inbox's answers say it was taken. The resumed run takes it from the log
/// (it was once lost, taken in no round: one guided proposal fewer, another run).
#[test]
fn a_guide_of_a_round_voided_just_before_a_crash_is_taken_on_resume() {
    let (_t, dir) = project(PIPELINED);
    let sent = Arc::new(Sent::default());
    let (full, run_dir, lines) = a_full_steered_run(&dir, &sent);
    let at = line_where(&lines, |v| v["event"] == "human" && v["action"]["note"] == "and a train example");
    let mut cut = lines[..=at].to_vec();
    let round: serde_json::Value = serde_json::from_str::<serde_json::Value>(&lines[at]).unwrap()["round"].clone();
    cut.push(next_line(&cut, serde_json::json!({"event": "round_voided", "round": round})));
    let (resumed, _) = resume_copy(&dir, &run_dir, "voided", &cut, &sent);
    assert_eq!(comparable(resumed), comparable(full));
}

/// A resume redoes a round planned before the kill: it records the plan again, then its human
/// decisions one line each. Killed between those lines (after the protection, before the guide),
/// the next resume still redoes the round with both (it once took the plan recorded again as a
/// new one and lost the guide: one guided proposal fewer, another run; 1 of 30 SIGKILL runs of
/// tests/reliability.rs).
#[test]
fn a_resume_killed_while_it_records_a_redone_plan_again_keeps_its_guide() {
    let (_t, dir) = project(PIPELINED);
    let sent = Arc::new(Sent::default());
    let (full, run_dir, lines) = a_full_steered_run(&dir, &sent);
    let guide_at =
        line_where(&lines, |v| v["event"] == "human" && v["action"]["note"] == "every group has its own rule");
    let protect_at = line_where(&lines, |v| v["event"] == "human" && v["action"]["action"] == "protect");
    let round = serde_json::from_str::<serde_json::Value>(&lines[protect_at]).unwrap()["round"].clone();
    let started_at = line_where(&lines[..protect_at], |v| v["event"] == "round_started" && v["round"] == round);
    assert!(protect_at < guide_at, "the plan, then the protection, then the guide");
    let mut cut = lines[..=guide_at].to_vec();
    let after = round.as_u64().unwrap() - 1;
    cut.push(next_line(&cut, serde_json::json!({"event": "resumed", "after_round": after})));
    for at in [started_at, protect_at] {
        let mut again: serde_json::Value = serde_json::from_str(&lines[at]).unwrap();
        again.as_object_mut().unwrap().retain(|k, _| k != "seq" && k != "t");
        cut.push(next_line(&cut, again));
    }
    let (resumed, _) = resume_copy(&dir, &run_dir, "redo-cut", &cut, &sent);
    assert_eq!(comparable(resumed), comparable(full));
}

/// Two guided children of the seed are siblings a merge can pair: the run merges right after the
/// round that found the second. Cut right after that merge was planned and resumed, the engine
/// redoes the merge as recorded (it once took the recorded merge as having used up the chance to
/// merge, dropped it and planned proposals instead: another run).
#[test]
fn a_run_cut_right_after_a_merge_was_planned_redoes_the_merge() {
    const MERGING: &str =
        "max_metric_calls = 160\nminibatch_size = 3\nproposals_per_round = 3\nseed = 7\nmerge = true\nmax_merges = 3";
    let (_t, dir) = project(MERGING);
    let sent = Arc::new(Sent::default());
    let actions = vec![guide(0, "name every group's rule", None), guide(0, "one rule per group", None)];
    let (full, run_dir, _) = run_steered(&dir, actions, &sent, same);
    let events = std::fs::read(run_dir.join("events.jsonl")).unwrap();
    let mut cuts = Vec::new();
    let mut at = 0;
    for line in String::from_utf8_lossy(&events).split_inclusive('\n') {
        at += line.len();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let round = v["round"].as_u64().unwrap_or(0);
        if v["event"] == "round_started" && !v["merge"].is_null() && v["planned_after"].as_u64() == Some(round - 1) {
            cuts.push(at);
        }
    }
    assert!(!cuts.is_empty(), "no merge was planned right after the round before it");
    for (k, cut) in cuts.into_iter().enumerate() {
        let id = format!("cut-{k}");
        let copy = dir.join(".gepa/runs").join(&id);
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(run_dir.join("gepa.toml"), copy.join("gepa.toml")).unwrap();
        std::fs::copy(run_dir.join(steer::INBOX), copy.join(steer::INBOX)).unwrap();
        std::fs::write(copy.join("events.jsonl"), &events[..cut]).unwrap();
        let project = Arc::new(Project::load(&dir).unwrap());
        let task = recording_task(&project, &sent, same);
        let resumed = rt().block_on(async {
            let (engine, _h) = Engine::resume(project, task, &id, EngineOptions::default()).unwrap();
            engine.run().await.unwrap().result.unwrap()
        });
        assert_eq!(comparable(resumed), comparable(full.clone()), "cut at byte {cut}");
    }
}
