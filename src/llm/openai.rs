//! Any OpenAI-compatible `POST {base_url}/chat/completions` server: OpenAI, Ollama, llama.cpp's
//! server, vLLM.

use super::http::Conn;
use super::retry::malformed;
use super::{AttemptError, BoxFuture, ChatBackend, ChatRequest, LlmError, RawReply, Usage};
use crate::llm::settings::{ModelConfig, TokenParam};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::json;

pub const DEFAULT_KEY_ENV: &str = "OPENAI_API_KEY";

pub struct OpenAiBackend {
    conn: Conn,
    model: String,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    token_param: &'static str,
}

impl OpenAiBackend {
    pub fn new(config: &ModelConfig) -> Result<Self, LlmError> {
        let auth = |key: &str| ("authorization", format!("Bearer {key}"));
        Ok(Self {
            conn: Conn::open(config, DEFAULT_KEY_ENV, HeaderMap::new(), auth)?,
            model: config.model.clone(),
            temperature: config.temperature,
            max_tokens: config.max_tokens,
            token_param: match config.token_param() {
                TokenParam::MaxTokens => "max_tokens",
                TokenParam::MaxCompletionTokens => "max_completion_tokens",
            },
        })
    }

    fn body(&self, req: &ChatRequest) -> serde_json::Value {
        let mut body = json!({ "model": self.model, "messages": req.messages });
        if let Some(t) = req.temperature.or(self.temperature) {
            body["temperature"] = json!(t);
        }
        if let Some(n) = req.max_tokens.or(self.max_tokens) {
            body[self.token_param] = json!(n);
        }
        body
    }
}

impl ChatBackend for OpenAiBackend {
    fn send<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<RawReply, AttemptError>> {
        Box::pin(self.conn.send(self.body(req), parse_reply))
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<CompletionUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    /// Null when the model answered with tool calls only, or said nothing before the limit.
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct CompletionUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// Reads a `/chat/completions` reply: the first choice's text, whether it hit max_tokens, usage.
pub fn parse_reply(body: &str, secret: Option<&str>) -> Result<RawReply, AttemptError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| malformed(&format!("not complete JSON: {e}"), body, secret))?;
    let completion: Completion =
        serde_json::from_value(value).map_err(|e| malformed(&format!("not a chat completion: {e}"), body, secret))?;
    let usage = completion.usage.unwrap_or_default();
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(malformed("no choices", body, secret));
    };
    Ok(RawReply {
        text: choice.message.content.unwrap_or_default(),
        truncated: choice.finish_reason.as_deref() == Some("length"),
        usage: Usage {
            input_tokens: usage.prompt_tokens.unwrap_or(0),
            output_tokens: usage.completion_tokens.unwrap_or(0),
        },
        hold: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_finish_reason_and_usage() {
        let body = r#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],
                       "usage":{"prompt_tokens":12,"completion_tokens":3}}"#;
        let reply = parse_reply(body, None).unwrap();
        assert_eq!(reply.text, "hi");
        assert!(reply.truncated);
        assert_eq!(reply.usage.input_tokens, 12);
        assert_eq!(reply.usage.output_tokens, 3);
    }

    #[test]
    fn missing_usage_counts_zero() {
        let body = r#"{"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}]}"#;
        let reply = parse_reply(body, None).unwrap();
        assert!(!reply.truncated);
        assert_eq!(reply.usage, Usage::default());
    }

    #[test]
    fn empty_wrong_shape_or_cut_bodies_are_retryable() {
        let full = r#"{"choices":[{"message":{"content":"ok"}}]}"#;
        for body in [r#"{"choices":[]}"#, r#"{"error":{"message":"overloaded"}}"#, &full[..full.len() / 2], ""] {
            let err = parse_reply(body, None).unwrap_err();
            assert!(matches!(err, AttemptError::Retryable { .. }), "{body:?} gave {err:?}");
        }
        let err = parse_reply(r#"{"choices":[]}"#, None).unwrap_err();
        assert!(err.to_string().contains("no choices"), "{err}");
    }
}
