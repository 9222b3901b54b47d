//! Options gepa 0.1.4's `optimize()` offers, each checked against what gepa's code does (the file
//! is cited at each test): the acceptance rule, the stop conditions, several seed candidates, a
//! reflection template per component.

mod common;

use gepa_tui::engine::run::load_events;
use gepa_tui::engine::{Engine, EngineOptions, Event, ProposalOutcome, RunResult};
use gepa_tui::eval::Task;
use gepa_tui::llm::scripted::ScriptedBackend;
use gepa_tui::llm::{AttemptError, ChatBackend, ChatRequest};
use gepa_tui::project::Project;
use std::path::Path;
use std::sync::Arc;

use common::{rt, scripted_project as project};

/// Runs the project with the scripted task model and `reflect` answering reflections.
fn run_with(dir: &Path, reflect: impl Fn(&ChatRequest) -> String + Send + Sync + 'static) -> (RunResult, Vec<Event>) {
    let project = Arc::new(Project::load(dir).unwrap());
    let task: Arc<dyn ChatBackend> =
        Arc::new(ScriptedBackend::new(|req: &ChatRequest| Ok::<_, AttemptError>(common::task_reply(req))));
    let refl: Arc<dyn ChatBackend> = Arc::new(ScriptedBackend::new(move |req: &ChatRequest| Ok(reflect(req))));
    let models = Arc::new(common::models_from(&project, task, refl));
    let task = Arc::new(Task::new(project.clone(), models).unwrap());
    rt().block_on(async {
        let (engine, _h) = Engine::create(project, task, EngineOptions::default()).unwrap();
        let out = engine.run().await.unwrap();
        let (events, _) = load_events(&out.run_dir, false).unwrap();
        (out.result.unwrap(), common::committed(&events))
    })
}

/// The current text between the prompt's first fence pair (as the scripted reflection reads it).
fn current_text(req: &ChatRequest) -> String {
    let prompt = &req.messages.last().unwrap().content;
    let start = prompt.find("```\n").map(|i| i + 4).unwrap_or(0);
    let end = prompt[start..].find("\n```").map(|i| start + i).unwrap_or(start);
    prompt[start..end].to_string()
}

/// A reflection that rewords the text without learning a rule: the child scores as its parent.
fn lateral(req: &ChatRequest) -> String {
    format!("```\n{} Be careful.\n```", current_text(req))
}

fn outcomes(events: &[Event]) -> Vec<ProposalOutcome> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ProposalFinished { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
        .collect()
}

/// gepa strategies/acceptance.py: `StrictImprovementAcceptance` accepts `new_sum > old_sum`,
/// `ImprovementOrEqualAcceptance` accepts `new_sum >= old_sum`. A child that only rewords its
/// parent scores the same on the minibatch: refused by the first, taken by the second.
#[test]
fn acceptance_strict_refuses_an_equal_child_and_improvement_or_equal_takes_it() {
    let opt = "max_metric_calls = 80\npipeline_lag = 1\nseed = 3";
    let (_t, dir) = project(opt);
    let (strict, events) = run_with(&dir, lateral);
    let tested: Vec<_> = outcomes(&events)
        .into_iter()
        .filter(|o| matches!(o, ProposalOutcome::Rejected { .. } | ProposalOutcome::Accepted { .. }))
        .collect();
    assert!(!tested.is_empty(), "no child was tested: {:?}", outcomes(&events));
    for o in &tested {
        let ProposalOutcome::Rejected { parent_sum, child_sum } = o else { panic!("strict accepted {o:?}") };
        assert_eq!(parent_sum, child_sum, "the lateral child scores as its parent");
    }
    assert_eq!(strict.candidates, 1, "strict keeps only the seed");

    let (_t, dir) = project(&format!("{opt}\nacceptance = \"improvement_or_equal\""));
    let (equal, events) = run_with(&dir, lateral);
    let first = outcomes(&events)
        .into_iter()
        .find(|o| matches!(o, ProposalOutcome::Rejected { .. } | ProposalOutcome::Accepted { .. }))
        .expect("a child was tested");
    let ProposalOutcome::Accepted { parent_sum, child_sum } = first else { panic!("not accepted: {first:?}") };
    assert_eq!(parent_sum, child_sum);
    assert!(equal.candidates >= 2, "the equal child joined the pool: {equal:?}");
}

