//! The background task that sends a run to MLflow: it takes the queued updates in order, batches
//! them to MLflow's limits, and tries again with a growing pause (1 s up to 30 s) while the server
//! does not answer. While it waits it reads nothing more, so the queue fills up to its bound and
//! the updates past it are dropped and counted, never held without limit. At the end it sends
//! the final scores, the best candidate's texts and result.json, for at most `FLUSH_SECS`.

use super::mlflow::{Client, MetricPoint, MlflowError, RunInfo, MAX_METRICS_PER_BATCH, MAX_PARAMS_PER_BATCH};
use super::record::{final_points, final_tags, now_ms, Tally, Update};
use super::{EndStatus, RunEnd, Target, FLUSH_SECS, QUEUE_UPDATES};
use crate::engine::Notice;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// At the end, how long a server that was not answering gets for one more try.
const DOWN_FLUSH_SECS: u64 = 3;
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// MLflow's cap on tags per `log-batch` (`MAX_PARAMS_TAGS_PER_BATCH`), and on entries in all.
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_ENTRIES_PER_BATCH: usize = 1000;

/// Who the run is, for the MLflow run made for it.
pub(super) struct Begin {
    pub run_id: String,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// One request to make, in order.
enum Job {
    /// Find the experiment, then the run made for this gepa run (a resume goes on in it) or a new one.
    Open,
    Batch {
        metrics: Vec<MetricPoint>,
        params: Vec<(String, String)>,
        tags: Vec<(String, String)>,
    },
    Artifact {
        path: String,
        bytes: Vec<u8>,
    },
    Status {
        status: &'static str,
        end_ms: Option<i64>,
    },
}

impl Job {
    fn batch() -> Job {
        Job::Batch { metrics: Vec::new(), params: Vec::new(), tags: Vec::new() }
    }

