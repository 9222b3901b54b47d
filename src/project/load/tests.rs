//! Loading a project folder: every problem named with its file, line and key.

use super::*;

const TOML: &str = r#"
[models.task]
provider = "openai"
model = "m"

[models.reflection]
provider = "openai"
model = "m"

[[components]]
name = "instruction"
file = "prompts/instruction.md"

[system]
kind = "chat"
[[system.steps]]
name = "draft"
user = "{{instruction}} {{question}}"
[[system.steps]]
name = "final"
system = "{{instruction}}"
user = "{{steps.draft.output}}"

[data]
train = "data/train.jsonl"
val = "data/val.jsonl"

[evaluator]
feedback_fields = ["hint"]
kind = "exact"
field = "answer"
"#;

const TRAIN: &str = "{\"question\": \"a\", \"answer\": \"1\", \"hint\": \"h\"}\n";
const VAL: &str = "{\"question\": \"b\", \"answer\": \"2\"}\n";

/// A project folder with the files above, `toml` replacing gepa.toml when given.
fn folder(toml: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("gepa.toml", toml),
        ("prompts/instruction.md", "Answer."),
        ("data/train.jsonl", TRAIN),
        ("data/val.jsonl", VAL),
    ];
    for (rel, text) in files.iter().chain(extra) {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn problems(toml: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let dir = folder(toml, extra);
    match Project::load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems(),
    }
}

fn one_problem(toml: &str) -> String {
    let p = problems(toml, &[]);
    assert_eq!(p.len(), 1, "{p:#?}");
    p[0].clone()
}

/// Keep markers come out of the seed and become its protected spans; one that does not pair
/// names the prompt file and its line. `max_growth` below 0 names the key and its line.
#[test]
fn keep_markers_and_max_growth() {
    let dir = folder(TOML, &[("prompts/instruction.md", "Answer.\n<<keep>>Cite the source.<</keep>>")]);
    let p = Project::load(dir.path()).unwrap();
    assert_eq!(p.seed["instruction"], "Answer.\nCite the source.");
    assert_eq!(p.protected["instruction"], vec!["Cite the source.".to_string()]);
    assert_eq!(p.max_growth("instruction"), None);

    let e = problems(TOML, &[("prompts/instruction.md", "Answer.\n\n<<keep>>Cite the source.")]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("prompts/instruction.md:3: component `instruction`: <<keep>> is never closed"), "{e:?}");

    let toml = TOML.replace("file = \"prompts/instruction.md\"", "file = \"prompts/instruction.md\"\nmax_growth = -3");
    let e = one_problem(&toml);
    assert!(e.starts_with("gepa.toml:13: "), "{e}");
    assert!(e.contains("max_growth = -3 must be 0 or more"), "{e}");
    let toml =
        TOML.replace("file = \"prompts/instruction.md\"", "file = \"prompts/instruction.md\"\nmax_growth = \"lots\"");
    let e = one_problem(&toml);
    assert!(e.starts_with("gepa.toml:13: ") && e.contains("max_growth"), "{e}");
    let toml = TOML.replace("file = \"prompts/instruction.md\"", "file = \"prompts/instruction.md\"\nmax_growth = 200");
    let dir = folder(&toml, &[]);
    assert_eq!(Project::load(dir.path()).unwrap().max_growth("instruction"), Some(200));
}

#[test]
fn loads_seed_splits_and_ids() {
    let dir = folder(TOML, &[]);
    let p = Project::load(dir.path()).unwrap();
    assert_eq!(p.seed["instruction"], "Answer.");
    assert_eq!(p.train[0].id, "line-1");
    assert_eq!(p.val.len(), 1);
    assert!(p.test.is_empty());
    assert!(p.optimization_problems().is_empty());
    assert_eq!(p.root, dir.path().canonicalize().unwrap());
}

#[test]
fn a_step_cannot_use_a_later_step() {
    let toml = TOML.replace("user = \"{{instruction}} {{question}}\"", "user = \"{{steps.final.output}}\"");
    let p = one_problem(&toml);
    assert!(
        p.starts_with("gepa.toml:18: step `draft`, user template: unknown placeholder `{{steps.final.output}}`"),
        "{p}"
    );
    assert!(p.contains("not an earlier step"), "{p}");
}