#[test]
fn a_typo_in_acceptance_is_refused_with_a_suggestion() {
    let (_t, dir) = project("acceptance = \"improvement_or_equl\"");
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("did you mean \"improvement_or_equal\""), "{err}");
}

/// The scripted problem's own reflection (it learns rules from the feedback).
fn learns(req: &ChatRequest) -> String {
    common::reflection_reply(req)
}

/// result.json as written, and the summary a headless run prints, name the rule that stopped it.
fn stopped_by(r: &RunResult, dir: &Path) -> String {
    let run_dir = dir.join(".gepa/runs").join(&r.run_id);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("result.json")).unwrap()).unwrap();
    let by = on_disk["stopped_by"].as_str().unwrap_or_else(|| panic!("no stopped_by in {on_disk}")).to_string();
    let summary = gepa_tui::cli::run::summary(r, &run_dir);
    assert!(summary.contains(&by), "the summary does not name {by}: {summary}");
    by
}

/// gepa utils/stop_condition.py, MaxCandidateProposalsStopper: checked before each iteration,
/// stops once `state.i >= max_proposals - 1`, so exactly `max_proposals` proposals are made.
/// Planning ahead (the default lag) must not make more.
#[test]
fn max_proposals_stops_after_exactly_that_many_proposals() {
    let (_t, dir) = project("max_metric_calls = 2000\nseed = 1\nmax_proposals = 5");
    let (r, events) = run_with(&dir, learns);
    assert_eq!(outcomes(&events).len(), 5, "{:?}", outcomes(&events));
    assert_eq!(stopped_by(&r, &dir), "max_proposals");
    assert!(r.stop_reason.contains("max_proposals"), "{}", r.stop_reason);

    // Siblings count one by one: rounds of 2 make 2 + 2 + 1.
    let (_t, dir) = project("max_metric_calls = 2000\nseed = 1\nmax_proposals = 5\nproposals_per_round = 2");
    let (_, events) = run_with(&dir, learns);
    let sizes: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::RoundStarted { round, proposals, .. } if *round > 0 => Some(proposals.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
}

/// gepa utils/stop_condition.py, MaxTrackedCandidatesStopper: stops before an iteration once
/// `len(program_candidates) >= max`; one proposal per iteration adds at most one, so the run ends
/// with exactly `max` candidates.
#[test]
fn max_candidates_stops_with_exactly_that_many_candidates() {
    let (_t, dir) = project("max_metric_calls = 2000\nseed = 2\nmax_candidates = 3");
    let (r, events) = run_with(&dir, learns);
    let added = events.iter().filter(|e| matches!(e, Event::CandidateAdded { .. })).count();
    assert_eq!((r.candidates, added), (3, 3));
    assert_eq!(stopped_by(&r, &dir), "max_candidates");
}

/// gepa utils/stop_condition.py, MaxReflectionCostStopper: stops before an iteration once the
/// reflection model's total cost `>= max`. So the run's reflections cost at least the cap, and
/// without the last proposal's reflections less than it (it started below the cap).
#[test]
fn max_reflection_cost_stops_once_the_reflections_cost_that_much() {
    let (_t, dir) = project("max_metric_calls = 2000\nseed = 4\nmax_reflection_cost_usd = 0.001");
    // The reflection model at a price: $1 per million tokens in and out.
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap().replace(
        "model = \"scripted-reflection\"",
        "model = \"scripted-reflection\"\nprice_input_per_mtok = 1.0\nprice_output_per_mtok = 1.0",
    );
    std::fs::write(dir.join("gepa.toml"), toml).unwrap();
    let (r, events) = run_with(&dir, learns);
    let costs: Vec<(u64, f64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Reflection { round, cost_usd, .. } => Some((*round, *cost_usd)),
            _ => None,
        })
        .collect();
    let total: f64 = costs.iter().map(|c| c.1).sum();
    let last_round = costs.last().unwrap().0;
    let before_last: f64 = costs.iter().filter(|c| c.0 < last_round).map(|c| c.1).sum();
    assert!(costs.len() >= 2, "{costs:?}");
    assert!(total >= 0.001 && before_last < 0.001, "{before_last} then {total}");
    assert_eq!(stopped_by(&r, &dir), "max_reflection_cost_usd");
    // The task model's spend does not count: the run as a whole paid more.
    assert!(r.cost_usd > total, "{} vs {total}", r.cost_usd);
}

