//! Reading gepa.toml: each kind of mistake is named with its line, section and key.

use super::*;

const BASE: &str = "[models.task]\nprovider = \"openai\"\nmodel = \"m\"\n\n\
[[components]]\nname = \"instruction\"\nfile = \"prompts/instruction.md\"\n\n\
[system]\nkind = \"chat\"\n[[system.steps]]\nname = \"answer\"\nuser = \"{{input}}\"\n\n\
[data]\ntrain = \"data/train.jsonl\"\nval = \"data/val.jsonl\"\n\n\
[evaluator]\nkind = \"exact\"\nfield = \"expected\"\n";

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn base_parses() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.system.steps[0].model, "task");
    assert_eq!(c.optimizer.concurrency, 32);
}

#[test]
fn unknown_key_names_line_section_and_suggestion() {
    let text = format!("{BASE}\n[optimizer]\nconcurrency = 4\ncandidate_selecton = \"pareto\"\n");
    assert_eq!(
        err(&text),
        "gepa.toml:25: unknown key `candidate_selecton` in [optimizer]; did you mean `candidate_selection`?"
    );
}

/// The model keys of issue 24 are known like every other, typos and all.
#[test]
fn sampling_and_reply_size_keys_parse_and_their_typos_are_named() {
    let with = |line: &str| BASE.replace("model = \"m\"\n", &format!("model = \"m\"\n{line}\n"));
    let c = parse(&with("samples = true\nmax_reply_bytes = 1024")).unwrap();
    assert_eq!((c.models["task"].samples, c.models["task"].max_reply_bytes), (Some(true), 1024));
    assert_eq!(parse(BASE).unwrap().models["task"].max_reply_bytes, 16 << 20);
    assert_eq!(
        err(&with("sample = true")),
        "gepa.toml:4: unknown key `sample` in [models.task]; did you mean `samples`?"
    );
    assert_eq!(
        err(&with("max_reply_byte = 10")),
        "gepa.toml:4: unknown key `max_reply_byte` in [models.task]; did you mean `max_reply_bytes`?"
    );
}

#[test]
fn unknown_key_in_array_of_tables() {
    let text = BASE.replace("user = \"{{input}}\"", "usr = \"{{input}}\"");
    assert_eq!(err(&text), "gepa.toml:13: unknown key `usr` in [[system.steps]]; did you mean `user`?");
}

#[test]
fn unknown_key_in_an_inline_table_names_its_key() {
    let text = "components = [{ name = \"instruction\", fil = \"p.md\" }]\n[models.task]\nprovider = \"openai\"\n";
    assert_eq!(err(text), "gepa.toml:1: unknown key `fil` in `components`; did you mean `file`?");
}

#[test]
fn unknown_section() {
    let text = format!("{BASE}\n[optimiser]\nseed = 1\n");
    assert_eq!(err(&text), "gepa.toml:23: unknown section `optimiser`; did you mean `optimizer`?");
}

#[test]
fn wrong_type_names_key() {
    let text = format!("{BASE}\n[optimizer]\nconcurrency = \"4\"\n");
    assert_eq!(
        err(&text),
        "gepa.toml:24: wrong type for `concurrency` in [optimizer]: expected a whole number (0 or more), found string \"4\""
    );
}

#[test]
fn missing_key_names_table() {
    let text = BASE.replace("model = \"m\"\n", "");
    assert_eq!(err(&text), "gepa.toml:1: missing key `model` in [models.task]");
    let text = BASE.replace("[evaluator]\nkind = \"exact\"\n", "[evaluator]\n");
    assert_eq!(err(&text), "gepa.toml:19: missing key `kind` in [evaluator]");
}

#[test]
fn missing_section() {
    let text = BASE.replace("[data]\ntrain = \"data/train.jsonl\"\nval = \"data/val.jsonl\"\n", "");
    assert_eq!(err(&text), "gepa.toml: missing section [data]");
}

#[test]
fn bad_enum_value() {
    let text = BASE.replace("provider = \"openai\"", "provider = \"opnai\"");
    assert_eq!(
        err(&text),
        "gepa.toml:2: unknown value \"opnai\" for `provider` in [models.task]; did you mean \"openai\"? Expected one of: \"openai\", \"anthropic\""
    );
}

#[test]
fn syntax_error_has_line() {
    let text = format!("{BASE}\n[optimizer\n");
    assert!(err(&text).starts_with("gepa.toml:23: "), "{}", err(&text));
}