    /// Whether `metrics` and `tags` more fit in this batch under MLflow's limits.
    fn has_room(&self, metrics: usize, tags: usize) -> bool {
        match self {
            Job::Batch { metrics: m, params: p, tags: t } => {
                m.len() + metrics <= MAX_METRICS_PER_BATCH
                    && t.len() + tags <= MAX_TAGS_PER_BATCH
                    && m.len() + p.len() + t.len() + metrics + tags <= MAX_ENTRIES_PER_BATCH
            }
            _ => false,
        }
    }
}

pub(super) struct Worker {
    pub client: Client,
    pub target: Target,
    pub begin: Begin,
    pub rx: mpsc::Receiver<Update>,
    pub end_rx: oneshot::Receiver<RunEnd>,
    /// The front end's notices, not kept alive by the tracker (the front end stops reading
    /// when the engine is gone).
    pub notices: mpsc::WeakUnboundedSender<Notice>,
    pub dropped: Arc<AtomicU64>,
    pub tally: Tally,
    pub run: Option<RunInfo>,
    pub experiment_id: Option<String>,
    /// The last error while the server does not answer.
    pub down: Option<String>,
    pub rx_closed: bool,
    pub end_taken: bool,
    pub deadline: Option<Instant>,
    /// Requests the server refused (4xx), in words.
    pub refused: Vec<String>,
}

impl Worker {
    pub async fn run(mut self) -> String {
        let mut jobs = VecDeque::from([Job::Open]);
        let mut pause = FIRST_PAUSE;
        loop {
            // What the run sent meanwhile, unless the server is not answering: then the queue
            // bounds what is held.
            if self.down.is_none() {
                while let Ok(u) = self.rx.try_recv() {
                    self.push(u, &mut jobs);
                }
            }
            let Some(job) = jobs.pop_front() else {
                if self.end_taken {
                    break;
                }
                tokio::select! {
                    u = self.rx.recv(), if !self.rx_closed => match u {
                        Some(u) => self.push(u, &mut jobs),
                        None => self.rx_closed = true,
                    },
                    end = &mut self.end_rx, if !self.end_taken => self.take_end(end.ok(), &mut jobs),
                }
                continue;
            };
            let deadline = self.deadline;
            let attempt = self.exec(&job);
            let result = match deadline {
                Some(d) => tokio::time::timeout_at(d, attempt).await.unwrap_or_else(|_| {
                    Err(MlflowError::Unavailable("no answer in the time left at the run's end".into()))
                }),
                None => attempt.await,
            };
            match result {
                Ok(next) => {
                    pause = FIRST_PAUSE;
                    self.answered();
                    for j in next.into_iter().rev() {
                        jobs.push_front(j);
                    }
                }
                Err(MlflowError::Unavailable(e)) => {
                    jobs.push_front(job);
                    self.not_answering(&e, pause);
                    if self.deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let sleep = match self.deadline {
                        Some(d) => tokio::time::sleep_until(d.min(Instant::now() + pause)),
                        None => tokio::time::sleep(pause),
                    };
                    tokio::select! {
                        _ = sleep => {}
                        end = &mut self.end_rx, if !self.end_taken => self.take_end(end.ok(), &mut jobs),
                    }
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(MlflowError::Refused(e)) => {
                    if matches!(job, Job::Open) {
                        self.warn(format!("MLflow at {} refused: {e}; this run is not tracked", self.client.url()));
                        self.refused.push(e);
                        return self.report(&VecDeque::new(), true);
                    }
                    self.warn(format!("MLflow at {} refused an update (it is skipped): {e}", self.client.url()));
                    self.refused.push(e);
                }
            }
        }
        self.report(&jobs, false)
    }

    /// Folds one update; its metric points and tags join the last batch while they fit.
    fn push(&mut self, u: Update, jobs: &mut VecDeque<Job>) {
        let (metrics, tags) = self.tally.take(u);
        if metrics.is_empty() && tags.is_empty() {
            return;
        }
        if !jobs.back().is_some_and(|j| j.has_room(metrics.len(), tags.len())) {
            jobs.push_back(Job::batch());
        }
        if let Some(Job::Batch { metrics: m, tags: t, .. }) = jobs.back_mut() {
            m.extend(metrics);
            t.extend(tags);
        }
    }

    /// The front end says the run ended: what is still queued, then the final scores, the
    /// artifacts and the run's status, all within `FLUSH_SECS`.
    fn take_end(&mut self, end: Option<RunEnd>, jobs: &mut VecDeque<Job>) {
        self.end_taken = true;
        // A server that is not answering gets one more try, not the whole flush time.
        let flush =
            if self.down.is_some() { Duration::from_secs(DOWN_FLUSH_SECS) } else { Duration::from_secs(FLUSH_SECS) };
        self.deadline = Some(Instant::now() + flush);
        while let Ok(u) = self.rx.try_recv() {
            self.push(u, jobs);
        }
        let Some(end) = end else { return };
        let mut tags = Vec::new();
        if let Some((r, run_dir)) = &end.finished {
            jobs.push_back(Job::Batch { metrics: final_points(r), params: Vec::new(), tags: final_tags(r) });
            for (path, bytes) in artifacts(run_dir) {
                jobs.push_back(Job::Artifact { path, bytes });
            }
        }
        if let EndStatus::Failed(why) = &end.status {
            tags.push(("gepa.error".to_string(), why.clone()));
        }
        if !tags.is_empty() {
            jobs.push_back(Job::Batch { metrics: Vec::new(), params: Vec::new(), tags });
        }
        let status = match end.status {
            EndStatus::Finished => "FINISHED",
            EndStatus::Stopped => "KILLED",
            EndStatus::Failed(_) => "FAILED",
        };
        jobs.push_back(Job::Status { status, end_ms: Some(now_ms()) });
    }

    /// Makes one request; Open gives the requests that must follow it first (the params).
    async fn exec(&mut self, job: &Job) -> Result<Vec<Job>, MlflowError> {
        let c = &self.client;
        match job {
            Job::Open => {
                let exp = match &self.experiment_id {
                    Some(e) => e.clone(),
                    None => {
                        let e = c.experiment_id(&self.target.experiment).await?;
                        self.experiment_id = Some(e.clone());
                        e
                    }
                };
                if let Some(run) = c.find_run(&exp, "gepa.run_id", &self.begin.run_id).await? {
                    // A resume goes on in the MLflow run its first life made; its params are there.
                    c.update_run(&run.run_id, "RUNNING", None).await?;
                    self.run = Some(run);
                    return Ok(Vec::new());
                }
                let run = c.create_run(&exp, &self.begin.run_id, now_ms(), &self.begin.tags).await?;
                self.run = Some(run);
                Ok(self
                    .begin
                    .params
                    .chunks(MAX_PARAMS_PER_BATCH)
                    .map(|p| Job::Batch { metrics: Vec::new(), params: p.to_vec(), tags: Vec::new() })
                    .collect())
            }
            Job::Batch { metrics, params, tags } => {
                let run = self.run.as_ref().expect("opened first");
                c.log_batch(&run.run_id, metrics, params, tags).await.map(|_| Vec::new())
            }
            Job::Artifact { path, bytes } => {
                let run = self.run.as_ref().expect("opened first");
                c.upload_artifact(&run.artifact_uri, path, bytes.clone()).await.map(|_| Vec::new())
            }
            Job::Status { status, end_ms } => {
                let run = self.run.as_ref().expect("opened first");
                c.update_run(&run.run_id, status, *end_ms).await.map(|_| Vec::new())
            }
        }
    }

    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        if let Some(tx) = self.notices.upgrade() {
            let _ = tx.send(Notice::Warning(message));
        }
    }

