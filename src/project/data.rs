//! JSONL data splits: one JSON object per line; blank lines are skipped.
//!
//! An example's id is its `id` field (a string or a number) or else `line-<n>`, so results stay
//! comparable across runs as long as the file is only appended to.

use super::error::ProjectError;
use super::Example;
use serde_json::Value;
use std::collections::HashMap;

/// Bad lines reported at once before the rest are summarised.
const MAX_REPORTED: usize = 10;

/// Parses the text of a JSONL file. `file` is the path shown in errors (relative to the project).
pub fn parse_jsonl(file: &str, text: &str) -> Result<Vec<Example>, ProjectError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut examples = Vec::new();
    let mut errors = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let fields = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                errors.push(ProjectError::data(
                    file,
                    Some(line),
                    format!("expected a JSON object, found {}", describe_json_type(&other)),
                ));
                continue;
            }
            Err(e) => {
                errors.push(ProjectError::data(
                    file,
                    Some(line),
                    format!("expected a JSON object: {}", strip_position(&e)),
                ));
                continue;
            }
        };
        let id = match fields.get("id") {
            None => format!("line-{line}"),
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                errors.push(ProjectError::data(
                    file,
                    Some(line),
                    format!("`id` must be a non-empty string or a number, found {}", describe_json_type(other)),
                ));
                continue;
            }
        };
        if let Some(first) = first_line_of.get(&id) {
            errors.push(ProjectError::data(
                file,
                Some(line),
                format!("duplicate id \"{id}\" (first used on line {first}); ids must be unique within a split"),
            ));
            continue;
        }
        first_line_of.insert(id.clone(), line);
        examples.push(Example { id, line, fields });
    }
    if errors.len() > MAX_REPORTED {
        let more = errors.len() - MAX_REPORTED;
        errors.truncate(MAX_REPORTED);
        errors.push(ProjectError::data(file, None, format!("… and {more} more bad lines")));
    }
    ProjectError::from_list(errors)?;
    Ok(examples)
}

fn describe_json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json appends "at line 1 column 17"; within one JSONL line only the column means anything.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &msg[..i], e.column()),
        None => msg,
    }
}

/// A dotted path (`a.b.0`) into a JSON value.
pub(crate) fn json_path<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        serde_json::Value::Object(m) => m.get(seg),
        serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

pub(crate) fn json_path_in_map<'a>(
    m: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'a serde_json::Value> {
    let (first, rest) = match path.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (path, None),
    };
    let v = m.get(first)?;
    match rest {
        Some(r) => json_path(v, r),
        None => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_field_or_line_and_blank_lines_skipped() {
        let text = "{\"id\": \"a\", \"q\": 1}\n\n{\"q\": 2}\n{\"id\": 7}\r\n";
        let ex = parse_jsonl("data/train.jsonl", text).unwrap();
        let ids: Vec<_> = ex.iter().map(|e| (e.id.as_str(), e.line)).collect();
        assert_eq!(ids, vec![("a", 1), ("line-3", 3), ("7", 4)]);
        assert_eq!(ex[0].field_text("q").as_deref(), Some("1"));
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let text = "{\"q\": 1}\n{\"q\": 2,}\n";
        let e = parse_jsonl("data/val.jsonl", text).unwrap_err().to_string();
        assert!(e.starts_with("data/val.jsonl:2: expected a JSON object: "), "{e}");
        assert!(!e.contains("at line"), "{e}");
    }

    #[test]
    fn non_object_line() {
        let e = parse_jsonl("d.jsonl", "[1, 2]\n").unwrap_err().to_string();
        assert_eq!(e, "d.jsonl:1: expected a JSON object, found an array");
    }

    #[test]
    fn duplicate_ids_name_both_lines() {
        let text = "{\"id\": \"x\"}\n{\"id\": \"y\"}\n{\"id\": \"x\"}\n";
        let e = parse_jsonl("d.jsonl", text).unwrap_err().to_string();
        assert!(e.starts_with("d.jsonl:3: duplicate id \"x\" (first used on line 1)"), "{e}");
    }

    #[test]
    fn bad_id_type() {
        let e = parse_jsonl("d.jsonl", "{\"id\": null}\n").unwrap_err().to_string();
        assert_eq!(e, "d.jsonl:1: `id` must be a non-empty string or a number, found null");
    }

    #[test]
    fn many_bad_lines_are_summarised() {
        let text = "x\n".repeat(15);
        let e = parse_jsonl("d.jsonl", &text).unwrap_err();
        let problems = e.problems();
        assert_eq!(problems.len(), MAX_REPORTED + 1);
        assert_eq!(problems.last().unwrap(), "d.jsonl: … and 5 more bad lines");
    }
}
