//! Fixing or excluding a bad example, in the engine: what an exclusion does to the means, the
//! fronts, the minibatches and the metric calls, and what a fix does to the recorded scores.

mod common;

use gepa_tui::engine::event::HumanAction;
use gepa_tui::engine::run::load_events;
use gepa_tui::engine::{CandidateId, Engine, EngineHandle, EngineOptions, Event, RunResult, RunState};
use gepa_tui::eval::ExampleEval;
use gepa_tui::project::Split;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One round at a time: a decision sent during round k's reflection is taken by round k + 1.
const OPT: &str = "max_metric_calls = 220\nminibatch_size = 3\nproposals_per_round = 1\nseed = 5\nmerge = true\nmax_merges = 2\npipeline_lag = 1";

fn project(opt: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proj");
    common::write_project(&p, opt);
    (dir, p)
}

/// What a hook sees when it acts: the engine's handle and its run folder.
type Live = Arc<OnceLock<(EngineHandle, PathBuf)>>;

/// Runs the scripted problem with `actions` given before it starts, and `on_reflection(k, live)`
/// called at the k-th reflection request. Returns the result and the committed events.
fn run(
    dir: &Path,
    actions: Vec<HumanAction>,
    on_reflection: impl Fn(u64, &(EngineHandle, PathBuf)) + Send + Sync + 'static,
) -> (RunResult, Vec<Event>) {
    let live: Live = Arc::new(OnceLock::new());
    let l2 = live.clone();
    let hook: common::ReflectionHook = Arc::new(move |k| {
        if let Some(l) = l2.get() {
            on_reflection(k, l)
        }
    });
    let (project, task) = common::load_with(dir, Some(hook));
    rt().block_on(async {
        let (engine, h) = Engine::create(project, task, EngineOptions::default()).unwrap();
        live.set((h.clone(), engine.run_dir().to_path_buf())).ok().unwrap();
        for a in actions {
            h.act(a);
        }
        let out = engine.run().await.unwrap();
        let events = common::committed(&load_events(&out.run_dir, false).unwrap().0);
        (out.result.unwrap(), events)
    })
}

/// The committed state of a live run, read from its log (a torn last line is skipped).
fn committed_state(run_dir: &Path) -> (RunState, Vec<Event>) {
    let events = common::committed(&load_events(run_dir, false).unwrap().0);
    (RunState::from_events(&events), events)
}

/// Each candidate's latest val evaluation per example id, as committed.
fn val_evals(events: &[Event]) -> BTreeMap<CandidateId, BTreeMap<String, ExampleEval>> {
    let mut out: BTreeMap<CandidateId, BTreeMap<String, ExampleEval>> = BTreeMap::new();
    for ev in events {
        match ev {
            Event::ValEvaluated { candidate, evals, .. } => {
                for e in evals {
                    out.entry(*candidate).or_default().insert(e.example_id.clone(), e.clone());
                }
            }
            Event::ExampleFixed { rescored, .. } => {
                for r in rescored {
                    out.entry(r.candidate).or_default().insert(r.eval.example_id.clone(), r.eval.clone());
                }
            }
            _ => {}
        }
    }
    out
}

fn human_round(events: &[Event], want: impl Fn(&HumanAction) -> bool) -> u64 {
    events
        .iter()
        .find_map(|e| match e {
            Event::Human { round, action, .. } if want(action) => Some(*round),
            _ => None,
        })
        .expect("the decision was recorded")
}

/// The means and per-example fronts a run over `val` would have: derived here from the
/// candidates' scores, not by the fold.
fn by_hand(
    evals: &BTreeMap<CandidateId, BTreeMap<String, ExampleEval>>,
    val: &[String],
) -> (Vec<f64>, Vec<BTreeSet<CandidateId>>) {
    let means = evals.values().map(|e| val.iter().map(|id| e[id].score).sum::<f64>() / val.len() as f64).collect();
    let fronts = val
        .iter()
        .map(|id| {
            let best = evals.values().map(|e| e[id].score).fold(f64::NEG_INFINITY, f64::max);
            evals.iter().filter(|(_, e)| e[id].score == best).map(|(c, _)| *c).collect()
        })
        .collect();
    (means, fronts)
}

