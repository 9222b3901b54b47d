//! The workbench: a ratatui screen over the engine's events.
//!
//! Three things run apart and never wait on each other: a thread reading the terminal, the engine as
//! a tokio task sending `Notice`s, and this loop, which folds both into the `App` and draws it only
//! when something changed, at most ~30 times a second (so a burst of resizes or notices is one
//! frame). The engine knows nothing of the screen; the screen never calls a model.

pub mod app;
pub mod attached;
pub mod editor;
pub mod external;
pub mod keymap;
pub mod model;
pub mod outbox;
pub mod remote;
pub mod start;
pub mod terminal;
pub mod theme;
pub mod views;

use crate::engine::run::load_events;
use crate::engine::setup::{prepare, RunArgs, HALTED_EXIT_CODE};
use crate::engine::{EngineHandle, Notice, RunOutcome};
use crate::eval::Task;
use crate::project::Project;
use crate::tracking::{EndStatus, RunEnd, Tracking};
use anyhow::{anyhow, bail, Context, Result};
use app::App;
use crossterm::event::Event as TermEvent;
use keymap::Keymap;
use model::Model;
use outbox::EngineCommand;
use start::{RunEntry, StartChoice, StartScreen};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use terminal::Term;
use theme::Theme;
use tokio::sync::mpsc;

/// At most this many frames a second.
const FRAME_GAP: Duration = Duration::from_millis(33);

/// What `gepa-tui [DIR]` and `gepa-tui run DIR` (without --headless) ask for.
#[derive(Debug, Clone, Default)]
pub struct TuiArgs {
    pub dir: PathBuf,
    /// `--run RUN`: reopen this run directly (browse if finished, resume if not).
    pub run: Option<String>,
    /// Start a new run at once instead of showing the start screen (`gepa-tui run DIR`).
    pub new_run: bool,
    /// Seed and budget overrides for a new or resumed run.
    pub run_args: RunArgs,
    pub theme: Option<String>,
}

/// The user's config dir for gepa-tui (keymap.toml, themes/).
pub fn config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "gepa-tui").map(|d| d.config_dir().to_path_buf())
}

/// The theme from `--theme` (or dark), without colours under NO_COLOR.
pub fn load_theme(name: Option<&str>) -> Result<Theme> {
    let t = Theme::load(name, config_dir().as_deref())?;
    Ok(if theme::no_color_requested() { t.without_colour() } else { t })
}

/// Whether a stored run has finished (it has result.json or a `finished` event).
fn run_is_finished(run_dir: &Path) -> bool {
    run_dir.join("result.json").is_file()
}

/// Opens the workbench. Everything that can be checked before taking over the terminal is
/// checked first, so a bad theme, keymap, project or run id is a plain error message.
pub fn run(args: TuiArgs) -> Result<ExitCode> {
    let theme = load_theme(args.theme.as_deref())?;
    let keymap = Keymap::load(config_dir().as_deref())?;
    let project = Project::load(&args.dir)?;
    let mut first: Option<StartChoice> = None;
    if let Some(id) = &args.run {
        let run_dir = project.runs_dir().join(id);
        if !run_dir.join("events.jsonl").is_file() {
            let known: Vec<String> =
                crate::store::list_runs(&project.runs_dir()).into_iter().map(|r| r.id).take(5).collect();
            bail!(
                "no run `{id}` in {}{}",
                project.runs_dir().display(),
                if known.is_empty() {
                    " (the project has no runs yet)".to_string()
                } else {
                    format!("; recent runs: {}", known.join(", "))
                }
            );
        }
        // A run a live process holds is attached to, whatever its state (see `open`).
        first = Some(if run_is_finished(&run_dir) {
            StartChoice::Browse(id.clone())
        } else {
            StartChoice::Resume(id.clone())
        });
    } else if args.new_run || args.run_args.resume.is_some() {
        first = Some(match &args.run_args.resume {
            Some(id) => StartChoice::Resume(id.clone()),
            None => StartChoice::New,
        });
    }
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let (mut term, guard) = terminal::init().context("cannot set up the terminal")?;
    let ctx = Ctx { args: &args, project: Arc::new(project), keymap, theme };
    let outcome = rt.block_on(session(&mut term, &ctx, first));
    drop(guard);
    drop(term);
    // Engine tasks still winding down must not hold the process open.
    rt.shutdown_timeout(Duration::from_secs(2));
    let outcome = outcome?;
    for msg in &outcome.earlier {
        eprintln!("{msg}");
    }
    if let Some(msg) = outcome.message(&args.dir) {
        eprintln!("{msg}");
    }
    if let Some(msg) = &outcome.tracking {
        eprintln!("{msg}");
    }
    Ok(match (&outcome.error, outcome.halted) {
        (Some(_), true) => ExitCode::from(HALTED_EXIT_CODE),
        (Some(_), false) => ExitCode::from(2),
        (None, _) => ExitCode::SUCCESS,
    })
}

