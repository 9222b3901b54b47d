//! Experiment tracking: each run also becomes an MLflow run (`[tracking] mlflow` in gepa.toml, or
//! `MLFLOW_TRACKING_URI`), through MLflow's REST API. Tracking never stops or slows the
//! optimization: the engine shows each notice to an observer that copies a few numbers into a
//! bounded queue without waiting (`try_send`), and a background task sends them (`worker`),
//! trying again while the server does not answer and saying so in the front end's warnings.

pub mod mlflow;
mod record;
mod worker;

use crate::engine::setup::{open_engine, RunArgs};
use crate::engine::{Engine, EngineHandle, Notice, RunResult};
use crate::eval::Task;
use crate::project::Project;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub use record::metric_key;

/// Updates held at most while the server does not answer; past that, new ones are dropped and
/// counted (a committed round is one update, a candidate another).
pub const QUEUE_UPDATES: usize = 4096;
/// At the end of a run, how long the last updates and the artifacts may take to reach MLflow
/// before the program exits anyway (saying what was not sent).
pub const FLUSH_SECS: u64 = 20;

/// Where the runs go.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub url: String,
    pub experiment: String,
}

impl Target {
    /// gepa.toml's `[tracking] mlflow` (`""`: off), else `MLFLOW_TRACKING_URI`; the experiment
    /// from `[tracking] experiment`, else `MLFLOW_EXPERIMENT_NAME`, else the project folder's
    /// name. Err: the environment names something that is not a tracking server's URL.
    pub fn of(project: &Project) -> Result<Option<Target>, String> {
        let env = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let t = &project.config.tracking;
        let url = match &t.mlflow {
            Some(u) if u.is_empty() => return Ok(None),
            Some(u) => u.clone(),
            None => match env("MLFLOW_TRACKING_URI") {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => u,
                Some(u) => {
                    return Err(format!(
                        "MLFLOW_TRACKING_URI is `{u}`, not a tracking server's http:// URL: gepa-tui records runs \
                         through an MLflow server's REST API (start one with `mlflow server`); this run is not tracked"
                    ))
                }
                None => return Ok(None),
            },
        };
        let folder = project.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let experiment = t.experiment.clone().or_else(|| env("MLFLOW_EXPERIMENT_NAME")).unwrap_or(folder);
        Ok(Some(Target { url, experiment: if experiment.is_empty() { "gepa-tui".into() } else { experiment } }))
    }
}

/// How the run ended, for the MLflow run's status.
#[derive(Debug, Clone, PartialEq)]
pub enum EndStatus {
    Finished,
    /// Stopped by a person; resumable (MLflow's `KILLED`).
    Stopped,
    /// The engine stopped with this error (MLflow's `FAILED`).
    Failed(String),
}

pub struct RunEnd {
    pub status: EndStatus,
    /// A finished run's result and folder (its best/ texts and result.json become artifacts).
    pub finished: Option<(RunResult, PathBuf)>,
}

impl RunEnd {
    /// How the engine's task ended.
    pub fn of(ended: &Result<crate::engine::RunOutcome>) -> RunEnd {
        match ended {
            Ok(o) => RunEnd {
                status: if o.result.is_some() { EndStatus::Finished } else { EndStatus::Stopped },
                finished: o.result.clone().map(|r| (r, o.run_dir.clone())),
            },
            Err(e) => RunEnd { status: EndStatus::Failed(format!("{e:#}")), finished: None },
        }
    }
}

/// A run being tracked: tell it how the run ended, then wait (bounded) for it to be sent.
pub struct Tracking {
    end: Option<oneshot::Sender<RunEnd>>,
    task: tokio::task::JoinHandle<String>,
}

impl Tracking {
    /// The run ended: the worker sends what is left and the final scores and artifacts.
    pub fn end(&mut self, end: RunEnd) {
        if let Some(tx) = self.end.take() {
            let _ = tx.send(end);
        }
    }

    /// Waits for the worker (at most `FLUSH_SECS` once `end` was called): what became of the
    /// tracking, in a line.
    pub async fn done(mut self) -> String {
        self.end.take();
        self.task.await.unwrap_or_else(|e| format!("MLflow: the tracking task failed: {e}"))
    }
}

