//! gepa-tui: a terminal workbench for evolving the prompts of LLM systems with GEPA.
//!
//! Layers, each only importing the ones below it:
//! `cli` -> `tui` -> `tracking` -> `engine` -> `store` -> `eval`/`system` -> `llm` -> `project` -> `text`.

pub mod cli;
pub mod engine;
pub mod eval;
pub mod llm;
pub mod logging;
pub mod project;
pub mod store;
pub mod system;
pub mod text;
pub mod tracking;
pub mod tui;
