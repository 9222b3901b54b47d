//! Scorers that compare the output with the example, without calling anything:
//! `exact`, `contains`, `regex` and `json_field`.

use super::Score;
use crate::project::evaluator::CompareScorer;
use crate::project::template::Template;
use crate::project::{json_path, json_path_in_map, Example};
use crate::text::truncate_chars;
use serde_json::{Map, Value};

/// Characters of the output quoted in feedback (the reflection model sees the whole output anyway).
const QUOTE_CHARS: usize = 300;

fn quote(s: &str) -> String {
    format!("{:?}", truncate_chars(s, QUOTE_CHARS))
}

/// How much of the end of an output the regex feedback quotes.
const TAIL_CHARS: usize = 120;

/// Quotes the last `max` characters of `s`, marking a cut with "…".
fn quote_tail(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return format!("{s:?}");
    }
    let tail: String = s.chars().skip(count - max).collect();
    format!("{:?}", format!("…{tail}"))
}

impl CompareScorer {
    pub fn score(&self, example: &Example, output: &str) -> Score {
        match self {
            CompareScorer::Exact { field, case_sensitive } => match example.fields.get(field) {
                None => missing_field(example, field),
                Some(expected) => exact(expected, output, *case_sensitive),
            },
            CompareScorer::Contains { field, case_sensitive } => match example.fields.get(field) {
                None => missing_field(example, field),
                Some(expected) => contains(expected, output, *case_sensitive),
            },
            CompareScorer::Regex { pattern, ignore_case } => regex_score(pattern, *ignore_case, example, output),
            CompareScorer::JsonField { field, key, keys, case_sensitive } => {
                json_field(example, output, field.as_deref(), key.as_deref(), keys, *case_sensitive)
            }
        }
    }
}

fn missing_field(example: &Example, field: &str) -> Score {
    Score::failed(format!("example `{}` has no field `{field}` to compare the output with", example.id))
}

/// A reference value as text: strings as they are, other JSON compact.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The accepted answers: an array field means "any of these".
fn alternatives(expected: &Value) -> Vec<String> {
    match expected {
        Value::Array(items) if !items.is_empty() => items.iter().map(value_text).collect(),
        other => vec![value_text(other)],
    }
}

fn describe_alternatives(alts: &[String]) -> String {
    match alts {
        [one] => quote(one.trim()),
        many => format!("one of {}", many.iter().map(|a| quote(a.trim())).collect::<Vec<_>>().join(", ")),
    }
}

fn same_text(a: &str, b: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        a == b
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// `exact`: the trimmed output equals the trimmed reference.
pub fn exact(expected: &Value, output: &str, case_sensitive: bool) -> Score {
    let alts = alternatives(expected);
    let got = output.trim();
    if alts.iter().any(|a| same_text(a.trim(), got, case_sensitive)) {
        return Score::new(1.0, format!("Correct: {}.", quote(got)));
    }
    let mut msg = format!("Expected {}, got {}.", describe_alternatives(&alts), quote(got));
    if case_sensitive && alts.iter().any(|a| same_text(a.trim(), got, false)) {
        msg.push_str(" (The letters match but the case differs, and case matters here.)");
    } else if alts.iter().any(|a| !a.trim().is_empty() && contains_text(got, a.trim(), case_sensitive)) {
        msg.push_str(" The answer is in the output, but the output must be exactly the answer and nothing else.");
    }
    Score::new(0.0, msg)
}

fn contains_text(haystack: &str, needle: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        haystack.contains(needle)
    } else {
        haystack.to_lowercase().contains(&needle.to_lowercase())
    }
}

/// `contains`: the output contains the trimmed reference.
pub fn contains(expected: &Value, output: &str, case_sensitive: bool) -> Score {
    let alts = alternatives(expected);
    if let Some(hit) = alts.iter().find(|a| contains_text(output, a.trim(), case_sensitive)) {
        return Score::new(1.0, format!("Correct: the output contains {}.", quote(hit.trim())));
    }
    Score::new(
        0.0,
        format!("Expected the output to contain {}, got {}.", describe_alternatives(&alts), quote(output.trim())),
    )
}

