//! A draw: where one call of a model that samples sits in a run.
//!
//! A model at temperature 0 answers a request the same way every time, so its reply is cached by
//! the request alone and shared by every run. A model that samples (temperature > 0, no
//! temperature set — the provider's default samples — or `samples = true`) gives a new answer
//! each time it is asked: each call is a *draw*, and its cache key is the request **and** the
//! draw's place. So the same prompt asked at two places reaches the server twice, while a resume,
//! an `--offline` replay or anything else that asks again at the same place gets the reply that
//! place had.
//!
//! A place is a path of `label=value` parts, outermost first. The engine's are
//! `run=<the run's draws>`, `round=<n>`, `slot=<proposal>`, then a purpose (`reflect=<component>`
//! with `attempt=<n>`, or an evaluation: `eval=<parent|child|guided|val|merge|test>`,
//! `example=<id>`, `step=<n>` or `judge`). Every part is decided by the committed run (its plan,
//! its seed), never by timing, so a replanned or resumed round asks at the places it had.

use serde::{Deserialize, Serialize};
use std::fmt::Display;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Draw(Vec<String>);

impl Draw {
    /// The outermost part: whose draws these are (a run's id, or `eval-…` for one `gepa-tui eval`).
    pub fn stream(name: &str) -> Draw {
        Draw(vec![format!("run={name}")])
    }

    /// This place, one level down.
    pub fn at(&self, label: &str, value: impl Display) -> Draw {
        let mut parts = self.0.clone();
        parts.push(format!("{label}={value}"));
        Draw(parts)
    }

    /// The parts, outermost first (what the cache key hashes).
    pub fn parts(&self) -> &[String] {
        &self.0
    }
}

impl Display for Draw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_its_parts_in_order() {
        let round = Draw::stream("r1").at("round", 3).at("slot", 0);
        assert_eq!(round.at("reflect", "instruction").to_string(), "run=r1/round=3/slot=0/reflect=instruction");
        assert_ne!(round.at("attempt", 0), round.at("attempt", 1));
        assert_ne!(Draw::stream("r1").at("round", 3), Draw::stream("r2").at("round", 3));
    }
}