fn first_max(xs: &[f64]) -> usize {
    (0..xs.len()).fold(0, |b, i| if xs[i] > xs[b] { i } else { b })
}

/// Excluding a val example in the first round: every candidate's mean, every front and the best
/// candidate are exactly those of a run whose val never had it (derived here by hand from the
/// scores, and by folding the same events with the example taken out of val), later candidates
/// are never evaluated on it, and result.json lists it with its reason.
#[test]
fn an_excluded_val_example_counts_for_nothing_and_is_not_evaluated_again() {
    // Both kinds of front: per example, and per objective (output tokens differ by example).
    let opt = "max_metric_calls = 300\npipeline_lag = 1\nseed = 7\nmerge = true\nmax_merges = 5\n\
               frontier = \"hybrid\"\nobjectives = [\"prompt_tokens\", \"output_tokens\"]";
    let (_t, dir) = project(opt);
    let gone = "ex103";
    let exclude =
        HumanAction::ExcludeExample { split: Split::Val, example: gone.into(), reason: "the label is wrong".into() };
    let (r, events) = run(&dir, vec![exclude], |_, _| {});
    let s = RunState::from_events(&events);
    let round = human_round(&events, |a| matches!(a, HumanAction::ExcludeExample { .. }));
    assert_eq!(round, 1);
    assert!(s.candidates.len() >= 4, "a run with something to compare: {} candidates", s.candidates.len());

    // Only the seed (scored in round 0) was evaluated on it: no metric call went to it since.
    let mut on_it = 0;
    for ev in &events {
        match ev {
            Event::ValEvaluated { candidate, evals, .. } => {
                let has = evals.iter().any(|e| e.example_id == gone);
                assert_eq!(has, *candidate == 0, "candidate {candidate}");
                on_it += usize::from(has);
                assert_eq!(evals.len(), if *candidate == 0 { 16 } else { 15 });
            }
            Event::MergeAttempted { evals, .. } => assert!(evals.iter().all(|e| e.example_id != gone)),
            _ => {}
        }
    }
    assert_eq!(on_it, 1);
    assert!(events.iter().any(|e| matches!(e, Event::MergeAttempted { .. })), "merges ran over the 15 left: {r:?}");
    // Every metric call is an evaluation recorded in the events (so none was spent unseen).
    let recorded: usize = events
        .iter()
        .map(|e| match e {
            Event::ValEvaluated { evals, .. }
            | Event::MinibatchEvaluated { evals, .. }
            | Event::MergeAttempted { evals, .. } => evals.iter().filter(|x| !x.cached).count(),
            _ => 0,
        })
        .sum();
    assert_eq!(recorded as u64, r.metric_calls);

    // By hand: means and fronts over the 15 examples left.
    let val: Vec<String> = s.val_ids.iter().filter(|id| *id != gone).cloned().collect();
    let evals = val_evals(&events);
    let (means, fronts) = by_hand(&evals, &val);
    for (c, m) in means.iter().enumerate() {
        assert!((s.candidates[c].val_mean - m).abs() < 1e-12, "candidate {c}: {} vs {m}", s.candidates[c].val_mean);
        let tokens = val.iter().map(|id| evals[&c][id].objectives["output_tokens"]).sum::<f64>() / 15.0;
        assert!((s.candidates[c].objectives["output_tokens"] - tokens).abs() < 1e-12, "candidate {c}");
    }
    let counted: Vec<BTreeSet<CandidateId>> =
        (0..16).filter(|i| s.val_ids[*i] != gone).map(|i| s.fronts.entries[i].holders.clone()).collect();
    assert_eq!(counted, fronts);
    // The objective's front: the best mean over the 15.
    let best_tokens =
        (0..s.candidates.len()).map(|c| s.candidates[c].objectives["output_tokens"]).fold(f64::MIN, f64::max);
    let holders: BTreeSet<CandidateId> =
        (0..s.candidates.len()).filter(|c| s.candidates[*c].objectives["output_tokens"] == best_tokens).collect();
    assert_eq!(s.objective_fronts["output_tokens"].holders, holders);
    assert_eq!(s.best(), Some(first_max(&means)));
    assert_eq!(r.best_candidate, first_max(&means));
    assert!((r.best_val_score - means[r.best_candidate]).abs() < 1e-12);

    // The same events with the example taken out of val, folded as a run that never had it.
    let never: Vec<Event> = events
        .iter()
        .filter(|e| !matches!(e, Event::Human { action: HumanAction::ExcludeExample { .. }, .. }))
        .cloned()
        .map(|mut e| {
            match &mut e {
                Event::RunStarted { val_ids, .. } => val_ids.retain(|id| id != gone),
                Event::ValEvaluated { evals, .. } => evals.retain(|x| x.example_id != gone),
                _ => {}
            }
            e
        })
        .collect();
    let n = RunState::from_events(&never);
    assert_eq!(s.val_means(), n.val_means());
    assert_eq!(s.front_sets(), n.front_sets());
    assert_eq!(s.objective_fronts, n.objective_fronts);
    assert_eq!(s.best(), n.best());

    assert_eq!(r.data.excluded_examples.len(), 1);
    assert_eq!(r.data.excluded_examples[0].id, gone);
    assert_eq!(r.data.excluded_examples[0].reason, "the label is wrong");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(".gepa/runs").join(&r.run_id).join("result.json")).unwrap())
            .unwrap();
    assert_eq!(json["excluded_examples"][0]["id"], gone, "{json}");
    assert_eq!(json["excluded_examples"][0]["split"], "val");
    // The data file is as it was.
    assert!(std::fs::read_to_string(dir.join("data/val.jsonl")).unwrap().contains("\"id\": \"ex103\""));
}