/// `regex`: the output matches the pattern, its `{{field}}`s filled with the example's (escaped).
fn regex_score(pattern: &Template, ignore_case: bool, example: &Example, output: &str) -> Score {
    let filled = pattern.render_with(|name, out| match example.field_text(name) {
        Some(v) => {
            out.push_str(&regex::escape(&v));
            true
        }
        None => false,
    });
    let filled = match filled {
        Ok(f) => f,
        Err(missing) => {
            return Score::failed(format!(
                "the regex pattern needs {missing}, but example `{}` has no such field",
                example.id
            ))
        }
    };
    let full = if ignore_case { format!("(?i){filled}") } else { filled.clone() };
    match regex::Regex::new(&full) {
        Ok(re) if re.is_match(output) => Score::new(1.0, format!("Correct: the output matches /{filled}/.")),
        // The reflection model already sees the whole output next to this feedback, so quote only
        // its end: that is where an anchored answer pattern looks, and it keeps the prompt short.
        Ok(_) => Score::new(
            0.0,
            format!("The output does not match /{filled}/. It ends with {}.", quote_tail(output.trim(), TAIL_CHARS)),
        ),
        Err(e) => Score::failed(format!("the regex pattern /{filled}/ is invalid: {e}")),
    }
}

/// Finds the JSON object in a model's output: the whole text, a ```json fenced block, or the first
/// `{…}` that parses, ignoring prose before and after.
pub fn extract_json_object(output: &str) -> Option<Map<String, Value>> {
    let trimmed = output.trim();
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(trimmed) {
        return Some(m);
    }
    // Inside a fence: ```json\n{…}\n```
    if let Some(start) = trimmed.find("```") {
        let after = &trimmed[start + 3..];
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let body = &after[body_start..];
        let body = body.find("```").map(|end| &body[..end]).unwrap_or(body);
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(body.trim()) {
            return Some(m);
        }
    }
    // The first `{` from which a whole object parses; trailing prose is ignored.
    for (i, _) in trimmed.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&trimmed[i..]).into_iter::<Value>();
        if let Some(Ok(Value::Object(m))) = stream.next() {
            return Some(m);
        }
    }
    None
}

/// Two JSON values agree: numbers by value (`1` = `1.0` = `"1"`), strings trimmed and (unless
/// case-sensitive) ignoring case, arrays and objects element by element.
pub fn values_match(expected: &Value, got: &Value, case_sensitive: bool) -> bool {
    match (expected, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => same_text(a.trim(), b.trim(), case_sensitive),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        (Value::Bool(a), Value::String(s)) | (Value::String(s), Value::Bool(a)) => {
            s.trim().eq_ignore_ascii_case(if *a { "true" } else { "false" })
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| values_match(x, y, case_sensitive))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| values_match(v, w, case_sensitive)))
        }
        (a, b) => a == b,
    }
}

fn json_quote(v: &Value) -> String {
    truncate_chars(&v.to_string(), QUOTE_CHARS)
}

