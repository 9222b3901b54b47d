//! The `judge` evaluator: an LLM grades the output against a rubric and explains itself. The
//! explanation is the feedback the reflection model reads; the final `Score: N/10` is the score.

use super::Score;
use crate::llm::{ChatRequest, Draw, LlmError, Message, Models};
use crate::project::evaluator::JudgeScorer;
use crate::project::Example;
use regex::Regex;
use std::sync::OnceLock;

const SYSTEM_PROMPT: &str = "You are a strict, fair grader. Read the rubric and the answer. \
Explain briefly what the answer gets right and what it gets wrong, concretely enough that its \
author could fix it. Then end with a final line of exactly this form:\nScore: N/10\nwhere N is a \
whole number from 0 (useless) to 10 (perfect).";

impl JudgeScorer {
    /// The messages sent to the judge. A rubric that does not place `{{output}}` (or
    /// `{{expected}}`, when a reference field is set) gets them appended, so it always sees both.
    pub fn request(&self, example: &Example, output: &str) -> Result<ChatRequest, String> {
        let expected = self.field.as_deref().and_then(|f| example.field_text(f));
        let mut user = self
            .rubric
            .render(|name| match name {
                "output" => Some(output.to_string()),
                "expected" if self.field.is_some() => expected.clone(),
                other => example.field_text(other),
            })
            .map_err(|missing| {
                format!("the judge rubric needs {missing}, but example `{}` has no such field", example.id)
            })?;
        if let (Some(exp), false) = (&expected, self.uses_expected) {
            user.push_str(&format!("\n\n## Reference answer\n{exp}"));
        }
        if !self.uses_output {
            user.push_str(&format!("\n\n## Answer to grade\n{output}"));
        }
        Ok(ChatRequest::new(vec![Message::system(SYSTEM_PROMPT), Message::user(user)]))
    }

    /// Asks the judge, as the draw at `draw` (see `llm::draw`: a judge that samples grades each
    /// evaluation afresh, and a resume or replay gets the grade it had). `Err` when its provider
    /// failed in a way that must stop the run.
    pub async fn score(
        &self,
        example: &Example,
        output: &str,
        models: &Models,
        draw: Option<&Draw>,
    ) -> Result<Score, LlmError> {
        let request = match self.request(example, output) {
            Ok(r) => r.drawn(draw.cloned()),
            Err(why) => return Ok(Score::failed(why)),
        };
        let model = match models.get(&self.model) {
            Ok(m) => m,
            Err(e) => return Ok(Score::failed(format!("the judge could not be asked: {e}"))),
        };
        let reply = match model.chat(&request).await {
            Ok(r) => r,
            Err(e) if e.stops_run() => return Err(e),
            Err(e) => return Ok(Score::failed(format!("the judge could not be asked: {e}"))),
        };
        let mut score = match parse_judge_score(&reply.text) {
            Some(verdict) => Score::new(verdict.score, verdict.reasoning),
            None => Score::failed(format!(
                "the judge's reply has no score (expected a final line `Score: N/10`){}: {}",
                if reply.truncated { "; it was cut off at max_tokens" } else { "" },
                crate::text::truncate_chars(reply.text.trim(), 500)
            )),
        };
        score.cost_usd = reply.cost_usd;
        if reply.cached {
            score.replayed_usd = reply.cost_usd;
        }
        Ok(score)
    }
}

/// A judge's grade in [0, 1] and its reasoning (the reply without the score line).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub reasoning: String,
}

fn score_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // "Score: 7/10", "**Score:** 0.8", "score = 7 out of 10", "Final score of 7"
    RE.get_or_init(|| {
        Regex::new(r"(?i)\bscore(?:\s+(?:of|is))?\W{0,6}?(-?\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?))?")
            .expect("static regex")
    })
}

fn fraction_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)(-?\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?)").expect("static regex"))
}

/// Normalizes a grade to [0, 1]: `x/d` by its denominator; otherwise 0–1 as is, up to 10 as tenths,
/// up to 100 as percent. We ask for N/10, so a bare value above 1 is read on that scale.
fn normalize(x: f64, denominator: Option<f64>) -> f64 {
    let v = match denominator {
        Some(d) if d > 0.0 => x / d,
        _ if x <= 1.0 => x,
        _ if x <= 10.0 => x / 10.0,
        _ if x <= 100.0 => x / 100.0,
        _ => 1.0,
    };
    super::clamp01(v)
}

