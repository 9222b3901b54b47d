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
    /// Tokens the call used (also for cached replies: what it cost when it was made).
    #[serde(default)]
    pub usage: crate::llm::Usage,
    /// The reply came from the response cache (no request was made this time). Not recorded:
    /// the engine's server gauge times only evaluations that asked the server.
    #[serde(skip)]
    pub cached: bool,
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
    /// USD of the model calls in this run (priced, cached or not).
    #[serde(default)]
    pub cost_usd: f64,
    /// The part of `cost_usd` served from the response cache: not paid this time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replayed_usd: f64,
    /// The run failed because it ran out of time (a `command` system past its `timeout_secs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

pub(crate) fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

use crate::llm::{LlmError, Models};
use crate::project::config::SystemKind;
use crate::project::{Candidate, Example, Project, ProjectError};

/// How one candidate runs on one example, built once from the project's `[system]`.
#[derive(Debug)]
pub enum System {
    Chat(chat::ChatSystem),
    Command(command::CommandSystem),
}

impl System {
    pub fn from_config(project: &Project) -> Result<System, ProjectError> {
        let sys = &project.config.system;
        Ok(match sys.kind {
            SystemKind::Chat => System::Chat(chat::ChatSystem::from_steps(&sys.steps)?),
            SystemKind::Command => System::Command(command::CommandSystem::new(
                &sys.command,
                &project.root,
                sys.timeout_secs,
                sys.concurrency,
            )?),
        })
    }

    /// Runs `candidate` on `example`. A failure of the system (a crashed program, a timeout, a
    /// template error, a request the model refuses) is a `RunOutput` with `error` set, which is
    /// scored 0 and shown to the user; a failure of the model provider is an `Err` (see
    /// `LlmError::stops_run`).
    /// Runs `candidate` on `example`; a chat step's call is a draw under `draw` (`step=<name>`).
    pub async fn run(
        &self,
        candidate: &Candidate,
        example: &Example,
        models: &Models,
        draw: Option<&crate::llm::Draw>,
    ) -> Result<RunOutput, LlmError> {
        match self {
            System::Chat(chat) => chat.run(candidate, example, models, draw).await,
            System::Command(cmd) => Ok(cmd.run(candidate, example).await),
        }
    }

    /// The external program this system runs, if any (so `check` can show it before it runs).
    pub fn command(&self) -> Option<&[String]> {
        match self {
            System::Chat(_) => None,
            System::Command(cmd) => Some(cmd.argv()),
        }
    }
}

impl RunOutput {
    /// A run that failed before producing anything.
    pub fn failed(error: impl Into<String>, trace: Trace, cost_usd: f64) -> RunOutput {
        RunOutput {
            output: String::new(),
            trace,
            error: Some(error.into()),
            cost_usd,
            replayed_usd: 0.0,
            timed_out: false,
        }
    }
}