/// `json_field`: compares keys of the JSON object in the output with the example.
fn json_field(
    example: &Example,
    output: &str,
    field: Option<&str>,
    key: Option<&str>,
    keys: &[String],
    case_sensitive: bool,
) -> Score {
    // (key in the output, expected value)
    let mut checks: Vec<(String, Option<&Value>)> = Vec::new();
    match key {
        Some(k) => {
            let f = field.unwrap_or_default();
            match example.fields.get(f) {
                Some(v) => checks.push((k.to_string(), Some(v))),
                None => return missing_field(example, f),
            }
        }
        None => {
            let holder = field.map(|f| example.fields.get(f));
            for k in keys {
                let expected = match holder {
                    Some(Some(obj)) => json_path(obj, k),
                    Some(None) => None,
                    None => json_path_in_map(&example.fields, k),
                };
                checks.push((k.clone(), expected));
            }
        }
    }
    let keys_list = checks.iter().map(|(k, _)| format!("\"{k}\"")).collect::<Vec<_>>().join(", ");
    let Some(object) = extract_json_object(output) else {
        return Score::new(
            0.0,
            format!(
                "The output is not a JSON object (expected one with the key{} {keys_list}). Output: {}.",
                if checks.len() == 1 { "" } else { "s" },
                quote(output.trim())
            ),
        );
    };
    let object = Value::Object(object);
    let mut matched = 0usize;
    let mut lines = Vec::new();
    for (k, expected) in &checks {
        let Some(expected) = expected else {
            lines.push(format!("\"{k}\": example `{}` has no expected value for it.", example.id));
            continue;
        };
        match json_path(&object, k) {
            Some(got) if values_match(expected, got, case_sensitive) => matched += 1,
            Some(got) => lines.push(format!("\"{k}\": expected {}, got {}.", json_quote(expected), json_quote(got))),
            None => lines.push(format!("\"{k}\": missing from the output (expected {}).", json_quote(expected))),
        }
    }
    let total = checks.len().max(1);
    let score = matched as f64 / total as f64;
    let feedback = if lines.is_empty() {
        format!("Correct: {keys_list} all match.")
    } else if checks.len() == 1 {
        lines.join(" ")
    } else {
        format!("{matched} of {} keys match.\n{}", checks.len(), lines.join("\n"))
    };
    Score::new(score, feedback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example(fields: Value) -> Example {
        Example { id: "e1".into(), line: 1, fields: fields.as_object().cloned().unwrap() }
    }

    fn regex(pattern: &str, ignore_case: bool) -> CompareScorer {
        CompareScorer::Regex { pattern: Template::parse(pattern).unwrap(), ignore_case }
    }

    fn json_field(field: Option<&str>, key: Option<&str>, keys: &[&str]) -> CompareScorer {
        CompareScorer::JsonField {
            field: field.map(String::from),
            key: key.map(String::from),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            case_sensitive: false,
        }
    }

    #[test]
    fn exact_trims_and_ignores_case_by_default() {
        let s = exact(&json!("Paris"), "  paris\n", false);
        assert_eq!(s.score, 1.0);
        let s = exact(&json!("42"), "41", false);
        assert_eq!(s.score, 0.0);
        assert_eq!(s.feedback, "Expected \"42\", got \"41\".");
        let s = exact(&json!("Paris"), "paris", true);
        assert_eq!(s.score, 0.0);
        assert!(s.feedback.contains("case differs"), "{}", s.feedback);
    }

    #[test]
    fn exact_numbers_arrays_and_extra_text() {
        assert_eq!(exact(&json!(42), "42", false).score, 1.0);
        assert_eq!(exact(&json!(["yes", "y"]), "Y", false).score, 1.0);
        let s = exact(&json!("4"), "The answer is 4", false);
        assert_eq!(s.score, 0.0);
        assert!(s.feedback.contains("exactly the answer"), "{}", s.feedback);
    }

    #[test]
    fn contains_scores() {
        assert_eq!(contains(&json!("Paris"), "It is PARIS.", false).score, 1.0);
        let s = contains(&json!("Paris"), "It is Lyon.", false);
        assert_eq!(s.score, 0.0);
        assert_eq!(s.feedback, "Expected the output to contain \"Paris\", got \"It is Lyon.\".");
        assert_eq!(contains(&json!("Paris"), "paris", true).score, 0.0);
    }

    #[test]
    fn regex_fills_placeholders_escaped() {
        let s = regex(r"^Answer: {{answer}}$", false);
        let ex = example(json!({"answer": "3.5 (approx)"}));
        assert_eq!(s.score(&ex, "Answer: 3.5 (approx)").score, 1.0);
        // `.` is escaped: it must not match any character.
        assert_eq!(s.score(&ex, "Answer: 3x5 (approx)").score, 0.0);
        assert_eq!(s.score(&ex, "answer: 3.5 (approx)").score, 0.0);
        let s = regex(r"^Answer: {{answer}}$", true);
        assert_eq!(s.score(&ex, "answer: 3.5 (approx)").score, 1.0);
        let missing = s.score(&example(json!({})), "x");
        assert!(missing.error.is_some());
    }

    #[test]
    fn regex_feedback_quotes_the_end_of_a_long_output() {
        let s = regex(r"\n{{answer}}\z", false);
        let ex = example(json!({"answer": "30"}));
        let long = format!("{}\nSo the bus has 30 passengers.", "Let me think step by step. ".repeat(20));
        let got = s.score(&ex, &long);
        assert_eq!(got.score, 0.0);
        assert_eq!(
            got.feedback,
            format!(
                "The output does not match /\\n30\\z/. It ends with {:?}.",
                format!("…{}", &long[long.len() - 120..])
            )
        );
        assert!(got.feedback.ends_with("So the bus has 30 passengers.\"."), "{}", got.feedback);
        let short = s.score(&ex, "The answer is 30.");
        assert_eq!(short.feedback, "The output does not match /\\n30\\z/. It ends with \"The answer is 30.\".");
    }

    #[test]
    fn extracts_json_from_fences_and_prose() {
        let want = json!({"label": "billing"});
        let cases = [
            r#"{"label": "billing"}"#,
            "```json\n{\"label\": \"billing\"}\n```",
            "Sure! Here it is:\n```\n{\"label\": \"billing\"}\n```\nHope that helps.",
            "The answer is {\"label\": \"billing\"} as requested {not json}",
            "{broken} then {\"label\": \"billing\"}",
        ];
        for c in cases {
            assert_eq!(extract_json_object(c).map(Value::Object), Some(want.clone()), "{c}");
        }
        assert_eq!(extract_json_object("no json here"), None);
        assert_eq!(extract_json_object("[1, 2]"), None);
    }

    #[test]
    fn json_field_single_key_with_dotted_path() {
        let s = json_field(Some("expected"), Some("result.label"), &[]);
        let ex = example(json!({"expected": "Billing"}));
        assert_eq!(s.score(&ex, r#"{"result": {"label": "billing"}}"#).score, 1.0);
        let wrong = s.score(&ex, r#"{"result": {"label": "shipping"}}"#);
        assert_eq!(wrong.score, 0.0);
        assert_eq!(wrong.feedback, "\"result.label\": expected \"Billing\", got \"shipping\".");
        let not_json = s.score(&ex, "billing");
        assert!(not_json.feedback.starts_with("The output is not a JSON object"));
    }

    #[test]
    fn json_field_many_keys_fraction_and_mismatch_list() {
        let s = json_field(None, None, &["label", "priority", "team"]);
        let ex = example(json!({"label": "billing", "priority": 2, "team": "ops"}));
        let r = s.score(&ex, "```json\n{\"label\": \"Billing\", \"priority\": \"2\", \"team\": \"dev\"}\n```");
        assert!((r.score - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.feedback, "2 of 3 keys match.\n\"team\": expected \"ops\", got \"dev\".");
        let r = s.score(&ex, r#"{"label": "billing"}"#);
        assert!((r.score - 1.0 / 3.0).abs() < 1e-9);
        assert!(r.feedback.contains("\"priority\": missing from the output (expected 2)."));
    }

    #[test]
    fn json_field_keys_against_an_object_field() {
        let s = json_field(Some("gold"), None, &["a", "b"]);
        let ex = example(json!({"gold": {"a": 1, "b": [1, 2]}}));
        assert_eq!(s.score(&ex, r#"{"a": 1.0, "b": [1, 2]}"#).score, 1.0);
        assert_eq!(s.score(&ex, r#"{"a": 1, "b": [2, 1]}"#).score, 0.5);
    }

    #[test]
    fn values_match_rules() {
        assert!(values_match(&json!(1), &json!(1.0), true));
        assert!(values_match(&json!("1"), &json!(1), true));
        assert!(values_match(&json!(true), &json!("True"), true));
        assert!(!values_match(&json!(null), &json!("null"), true));
        assert!(values_match(&json!({"x": "A"}), &json!({"x": "a"}), false));
    }
}