/// Reads the grade from a judge's reply: the last `score: x` (with an optional `/d`), else the
/// last `x/d`, else a last line that is only a number. None when there is no grade at all.
pub fn parse_judge_score(reply: &str) -> Option<Verdict> {
    let num = |m: Option<regex::Match>| m.and_then(|m| m.as_str().parse::<f64>().ok());
    let found =
        score_re().captures_iter(reply).last().or_else(|| fraction_re().captures_iter(reply).last()).and_then(|c| {
            let whole = c.get(0)?;
            Some((num(c.get(1))?, num(c.get(2)), whole.start(), whole.end()))
        });
    let (score, start, end) = match found {
        Some((x, d, start, end)) => (normalize(x, d), start, end),
        None => {
            // A last line that is only a number ("8", "**0.7**", "7.").
            // Split on '\n' only, so the byte offsets stay right on "\r\n" replies (`lines()`
            // drops the '\r' and the offsets would drift into the middle of a character).
            let (offset, last) = reply
                .split('\n')
                .scan(0usize, |pos, l| {
                    let start = *pos;
                    *pos += l.len() + 1;
                    Some((start, l))
                })
                .filter(|(_, l)| !l.trim().is_empty())
                .last()?;
            let bare = last.trim().trim_matches(|c: char| c == '*' || c == '.' || c == '`');
            let x = bare.parse::<f64>().ok()?;
            (normalize(x, None), offset, offset + last.len())
        }
    };
    // The reasoning is the reply without the line that holds the grade, when that line is short.
    let line_start = reply[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = reply[end..].find('\n').map(|i| end + i).unwrap_or(reply.len());
    let line = &reply[line_start..line_end];
    let reasoning = if line.trim().chars().count() <= 40 {
        format!("{}{}", &reply[..line_start], &reply[line_end..])
    } else {
        reply.to_string()
    };
    let reasoning = reasoning.trim().to_string();
    Some(Verdict {
        score,
        reasoning: if reasoning.is_empty() {
            format!("The judge gave {:.0}/10 without a reason.", score * 10.0)
        } else {
            reasoning
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(s: &str) -> Option<f64> {
        parse_judge_score(s).map(|v| (v.score * 1000.0).round() / 1000.0)
    }

    #[test]
    fn score_lines() {
        assert_eq!(score("Good answer.\nScore: 7/10"), Some(0.7));
        assert_eq!(score("Fine.\n**Score:** 8 / 10"), Some(0.8));
        assert_eq!(score("score = 3 out of 5"), Some(0.6));
        assert_eq!(score("Score: 0.85"), Some(0.85));
        assert_eq!(score("Score: 9"), Some(0.9));
        assert_eq!(score("SCORE: 10/10"), Some(1.0));
        assert_eq!(score("Final score of 6"), Some(0.6));
        assert_eq!(score("Score: 85"), Some(0.85));
    }

    #[test]
    fn takes_the_last_score() {
        assert_eq!(score("A first draft would get Score: 2/10, but on reflection\nScore: 6/10"), Some(0.6));
    }

    #[test]
    fn fractions_and_bare_numbers() {
        assert_eq!(score("Mostly right. I'd give it 4/5."), Some(0.8));
        assert_eq!(score("Mostly right.\n7"), Some(0.7));
        assert_eq!(score("Mostly right.\n**0.5**"), Some(0.5));
    }

    #[test]
    fn crlf_replies_with_a_bare_number_do_not_panic() {
        // `lines()` offsets drifted by one per "\r": this sliced inside the "é".
        assert_eq!(score("\r\n\r\né\n7"), Some(0.7));
        assert_eq!(score("Good.\r\nStill good.\r\n8\r\n"), Some(0.8));
        let v = parse_judge_score("Rude tone.\r\n3").unwrap();
        assert_eq!(v.reasoning, "Rude tone.");
    }

    #[test]
    fn out_of_range_and_garbage() {
        assert_eq!(score("Score: 12/10"), Some(1.0));
        assert_eq!(score("Score: -3"), Some(0.0));
        assert_eq!(score("Score: 1000"), Some(1.0));
        assert_eq!(score("No idea, sorry."), None);
        assert_eq!(score(""), None);
        assert_eq!(score("It has 3 mistakes in 2 places"), None);
    }

    #[test]
    fn reasoning_drops_the_score_line() {
        let v = parse_judge_score("The tone is rude.\nIt misses the refund.\n\nScore: 3/10\n").unwrap();
        assert_eq!(v.reasoning, "The tone is rude.\nIt misses the refund.");
        let v = parse_judge_score("Score: 10/10").unwrap();
        assert_eq!(v.reasoning, "The judge gave 10/10 without a reason.");
    }
}