struct Ctx<'a> {
    args: &'a TuiArgs,
    project: Arc<Project>,
    keymap: Keymap,
    theme: Theme,
}

#[derive(Default)]
struct SessionOutcome {
    run_id: Option<String>,
    finished: Option<String>,
    /// A live run was stopped by the user; it is resumable.
    stopped: bool,
    error: Option<String>,
    /// The error was the model provider's (a refused key, an empty account, an outage past
    /// max_outage_secs): the run is resumable once fixed.
    halted: bool,
    /// The screen was attached to a run another process runs, and left it going: who.
    detached: Option<String>,
    /// The user branched from this run: open this next.
    next: Option<StartChoice>,
    /// What was said of the runs left earlier in this session (by branching).
    earlier: Vec<String>,
    /// What became of the run's MLflow tracking.
    tracking: Option<String>,
}

impl SessionOutcome {
    fn message(&self, dir: &Path) -> Option<String> {
        let id = self.run_id.as_ref()?;
        if let (Some(e), true) = (&self.error, self.halted) {
            return Some(format!(
                "run {id} stopped: {e}\nnothing was scored for it; once that is fixed, resume with: gepa-tui --run {id} {}",
                dir.display()
            ));
        }
        if let Some(e) = &self.error {
            return Some(format!(
                "run {id}: the engine failed: {e}\nreopen it with: gepa-tui --run {id} {}",
                dir.display()
            ));
        }
        if let Some(who) = &self.detached {
            return Some(format!(
                "detached from run {id}; it goes on in {who} (gepa-tui --run {id} {} attaches again)",
                dir.display()
            ));
        }
        if self.stopped {
            return Some(format!("run {id} stopped; resume it with: gepa-tui --run {id} {}", dir.display()));
        }
        self.finished.as_ref().map(|r| format!("run {id} finished ({r})"))
    }
}

/// Reads terminal events on its own thread, so a slow frame or engine never delays a key.
struct InputReader {
    rx: mpsc::UnboundedReceiver<TermEvent>,
    stop: Arc<AtomicBool>,
    /// Asked to stop reading (another program has the terminal), and whether it has.
    hold: Arc<AtomicBool>,
    idle: Arc<AtomicBool>,
}

