//! Runs one candidate on one example: a `chat` pipeline of templated model calls, or an external
//! `command`. Every run yields a `Trace` of what was sent and what came back.

pub mod chat;
pub mod command;

use crate::llm::Message;
use serde::{Deserialize, Serialize};

/// One step of a run: the rendered messages and the model's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTrace {
    pub name: String,
    pub model: String,
    pub messages: Vec<Message>,
    pub output: String,
    /// The reply was cut off at max_tokens.
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trace {
    pub steps: Vec<StepTrace>,
    /// For `command` systems: the `trace` value the program printed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_trace: Option<serde_json::Value>,
    /// Captured stderr (capped) of a command system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// The result of running a candidate on an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    /// The final output (the last step's output, or the program's `output`).
    pub output: String,
    pub trace: Trace,
    /// Set when the run failed (model error after retries, program crash, bad JSON, timeout).
    /// A failed run is scored 0 with this as feedback; it never stops the optimizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// USD spent by model calls in this run (priced, cached or not).
    #[serde(default)]
    pub cost_usd: f64,
}
