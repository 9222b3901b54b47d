//! `gepa-tui init [DIR]`: write a small, commented starter project. Never overwrites a file.

use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

const GEPA_TOML: &str = r#"# A gepa-tui starter project: classify the sentiment of short product reviews.
#
# GEPA runs the prompt in prompts/instruction.md on the train examples, shows the failures and their
# feedback to a reflection model, and keeps every rewrite that does better. Edit [models] so they
# point at a model you can reach, then:
#     gepa-tui check      validate the project and ping the models
#     gepa-tui eval       score the starting prompt on the val split
#     gepa-tui            open the workbench and start a run

[models.task]                      # the model the prompt runs on
provider = "openai"                # any OpenAI-compatible server: Ollama, llama.cpp, vLLM, OpenAI itself
model = "llama3.2"
base_url = "http://localhost:11434/v1"   # Ollama's default; llama.cpp's server: http://127.0.0.1:8080/v1
temperature = 0.0
max_tokens = 16                    # the answer is one word
# To use OpenAI instead:
#   model = "gpt-4.1-mini"
#   base_url = "https://api.openai.com/v1"
#   api_key_env = "OPENAI_API_KEY"       # the key is read from this variable, never stored
#   price_input_per_mtok = 0.4           # USD per million tokens, to see costs and set budgets
#   price_output_per_mtok = 1.6
# To use Anthropic:
#   provider = "anthropic"
#   model = "claude-sonnet-4-5"
#   api_key_env = "ANTHROPIC_API_KEY"    # base_url defaults to https://api.anthropic.com/v1

[models.reflection]                # reads failures and feedback, and rewrites the prompt
provider = "openai"                # the same keys as [models.task]; a stronger model helps most here
model = "llama3.2"
base_url = "http://localhost:11434/v1"
temperature = 0.7
max_tokens = 1024

[[components]]                     # the texts being optimized; the files hold the starting text
name = "instruction"
file = "prompts/instruction.md"

[system]                           # how one example is run: one chat call per step
kind = "chat"
[[system.steps]]
name = "classify"
system = "{{instruction}}"         # {{name}} is a component, an example field, or {{steps.<step>.output}}
user = "Review: {{review}}"

[data]                             # one JSON object per line
train = "data/train.jsonl"         # GEPA learns from these
val = "data/val.jsonl"             # candidates are compared on these
test = "data/test.jsonl"           # scored once at the end, to show whether the prompt overfits

[evaluator]
kind = "exact"                     # exact | contains | regex | json_field | command | judge | combined
field = "label"                    # the example field with the expected answer
feedback_fields = ["hint"]         # shown to the reflection model next to each mistake

[optimizer]
max_metric_calls = 200             # budget: one example scored = one call
minibatch_size = 3
concurrency = 4                    # evaluations in flight; keep it low for a local server
seed = 0
# objectives = ["prompt_tokens"]   # also record the prompt's length (or output_tokens, cost_usd)
# frontier = "hybrid"              # let them steer parent selection: instance | objective | hybrid | cartesian

[review]
mutations = "auto"                 # "approve" to accept or veto each rewrite yourself
merges = "approve"
"#;

const INSTRUCTION: &str = "Classify the sentiment of the product review.\n";

const TRAIN: &str = r#"{"id": "t1", "review": "Arrived on time and works perfectly. Would buy again.", "label": "positive"}
{"id": "t2", "review": "Broke after two days and support never answered.", "label": "negative"}
{"id": "t3", "review": "It's a phone case. It holds the phone.", "label": "neutral", "hint": "A review that only states facts, with no praise or complaint, is neutral."}
{"id": "t4", "review": "Oh great, another charger that stops working in a week. Just what I needed.", "label": "negative", "hint": "Sarcastic praise is negative."}
{"id": "t5", "review": "Battery life is great but the screen scratches easily.", "label": "neutral", "hint": "Equal praise and complaint is neutral."}
{"id": "t6", "review": "Absolutely love it!!! Best blender I've owned.", "label": "positive", "hint": "Answer with one lowercase word: positive, negative or neutral."}
"#;

const VAL: &str = r#"{"id": "v1", "review": "Does what the box says. Nothing more, nothing less.", "label": "neutral", "hint": "A review that only states facts is neutral."}
{"id": "v2", "review": "Wow, it fell apart the first time I used it. Amazing quality.", "label": "negative", "hint": "Sarcastic praise is negative."}
{"id": "v3", "review": "Comfortable, warm and the colour is exactly as pictured.", "label": "positive"}
{"id": "v4", "review": "Great sound, terrible battery.", "label": "neutral", "hint": "Equal praise and complaint is neutral."}
"#;

const TEST: &str = r#"{"id": "s1", "review": "The lid doesn't seal and the coffee goes cold fast.", "label": "negative"}
{"id": "s2", "review": "Sure, because everyone loves a kettle that whistles all night.", "label": "negative"}
{"id": "s3", "review": "Sturdy, light and easy to fold. Exactly what I wanted.", "label": "positive"}
"#;

const GITIGNORE: &str = "# written by gepa-tui: runs and the model response cache\n.gepa/\n";

/// The files `init` writes, relative to the project folder.
pub const FILES: [(&str, &str); 5] = [
    ("gepa.toml", GEPA_TOML),
    ("prompts/instruction.md", INSTRUCTION),
    ("data/train.jsonl", TRAIN),
    ("data/val.jsonl", VAL),
    ("data/test.jsonl", TEST),
];

/// Written when absent; an existing one (a project inside a git repository) is left alone.
const GITIGNORE_FILE: &str = ".gitignore";

pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    // Check every file first, so a refusal leaves the folder exactly as it was.
    for (rel, _) in FILES {
        let path = dir.join(rel);
        if path.exists() || path.is_symlink() {
            anyhow::bail!(
                "{} already exists; `init` never overwrites files. Choose a new or empty folder: gepa-tui init <folder>",
                path.display()
            );
        }
    }
    for (rel, text) in FILES {
        write_new(&dir.join(rel), text)?;
    }
    println!("Wrote a starter project in {}:", dir.display());
    for (rel, _) in FILES {
        println!("  {rel}");
    }
    let gitignore = dir.join(GITIGNORE_FILE);
    if gitignore.exists() {
        let text = std::fs::read_to_string(&gitignore).unwrap_or_default();
        if !text.lines().any(|l| l.trim().trim_start_matches('/').starts_with(".gepa")) {
            println!("Note: add `.gepa/` to your .gitignore (runs and the response cache live there).");
        }
    } else {
        write_new(&gitignore, GITIGNORE)?;
        println!("  {GITIGNORE_FILE}");
    }
    let shown = dir.display().to_string();
    let arg = if shown == "." { String::new() } else { format!(" {shown}") };
    println!();
    println!("Next: point [models] in gepa.toml at a model you can reach, then run");
    println!("  gepa-tui check{arg}");
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` with `text`; `create_new`, so a file that appeared meanwhile is still not overwritten.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
