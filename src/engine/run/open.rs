//! Opening a run: creating it, resuming it from its event log, and the rounds a crash left planned but not committed.

use super::cache::EvalCache;
use super::{Activity, Engine, HeldEvents, Live, Shared, Spend};
use crate::engine::event::{Event, HumanAction};
use crate::engine::handle::{Command, EngineHandle, EngineOptions, Notice};
use crate::engine::reflect::{builtin_template, validate_template};
use crate::engine::settings;
use crate::engine::state::RunState;
use crate::engine::steer::Inbox;
use crate::eval::Task;
use crate::project::config::OptimizerConfig;
use crate::project::Project;
use crate::store;
use crate::store::{read_log, EventLog, RunLock};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;

/// How long the processes that wrote a run's log were running it, from the `t` stamps: each part
/// runs from its first event (`run_started`, or `resumed`) to the last event before the next
/// `resumed`. Read a line at a time, keeping only `t` and `event`: the log is as big as its
/// traces, and a resume holds its events already (reading it whole took a second copy: 391 MiB
/// instead of 240 MiB to resume a 152 MiB log).
pub(super) fn active_ms(log: &Path) -> u64 {
    /// The two fields read of an event line (the rest is skipped, not held).
    #[derive(serde::Deserialize)]
    struct Stamp {
        t: Option<Value>,
        event: Option<Value>,
    }
    let Ok(file) = std::fs::File::open(log) else { return 0 };
    let (mut total, mut part) = (0u64, None::<(u64, u64)>);
    for line in std::io::BufReader::new(file).split(b'\n') {
        let Ok(line) = line else { return 0 };
        let Ok(v) = serde_json::from_slice::<Stamp>(&line) else { continue };
        let Some(t) = v.t.as_ref().and_then(Value::as_u64) else { continue };
        if v.event.as_ref().and_then(Value::as_str) == Some("resumed") {
            if let Some((first, last)) = part.take() {
                total += last.saturating_sub(first);
            }
        }
        part = Some(match part {
            Some((first, _)) => (first, t),
            None => (t, t),
        });
    }
    total + part.map_or(0, |(first, last)| last.saturating_sub(first))
}

/// Reads a run's events (repairing a torn tail when `repair`): the events and a warning if repaired.
/// Events that parse but do not fit together (a hand-edited or damaged log) are an error naming
/// the first bad one, never a panic later.
pub fn load_events(run_dir: &Path, repair: bool) -> Result<(Vec<Event>, Option<String>)> {
    store::refuse_symlinks(run_dir)?;
    let path = run_dir.join("events.jsonl");
    let log = read_log::<Event>(&path, repair)?;
    if let Err((i, why)) = RunState::check_events(&log.values) {
        bail!("{}: event {} ({}) does not fit the run: {why}", path.display(), i + 1, log.values[i].name());
    }
    let warning = log.repaired_bytes.map(|n| {
        format!(
            "{}: the last line was torn by a crash; cut {n} bytes and continuing from the last complete round",
            path.display()
        )
    });
    Ok((log.values, warning))
}