/// A train example drawn early and excluded mid-run (at the third reflection) is drawn in no
/// later minibatch; the sampler's next epoch covers every example left.
#[test]
fn an_excluded_train_example_is_never_drawn_again() {
    let (_t, dir) = project(OPT);
    let chosen: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let c2 = chosen.clone();
    let (_, events) = run(&dir, vec![], move |k, (h, run_dir)| {
        if k != 3 {
            return;
        }
        let (_, evs) = committed_state(run_dir);
        let first = evs
            .iter()
            .find_map(|e| match e {
                Event::RoundStarted { proposals, .. } => proposals.first().map(|p| p.minibatch[0].clone()),
                _ => None,
            })
            .expect("a minibatch was drawn");
        c2.set(first.clone()).unwrap();
        h.act(HumanAction::ExcludeExample { split: Split::Train, example: first, reason: "a bad example".into() });
    });
    let gone = chosen.get().unwrap().clone();
    let round = human_round(&events, |a| matches!(a, HumanAction::ExcludeExample { .. }));
    let mut before = 0;
    let mut after: Vec<Vec<String>> = Vec::new();
    for ev in &events {
        match ev {
            Event::RoundStarted { round: r, proposals, .. } => {
                for p in proposals {
                    if *r < round {
                        before += usize::from(p.minibatch.contains(&gone));
                    } else {
                        assert!(!p.minibatch.contains(&gone), "round {r} drew {gone}");
                        after.push(p.minibatch.clone());
                    }
                }
            }
            Event::MinibatchEvaluated { round: r, evals, .. } if *r >= round => {
                assert!(evals.iter().all(|e| e.example_id != gone), "round {r} evaluated {gone}")
            }
            _ => {}
        }
    }
    assert!(before > 0, "{gone} was drawn before");
    // 23 left, 3 a minibatch: the first 8 minibatches after the exclusion hold all 23.
    assert!(after.len() >= 8, "only {} minibatches after the exclusion", after.len());
    let seen: BTreeSet<&String> = after[..8].iter().flatten().collect();
    assert_eq!(seen.len(), 23, "{seen:?}");
}

