//! A `chat` system: one model call per step, each with its messages rendered from templates.
//! A step may use the components, the example's fields and the outputs of the steps before it.

use super::{RunOutput, StepTrace, Trace};
use crate::llm::{ChatRequest, Draw, LlmError, Message, Models};
use crate::project::config::ChatStep;
use crate::project::template::{step_output_name, Template};
use crate::project::{Candidate, Example, ProjectError};
use std::collections::HashMap;

#[derive(Debug)]
pub struct ChatSystem {
    steps: Vec<CompiledStep>,
}

#[derive(Debug)]
struct CompiledStep {
    name: String,
    model: String,
    system: Option<Template>,
    user: Template,
}

impl ChatSystem {
    /// Parses each step's templates (their names were checked when the project was loaded).
    pub fn from_steps(steps: &[ChatStep]) -> Result<ChatSystem, ProjectError> {
        if steps.is_empty() {
            return Err(ProjectError::config(None, "[system] kind = \"chat\" needs at least one [[system.steps]]"));
        }
        let parse = |step: &ChatStep, which: &str, text: &str| {
            Template::parse(text)
                .map_err(|e| ProjectError::config(None, format!("step `{}`, {which} template: {e}", step.name)))
        };
        let steps = steps
            .iter()
            .map(|s| {
                Ok(CompiledStep {
                    name: s.name.clone(),
                    model: s.model.clone(),
                    system: s.system.as_deref().map(|t| parse(s, "system", t)).transpose()?,
                    user: parse(s, "user", &s.user)?,
                })
            })
            .collect::<Result<Vec<_>, ProjectError>>()?;
        Ok(ChatSystem { steps })
    }

    /// Runs the steps in order. A model failure that says nothing about the candidate (the
    /// provider down past its ceiling, a refused key, an empty account) is an `Err`: the run must
    /// stop, not score it.
    pub async fn run(
        &self,
        candidate: &Candidate,
        example: &Example,
        models: &Models,
        draw: Option<&Draw>,
    ) -> Result<RunOutput, LlmError> {
        let mut trace = Trace::default();
        let mut outputs: HashMap<&str, String> = HashMap::new();
        let mut cost = 0.0;
        let mut replayed = 0.0;
        let mut last = String::new();
        for step in &self.steps {
            let lookup = |name: &str| -> Option<String> {
                if let Some(prev) = step_output_name(name) {
                    return outputs.get(prev).cloned();
                }
                candidate.get(name).cloned().or_else(|| example.field_text(name))
            };
            let rendered = (|| {
                let mut messages = Vec::with_capacity(2);
                if let Some(t) = &step.system {
                    messages.push(Message::system(t.render(lookup)?));
                }
                messages.push(Message::user(step.user.render(lookup)?));
                Ok::<_, crate::project::template::MissingValue>(messages)
            })();
            let messages = match rendered {
                Ok(m) => m,
                Err(missing) => {
                    let msg = format!(
                        "step `{}`: {missing}: example `{}` has no such field and the candidate no such component",
                        step.name, example.id
                    );
                    return Ok(RunOutput { replayed_usd: replayed, ..RunOutput::failed(msg, trace, cost) });
                }
            };
            let model = match models.get(&step.model) {
                Ok(m) => m,
                Err(e) => {
                    let failed = RunOutput::failed(format!("step `{}`: {e}", step.name), trace, cost);
                    return Ok(RunOutput { replayed_usd: replayed, ..failed });
                }
            };
            let request = ChatRequest::new(messages).drawn(draw.map(|d| d.at("step", &step.name)));
            match model.chat(&request).await {
                Ok(reply) => {
                    cost += reply.cost_usd;
                    if reply.cached {
                        replayed += reply.cost_usd;
                    }
                    trace.steps.push(StepTrace {
                        name: step.name.clone(),
                        model: step.model.clone(),
                        messages: request.messages,
                        output: reply.text.clone(),
                        truncated: reply.truncated,
                        usage: reply.usage,
                        cached: reply.cached,
                    });
                    outputs.insert(step.name.as_str(), reply.text.clone());
                    last = reply.text;
                }
                Err(e) if e.stops_run() => return Err(e),
                Err(e) => {
                    // Keep what was sent, so the trace view shows the request that failed.
                    trace.steps.push(StepTrace {
                        name: step.name.clone(),
                        model: step.model.clone(),
                        messages: request.messages,
                        output: String::new(),
                        truncated: false,
                        usage: Default::default(),
                        cached: false,
                    });
                    return Ok(RunOutput {
                        replayed_usd: replayed,
                        ..RunOutput::failed(format!("step `{}`: {e}", step.name), trace, cost)
                    });
                }
            }
        }
        Ok(RunOutput { output: last, trace, error: None, cost_usd: cost, replayed_usd: replayed, timed_out: false })
    }
}