#[test]
fn a_typo_in_a_stop_key_is_refused_with_a_suggestion() {
    let (_t, dir) = project("max_proposal = 5");
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("did you mean `max_proposals`"), "{err}");
}

/// Adds `extra` under a `[[components]]` table of the scripted project (`instruction` or `format`).
fn component_keys(dir: &Path, component: &str, extra: &str) {
    let file = format!("file = \"prompts/{component}.md\"");
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap().replace(&file, &format!("{file}\n{extra}"));
    std::fs::write(dir.join("gepa.toml"), toml).unwrap();
}

fn reflection_prompts(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Reflection { component, prompt, .. } => Some((component.clone(), prompt.clone())),
            _ => None,
        })
        .collect()
}

/// gepa proposer/reflective_mutation/reflection_lm.py, `_resolve_template`: with a template per
/// component, a component that has one is asked with it, the others with the default. Here a
/// component's `template_file` or built-in `template` overrides `[reflection]`.
#[test]
fn a_component_with_its_own_template_is_asked_with_it_and_the_others_with_reflections() {
    let (_t, dir) = project("max_metric_calls = 150\nseed = 5\ncomponent_selection = \"all\"");
    std::fs::write(
        dir.join("format-reflection.md"),
        "FORMAT ONLY. The current format rule:\n```\n<curr_instructions>\n```\nWhat happened:\n<inputs_outputs_feedback>\nReply with the new rule in ```.",
    )
    .unwrap();
    component_keys(&dir, "format", "template_file = \"format-reflection.md\"");
    let (_, events) = run_with(&dir, learns);
    let prompts = reflection_prompts(&events);
    let of = |c: &str| prompts.iter().filter(|(k, _)| k == c).map(|(_, p)| p.as_str()).collect::<Vec<_>>();
    assert!(!of("format").is_empty() && !of("instruction").is_empty(), "{prompts:?}");
    for p in of("format") {
        assert!(p.starts_with("FORMAT ONLY. The current format rule:\n```\nReply with the code only."), "{p}");
    }
    for p in of("instruction") {
        assert!(p.starts_with("I provided an assistant with the following instructions"), "{p}");
    }

    // A built-in per component: `compact` for `instruction`, gepa's for the rest.
    let (_t, dir) = project("max_metric_calls = 150\nseed = 5\ncomponent_selection = \"all\"");
    component_keys(&dir, "instruction", "template = \"compact\"");
    let (_, events) = run_with(&dir, learns);
    let prompts = reflection_prompts(&events);
    assert!(!prompts.is_empty());
    for (c, p) in &prompts {
        let compact = p.starts_with("You are improving the instruction an assistant follows.");
        assert_eq!(compact, c == "instruction", "{c}: {p}");
    }
}

#[test]
fn a_component_template_is_checked_when_the_project_loads() {
    let (_t, dir) = project("");
    component_keys(&dir, "format", "template_fil = \"x.md\"");
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("did you mean `template_file`"), "{err}");

    let (_t, dir) = project("");
    std::fs::write(dir.join("bad.md"), "no placeholders here").unwrap();
    component_keys(&dir, "format", "template_file = \"bad.md\"");
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("bad.md") && err.contains("<curr_instructions>"), "{err}");

    let (_t, dir) = project("");
    component_keys(&dir, "format", "template = \"compakt\"");
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("did you mean \"compact\""), "{err}");
}

fn seed_folder(dir: &Path, name: &str, instruction: &str, format: Option<&str>) {
    let d = dir.join("seeds").join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("instruction.md"), instruction).unwrap();
    if let Some(f) = format {
        std::fs::write(d.join("format.md"), f).unwrap();
    }
}