/// The rounds a log planned after its last committed round, each with the human decisions taken
/// with it, in round order; and the decisions to be taken again, with their steering request's id
/// if they came from the inbox: those of a dropped round (`round_voided`) not recorded in a round
/// planned after it (a crash came between the void and the next plan), then those of rounds whose
/// plan cannot be redone (logs from before the pipeline, whose merges were not recorded).
pub(super) fn recovered_rounds(
    events: &[Event],
    committed: Option<u64>,
) -> (Vec<(Event, Vec<HumanAction>)>, Vec<Command>) {
    let mut planned: BTreeMap<u64, (Event, Vec<HumanAction>)> = BTreeMap::new();
    // The request id each decision was recorded with, by round.
    let mut ids: BTreeMap<u64, Vec<(HumanAction, String)>> = BTreeMap::new();
    let mut again: Vec<(HumanAction, Option<String>)> = Vec::new();
    let Some(last) = committed else { return (vec![], vec![]) };
    for ev in events {
        match ev {
            // A resume redoing this very plan records it again, then its decisions one by one:
            // a kill in between must not lose those not recorded again yet.
            Event::RoundStarted { round, .. }
                if *round > last && planned.get(round).is_none_or(|(started, _)| started != ev) =>
            {
                planned.insert(*round, (ev.clone(), vec![]));
                ids.remove(round);
            }
            Event::RoundVoided { round } => {
                if let Some((_, actions)) = planned.remove(round) {
                    // The live run takes them again with the next plan (`void_from`), before the
                    // decisions waiting: a crash before that plan must not lose them.
                    let mut recorded = ids.remove(round).unwrap_or_default();
                    for a in actions {
                        let id = recorded.iter().position(|(b, _)| *b == a).map(|i| recorded.remove(i).1);
                        again.push((a, id));
                    }
                }
            }
            Event::Human { round, action, request } if *round > last => {
                // Recorded again with a later plan: taken there, not again.
                if let Some(i) = again.iter().position(|(a, _)| a == action) {
                    again.remove(i);
                }
                match planned.get_mut(round) {
                    Some((_, actions)) if !actions.contains(action) => {
                        actions.push(action.clone());
                        if let Some(id) = request {
                            ids.entry(*round).or_default().push((action.clone(), id.clone()));
                        }
                    }
                    Some(_) => {}
                    None => again.push((action.clone(), request.clone())),
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut expect = last + 1;
    for (round, (started, actions)) in planned {
        let redoable = round == expect && matches!(started, Event::RoundStarted { planned_after: Some(_), .. });
        if redoable {
            out.push((started, actions));
            expect += 1;
        } else {
            let mut recorded = ids.remove(&round).unwrap_or_default();
            for a in actions {
                if !again.iter().any(|(b, _)| *b == a) {
                    let id = recorded.iter().position(|(b, _)| *b == a).map(|i| recorded.remove(i).1);
                    again.push((a, id));
                }
            }
        }
    }
    let again = again
        .into_iter()
        .map(|(action, id)| match id {
            Some(id) => Command::Request { id, action },
            None => Command::Act(action),
        })
        .collect();
    (out, again)
}

impl Engine {
    /// Starts a new run in `.gepa/runs/<id>/`.
    pub fn create(project: Arc<Project>, task: Arc<Task>, opts: EngineOptions) -> Result<(Engine, EngineHandle)> {
        let problems = project.optimization_problems();
        if !problems.is_empty() {
            bail!("the project cannot be optimized yet:\n  {}", problems.join("\n  "));
        }
        let run_id = store::new_run_id();
        let run_dir = project.runs_dir().join(&run_id);
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("cannot create the run folder {}", run_dir.display()))?;
        std::fs::write(run_dir.join("gepa.toml"), &project.config_text)
            .with_context(|| format!("cannot write {}", run_dir.join("gepa.toml").display()))?;
        let lock = RunLock::acquire(&run_dir)?;
        let log = EventLog::create(&run_dir.join("events.jsonl"))?;
        let replays = opts.draws_of.clone();
        let draws = replays.clone().unwrap_or_else(|| run_id.clone());
        let opt = settings::for_new_run(&project.config.optimizer, &opts.overrides);
        let mut engine =
            Self::assemble(project, task, run_dir, log, lock, RunState::default(), draws, 0, 0, opts, &[], opt)?;
        let p = &engine.sh.project;
        let opt = &engine.sh.opt;
        let ev = Event::RunStarted {
            run_id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            seed: opt.seed,
            components: p.component_names(),
            train_ids: p.train.iter().map(|e| e.id.clone()).collect(),
            val_ids: p.val.iter().map(|e| e.id.clone()).collect(),
            test_ids: p.test.iter().map(|e| e.id.clone()).collect(),
            max_metric_calls: opt.max_metric_calls,
            proposals_per_round: opt.proposals_per_round,
            pipeline_lag: Some(opt.max_lag()),
            config_hash: blake3::hash(p.config_text.as_bytes()).to_hex().to_string(),
            branched_from: engine.seed_texts.as_ref().map(|(_, from)| from.clone()),
            draws: replays,
            frontier: opt.frontier,
            protected: p.protected.clone(),
            settings: Some(Box::new(opt.clone())),
        };
        engine.sh.emit(ev.clone(), true)?;
        engine.state.apply(&ev);
        let handle = engine.handle.clone();
        Ok((engine, handle))
    }

    /// Continues an interrupted run: the rounds it had planned and not committed are redone from
    /// their recorded plans, then planning goes on as if nothing had happened.
    pub fn resume(
        project: Arc<Project>,
        task: Arc<Task>,
        run_id: &str,
        opts: EngineOptions,
    ) -> Result<(Engine, EngineHandle)> {
        let run_dir = project.runs_dir().join(run_id);
        if !run_dir.join("events.jsonl").is_file() {
            bail!(store::StoreError::NoSuchRun(run_id.to_string()));
        }
        let lock = RunLock::acquire(&run_dir)?;
        let (events, warning) = load_events(&run_dir, true)?;
        let state = RunState::from_events(&events);
        if state.run_id.is_empty() {
            bail!("{}: the run has no run_started event; it cannot be resumed", run_dir.display());
        }
        let hash = blake3::hash(project.config_text.as_bytes()).to_hex().to_string();
        let old_hash = events.iter().find_map(|e| match e {
            Event::RunStarted { config_hash, .. } => Some(config_hash.clone()),
            _ => None,
        });
        // The settings it goes on with: the ones it recorded, with what the command line and an
        // edit of gepa.toml change (a change the run cannot take is refused here).
        let at_start = settings::at_start(&run_dir);
        let recorded = match events.first() {
            Some(Event::RunStarted { settings: Some(s), .. }) => (**s).clone(),
            // A log from before the settings were recorded: gepa.toml as it was, with what the
            // log named.
            _ => {
                let named = &state.settings;
                OptimizerConfig {
                    seed: named.seed,
                    max_metric_calls: named.max_metric_calls,
                    proposals_per_round: named.proposals_per_round,
                    frontier: named.frontier,
                    ..at_start.clone().unwrap_or_else(|| project.config.optimizer.clone())
                }
            }
        };
        let (opt, changes) =
            settings::for_resume(&recorded, at_start.as_ref(), &project.config.optimizer, &opts.overrides)
                .map_err(|why| anyhow!("cannot resume run {run_id}: {why}"))?;
        // The time between a stop and this resume is not the run's.
        let active = active_ms(&run_dir.join("events.jsonl"));
        let log = EventLog::open_append(&run_dir.join("events.jsonl"))?;
        let draws = state.draws.clone();
        let (seq, events_ref) = (events.len() as u64, &events);
        let mut engine = Self::assemble(
            project,
            task,
            run_dir,
            log,
            lock,
            state,
            draws,
            seq,
            active,
            opts,
            events_ref,
            opt.clone(),
        )?;
        if let Some(w) = warning {
            engine.sh.notify(Notice::Warning(w));
        }
        if old_hash.is_some_and(|h| h != hash) {
            engine.sh.notify(Notice::Warning(
                "gepa.toml changed since this run started; the resumed run follows the new settings".into(),
            ));
        }
        if engine.state.val_ids != engine.sh.project.val.iter().map(|e| e.id.clone()).collect::<Vec<_>>() {
            bail!("the val split changed since run {run_id} started; resuming would mix scores of different data");
        }
        let handle = engine.handle.clone();
        if engine.state.finished.is_none() {
            let (recovered, again) = recovered_rounds(&events, engine.state.round);
            let after_round = engine.state.round.unwrap_or(0);
            engine.sh.emit(Event::Resumed { after_round }, true)?;
            if !changes.is_empty() {
                let ev = Event::SettingsChanged {
                    settings: Box::new(opt),
                    changed: changes.iter().map(|c| c.key.clone()).collect(),
                };
                engine.sh.emit(ev.clone(), true)?;
                engine.state.apply(&ev);
                let list: Vec<String> = changes.iter().map(|c| c.describe()).collect();
                engine.sh.notify(Notice::Warning(format!("resumed with new settings: {}", list.join(", "))));
            }
            // The rounds planned before the interruption keep their plans and decisions: they
            // are redone first, so the run goes on exactly as it would have.
            for (started, actions) in &recovered {
                engine.sh.emit(started.clone(), true)?;
                for a in actions {
                    let Event::RoundStarted { round, .. } = started else { continue };
                    // A steering request keeps its id (the inbox knows it as taken by it).
                    let request = events.iter().rev().find_map(|e| match e {
                        Event::Human { round: r, action: b, request } if r == round && b == a => request.clone(),
                        _ => None,
                    });
                    if let Some(id) = &request {
                        engine.in_flight_requests.push((*round, id.clone(), a.clone()));
                    }
                    engine.sh.emit(Event::Human { round: *round, action: a.clone(), request }, true)?;
                }
            }
            // The chance to merge after the last commit is taken by the first round redone when
            // `run` revalidates it, as it was when that round was planned (a merge planned right
            // after the commit stays a merge); a fixed-lag pipeline does not revalidate, so a
            // round planned after the last commit has taken it already.
            let consumed = engine.sh.opt.keep_stale_plans
                && recovered.iter().any(
                    |(e, _)| matches!(e, Event::RoundStarted { planned_after: Some(a), .. } if Some(*a) == engine.state.round),
                );
            engine.merge_ready = engine.state.last_round_found_new && !consumed;
            engine.recovered = recovered;
            // Decisions recorded in a round dropped or not redoable are taken again by the next
            // plan, first, as the live run would have; a steering request keeps its id, and the
            // inbox does not hand it over a second time.
            for cmd in &again {
                if let Command::Request { id, .. } = cmd {
                    engine.inbox.lock().expect("inbox").taken_again(id);
                }
            }
            engine.command_buf = again;
            // Last: the cache takes the evaluations out of the events (a trace is held once).
            *engine.sh.cache.lock().expect("cache") = EvalCache::rebuild(events);
        }
        Ok((engine, handle))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn assemble(
        project: Arc<Project>,
        task: Arc<Task>,
        run_dir: PathBuf,
        log: EventLog,
        lock: RunLock,
        state: RunState,
        draws: String,
        seq: u64,
        active_before_ms: u64,
        opts: EngineOptions,
        events: &[Event],
        opt: OptimizerConfig,
    ) -> Result<Engine> {
        if opt.proposals_per_round == 0 || opt.minibatch_size == 0 || opt.concurrency == 0 || opt.max_lag() == 0 {
            bail!(
                "gepa.toml: [optimizer] proposals_per_round, pipeline_lag, minibatch_size and concurrency must be at least 1"
            );
        }
        let template = crate::engine::reflect::template_for(&project)?;
        let mut component_templates = BTreeMap::new();
        for c in &project.config.components {
            let text = match (&c.template_file, c.template) {
                (Some(file), _) => {
                    let what = format!("[[components]] `{}` template_file", c.name);
                    let t = project.template_text(file, &what)?;
                    validate_template(&t).map_err(|e| anyhow!("{file}: {e}"))?;
                    t
                }
                (None, Some(kind)) => builtin_template(kind).to_string(),
                (None, None) => continue,
            };
            component_templates.insert(c.name.clone(), text);
        }
        let allowed = {
            let r = &project.config.reflection;
            let model = project.config.models.get("reflection");
            crate::engine::adapt::Allowed {
                adapt: r.adapt,
                // Components with their own template keep it: with all of them so, no swap is left.
                template: (r.template_file.is_none()
                    && !project.config.components.iter().all(|c| c.has_own_template()))
                .then_some(r.template),
                temperature: model.and_then(|m| m.temperature),
                retry_max_tokens: r.retry_tokens(model.and_then(|m| m.max_tokens)),
                truncation_retries: r.truncation_retries,
            }
        };
        let (ptx, prx) = watch::channel(opts.start_paused);
        let (vtx, vrx) = mpsc::unbounded_channel();
        let (ctx, crx) = mpsc::unbounded_channel();
        let handle = EngineHandle { paused: ptx, cancel: CancellationToken::new(), commands: ctx };
        let sh = Shared {
            draws,
            eval_slots: Arc::new(Semaphore::new(opt.concurrency)),
            gauge: Mutex::new(Default::default()),
            said_serial: Default::default(),
            live: Live {
                metric_calls: AtomicU64::new(state.metric_calls),
                in_flight: AtomicUsize::new(0),
                reflecting: AtomicUsize::new(0),
                peak_in_flight: AtomicUsize::new(0),
            },
            one_per_round: opt.proposals_per_round == 1,
            previews: vtx,
            project,
            task,
            opt,
            template,
            component_templates,
            allowed,
            log: Mutex::new(log),
            seq: AtomicU64::new(seq),
            notices: opts.notices,
            observer: opts.observer,
            paused: prx,
            started: Instant::now(),
            activity: Mutex::new(Activity::default()),
            held: Mutex::new(HeldEvents::default()),
            next_gen: AtomicU64::new(1),
            cache: Mutex::new(EvalCache::default()),
            rounds_in_flight: AtomicUsize::new(0),
            evaluations_cached: AtomicU64::new(state.evaluations_cached),
            next_commit: AtomicU64::new(state.round.map(|r| r + 1).unwrap_or(0)),
            seed_gen: AtomicU64::new(u64::MAX),
            spend: Mutex::new(Spend { committed: state.cost_usd, ..Default::default() }),
            cost_stop: tokio::sync::Notify::new(),
            closing: Default::default(),
            evaluations_dropped: AtomicU64::new(0),
        };
        let inbox = Arc::new(Mutex::new(Inbox::open(&run_dir, events)));
        Ok(Engine {
            sh: Arc::new(sh),
            inbox,
            requests: Vec::new(),
            in_flight_requests: Vec::new(),
            run_dir,
            state,
            handle,
            active_before_ms,
            commands: crx,
            previews: vrx,
            command_buf: Vec::new(),
            auto_approve: opts.auto_approve,
            seed_texts: opts.seed_texts,
            merge_ready: false,
            shadows: Default::default(),
            recovered: Vec::new(),
            _lock: lock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run stopped for an hour and resumed counts only the minutes it ran.
    #[test]
    fn active_time_leaves_out_the_time_between_a_stop_and_a_resume() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.jsonl");
        let lines = [
            r#"{"seq":0,"t":1000,"event":"run_started"}"#,
            r#"{"seq":1,"t":61000,"event":"round_finished"}"#,
            // Killed here; resumed an hour later.
            r#"{"seq":2,"t":3661000,"event":"resumed"}"#,
            r#"{"seq":3,"t":3691000,"event":"round_finished"}"#,
            r#"{"seq":4,"t":3700000,"event":"resumed"}"#,
            r#"{"seq":5,"t":3705000,"event":"finished"}"#,
            "{\"seq\":6,\"t\":99",
        ];
        std::fs::write(&log, lines.join("\n")).unwrap();
        assert_eq!(active_ms(&log), 60_000 + 30_000 + 5_000);
        assert_eq!(active_ms(&dir.path().join("missing.jsonl")), 0);
    }
}