#[test]
fn unknown_model_and_missing_reflection() {
    let toml = TOML.replacen("name = \"final\"", "name = \"final\"\nmodel = \"tsak\"", 1);
    let p = one_problem(&toml);
    assert!(p.contains("step `final` uses model `tsak`, which is not defined: did you mean `task`?"), "{p}");

    let toml = TOML.replace("[models.reflection]\nprovider = \"openai\"\nmodel = \"m\"\n", "");
    let dir = folder(&toml, &[]);
    let project = Project::load(dir.path()).unwrap();
    let opt = project.optimization_problems();
    assert_eq!(opt.len(), 1);
    assert!(opt[0].contains("no [models.reflection]"), "{opt:?}");
}

#[test]
fn evaluator_requirements_per_kind() {
    let with = |ev: &str| TOML.replace("kind = \"exact\"\nfield = \"answer\"", ev);
    assert!(one_problem(&with("kind = \"exact\"")).contains("kind = \"exact\" needs field"));
    assert!(one_problem(&with("kind = \"regex\"")).contains("needs pattern"));
    assert!(one_problem(&with("kind = \"regex\"\npattern = \"(unclosed\"")).contains("not a valid regular expression"));
    assert!(one_problem(&with("kind = \"regex\"\npattern = \"{{anwser}}\"")).contains("did you mean `{{answer}}`"));
    assert!(one_problem(&with("kind = \"json_field\"")).contains("needs json_key"));
    assert!(one_problem(&with("kind = \"json_field\"\njson_key = \"a\"")).contains("needs field"));
    assert!(one_problem(&with("kind = \"json_field\"\njson_keys = [\"answr\"]")).contains("`answr` is not among"));
    assert!(problems(&with("kind = \"json_field\"\njson_keys = [\"answer\"]"), &[]).is_empty());
    assert!(one_problem(&with("kind = \"command\"")).contains("needs command"));
    assert!(one_problem(&with("kind = \"judge\"")).contains("needs rubric"));
    assert!(one_problem(&with("kind = \"judge\"\nrubric = \"{{output}} vs {{expected}}\""))
        .contains("unknown placeholder `{{expected}}`"));
    assert!(problems(
        &with("kind = \"judge\"\nfield = \"answer\"\nrubric = \"{{output}} vs {{expected}} for {{question}}\""),
        &[]
    )
    .is_empty());
    assert!(one_problem(&with("kind = \"combined\"")).contains("needs at least one [[evaluator.parts]]"));
    let combined = "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nweight = 2\n\
                    [[evaluator.parts]]\nkind = \"contains\"";
    let p = one_problem(&with(combined));
    assert!(p.contains("[[evaluator.parts]] kind = \"contains\" needs field"), "{p}");
}

#[test]
fn objective_names_and_frontier_checks() {
    let with = |ev: &str, opt: &str| {
        format!("{}\n[optimizer]\n{opt}\n", TOML.replace("kind = \"exact\"\nfield = \"answer\"", ev))
    };
    let two_exact =
        "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nname = \"right\"\n\
                     [[evaluator.parts]]\nkind = \"contains\"\nfield = \"answer\"\nname = \"right\"";
    let p = one_problem(&with(two_exact, ""));
    // Names the second part's `name` line and the first part's line.
    assert!(p.contains("two parts are both named `right`"), "{p}");
    let toml = with(two_exact, "");
    let first = toml.lines().position(|l| l == "[[evaluator.parts]]").unwrap() + 1;
    let second_name = toml.lines().enumerate().filter(|(_, l)| *l == "name = \"right\"").nth(1).unwrap().0 + 1;
    assert!(p.starts_with(&format!("gepa.toml:{second_name}: ")), "{p}");
    assert!(p.contains(&format!("(line {first})")), "{p}");
    // Unnamed parts of the same kind are numbered, as before names existed.
    let unnamed = "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\n\
                   [[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"";
    assert!(problems(&with(unnamed, ""), &[]).is_empty());
    let p = one_problem(&with(
        "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nname = \"cost_usd\"",
        "objectives = [\"cost_usd\"]",
    ));
    assert!(p.contains("`cost_usd` is also a built-in objective"), "{p}");
    assert!(one_problem(&with(
        "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nname = \"a b\"",
        ""
    ))
    .contains("must be a single word"));
    let p = one_problem(&with("kind = \"exact\"\nfield = \"answer\"", "frontier = \"hybrid\""));
    assert!(p.contains("frontier = \"hybrid\" needs objectives"), "{p}");
    assert!(problems(
        &with("kind = \"exact\"\nfield = \"answer\"", "frontier = \"hybrid\"\nobjectives = [\"prompt_tokens\"]"),
        &[]
    )
    .is_empty());
    let p = one_problem(&with("kind = \"exact\"\nfield = \"answer\"", "objectives = [\"latency\"]"));
    assert!(p.contains("latency") && p.contains("prompt_tokens"), "{p}");
}

