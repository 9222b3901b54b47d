//! Pricing: what a reply cost, from the token counts and the model's configured prices.

use super::Usage;
use crate::llm::settings::ModelConfig;

/// USD for `usage` at the config's per-million-token prices (0 when no prices are set).
pub fn cost_usd(usage: Usage, config: &ModelConfig) -> f64 {
    usage.input_tokens as f64 * config.price_input_per_mtok / 1e6
        + usage.output_tokens as f64 * config.price_output_per_mtok / 1e6
}