    fn not_answering(&mut self, e: &str, pause: Duration) {
        tracing::info!("MLflow: {e}; trying again in {}s", pause.as_secs());
        if self.down.is_none() && self.deadline.is_none() {
            self.warn(format!(
                "MLflow at {} is not answering ({e}): the run goes on, and what it records for MLflow waits \
                 (up to {QUEUE_UPDATES} updates) and is sent when it answers",
                self.client.url()
            ));
        }
        // The first error says why; later ones are mostly the same, or the time running out.
        self.down.get_or_insert_with(|| e.to_string());
    }

    fn answered(&mut self) {
        if self.down.take().is_some() {
            let dropped = self.dropped.load(Ordering::Relaxed);
            let lost = if dropped > 0 {
                format!(" ({dropped} updates did not fit in the queue and were dropped)")
            } else {
                String::new()
            };
            self.warn(format!("MLflow at {} answers again{lost}", self.client.url()));
        }
    }

    /// What became of the tracking, in a line for the end of a run.
    fn report(&self, unsent: &VecDeque<Job>, off: bool) -> String {
        let url = self.client.url();
        if off {
            return format!("MLflow at {url} refused: {}; this run was not tracked", self.refused.join("; "));
        }
        let (mut points, mut files, mut other) = (0, 0, 0);
        for j in unsent {
            match j {
                Job::Batch { metrics, params, tags } => {
                    points += metrics.len();
                    other += params.len() + tags.len();
                }
                Job::Artifact { .. } => files += 1,
                Job::Open | Job::Status { .. } => other += 1,
            }
        }
        let queued = self.rx_len();
        let why = self.down.as_deref().unwrap_or("no answer in time");
        let unsent = format!(
            "{points} metric points, {files} artifacts, {other} other entries{} not sent",
            if queued > 0 { format!(" and {queued} queued updates") } else { String::new() }
        );
        let mut s = match (&self.run, &self.experiment_id) {
            (Some(run), Some(exp)) => {
                let mut s = format!(
                    "MLflow: run {} in experiment \"{}\": {url}/#/experiments/{exp}/runs/{}",
                    run.run_id, self.target.experiment, run.run_id
                );
                if points + files + other + queued > 0 {
                    s.push_str(&format!("; it stopped answering ({why}): {unsent}"));
                }
                s
            }
            _ => format!("MLflow at {url} did not answer ({why}): this run is not recorded there ({unsent})"),
        };
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            s.push_str(&format!(
                "; {dropped} updates were dropped while it did not answer (the queue holds {QUEUE_UPDATES})"
            ));
        }
        if !self.refused.is_empty() {
            s.push_str(&format!("; {} refused: {}", self.refused.len(), self.refused.join("; ")));
        }
        s
    }

    fn rx_len(&self) -> usize {
        self.rx.len()
    }
}

/// The run's artifacts: `best/<file>` for each of the best candidate's texts, and `result.json`.
fn artifacts(run_dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut best: Vec<_> = std::fs::read_dir(run_dir.join("best"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .collect();
    best.sort_by_key(|e| e.file_name());
    for e in best {
        if let Ok(bytes) = std::fs::read(e.path()) {
            out.push((format!("best/{}", e.file_name().to_string_lossy()), bytes));
        }
    }
    if let Ok(bytes) = std::fs::read(run_dir.join("result.json")) {
        out.push(("result.json".to_string(), bytes));
    }
    out
}
