//! The user docs stay true to the code: every `gepa.toml` key the loader accepts is documented in
//! docs/, the README links every docs/ page, and no doc points outside the repository.

use gepa_tui::project::config;
use std::collections::BTreeSet;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A project that loads, with one of every table (a `combined` evaluator, so `[[evaluator.parts]]`
/// is there too).
const BASE: &str = r#"
[models.task]
provider = "openai"
model = "m"

[[components]]
name = "instruction"
file = "prompts/instruction.md"

[system]
kind = "chat"
[[system.steps]]
name = "answer"
user = "{{input}}"

[data]
train = "data/train.jsonl"
val = "data/val.jsonl"

[evaluator]
kind = "combined"
[[evaluator.parts]]
kind = "exact"
field = "expected"

[optimizer]
[review]
[reflection]
[tracking]
"#;

/// The tables of gepa.toml whose keys the loader checks. `models.<name>.extra` is free-form (any
/// request field), so it is not listed.
const TABLES: &[&str] = &[
    "",
    "models.task",
    "components.0",
    "system",
    "system.steps.0",
    "data",
    "evaluator",
    "evaluator.parts.0",
    "optimizer",
    "review",
    "reflection",
    "tracking",
];

const PROBE: &str = "zz_not_a_key";

/// The keys the loader accepts in one table, as it lists them when it refuses a key it does not
/// know there, so this follows the config types with no list to keep.
fn accepted_keys(table: &str) -> Vec<String> {
    let mut doc: toml::Value = toml::from_str(BASE).unwrap();
    assert!(config::parse(BASE).is_ok(), "the base project should parse");
    let mut at = &mut doc;
    for part in table.split('.').filter(|p| !p.is_empty()) {
        at = match part.parse::<usize>() {
            Ok(i) => &mut at.as_array_mut().unwrap()[i],
            Err(_) => at.as_table_mut().unwrap().get_mut(part).unwrap_or_else(|| panic!("no table {table}")),
        };
    }
    at.as_table_mut().unwrap().insert(PROBE.into(), toml::Value::Integer(1));
    let text = toml::to_string(&doc).unwrap();
    let keys = config::keys_expected_instead(&text)
        .unwrap_or_else(|| panic!("[{table}] should refuse {PROBE}: {:?}", config::parse(&text).err()));
    assert!(!keys.is_empty(), "[{table}]: no keys listed");
    keys.iter().map(|k| k.to_string()).collect()
}

fn docs_text() -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            all.push_str(&std::fs::read_to_string(&path).unwrap());
            all.push('\n');
        }
    }
    all
}

/// A key counts as documented where docs/ write it as code (`key`, `[key]`, `[[key]]`,
/// `[key.<name>]`) or set it (`key = …`).
fn documented(docs: &str, key: &str) -> bool {
    docs.contains(&format!("`{key}`"))
        || docs.contains(&format!("`[{key}]`"))
        || docs.contains(&format!("`[[{key}]]`"))
        || docs.contains(&format!("`[{key}."))
        || docs.contains(&format!("`{key} ="))
        || docs.lines().any(|l| {
            let l = l.trim_start().trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key} =")) || l.contains(&format!(", {key} ="))
        })
}

#[test]
fn every_gepa_toml_key_the_loader_accepts_is_documented_in_docs() {
    let docs = docs_text();
    // A new top-level section must be probed here too (and documented).
    let sections: BTreeSet<String> = accepted_keys("").into_iter().collect();
    let probed: BTreeSet<String> =
        TABLES.iter().filter(|t| !t.is_empty()).map(|t| t.split('.').next().unwrap().to_string()).collect();
    assert_eq!(sections, probed, "gepa.toml's sections changed: probe the new ones in TABLES");
    let mut missing = Vec::new();
    for table in TABLES {
        for key in accepted_keys(table) {
            if !documented(&docs, &key) {
                missing.push(format!("[{table}] {key}"));
            }
        }
    }
    assert!(missing.is_empty(), "gepa.toml keys the loader accepts but docs/ never mention:\n{}", missing.join("\n"));
}

#[test]
fn the_probe_sees_a_key_the_docs_do_not_have() {
    // The check above can fail: a key no page mentions is reported.
    assert!(!documented(&docs_text(), "zz_surely_undocumented_key"));
    assert!(accepted_keys("optimizer").contains(&"max_metric_calls".to_string()));
}

#[test]
fn the_readme_links_every_docs_page_and_stays_a_front_door() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    assert!(
        readme.lines().count() <= 300,
        "README.md is {} lines; the reference belongs in docs/",
        readme.lines().count()
    );
    for entry in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".md") {
            assert!(readme.contains(&format!("](docs/{name})")), "README.md should link docs/{name}");
        }
    }
}

/// Docs must stand alone in a clone: every relative link resolves to a file of the repository.
#[test]
fn doc_links_resolve_inside_the_repository() {
    let mut files = vec![Path::new(ROOT).join("README.md")];
    for entry in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (_, rest) in text.match_indices("](").map(|(i, _)| ((), &text[i + 2..])) {
            let target = rest.split(')').next().unwrap_or("");
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() || path.contains("://") {
                continue;
            }
            let resolved = file.parent().unwrap().join(path);
            let inside = resolved.canonicalize().ok().is_some_and(|p| p.starts_with(ROOT));
            if !inside {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links that do not resolve to a file of this repository:\n{}", broken.join("\n"));
}