#[test]
fn reference_field_must_be_in_every_example() {
    let dir = folder(
        TOML,
        &[("data/val.jsonl", "{\"question\": \"b\", \"answer\": \"2\"}\n{\"question\": \"c\", \"answr\": \"3\"}\n")],
    );
    let p = Project::load(dir.path()).unwrap_err().problems();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("data/val.jsonl:2: example `line-2` has no field `answer`"), "{}", p[0]);
    assert!(p[0].contains("did you mean `answr`?"), "{}", p[0]);
}

#[test]
fn misspelt_feedback_field() {
    let p = one_problem(&TOML.replace("feedback_fields = [\"hint\"]", "feedback_fields = [\"hnt\"]"));
    assert!(p.contains("no example has a field `hnt`; did you mean `hint`?"), "{p}");
}

#[test]
fn empty_split_and_several_problems_at_once() {
    let toml = TOML.replace("file = \"prompts/instruction.md\"", "file = \"/etc/passwd\"");
    let p = problems(&toml, &[("data/val.jsonl", "\n\n")]);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p.iter().any(|x| x.contains("\"/etc/passwd\" must be a path relative to the project folder")));
    assert!(p.iter().any(|x| x == "data/val.jsonl: the val split has no examples; add one JSON object per line"));
}

#[test]
fn misspelt_file_gets_a_suggestion() {
    let toml = TOML.replace("data/train.jsonl", "data/trian.jsonl");
    let p = one_problem(&toml);
    assert!(
        p.contains("file \"data/trian.jsonl\" not found in the project folder; did you mean \"data/train.jsonl\"?"),
        "{p}"
    );
}

#[test]
fn command_system_checks() {
    let toml = TOML.replace("kind = \"chat\"", "kind = \"command\"");
    let p = problems(&toml, &[]);
    assert!(p.iter().any(|x| x.contains("needs command = [")), "{p:#?}");
    assert!(p.iter().any(|x| x.contains("only used with kind = \"chat\"")), "{p:#?}");
}

#[test]
fn resolve_inside_rules() {
    let dir = folder(TOML, &[]);
    let root = dir.path().canonicalize().unwrap();
    assert!(resolve_inside(&root, "prompts/../prompts/instruction.md").is_ok());
    assert!(resolve_inside(&root, "../x").unwrap_err().contains("outside the project folder"));
    assert!(resolve_inside(&root, "prompts/../../x").unwrap_err().contains("outside"));
    assert!(resolve_inside(&root, "prompts").unwrap_err().contains("is not a file"));
    assert!(resolve_inside(&root, "").unwrap_err().contains("empty"));
}

/// The evaluator is built while loading, as gepa.toml defines it (labels, weights, each part's
/// rule), and kept on the project; a timeout no clock can hold is refused at its line.
#[test]
fn the_evaluator_is_built_while_loading() {
    use crate::project::evaluator::{CompareScorer, Scorer};
    let combined = "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nname = \"correct\"\nweight = 3\n\
                    [[evaluator.parts]]\nkind = \"regex\"\npattern = \"{{answer}}\"\ncase_sensitive = false";
    let dir = folder(&TOML.replace("kind = \"exact\"\nfield = \"answer\"", combined), &[]);
    let p = Project::load(dir.path()).unwrap();
    assert_eq!(p.evaluator.describe(), "combined: 0.75 × correct + 0.25 × regex");
    assert_eq!(p.evaluator.part_objectives(), ["correct", "regex"]);
    assert_eq!(p.evaluator.reference_fields(), ["answer"]);
    assert!(p.evaluator.is_local());
    match &p.evaluator.parts()[1].scorer {
        Scorer::Compare(CompareScorer::Regex { ignore_case, .. }) => assert!(*ignore_case),
        other => panic!("{other:?}"),
    }

    let command = "kind = \"command\"\ncommand = [\"score.sh\"]\ntimeout_secs = 1e300";
    let toml = TOML.replace("kind = \"exact\"\nfield = \"answer\"", command);
    let e = one_problem(&toml);
    let line = toml.lines().position(|l| l.starts_with("timeout_secs")).unwrap() + 1;
    assert_eq!(e, format!("gepa.toml:{line}: [evaluator] timeout_secs must be a positive number of seconds"));
    let dir = folder(&toml.replace("1e300", "2.5"), &[]);
    let p = Project::load(dir.path()).unwrap();
    assert_eq!(p.evaluator.commands(), [["score.sh".to_string()]]);
}
