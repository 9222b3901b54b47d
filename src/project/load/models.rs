//! `[models.<name>]`: each model's settings, and the names other sections give them.

use super::Validator;
use crate::project::config::{strsim_best, ProjectConfig};

impl Validator {
    pub(super) fn models(&mut self, config: &ProjectConfig) {
        for (name, m) in &config.models {
            let at = format!("models.{name}");
            if m.model.trim().is_empty() {
                self.problem(&format!("{at}.model"), format!("[models.{name}] model is empty"));
            }
            if m.concurrency == 0 {
                self.problem(&format!("{at}.concurrency"), format!("[models.{name}] concurrency must be at least 1"));
            }
            if m.max_tokens == Some(0) {
                self.problem(&format!("{at}.max_tokens"), format!("[models.{name}] max_tokens must be at least 1"));
            }
            if m.requests_per_minute == Some(0) || m.tokens_per_minute == Some(0) {
                let key = if m.requests_per_minute == Some(0) { "requests_per_minute" } else { "tokens_per_minute" };
                self.problem(
                    &format!("{at}.{key}"),
                    format!("[models.{name}] {key} must be at least 1 (leave it out for no limit)"),
                );
            }
            for (field, instead) in crate::project::config::RESERVED_BODY_FIELDS {
                if m.extra.as_ref().is_some_and(|t| t.contains_key(*field)) {
                    self.problem(
                        &format!("{at}.extra.{field}"),
                        format!("[models.{name}.extra] cannot set `{field}`: gepa.toml sets it with {instead}"),
                    );
                }
            }
            let anthropic = m.provider == crate::project::config::ProviderKind::Anthropic;
            if m.reasoning_effort.is_some() && anthropic {
                self.problem(
                    &format!("{at}.reasoning_effort"),
                    format!("[models.{name}] reasoning_effort is OpenAI's; for Anthropic set thinking_budget_tokens"),
                );
            }
            if let Some(budget) = m.thinking_budget_tokens {
                if !anthropic {
                    self.problem(
                        &format!("{at}.thinking_budget_tokens"),
                        format!(
                            "[models.{name}] thinking_budget_tokens is Anthropic's; for OpenAI set reasoning_effort"
                        ),
                    );
                } else if budget >= m.max_tokens.unwrap_or(crate::llm::anthropic::DEFAULT_MAX_TOKENS) {
                    self.problem(
                        &format!("{at}.thinking_budget_tokens"),
                        format!("[models.{name}] thinking_budget_tokens ({budget}) must be less than max_tokens (the answer comes after the thinking)"),
                    );
                }
            }
            for (key, secs) in
                [("connect_timeout_secs", m.connect_timeout_secs), ("request_timeout_secs", m.request_timeout_secs)]
            {
                if !(secs.is_finite() && secs > 0.0) {
                    self.problem(
                        &format!("{at}.{key}"),
                        format!("[models.{name}] {key} must be a positive number of seconds"),
                    );
                }
            }
            if m.max_reply_bytes == 0 {
                self.problem(
                    &format!("{at}.max_reply_bytes"),
                    format!("[models.{name}] max_reply_bytes must be at least 1 (default 16777216, 16 MiB)"),
                );
            }
            if let Some(secs) = m.retry_base_delay_secs {
                if !(secs.is_finite() && secs >= 0.0) {
                    self.problem(
                        &format!("{at}.retry_base_delay_secs"),
                        format!("[models.{name}] retry_base_delay_secs must be 0 or more seconds (default 0.5)"),
                    );
                }
            }
            if let Some(url) = &m.base_url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    self.problem(
                        &format!("{at}.base_url"),
                        format!("[models.{name}] base_url \"{url}\" must start with http:// or https://"),
                    );
                }
            }
            for (key, price) in
                [("price_input_per_mtok", m.price_input_per_mtok), ("price_output_per_mtok", m.price_output_per_mtok)]
            {
                if !(price.is_finite() && price >= 0.0) {
                    self.problem(
                        &format!("{at}.{key}"),
                        format!("[models.{name}] {key} must be 0 or more (USD per million tokens)"),
                    );
                }
            }
        }
    }

    /// An error unless `model` is defined in [models].
    pub(super) fn model_exists(&mut self, config: &ProjectConfig, model: &str, key_path: &str, user: &str) {
        if config.models.contains_key(model) {
            return;
        }
        let defined: Vec<String> = config.models.keys().cloned().collect();
        let hint = match strsim_best(model, &defined) {
            Some(best) => format!("did you mean `{best}`? "),
            None => String::new(),
        };
        self.problem(
            key_path,
            format!(
                "{user} uses model `{model}`, which is not defined: {hint}add a [models.{model}] section (defined: {})",
                if defined.is_empty() { "none".to_string() } else { defined.join(", ") }
            ),
        );
    }
}
