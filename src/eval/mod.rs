//! Scores a run's output in [0, 1] with a feedback text the reflection model reads.

use serde::{Deserialize, Serialize};

/// A score and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub score: f64,
    pub feedback: String,
}