/// `open_engine`, tracked when the project says so: the engine's notices go to `notices` as
/// ever, and to the tracker's queue.
pub fn open_tracked(
    project: Arc<Project>,
    task: Arc<Task>,
    args: &RunArgs,
    notices: mpsc::UnboundedSender<Notice>,
) -> Result<(Engine, EngineHandle, Option<Tracking>)> {
    let target = match Target::of(&project) {
        Ok(t) => t,
        Err(why) => {
            let _ = notices.send(Notice::Warning(why));
            None
        }
    };
    let mut opts = args.engine_options(notices.clone());
    let Some(target) = target else {
        let (engine, handle) = open_engine(project, task, args, opts)?;
        return Ok((engine, handle, None));
    };
    let client = mlflow::Client::new(&target.url).map_err(|e| anyhow::anyhow!("[tracking] mlflow: {e}"))?;
    let (tx, rx) = mpsc::channel(QUEUE_UPDATES);
    let dropped = Arc::new(AtomicU64::new(0));
    opts.observer = Some(observer(tx, dropped.clone()));
    let (engine, handle) = open_engine(project.clone(), task, args, opts)?;
    let state = engine.state();
    let begin = worker::Begin {
        run_id: state.run_id.clone(),
        params: record::params(&project, state),
        tags: tags(&project, state),
    };
    let (end_tx, end_rx) = oneshot::channel();
    let w = worker::Worker {
        client,
        target,
        begin,
        rx,
        end_rx,
        notices: notices.downgrade(),
        dropped,
        tally: record::Tally::new(state),
        run: None,
        experiment_id: None,
        down: None,
        rx_closed: false,
        end_taken: false,
        deadline: None,
        refused: Vec::new(),
    };
    Ok((engine, handle, Some(Tracking { end: Some(end_tx), task: tokio::spawn(w.run()) })))
}

/// Copies what tracking needs of each notice into the queue without ever waiting: when the queue
/// is full (the server has not answered for a while) the update is dropped and counted.
fn observer(tx: mpsc::Sender<record::Update>, dropped: Arc<AtomicU64>) -> crate::engine::handle::NoticeObserver {
    Arc::new(move |n: &Notice| {
        if let Some(u) = record::update_of(n) {
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(u) {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// The MLflow run's tags: which gepa run it is (a resume finds it by `gepa.run_id`), and the
/// note MLflow's UI shows as the run's description.
fn tags(project: &Project, state: &crate::engine::RunState) -> Vec<(String, String)> {
    let folder = project.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tags = vec![
        ("gepa.run_id".to_string(), state.run_id.clone()),
        ("gepa.project".to_string(), folder.clone()),
        ("gepa.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("mlflow.source.name".to_string(), "gepa-tui".to_string()),
        ("mlflow.source.type".to_string(), "LOCAL".to_string()),
        (
            "mlflow.note.content".to_string(),
            format!(
                "gepa-tui run `{}` of project `{folder}`: GEPA prompt evolution of {} on {} val examples. \
                 Metrics are plotted against metric calls (the step); the best prompts and result.json are \
                 the artifacts.",
                state.run_id,
                state.components.join(", "),
                state.val_ids.len()
            ),
        ),
    ];
    if let Ok(user) = std::env::var("USER") {
        tags.push(("mlflow.user".to_string(), user));
    }
    if let Some(b) = &state.branched_from {
        tags.push(("gepa.branched_from".to_string(), b.clone()));
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Event;

    fn candidate_added(round: u64) -> Notice {
        Notice::Event(Box::new(Event::CandidateAdded {
            id: 0,
            texts: Default::default(),
            parents: vec![],
            origin: crate::engine::Origin::Seed,
            changed: vec![],
            round,
            discovered_at: 0,
            note: None,
            review_item: None,
        }))
    }

    /// A queue nobody empties (a server that does not answer) takes its bound and no more; the
    /// rest are counted, and the engine's call returns at once each time.
    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (tx, mut rx) = mpsc::channel(3);
        let dropped = Arc::new(AtomicU64::new(0));
        let observe = observer(tx, dropped.clone());
        for round in 0..10 {
            observe(&candidate_added(round));
            // Live status and warnings are not the tracker's.
            observe(&Notice::Warning("w".into()));
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 7);
        let kept: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(kept, (0..3).map(|round| record::Update::Candidate { round }).collect::<Vec<_>>());
    }
}