/// Several seed candidates (gepa #134; in gepa 0.1.4 `initialize_gepa_state`, core/state.py,
/// scores the one seed on val before the loop): every seed is scored on all of val before the first
/// proposal, and each goes on the fronts it wins. Here prompts/ knows rule A and seeds/bc/ rules B
/// and C: neither dominates, so both are on the frontier and both are parents.
#[test]
fn several_seeds_are_all_scored_on_val_first_and_all_on_the_frontier() {
    let (_t, dir) = project("max_metric_calls = 200\nseed = 6");
    seed_folder(&dir, "bc", "Answer the item. rule B rule C", Some("Reply with the code only."));
    let (r, events) = run_with(&dir, learns);
    // The seeds are candidates 0 and 1, scored in round 0, before any proposal is planned.
    let first_proposal = events
        .iter()
        .position(|e| matches!(e, Event::RoundStarted { proposals, .. } if !proposals.is_empty()))
        .expect("a proposal");
    let seeds: Vec<(usize, Option<String>)> = events[..first_proposal]
        .iter()
        .filter_map(|e| match e {
            Event::CandidateAdded { id, origin: gepa_tui::engine::Origin::Seed, note, .. } => Some((*id, note.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(seeds.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1], "{seeds:?}");
    assert!(seeds[1].1.as_deref().is_some_and(|n| n.contains("seeds/bc/")), "{seeds:?}");
    let val_scored = events[..first_proposal].iter().filter(|e| matches!(e, Event::ValEvaluated { .. })).count();
    assert_eq!(val_scored, 2);
    // Val has 16 examples, two per group: the seeds hold A's and B's + C's fronts alone.
    let state = gepa_tui::engine::RunState::from_events(&events[..first_proposal]);
    let fronts = state.front_sets();
    assert_eq!(fronts.iter().filter(|f| f.contains(&0) && !f.contains(&1)).count(), 2);
    assert_eq!(fronts.iter().filter(|f| f.contains(&1) && !f.contains(&0)).count(), 4);
    assert_eq!(state.metric_calls, 32, "both seeds cost a val pass");
    // Both are chosen as parents at some point.
    let parents: std::collections::BTreeSet<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::ProposalFinished { parent, .. } => Some(*parent),
            _ => None,
        })
        .collect();
    assert!(parents.contains(&0) && parents.contains(&1), "{parents:?}");
    assert!(r.candidates > 2);
}

#[test]
fn a_seed_folder_is_checked_when_the_project_loads() {
    // A component file missing.
    let (_t, dir) = project("");
    seed_folder(&dir, "short", "rule B", None);
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("seeds/short/format.md") && err.contains("component `format`"), "{err}");
    // A file that names no component.
    let (_t, dir) = project("");
    seed_folder(&dir, "typo", "rule B", Some("x"));
    std::fs::write(dir.join("seeds/typo/instructon.md"), "rule C").unwrap();
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("seeds/typo/instructon.md") && err.contains("did you mean `instruction.md`"), "{err}");
    // A copy of the component files' seed.
    let (_t, dir) = project("");
    seed_folder(&dir, "same", "Answer the item. rule A", Some("Reply with the code only."));
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("seeds/same") && err.contains("same texts"), "{err}");
}

fn planned_parents(events: &[Event]) -> Vec<Vec<usize>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RoundStarted { round, proposals, .. } if *round > 0 && !proposals.is_empty() => {
                Some(proposals.iter().map(|p| p.parent).collect())
            }
            _ => None,
        })
        .collect()
}

