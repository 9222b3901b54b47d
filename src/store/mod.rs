//! The run store: `.gepa/runs/<run-id>/` with an append-only `events.jsonl`, a copy of the config,
//! `result.json` and the best candidate's texts. Knows files, not the algorithm.

pub mod events;
pub mod runs;

pub use events::{read_log, EventLog, ReadLog, StoreError, Tail};
pub use runs::{list_runs, new_run_id, refuse_symlinks, write_atomic, LockHolder, RunLock, RunSummary};