/// At the fifth reflection the best candidate is right on some val examples where the seed is
/// wrong; a person says those examples' expected answer is the seed's ("not sure"), which takes
/// away every point the best had won over the seed there. When the round
/// commits, every earlier candidate's recorded output on them is scored again with the evaluator
/// (exact: free, no metric call), the best candidate changes to what the new scores say, and later
/// candidates are scored against the corrected value.
#[test]
fn a_fix_scores_the_recorded_outputs_again_and_moves_the_best() {
    let (_t, dir) = project(OPT);
    let fixed: Arc<OnceLock<(CandidateId, Vec<String>)>> = Arc::new(OnceLock::new());
    let f2 = fixed.clone();
    let (r, events) = run(&dir, vec![], move |k, (h, run_dir)| {
        if k != 5 {
            return;
        }
        let (s, evs) = committed_state(run_dir);
        let best = s.best().unwrap();
        let evals = val_evals(&evs);
        let ids: Vec<String> = s
            .val_ids
            .iter()
            .filter(|id| evals[&best][*id].score == 1.0 && evals[&0][*id].score == 0.0)
            .cloned()
            .collect();
        f2.set((best, ids.clone())).unwrap();
        for id in ids {
            h.act(HumanAction::FixExample {
                split: Split::Val,
                example: id,
                field: "expected".into(),
                value: "not sure".into(),
            });
        }
    });
    let (old_best, ids) = fixed.get().unwrap().clone();
    assert_ne!(old_best, 0, "the best had learned something by then");
    assert!(!ids.is_empty());
    let round = human_round(&events, |a| matches!(a, HumanAction::FixExample { .. }));
    let upto = |last: u64| -> RunState {
        let cut =
            events.iter().position(|e| matches!(e, Event::RoundFinished { round, .. } if *round == last)).unwrap();
        RunState::from_events(&events[..=cut])
    };
    let before = upto(round - 1);
    let after = upto(round);

    // One example_fixed per example, each scoring every earlier candidate again, for free.
    let fixes: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::ExampleFixed { .. })).collect();
    assert_eq!(fixes.len(), ids.len());
    let old = val_evals(&events[..events.iter().position(|e| matches!(e, Event::ExampleFixed { .. })).unwrap()]);
    for ev in &fixes {
        let Event::ExampleFixed { round: r, example, rescored, metric_calls, changes, .. } = ev else { unreachable!() };
        assert_eq!(*r, round);
        assert_eq!(*metric_calls, 0, "an exact evaluator scores for free");
        assert_eq!(changes[0].new, serde_json::json!("not sure"));
        assert!(changes[0].old.as_ref().and_then(|v| v.as_str()).is_some_and(|o| o.ends_with("-ok")));
        let who: Vec<CandidateId> = rescored.iter().map(|x| x.candidate).collect();
        assert_eq!(who, (0..before.candidates.len()).collect::<Vec<_>>(), "every earlier candidate, in order");
        for x in rescored {
            let rec = &old[&x.candidate][example];
            assert_eq!(x.eval.output, rec.output, "the recorded output, not a new run");
            let right = rec.output.trim().eq_ignore_ascii_case("not sure");
            assert_eq!(x.eval.score, if right { 1.0 } else { 0.0 }, "#{} on {example}", x.candidate);
        }
    }
    // The best is what the new scores say: by hand, over every example.
    let now = val_evals(
        &events
            [..=events.iter().position(|e| matches!(e, Event::RoundFinished { round: r, .. } if *r == round)).unwrap()],
    );
    let (means, _) = by_hand(&now, &after.val_ids);
    assert_eq!(after.best(), Some(first_max(&means)));
    assert_ne!(after.best(), before.best(), "the fix moved the best");
    // Later candidates were scored against the corrected value.
    for ev in &events {
        if let Event::ValEvaluated { round: Some(r), evals, .. } = ev {
            if *r > round {
                for e in evals.iter().filter(|e| ids.contains(&e.example_id)) {
                    assert_eq!(e.score, if e.output.trim() == "not sure" { 1.0 } else { 0.0 });
                }
            }
        }
    }
    assert_eq!(r.data.data_fixes.len(), ids.len());
    assert!(r.data.data_fixes.iter().all(|f| f.new == serde_json::json!("not sure")));
    // The data file is as it was.
    assert!(!std::fs::read_to_string(dir.join("data/val.jsonl")).unwrap().contains("not sure"));
}