/// gepa strategies/proposal_sampling.py, PxNSampling(p, n): p parents drawn by the candidate
/// selector, n proposals from each. Two seeds that split the fronts make both likely parents.
#[test]
fn parents_per_round_gives_p_parents_n_children_each() {
    let (_t, dir) = project("max_metric_calls = 300\nseed = 3\nproposals_per_round = 4\nparents_per_round = 2");
    seed_folder(&dir, "bc", "Answer the item. rule B rule C", Some("Reply with the code only."));
    let (_, events) = run_with(&dir, learns);
    let rounds = planned_parents(&events);
    assert!(rounds.len() >= 3, "{rounds:?}");
    for p in rounds.iter().filter(|p| p.len() == 4) {
        assert!(p[0] == p[1] && p[2] == p[3], "{rounds:?}");
    }
    assert!(rounds.iter().any(|p| p.len() == 4 && p[0] != p[2]), "two different parents in a round: {rounds:?}");

    // One parent per round: gepa's SameParentSampling.
    let (_t, dir) = project("max_metric_calls = 300\nseed = 3\nproposals_per_round = 4\nparents_per_round = 1");
    seed_folder(&dir, "bc", "Answer the item. rule B rule C", Some("Reply with the code only."));
    let (_, events) = run_with(&dir, learns);
    let rounds = planned_parents(&events);
    assert!(rounds.iter().all(|p| p.iter().all(|&x| x == p[0])), "{rounds:?}");

    let (_t, dir) = project("proposals_per_round = 4\nparents_per_round = 3");
    let err = Project::load(&dir).unwrap_err().to_string();
    assert!(err.contains("parents_per_round") && err.contains("divide proposals_per_round"), "{err}");
}

/// gepa strategies/proposal_selection.py, TopKImprovements(k): of a round's passing proposals the
/// k with the largest gains go on; the others are reported as not selected.
#[test]
fn accept_per_round_top_k_sends_the_k_best_passing_proposals_to_val() {
    let (_t, dir) = project(
        "max_metric_calls = 400\nseed = 2\nproposals_per_round = 3\naccept_per_round = \"top_k\"\naccept_top_k = 2",
    );
    let (_, events) = run_with(&dir, learns);
    let mut per_round: std::collections::BTreeMap<u64, (usize, usize)> = Default::default();
    for e in &events {
        if let Event::ProposalFinished { round, outcome, .. } = e {
            let r = per_round.entry(*round).or_default();
            match outcome {
                ProposalOutcome::Accepted { .. } => r.0 += 1,
                ProposalOutcome::NotSelected { .. } => r.1 += 1,
                _ => {}
            }
        }
    }
    assert!(per_round.values().all(|(acc, not)| *acc <= 2 && (*not == 0 || *acc == 2)), "{per_round:?}");
    assert!(per_round.values().any(|(acc, _)| *acc == 2), "{per_round:?}");
}

/// `max_wall_secs` stops the run inside a round: a reflection on a slow local model can take
/// longer than the whole limit (a 480 s cap ran to 1797 s when it was checked between rounds
/// only). The round in flight is dropped (recorded as voided; the finish still waits for its call
/// so that what it paid is booked), the seed's scoring is kept, and result.json names the rule.
/// Checked between rounds only, the reflection answers, its child is tested and the proposal is
/// recorded.
#[test]
fn max_wall_secs_stops_inside_a_round_whose_reflection_is_slower_than_the_limit() {
    let (_t, dir) = project("max_metric_calls = 500\nseed = 1\nmax_wall_secs = 1.5");
    let project = Arc::new(Project::load(&dir).unwrap());
    let task: Arc<dyn ChatBackend> =
        Arc::new(ScriptedBackend::new(|req: &ChatRequest| Ok::<_, AttemptError>(common::task_reply(req))));
    // Each reflection answers after 5 s: a local model on a long generation, past the limit.
    let slow = ScriptedBackend::new(|req: &ChatRequest| Ok::<_, AttemptError>(common::reflection_reply(req)))
        .with_latency(std::time::Duration::from_secs(5));
    let models = Arc::new(common::models_from(&project, task, Arc::new(slow)));
    let task = Arc::new(Task::new(project.clone(), models).unwrap());
    let (r, events) = rt().block_on(async {
        let (engine, _h) = Engine::create(project, task, EngineOptions::default()).unwrap();
        let out = engine.run().await.unwrap();
        let (events, _) = load_events(&out.run_dir, false).unwrap();
        (out.result.unwrap(), events)
    });
    assert_eq!(stopped_by(&r, &dir), "max_wall_secs");
    assert!(r.stop_reason.contains("max_wall_secs"), "{}", r.stop_reason);
    assert_eq!(r.candidates, 1, "only the seed: the limit came before any reflection answered");
    assert!(events.iter().any(|e| matches!(e, Event::RoundVoided { round } if *round > 0)), "no round was voided");
    assert!(!events.iter().any(|e| matches!(e, Event::ProposalFinished { .. })), "a proposal was recorded");
}