#[test]
fn key_lines_follow_arrays_and_skip_multiline_strings() {
    let text = "[[components]]\nname = \"a\"\nfile = \"x\"\n[[components]]\nname = \"b\"\n\
file = \"y\"\n[evaluator]\nrubric = \"\"\"\nfake = 1\n[not_a_header]\n\"\"\"\ncommand = [\n  \"python\",\n  \"[x]\",\n]\nmodel = \"j\"\n";
    let k = KeyLines::new(text);
    assert_eq!(k.line("components[0].file"), Some(3));
    assert_eq!(k.line("components[1].file"), Some(6));
    assert_eq!(k.line("components[1].missing"), Some(4));
    assert_eq!(k.line("evaluator.rubric"), Some(8));
    assert_eq!(k.line("evaluator.fake"), Some(7));
    assert_eq!(k.line("evaluator.model"), Some(16));
    assert_eq!(k.line("not_a_header"), None);
}

/// What serde hands over as data names the key and section in every case: a number out of range,
/// a name given as something else, a table under a known one, a later element of an array of
/// tables.
#[test]
fn refusals_name_the_key_section_and_line_from_the_tree() {
    assert_eq!(
        err(&format!("{BASE}\n[optimizer]\nconcurrency = -1\n")),
        "gepa.toml:24: bad value for `concurrency` in [optimizer]: expected a whole number (0 or more), found integer -1"
    );
    assert_eq!(
        err(&BASE.replace("model = \"m\"\n", "model = \"m\"\nmax_tokens = 5000000000\n")),
        "gepa.toml:4: bad value for `max_tokens` in [models.task]: expected a whole number from 0 to 4294967295, found integer 5000000000"
    );
    assert_eq!(
        err(&BASE.replace("provider = \"openai\"", "provider = 3")),
        "gepa.toml:2: wrong type for `provider` in [models.task]: expected one of \"openai\", \"anthropic\", found integer 3"
    );
    assert_eq!(
        err(&BASE.replace("kind = \"chat\"", "kind = \"chat\"\n[system.stepz]\na = 1")),
        "gepa.toml:11: unknown section `stepz` in [system]; did you mean `steps`?"
    );
    assert_eq!(
        err(&format!("{BASE}\n[[evaluator.parts]]\nkind = \"exact\"\n[[evaluator.parts]]\nweight = 2\n")),
        "gepa.toml:25: missing key `kind` in [[evaluator.parts]]"
    );
    assert_eq!(
        err(&BASE.replace(
            "[models.task]\n",
            "[models]\ntask = { provider = \"openai\", model = \"m\", modle = 1 }\n[models.x]\n"
        )),
        "gepa.toml:2: unknown key `modle` in `task`; did you mean `model`?"
    );
}

/// Values toml writes in several ways are read as before: an integer where a number is asked,
/// a free table (`extra`) with arrays and tables in it.
#[test]
fn integers_for_numbers_and_free_tables_are_taken() {
    let text = BASE.replace(
        "model = \"m\"\n",
        "model = \"m\"\ntemperature = 0\nextra = { top_p = 0.5, stop = [\"a\"], o = { x = 1 } }\n",
    );
    let c = parse(&format!("{text}timeout_secs = 5\n")).unwrap();
    assert_eq!((c.models["task"].temperature, c.evaluator.timeout_secs), (Some(0.0), 5.0));
    let extra = c.models["task"].extra.clone().unwrap();
    let as_json = serde_json::to_string(&extra).unwrap();
    assert_eq!(as_json, r#"{"o":{"x":1},"stop":["a"],"top_p":0.5}"#);
}

/// `[tracking]` is checked like every other table: a typo is named, a URL that is not one too.
#[test]
fn tracking_keys_parse_and_their_mistakes_are_named() {
    let c = parse(&format!("{BASE}\n[tracking]\nmlflow = \"http://127.0.0.1:5000\"\nexperiment = \"e\"\n")).unwrap();
    assert_eq!(c.tracking.mlflow.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(c.tracking.experiment.as_deref(), Some("e"));
    assert_eq!(parse(BASE).unwrap().tracking, TrackingConfig::default());
    assert_eq!(
        err(&format!("{BASE}\n[tracking]\nmlflw = \"http://x\"\n")),
        "gepa.toml:24: unknown key `mlflw` in [tracking]; did you mean `mlflow`?"
    );
    assert_eq!(
        err(&format!("{BASE}\n[tracking]\nmlflow = \"127.0.0.1:5000\"\n")),
        "gepa.toml:24: bad value for `mlflow` in [tracking]: expected an MLflow tracking server's URL, \
         http://host:port (e.g. \"http://127.0.0.1:5000\"), or \"\" for no tracking, found string \"127.0.0.1:5000\""
    );
}