/// `export --data-fixes` writes corrected copies (the excluded line left out, the fixed one with
/// its new value, every other line byte for byte), refuses to overwrite them without --force,
/// refuses to write over a data file even with it, and never touches the originals.
#[test]
fn export_data_fixes_writes_a_corrected_copy_and_never_the_originals() {
    let (_t, dir) = project("max_metric_calls = 60\nseed = 2\npipeline_lag = 1");
    let train_before = std::fs::read(dir.join("data/train.jsonl")).unwrap();
    let val_before = std::fs::read(dir.join("data/val.jsonl")).unwrap();
    let actions = vec![
        HumanAction::ExcludeExample { split: Split::Val, example: "ex105".into(), reason: "ambiguous".into() },
        HumanAction::ExcludeExample { split: Split::Train, example: "ex7".into(), reason: "duplicate".into() },
        HumanAction::FixExample {
            split: Split::Val,
            example: "ex110".into(),
            field: "expected".into(),
            value: "G-fixed".into(),
        },
    ];
    let (r, _) = run(&dir, actions, |_, _| {});
    let gepa = || {
        let mut c = assert_cmd::Command::cargo_bin("gepa-tui").unwrap();
        c.arg("export").arg(&dir).arg("--data-fixes");
        c
    };
    let out_dir = dir.join("fixed");
    let o = gepa().arg("--out").arg(&out_dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("left out `ex105` (ambiguous)") && stdout.contains("`expected` of `ex110` set to"),
        "{stdout}"
    );

    let lines = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap().lines().map(String::from).collect::<Vec<_>>();
    let (val, copy) = (lines(&val_before), lines(&std::fs::read(out_dir.join("val.jsonl")).unwrap()));
    assert_eq!(copy.len(), val.len() - 1);
    let mut k = 0;
    for line in &val {
        if line.contains("\"ex105\"") {
            continue;
        }
        if line.contains("\"ex110\"") {
            let fixed: serde_json::Value = serde_json::from_str(&copy[k]).unwrap();
            assert_eq!(fixed["expected"], "G-fixed");
            assert_eq!(fixed["input"], "item 110 of group G");
        } else {
            assert_eq!(&copy[k], line, "an unchanged line is copied as it is");
        }
        k += 1;
    }
    let train_copy = lines(&std::fs::read(out_dir.join("train.jsonl")).unwrap());
    assert_eq!(train_copy.len(), 23);
    assert!(!train_copy.iter().any(|l| l.contains("\"ex7\"")));

    // Again: refused without --force (the copy untouched), replaced with it.
    std::fs::write(out_dir.join("val.jsonl"), "mine").unwrap();
    let o = gepa().arg("--run").arg(&r.run_id).arg("--out").arg(&out_dir).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists; not overwriting it (pass --force"));
    assert_eq!(std::fs::read_to_string(out_dir.join("val.jsonl")).unwrap(), "mine");
    let o = gepa().arg("--run").arg(&r.run_id).arg("--out").arg(&out_dir).arg("--force").output().unwrap();
    assert!(o.status.success());
    assert_eq!(lines(&std::fs::read(out_dir.join("val.jsonl")).unwrap()), copy);
    // Into the data folder itself: refused, --force or not.
    let o = gepa().arg("--out").arg(dir.join("data")).arg("--force").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("never writes in place"), "{o:?}");
    // Without --out: the run's folder.
    let o = gepa().output().unwrap();
    assert!(o.status.success());
    assert!(dir.join(".gepa/runs").join(&r.run_id).join("data-fixes/val.jsonl").is_file());

    assert_eq!(std::fs::read(dir.join("data/train.jsonl")).unwrap(), train_before);
    assert_eq!(std::fs::read(dir.join("data/val.jsonl")).unwrap(), val_before);
}

