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
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn project(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proj");
    common::write_project(&p, extra);
    (dir, p)
}

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