impl InputReader {
    fn spawn() -> InputReader {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(AtomicBool::new(false));
        let (flag, hold2, idle2) = (stop.clone(), hold.clone(), idle.clone());
        std::thread::Builder::new()
            .name("gepa-tui-input".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if hold2.load(Ordering::SeqCst) {
                        idle2.store(true, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    idle2.store(false, Ordering::SeqCst);
                    match crossterm::event::poll(Duration::from_millis(50)) {
                        Ok(true) => match crossterm::event::read() {
                            Ok(ev) => {
                                if tx.send(ev).is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
                        },
                        Ok(false) => {}
                        Err(_) => break,
                    }
                }
            })
            .expect("cannot start the input thread");
        InputReader { rx, stop, hold, idle }
    }

    /// Stops reading the terminal until `release` (so keys typed into `$EDITOR` stay there).
    fn hold(&self) {
        self.hold.store(true, Ordering::SeqCst);
        let start = Instant::now();
        while !self.idle.load(Ordering::SeqCst) && start.elapsed() < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn release(&mut self) {
        self.hold.store(false, Ordering::SeqCst);
        // Anything read just before holding belonged to the workbench; it is stale now.
        while self.rx.try_recv().is_ok() {}
    }
}

impl Drop for InputReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn session(term: &mut Term, ctx: &Ctx<'_>, mut first: Option<StartChoice>) -> Result<SessionOutcome> {
    let mut input = InputReader::spawn();
    let mut error: Option<String> = None;
    let mut earlier: Vec<String> = Vec::new();
    loop {
        let choice = match first.take() {
            Some(c) => c,
            None => match start_screen(term, ctx, &mut input, error.take()).await? {
                Some(c) => c,
                // Left from the start screen (a branch that could not open lands there too).
                None => return Ok(SessionOutcome { earlier, ..Default::default() }),
            },
        };
        match open(ctx, &choice) {
            Ok(opened) => {
                let mut outcome = workbench(term, ctx, &mut input, opened).await?;
                match outcome.next.take() {
                    Some(next) => {
                        earlier.extend(outcome.message(&ctx.args.dir));
                        first = Some(next);
                    }
                    None => {
                        outcome.earlier = earlier;
                        return Ok(outcome);
                    }
                }
            }
            Err(e) => {
                tracing::warn!("cannot open {choice:?}: {e:#}");
                error = Some(format!("{e:#}"));
            }
        }
    }
}

fn list_entries(project: &Project) -> Vec<RunEntry> {
    crate::store::list_runs(&project.runs_dir()).iter().map(RunEntry::from_summary).collect()
}

async fn start_screen(
    term: &mut Term,
    ctx: &Ctx<'_>,
    input: &mut InputReader,
    error: Option<String>,
) -> Result<Option<StartChoice>> {
    let mut screen = StartScreen::new(
        list_entries(&ctx.project),
        ctx.project.root.display().to_string(),
        ctx.keymap.clone(),
        ctx.theme.clone(),
    );
    screen.error = error;
    let mut dirty = true;
    loop {
        if dirty {
            term.draw(|f| views::start::render(f, f.area(), &screen, &screen.theme))?;
            dirty = false;
        }
        let Some(ev) = input.rx.recv().await else { return Ok(None) };
        dirty |= screen.on_terminal_event(&ev);
        while let Ok(ev) = input.rx.try_recv() {
            dirty |= screen.on_terminal_event(&ev);
        }
        if screen.quit {
            return Ok(None);
        }
        if let Some(c) = screen.choice.take() {
            return Ok(Some(c));
        }
    }
}

/// A run ready to show: its model, and the engine if it is live here, or the files it is followed
/// by when another process runs it.
struct Opened {
    model: Model,
    run_id: String,
    engine: Option<LiveEngine>,
    follower: Option<remote::Follower>,
    _log_guard: Option<tracing_appender::non_blocking::WorkerGuard>,
}

struct LiveEngine {
    handle: EngineHandle,
    task: Arc<Task>,
    notices: mpsc::UnboundedReceiver<Notice>,
    join: tokio::task::JoinHandle<Result<RunOutcome>>,
    tracking: Option<Tracking>,
}

/// Logs go to `tui.log` in the run folder, never to the terminal.
fn start_log(run_dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    crate::logging::log_to_run_folder(run_dir, "tui.log")
}

/// Opens the chosen run. A run another process is running (its lock is held: a headless run, a
/// workbench elsewhere) is attached to, whatever was chosen for it; one whose process is gone
/// (killed, power lost) resumes here.
fn open(ctx: &Ctx<'_>, choice: &StartChoice) -> Result<Opened> {
    let id = match choice {
        StartChoice::Resume(id) | StartChoice::Browse(id) | StartChoice::Attach(id) => Some(id),
        _ => None,
    };
    if let Some(id) = id {
        if let Some(opened) = attach(ctx, id)? {
            return Ok(opened);
        }
    }
    match (open_choice(ctx, choice), choice) {
        // It was let go between the look and the resume... or taken: attach if it is held now.
        (Err(e), StartChoice::Resume(id))
            if matches!(
                e.downcast_ref::<crate::store::StoreError>(),
                Some(crate::store::StoreError::Locked { .. })
            ) =>
        {
            attach(ctx, id)?.ok_or(e)
        }
        (result, _) => result,
    }
}

/// Attaches to run `id` if a live process holds it.
fn attach(ctx: &Ctx<'_>, id: &str) -> Result<Option<Opened>> {
    let run_dir = ctx.project.runs_dir().join(id);
    let Some((follower, holder, events)) = remote::Follower::open(&run_dir)? else { return Ok(None) };
    let log = start_log(&run_dir);
    let mut model = Model::from_events(&events).with_project(&ctx.project);
    if model.state.run_id.is_empty() {
        return Err(anyhow!("{}: the run has no run_started event yet; try again in a moment", run_dir.display()));
    }
    model.attached = true;
    tracing::info!("attached to run {id}, run by {}", holder.describe());
    model.remote = Some(remote::Remote::new(holder));
    Ok(Some(Opened { model, run_id: id.to_string(), engine: None, follower: Some(follower), _log_guard: log }))
}

fn open_choice(ctx: &Ctx<'_>, choice: &StartChoice) -> Result<Opened> {
    let project = &ctx.project;
    match choice {
        StartChoice::Browse(id) | StartChoice::Attach(id) => {
            let run_dir = project.runs_dir().join(id);
            let log = start_log(&run_dir);
            let (events, warning) = load_events(&run_dir, false)?;
            let mut model = Model::from_events(&events).with_project(project);
            model.warnings.extend(warning);
            if model.state.run_id.is_empty() {
                return Err(anyhow!("{}: the run has no run_started event", run_dir.display()));
            }
            tracing::info!("browsing run {id}");
            Ok(Opened { model, run_id: id.clone(), engine: None, follower: None, _log_guard: log })
        }
        StartChoice::New | StartChoice::Resume(_) | StartChoice::Branch { .. } => {
            let mut args = ctx.args.run_args.clone();
            args.resume = match choice {
                StartChoice::Resume(id) => Some(id.clone()),
                _ => None,
            };
            if let StartChoice::Branch { run, id } = choice {
                args.branch = Some(format!("{run}:{id}"));
            }
            let (project, task) = prepare(&ctx.args.dir, &args)?;
            let (tx, mut rx) = mpsc::unbounded_channel();
            // `--auto-approve` holds here as headless: `approve` policies are treated as `auto`.
            let (engine, handle, tracking) = crate::tracking::open_tracked(project.clone(), task.clone(), &args, tx)?;
            let run_dir = engine.run_dir().to_path_buf();
            // The folder name is what `--run` takes (it is the run id unless the folder was copied).
            let run_id = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let log = start_log(&run_dir);
            // Everything the engine emitted while opening is in events.jsonl already; keep only
            // the warnings from the channel and read the events from the file.
            let mut warnings = Vec::new();
            while let Ok(n) = rx.try_recv() {
                if matches!(n, Notice::Warning(_) | Notice::Refused { .. }) {
                    warnings.push(n);
                }
            }
            let (events, _) = load_events(&run_dir, false)?;
            let mut model = Model::from_events(&events).with_project(&project);
            for n in warnings {
                model.on_notice(n);
            }
            model.session_start_calls = model.state.metric_calls;
            model.attached = true;
            model.auto_approve = args.auto_approve;
            tracing::info!(
                "{} run {run_id} in {}",
                if args.resume.is_some() { "resuming" } else { "starting" },
                run_dir.display()
            );
            let join = tokio::spawn(engine.run());
            Ok(Opened {
                model,
                run_id,
                engine: Some(LiveEngine { handle, task, notices: rx, join, tracking }),
                follower: None,
                _log_guard: log,
            })
        }
    }
}

/// Suspends the workbench, runs `$EDITOR` on the texts, and takes the terminal back.
fn edit_externally(
    term: &mut Term,
    input: &mut InputReader,
    request: &outbox::ExternalEdit,
    components: &[crate::project::config::ComponentConfig],
) -> Result<outbox::ExternalOutcome> {
    let command = external::editor_command();
    input.hold();
    terminal::suspend();
    tracing::info!("running {command:?} on {} component(s)", request.names.len());
    let outcome = tokio::task::block_in_place(|| external::edit(request, components, &command));
    let back = terminal::resume(term);
    input.release();
    back?;
    Ok(outcome)
}

async fn next_notice(rx: &mut Option<mpsc::UnboundedReceiver<Notice>>) -> Option<Notice> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

type EngineJoin = tokio::task::JoinHandle<Result<RunOutcome>>;

async fn engine_end(join: &mut Option<EngineJoin>) -> std::result::Result<Result<RunOutcome>, tokio::task::JoinError> {
    match join {
        Some(j) => j.await,
        None => std::future::pending().await,
    }
}

async fn workbench(term: &mut Term, ctx: &Ctx<'_>, input: &mut InputReader, opened: Opened) -> Result<SessionOutcome> {
    let Opened { model, run_id, engine, mut follower, _log_guard } = opened;
    let live = engine.is_some() || follower.is_some();
    let (mut notices, mut join, handle, task, mut tracking) = match engine {
        Some(e) => (Some(e.notices), Some(e.join), Some(e.handle), Some(e.task), e.tracking),
        None => (None, None, None, None, None),
    };
    let mut app = App::new(model, ctx.keymap.clone(), ctx.theme.clone());
    app.view = if live { views::View::Dashboard } else { views::View::Frontier };
    let waiting = app.model.state.review_queue.len();
    if waiting > 0 {
        app.flash = Some(format!(
            "{waiting} item(s) wait for review: {} shows them",
            ctx.keymap.describe(keymap::Action::ViewReview)
        ));
    }
    let mut outcome = SessionOutcome { run_id: Some(run_id.clone()), ..Default::default() };
    let mut dirty = true;
    let mut last_frame = Instant::now() - FRAME_GAP;
    // An attached run's files are looked at a few times a second (each look reads only what is new).
    let mut follow = tokio::time::interval(Duration::from_millis(200));
    follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if dirty && last_frame.elapsed() >= FRAME_GAP {
            term.draw(|f| app.render(f))?;
            last_frame = Instant::now();
            dirty = false;
        }
        let next_frame = tokio::time::Instant::from_std(last_frame + FRAME_GAP);
        tokio::select! {
            ev = input.rx.recv() => match ev {
                Some(ev) => {
                    dirty |= app.on_terminal_event(&ev);
                    while let Ok(ev) = input.rx.try_recv() {
                        dirty |= app.on_terminal_event(&ev);
                    }
                }
                None => app.quit = true,
            },
            n = next_notice(&mut notices), if notices.is_some() => match n {
                Some(n) => {
                    app.on_notice(n);
                    if let Some(rx) = notices.as_mut() {
                        while let Ok(n) = rx.try_recv() {
                            app.on_notice(n);
                        }
                    }
                    dirty = true;
                }
                // The engine is gone (it holds the sender until it returns).
                None => notices = None,
            },
            res = engine_end(&mut join), if join.is_some() => {
                join = None;
                // Notices sent before the engine ended are still queued; fold them first.
                if let Some(rx) = notices.as_mut() {
                    while let Ok(n) = rx.try_recv() {
                        app.on_notice(n);
                    }
                }
                app.model.engine_ended();
                if let Some(t) = tracking.as_mut() {
                    t.end(run_end(&res));
                }
                match res {
                    Ok(Ok(out)) => outcome.finished = out.result.map(|r| r.stop_reason),
                    Ok(Err(e)) => {
                        tracing::error!("engine failed: {e:#}");
                        app.model.halted = e.downcast_ref::<crate::engine::Halted>().is_some();
                        app.model.engine_error = Some(format!("{e:#}"));
                        outcome.error = Some(format!("{e:#}"));
                        outcome.halted = app.model.halted;
                    }
                    Err(e) => {
                        app.model.engine_error = Some(format!("the engine task ended abnormally: {e}"));
                        outcome.error = app.model.engine_error.clone();
                    }
                }
                dirty = true;
            }
            _ = follow.tick(), if follower.as_ref().is_some_and(|f| !f.ended()) => {
                if let Some(f) = follower.as_mut() {
                    dirty |= f.poll(&mut app);
                }
            }
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
        }
        let commands: Vec<EngineCommand> = app.commands.drain(..).collect();
        for cmd in commands {
            if let Some(f) = follower.as_mut().filter(|f| !f.ended()) {
                f.send(&mut app, cmd);
                dirty = true;
                continue;
            }
            if let Some(h) = &handle {
                match cmd {
                    EngineCommand::Pause => h.pause(),
                    EngineCommand::Resume => h.resume(),
                    EngineCommand::Act(a) => {
                        tracing::info!("sent to the engine: {a:?}");
                        h.act(a)
                    }
                    EngineCommand::ApproveAll => h.approve_all(),
                    EngineCommand::RetryNow => {
                        if let Some(t) = task.as_ref() {
                            t.models().retry_now();
                        }
                    }
                }
            }
        }
        if let Some(request) = app.external.take() {
            let result = edit_externally(term, input, &request, &app.model.component_files);
            match result {
                Ok(outcome) => app.external_edit_done(request, outcome),
                Err(e) => {
                    // The terminal could not be taken back: nothing sensible can be drawn.
                    return Err(e.context("cannot restore the terminal after the editor"));
                }
            }
            dirty = true;
        }
        // The handle is the truth about pausing (a status sent just before a pause is stale).
        if let Some(h) = &handle {
            dirty |= app.model.set_paused(h.is_paused());
        }
        if app.quit || app.branch.is_some() {
            break;
        }
    }
    outcome.next = app.branch.map(|id| StartChoice::Branch { run: run_id.clone(), id });
    if let (Some(f), Some(r)) = (&follower, &app.model.remote) {
        if !f.ended() {
            outcome.detached = Some(r.holder.describe());
            tracing::info!("detached; the run goes on");
        }
    }
    if let (Some(j), Some(h)) = (join, handle) {
        app.flash = Some("stopping the engine; the run stays resumable…".into());
        term.draw(|f| app.render(f))?;
        h.stop();
        let res = tokio::time::timeout(Duration::from_secs(10), j).await;
        if let (Some(t), Ok(res)) = (tracking.as_mut(), &res) {
            t.end(run_end(res));
        }
        match res {
            Ok(Ok(Ok(out))) => outcome.finished = out.result.map(|r| r.stop_reason),
            Ok(Ok(Err(err))) => {
                // A provider's stop that came as the user quit is still resumable (exit 3).
                outcome.halted = err.downcast_ref::<crate::engine::Halted>().is_some();
                outcome.error = Some(format!("{err:#}"));
            }
            _ => tracing::warn!("the engine did not stop within 10s"),
        }
        outcome.stopped = outcome.finished.is_none() && outcome.error.is_none();
        tracing::info!("stopped by the user");
    }
    if let Some(t) = tracking {
        app.flash =
            Some(format!("sending the run's last updates to MLflow (at most {}s)…", crate::tracking::FLUSH_SECS));
        term.draw(|f| app.render(f))?;
        let report = t.done().await;
        tracing::info!("{report}");
        outcome.tracking = Some(report);
    }
    Ok(outcome)
}

/// How the engine's task ended, for the run's MLflow status.
fn run_end(res: &std::result::Result<Result<RunOutcome>, tokio::task::JoinError>) -> RunEnd {
    match res {
        Ok(ended) => RunEnd::of(ended),
        Err(e) => {
            RunEnd { status: EndStatus::Failed(format!("the engine task ended abnormally: {e}")), finished: None }
        }
    }
}