/// With a judge as the evaluator, scoring the recorded outputs again asks the judge: one metric
/// call per output, its cost in the run's, recorded so that a resume does not ask again.
#[test]
fn a_fix_under_a_judge_counts_its_calls_and_cost() {
    use gepa_tui::llm::scripted::ScriptedBackend;
    use gepa_tui::llm::{AttemptError, ChatBackend, ChatRequest};
    let (_t, dir) = project("max_metric_calls = 70\nseed = 4\npipeline_lag = 1");
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    let toml = toml
        .replace(
            "[models.reflection]",
            "[models.judge]\nprovider = \"openai\"\nmodel = \"scripted-judge\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             price_input_per_mtok = 3.0\nprice_output_per_mtok = 3.0\n\n[models.reflection]",
        )
        .replace(
            "kind = \"exact\"",
            "kind = \"judge\"\nmodel = \"judge\"\nrubric = \"Grade: is {{output}} the answer {{expected}}?\"",
        );
    std::fs::write(dir.join("gepa.toml"), toml).unwrap();
    let project = Arc::new(gepa_tui::project::Project::load(&dir).unwrap());
    let judge_calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let jc = judge_calls.clone();
    let task: Arc<dyn ChatBackend> = Arc::new(ScriptedBackend::new(move |req: &ChatRequest| {
        let user = &req.messages.last().unwrap().content;
        if let Some(rest) = user.strip_prefix("Grade: is ") {
            jc.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (out, exp) = rest.trim_end_matches('?').split_once(" the answer ").unwrap();
            return Ok::<_, AttemptError>(format!("Score: {}/10", if out.trim() == exp.trim() { 10 } else { 0 }));
        }
        Ok(common::task_reply(req))
    }));
    let refl: Arc<dyn ChatBackend> =
        Arc::new(ScriptedBackend::new(|req: &ChatRequest| Ok::<_, AttemptError>(common::reflection_reply(req))));
    let models = Arc::new(common::models_from(&project, task, refl));
    let task = Arc::new(gepa_tui::eval::Task::new(project.clone(), models).unwrap());
    // The seed says "A-ok" on ex104; corrected to "not sure", the judge now fails it.
    let fix = HumanAction::FixExample {
        split: Split::Val,
        example: "ex104".into(),
        field: "expected".into(),
        value: "not sure".into(),
    };
    let (r, events) = rt().block_on(async {
        let (engine, h) = Engine::create(project, task, EngineOptions::default()).unwrap();
        h.act(fix);
        let out = engine.run().await.unwrap();
        (out.result.unwrap(), common::committed(&load_events(&out.run_dir, false).unwrap().0))
    });
    let fixed: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::ExampleFixed { .. })).collect();
    let [Event::ExampleFixed { rescored, metric_calls, .. }] = fixed.as_slice() else { panic!("{fixed:?}") };
    assert_eq!(rescored.len(), 1, "only the seed was scored before round 1");
    assert_eq!(*metric_calls, 1);
    assert_eq!(rescored[0].eval.score, 0.0);
    assert!(rescored[0].eval.cost_usd > 0.0, "the judge's call is priced");
    // The budget counts every evaluation recorded plus the re-scoring; the cost holds the judge's.
    let evaluations: u64 = events
        .iter()
        .map(|e| match e {
            Event::ValEvaluated { evals, .. }
            | Event::MinibatchEvaluated { evals, .. }
            | Event::MergeAttempted { evals, .. } => evals.iter().filter(|x| !x.cached).count() as u64,
            _ => 0,
        })
        .sum();
    assert_eq!(r.metric_calls, evaluations + 1);
    let round_one_cost = events
        .iter()
        .find_map(|e| match e {
            Event::RoundFinished { round: 1, cost_usd, cost_usd_replayed, .. } => Some(cost_usd + cost_usd_replayed),
            _ => None,
        })
        .unwrap();
    let round_zero_cost = events
        .iter()
        .find_map(|e| match e {
            Event::RoundFinished { round: 0, cost_usd, cost_usd_replayed, .. } => Some(cost_usd + cost_usd_replayed),
            _ => None,
        })
        .unwrap();
    assert!(round_one_cost - round_zero_cost >= rescored[0].eval.cost_usd - 1e-12);
    assert!(judge_calls.load(std::sync::atomic::Ordering::SeqCst) > 0, "the judge scored");
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

