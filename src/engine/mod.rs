//! The GEPA engine: a library with no knowledge of the screen. It takes commands (pause, resume,
//! stop) through an `EngineHandle` and emits `Notice`s (events and live status); every event is also
//! appended to the run's `events.jsonl`, and the run's state is a fold over those events.

pub mod adapt;
pub mod blame;
pub mod data_changes;
pub mod data_fixes;
pub mod decision;
pub mod event;
pub mod forecast;
pub mod gauge;
pub mod handle;
pub mod merge;
pub mod minibatch;
pub mod pareto;
pub mod protect;
pub mod reflect;
pub mod rng;
pub mod run;
pub mod select;
pub mod settings;
pub mod setup;
pub mod state;
pub mod steer;

pub use event::{Event, Origin, ProposalOutcome};
pub use handle::STATUS_FILE;
pub use pareto::CandidateId;
pub use run::{Engine, EngineHandle, EngineOptions, Halted, ModelUsage, Notice, RunOutcome, RunResult, Status};
pub use state::{CandidateRecord, ObjectiveReport, RunState};
