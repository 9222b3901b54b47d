//! Anthropic's Messages API: `POST {base_url}/messages`.

use super::http::Conn;
use super::retry::malformed;
use super::{AttemptError, BoxFuture, ChatBackend, ChatRequest, LlmError, RawReply, Role, Usage};
use crate::llm::settings::ModelConfig;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::json;

pub const DEFAULT_KEY_ENV: &str = "ANTHROPIC_API_KEY";
pub const API_VERSION: &str = "2023-06-01";
/// The Messages API requires max_tokens; this is used when the config leaves it out.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

pub struct AnthropicBackend {
    conn: Conn,
    model: String,
    temperature: Option<f64>,
    max_tokens: u32,
}

impl AnthropicBackend {
    pub fn new(config: &ModelConfig) -> Result<Self, LlmError> {
        let mut headers = HeaderMap::new();
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        Ok(Self {
            conn: Conn::open(config, DEFAULT_KEY_ENV, headers, |key| ("x-api-key", key.to_string()))?,
            model: config.model.clone(),
            temperature: config.temperature,
            max_tokens: config.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        })
    }

    fn body(&self, req: &ChatRequest) -> serde_json::Value {
        // The Messages API takes the system prompt apart from the turns.
        let system: Vec<&str> =
            req.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
        let turns: Vec<_> = req
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| json!({ "role": m.role, "content": m.content }))
            .collect();
        let mut body = json!({
            "model": self.model,
            "max_tokens": req.max_tokens.unwrap_or(self.max_tokens),
            "messages": turns,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(t) = req.temperature.or(self.temperature) {
            body["temperature"] = json!(t);
        }
        body
    }
}

impl ChatBackend for AnthropicBackend {
    fn send<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<RawReply, AttemptError>> {
        Box::pin(self.conn.send(self.body(req), parse_reply))
    }
}

#[derive(Deserialize)]
struct MessageReply {
    content: Vec<ContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<MessageUsage>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct MessageUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

/// Reads a Messages reply: its text blocks joined, whether it hit max_tokens, usage.
pub fn parse_reply(body: &str, secret: Option<&str>) -> Result<RawReply, AttemptError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| malformed(&format!("not complete JSON: {e}"), body, secret))?;
    let reply: MessageReply =
        serde_json::from_value(value).map_err(|e| malformed(&format!("not a Messages reply: {e}"), body, secret))?;
    let text: String = reply.content.iter().filter(|b| b.kind == "text").filter_map(|b| b.text.as_deref()).collect();
    let usage = reply.usage.unwrap_or_default();
    Ok(RawReply {
        text,
        truncated: reply.stop_reason.as_deref() == Some("max_tokens"),
        usage: Usage { input_tokens: usage.input_tokens.unwrap_or(0), output_tokens: usage.output_tokens.unwrap_or(0) },
        hold: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_text_blocks_and_reads_stop_reason() {
        let body = r#"{"content":[{"type":"text","text":"a"},{"type":"thinking","thinking":"…"},
                       {"type":"text","text":"b"}],"stop_reason":"max_tokens",
                       "usage":{"input_tokens":5,"output_tokens":2}}"#;
        let reply = parse_reply(body, None).unwrap();
        assert_eq!(reply.text, "ab");
        assert!(reply.truncated);
        assert_eq!(reply.usage, Usage { input_tokens: 5, output_tokens: 2 });
    }

    #[test]
    fn wrong_shape_is_retryable() {
        let err = parse_reply(r#"{"type":"error"}"#, None).unwrap_err();
        assert!(matches!(err, AttemptError::Retryable { .. }), "{err:?}");
    }
}