/// A run that excluded and fixed examples mid-run (the fix scoring the candidates so far again), killed
/// at moments around those decisions (after they are recorded, mid-way through the re-scored
/// scores' line, after it, after the round's commit) and resumed: the same result.json as the
/// run that was never interrupted.
#[test]
fn killed_around_a_mid_run_fix_it_resumes_to_the_same_result() {
    let (_t, dir) = project(OPT);
    let (full, _) = run(&dir, vec![], |k, (h, _)| {
        if k == 4 {
            h.act(HumanAction::ExcludeExample { split: Split::Val, example: "ex109".into(), reason: "unclear".into() });
            h.act(HumanAction::ExcludeExample { split: Split::Train, example: "ex2".into(), reason: "unclear".into() });
            for id in ["ex101", "ex110"] {
                h.act(HumanAction::FixExample {
                    split: Split::Val,
                    example: id.into(),
                    field: "expected".into(),
                    value: "not sure".into(),
                });
            }
        }
    });
    assert_eq!((full.data.excluded_examples.len(), full.data.data_fixes.len()), (2, 2), "{full:?}");
    let run_dir = dir.join(".gepa/runs").join(&full.run_id);
    let log = std::fs::read(run_dir.join("events.jsonl")).unwrap();
    let text = String::from_utf8(log.clone()).unwrap();
    let end_of = |needle: &str| text.find(needle).map(|i| i + text[i..].find('\n').unwrap() + 1).unwrap();
    let start_of = |needle: &str| text[..text.find(needle).unwrap()].rfind('\n').unwrap() + 1;
    let fixed_at = start_of("\"event\":\"example_fixed\"");
    let fixed_end = end_of("\"event\":\"example_fixed\"");
    let round: u64 = {
        let line = &text[fixed_at..fixed_end];
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["round"].as_u64().unwrap()
    };
    let committed = end_of(&format!("\"event\":\"round_finished\",\"round\":{round},"));
    // After the round's last decision is recorded (a cut between two of them loses the later
    // ones, as a decision never recorded is lost: the workbench warns before quitting then).
    let decided = {
        let i = text.rfind("\"action\":\"fix_example\"").unwrap();
        i + text[i..].find('\n').unwrap() + 1
    };
    let cuts = [decided, fixed_at, (fixed_at + fixed_end) / 2, fixed_end, committed, log.len() - 3];
    for (k, cut) in cuts.into_iter().enumerate() {
        let id = format!("cut-{k}");
        let copy = dir.join(".gepa/runs").join(&id);
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(run_dir.join("gepa.toml"), copy.join("gepa.toml")).unwrap();
        std::fs::write(copy.join("events.jsonl"), &log[..cut]).unwrap();
        let (project, task) = common::load(&dir);
        let resumed = rt().block_on(async {
            let (engine, _h) = Engine::resume(project, task, &id, EngineOptions::default()).unwrap();
            engine.run().await.unwrap().result.unwrap()
        });
        assert_eq!(comparable(resumed), comparable(full.clone()), "cut {k} at byte {cut} of {}", log.len());
    }
}

/// gepa's merge overlap floor counts the val examples that count: the run that merged with 15 of
/// them (above) never tries a merge with 4 left.
#[test]
fn no_merge_is_tried_with_fewer_than_five_val_examples_left() {
    let opt = "max_metric_calls = 300\npipeline_lag = 1\nseed = 7\nmerge = true\nmax_merges = 5\n\
               frontier = \"hybrid\"\nobjectives = [\"prompt_tokens\", \"output_tokens\"]";
    let (_t, dir) = project(opt);
    let actions: Vec<HumanAction> = (100..112)
        .map(|i| HumanAction::ExcludeExample {
            split: Split::Val,
            example: format!("ex{i}"),
            reason: "too easy".into(),
        })
        .collect();
    let (r, events) = run(&dir, actions, |_, _| {});
    assert_eq!(r.data.excluded_examples.len(), 12);
    assert!(r.candidates > 1, "{r:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::MergeAttempted { .. })), "a merge on 4 val examples");
    assert!(!events.iter().any(|e| matches!(e, Event::RoundStarted { merge: Some(_), .. })));
    // And the candidates after round 0 were scored on the 4 left only.
    for ev in &events {
        if let Event::ValEvaluated { candidate, evals, .. } = ev {
            assert_eq!(evals.len(), if *candidate == 0 { 16 } else { 4 });
        }
    }
}
