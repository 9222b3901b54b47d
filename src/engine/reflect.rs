//! The reflection step: the reflective dataset, gepa's default instruction-proposal prompt, and the
//! extraction of the new text from the model's fenced answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// gepa's default reflection prompt (`InstructionProposalSignature.default_prompt_template`).
/// Custom templates may use `<curr_instructions>`/`<inputs_outputs_feedback>` (gepa 0.1) or
/// `<curr_param>`/`<side_info>` (later gepa).
pub const DEFAULT_TEMPLATE: &str = "I provided an assistant with the following instructions to perform a task for me:
```
<curr_instructions>
```

The following are examples of different task inputs provided to the assistant along with the assistant's response for each of them, and some feedback on how the assistant's response could be better:
```
<inputs_outputs_feedback>
```

Your task is to write a new instruction for the assistant.

Read the inputs carefully and identify the input format and infer detailed task description about the task I wish to solve with the assistant.

Read all the assistant responses and the corresponding feedback. Identify all niche and domain specific factual information about the task and include it in the instruction, as a lot of it may not be available to the assistant in the future. The assistant may have utilized a generalizable strategy to solve the task, if so, include that in the instruction as well.

Provide the new instructions within ``` blocks.";

/// `[reflection] template = "compact"`: for small models. What the sample projects learned on a
/// 1.5B model: asked for the input format, niche facts and a strategy at once, it echoes the
/// examples or answers them itself; asked only for the revised instruction in one fence, it
/// writes one.
pub const COMPACT_TEMPLATE: &str = "You are improving the instruction an assistant follows.

The current instruction:
```
<curr_instructions>
```

Examples the assistant handled with it: the input, what it answered, and feedback on what was wrong:
<inputs_outputs_feedback>

Write a better instruction: keep what works, and add the rules the feedback shows are missing, stated generally (not about one example). Do not answer the examples.

Reply with only the new instruction, inside one ``` block.";

/// The text of a built-in template.
pub fn builtin_template(kind: crate::project::config::TemplateKind) -> &'static str {
    match kind {
        crate::project::config::TemplateKind::Gepa => DEFAULT_TEMPLATE,
        crate::project::config::TemplateKind::Compact => COMPACT_TEMPLATE,
    }
}

/// The note a cut-off reflection is asked again with.
pub const CUT_OFF_NOTE: &str = "Your answer was cut off before it ended. Reply again with only the complete new instruction inside one ``` block: no explanation before or after it, and keep it short enough to finish.";

/// The note an answer that returned the current instruction unchanged is asked again with: it
/// names the examples (by their number in the prompt) the instruction failed, with their
/// feedback, so the question is not the one that got the echo.
pub fn unchanged_note(records: &[ReflectiveRecord], failed: &[usize]) -> String {
    let mut note = String::from(
        "Your answer repeated the current instruction unchanged, but with that instruction the assistant got",
    );
    if failed.is_empty() {
        note.push_str(" these examples less than fully right.");
    } else {
        let names: Vec<String> = failed.iter().map(|i| format!("Example {}", i + 1)).collect();
        note.push_str(&format!(" {} wrong:\n", names.join(", ")));
        for &i in failed {
            if let Some(r) = records.get(i) {
                let feedback = crate::text::truncate_chars(r.feedback.trim(), 300);
                note.push_str(&format!("- Example {}: {}\n", i + 1, feedback.replace('\n', " ")));
            }
        }
    }
    note.push_str(
        "\nWrite a different instruction that fixes these failures: add the rules the feedback shows are missing. Reply with only the new instruction inside one ``` block.",
    );
    note
}

/// The note an answer that held no instruction (`holds_no_instruction`) is asked again with, as
/// the next turn of the conversation. A 1.5B model that answered gepa's template with "Certainly!
/// Please provide the inputs for the new task." wrote an instruction when told this, in 2 of 3
/// tries (support-triage, temperature 0).
pub const NO_INSTRUCTION_NOTE: &str = "Your answer held no new instruction. Write the new instruction for the assistant now, using the examples and feedback above: reply with only the new instruction inside one ``` block.";

/// An answer cut off at max_tokens, or with a ``` fence opened and never closed, holds half a
/// prompt at best: it is not used. Fences are read as Markdown (CommonMark) reads them: a fence
/// is a line that starts with ```; a ``` inside a line is text, and inside an open block a fence
/// with a language (```json) opens nothing. So a new instruction that mentions or shows a fence
/// is whole, however many ``` it holds.
pub fn is_cut_off(answer: &str, truncated: bool) -> bool {
    let mut open = false;
    for line in answer.lines().map(str::trim) {
        if !line.starts_with("```") {
            continue;
        }
        if !open {
            open = true;
        } else if line.chars().all(|c| c == '`') {
            open = false;
        }
    }
    truncated || open
}

/// One record of the reflective dataset: what went in, what came out, and what was wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflectiveRecord {
    pub inputs: serde_json::Map<String, Value>,
    /// The output of the step using the component (and the final output when they differ).
    pub generated_outputs: Value,
    pub feedback: String,
}

/// The reflection template a project uses: its `template_file` (read inside the project folder
/// only, its placeholders checked), else the built-in one `template` names.
pub fn template_for(project: &crate::project::Project) -> anyhow::Result<String> {
    match project.reflection_template()? {
        Some(t) => {
            validate_template(&t).map_err(|e| {
                anyhow::anyhow!("{}: {e}", project.config.reflection.template_file.as_deref().unwrap_or_default())
            })?;
            Ok(t)
        }
        None => Ok(builtin_template(project.config.reflection.template).to_string()),
    }
}

/// Checks a custom template has both placeholders (in either naming).
pub fn validate_template(t: &str) -> Result<(), String> {
    let has_curr = t.contains("<curr_instructions>") || t.contains("<curr_param>");
    let has_data = t.contains("<inputs_outputs_feedback>") || t.contains("<side_info>");
    match (has_curr, has_data) {
        (true, true) => Ok(()),
        (false, _) => Err("the reflection template has no <curr_instructions> placeholder".into()),
        (_, false) => Err("the reflection template has no <inputs_outputs_feedback> placeholder".into()),
    }
}

/// Renders records as gepa's markdown (`# Example N`, `## Inputs`, `### field`, ...).
pub fn format_dataset(records: &[ReflectiveRecord]) -> String {
    fn render(v: &Value, level: usize, out: &mut String) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.push_str(&format!("{} {}\n", "#".repeat(level), k));
                    render(v, (level + 1).min(6), out);
                }
                if m.is_empty() {
                    out.push('\n');
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    out.push_str(&format!("{} Item {}\n", "#".repeat(level), i + 1));
                    render(v, (level + 1).min(6), out);
                }
                if a.is_empty() {
                    out.push('\n');
                }
            }
            Value::String(s) => {
                out.push_str(s.trim());
                out.push_str("\n\n");
            }
            other => {
                out.push_str(&other.to_string());
                out.push_str("\n\n");
            }
        }
    }
    let mut parts = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut s = format!("# Example {}\n", i + 1);
        s.push_str("## Inputs\n");
        render(&Value::Object(r.inputs.clone()), 3, &mut s);
        s.push_str("## Generated Outputs\n");
        render(&r.generated_outputs, 3, &mut s);
        s.push_str("## Feedback\n");
        render(&Value::String(r.feedback.clone()), 3, &mut s);
        parts.push(s);
    }
    parts.join("\n\n")
}

/// Builds the reflection prompt. `reviewer_notes` are reasons a human gave when vetoing earlier
/// proposals for this component; they are appended so the model stops proposing the same thing.
pub fn build_prompt(template: &str, current: &str, records: &[ReflectiveRecord], reviewer_notes: &[String]) -> String {
    let data = format_dataset(records);
    let mut p = template
        .replace("<curr_instructions>", current)
        .replace("<curr_param>", current)
        .replace("<inputs_outputs_feedback>", &data)
        .replace("<side_info>", &data);
    if !reviewer_notes.is_empty() {
        p.push_str("\n\nA human reviewer rejected earlier proposed instructions for this assistant. Their reasons, which the new instruction must respect:\n");
        for n in reviewer_notes {
            p.push_str("- ");
            p.push_str(n.trim());
            p.push('\n');
        }
    }
    p
}

/// An answer that holds no instruction: the template asks for the new text in ``` blocks, the
/// answer has no fence at all, and it is either under a quarter of the parent's words, or short
/// (under `SHORT_ANSWER_WORDS`) and shares no word of four letters or more with the parent. A
/// small model given gepa's template often answers like this: "Certainly! Please provide the
/// inputs for the new task." (6 to 9 words; 82 of the 1.5B model's 95 unfenced answers on
/// support-triage and math-word-problems, whose seeds are 31 and 5 words long), while its
/// unfenced instructions ran from 75 to 232 words. gepa's `output_extractor` takes such text whole
/// as the new instruction, which then costs a minibatch evaluation to be rejected. An unfenced
/// answer of a fair length, or a short one that speaks of what the parent speaks of (a model that
/// leaves out the fence), is still the new text, and a template that asks for no fence is never
/// judged this way.
pub fn holds_no_instruction(template: &str, answer: &str, parent: &str) -> bool {
    fn words(s: &str) -> impl Iterator<Item = String> + '_ {
        s.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
    }
    let n = words(answer).count();
    let of_parent: std::collections::HashSet<String> = words(parent).filter(|w| w.chars().count() >= 4).collect();
    let unrelated = || words(answer).filter(|w| w.chars().count() >= 4).all(|w| !of_parent.contains(&w));
    template.contains("```")
        && !answer.contains("```")
        && (n * 4 < words(parent).count() || (n < SHORT_ANSWER_WORDS && unrelated()))
}

/// The same text but for whitespace: the same words in the same order. A 1.5B model asked to
/// rewrite an instruction often gives it back with its lines joined, or a newline fewer at the end
/// (support-triage, gepa's template: 4 of its first 6 answers); a child that differs from its
/// parent only so is the parent, and testing it spends a minibatch to learn nothing.
pub fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// Words under which an unfenced answer that shares no word with the parent holds no instruction.
pub const SHORT_ANSWER_WORDS: usize = 20;

/// A new text that is an answer to the task, not an instruction: one of the outputs the dataset
/// shows, word for word (whitespace aside), or nothing but JSON objects that each hold the keys
/// an output has (with the input beside them, as the model also wrote:
/// `{"message": "Nobody on our team can log in…", "team": "oncall", "priority": "urgent"}`).
/// Asked with gepa's template, the 1.5B model sometimes answers an example
/// (```` ```json {"team": "billing", "priority": "low"}``` ````): taken as the new instruction it
/// cost a minibatch evaluation, and once passed it (the JSON format was asked in the user
/// message, so the task still answered). A parent that is itself such text (a component holding
/// data, not an instruction) is never judged this way.
pub fn answers_an_example(new_text: &str, parent: &str, records: &[ReflectiveRecord]) -> bool {
    /// The key sets of a text that is only JSON objects (one or several, or an array of them).
    fn shapes(s: &str) -> Option<Vec<std::collections::BTreeSet<String>>> {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(s.trim()).into_iter::<Value>() {
            let items = match v.ok()? {
                Value::Array(a) => a,
                v => vec![v],
            };
            for item in items {
                out.push(item.as_object()?.keys().cloned().collect());
            }
        }
        (!out.is_empty()).then_some(out)
    }
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Object(m) => m.values().for_each(|v| strings(v, out)),
            Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    if new_text.trim().is_empty() || same_words(new_text, parent) || shapes(parent).is_some() {
        return false;
    }
    let mut outputs = Vec::new();
    records.iter().for_each(|r| strings(&r.generated_outputs, &mut outputs));
    if outputs.iter().any(|o| same_words(o, new_text)) {
        return true;
    }
    let shown: Vec<_> = outputs.iter().filter_map(|o| shapes(&extract_instruction(o))).flatten().collect();
    shapes(new_text).is_some_and(|mine| mine.iter().all(|k| shown.iter().any(|o| o.is_subset(k))))
}

/// The text between the first and the last ``` fence, without a language tag; unfenced or
/// half-fenced answers handled as gepa's `output_extractor` does.
pub fn extract_instruction(answer: &str) -> String {
    // Skips `^\S*\n`: an optional language tag (or nothing) ending the first line.
    fn skip_tag(s: &str) -> &str {
        match s.find('\n') {
            Some(nl) if !s[..nl].contains(char::is_whitespace) => &s[nl + 1..],
            _ => s,
        }
    }
    if let (Some(first), Some(last)) = (answer.find("```"), answer.rfind("```")) {
        if first + 3 < last {
            return skip_tag(&answer[first + 3..last]).trim().to_string();
        }
    }
    let stripped = answer.trim();
    if let Some(rest) = stripped.strip_prefix("```") {
        // An opening fence that never closed (often a reply cut off at max_tokens).
        skip_tag(rest).trim().to_string()
    } else if let Some(rest) = stripped.strip_suffix("```") {
        rest.trim().to_string()
    } else {
        stripped.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_unfenced_answer_to_a_template_asking_for_a_fence_holds_no_instruction() {
        let parent = "Route the customer message to one team and one priority. Teams: billing, tech, \
                      account, shipping. Priorities: low, normal, high. A refund over $500 is high; a lost \
                      package is shipping/normal. Reply with JSON holding team and priority.";
        let gepa = builtin_template(crate::project::config::TemplateKind::Gepa);
        let compact = builtin_template(crate::project::config::TemplateKind::Compact);
        for t in [gepa, compact] {
            assert!(t.contains("```"), "the built-in templates ask for a fence");
            assert!(holds_no_instruction(t, "Certainly! Please provide the new instruction.", parent));
            // Fenced, however short: the model answered in the format asked.
            assert!(!holds_no_instruction(t, "```\nBe brief.\n```", parent));
            // Unfenced but of a fair length: an instruction without its fence, used whole.
            let long = "Route each message to one team (billing, tech, account, shipping) and a priority.";
            assert!(!holds_no_instruction(t, long, parent));
            // However short the parent, an answer that speaks of something else holds none …
            let seed = "Solve the math word problem.";
            assert!(holds_no_instruction(t, "Certainly! Please provide the inputs for the task.", seed));
            assert!(holds_no_instruction(t, "Certainly! Please provide the inputs for the new task.", parent));
            // … and a short one about the task is an instruction, unfenced.
            assert!(!holds_no_instruction(t, "Solve the problem step by step, then give the number.", seed));
        }
        // A template of the user's that asks for no fence: short unfenced answers are its format.
        let own = "Improve:\n<curr_instructions>\n<inputs_outputs_feedback>\nAnswer with the new text only.";
        assert!(!holds_no_instruction(own, "Be brief.", parent));
    }

    #[test]
    fn a_text_that_is_one_of_the_outputs_or_shaped_as_them_answers_an_example() {
        let record = |out: &str| ReflectiveRecord {
            inputs: serde_json::Map::new(),
            generated_outputs: Value::String(out.into()),
            feedback: "Expected team tech".into(),
        };
        let parent = "Route the message to a team and a priority.";
        let shown = [record("```json\n{\"team\": \"billing\", \"priority\": \"normal\"}\n```"), record("not sure")];
        // The JSON the task answers with, or several of them, is an answer, not an instruction.
        assert!(answers_an_example("{\"team\": \"billing\", \"priority\": \"low\"}", parent, &shown));
        assert!(answers_an_example(
            "{\"priority\": \"high\", \"team\": \"tech\"}\n{\"team\": \"x\", \"priority\": \"y\"}",
            parent,
            &shown
        ));
        assert!(answers_an_example("[{\"team\": \"tech\", \"priority\": \"low\"}]", parent, &shown));
        // With the example's input beside its answer.
        assert!(answers_an_example(
            "{\"message\": \"I was charged twice\", \"team\": \"billing\", \"priority\": \"high\"}",
            parent,
            &shown
        ));
        // Part of the output's keys is not the output.
        assert!(!answers_an_example("{\"team\": \"billing\"}", parent, &shown));
        // An output word for word.
        assert!(answers_an_example(" not\nsure ", parent, &shown));
        // An instruction that shows the format, JSON of another shape, or prose, is not.
        assert!(!answers_an_example("Reply {\"team\": \"tech\", \"priority\": \"low\"}", parent, &shown));
        assert!(!answers_an_example("{\"rules\": [\"refunds are billing\"]}", parent, &shown));
        assert!(!answers_an_example("Route refunds to billing. When not sure, say so.", parent, &shown));
        // A component that holds JSON itself is data: its child may be JSON.
        let data = "{\"team\": \"billing\", \"priority\": \"normal\"}";
        assert!(!answers_an_example("{\"team\": \"tech\", \"priority\": \"low\"}", data, &shown));
        // Nor is the parent's own text (an echo is judged as one).
        assert!(!answers_an_example("not sure", "not sure", &shown));
    }

    #[test]
    fn a_text_with_only_its_whitespace_changed_has_the_same_words() {
        let parent = "Route the message.\nTeams: billing, tech.\n";
        assert!(same_words("Route the message. Teams: billing, tech.", parent));
        assert!(same_words("  Route the\tmessage.\n\nTeams: billing,\ntech.", parent));
        assert!(!same_words("Route the message. Teams: billing, tech, shipping.", parent));
        assert!(!same_words("Route the message.Teams: billing, tech.", parent));
    }

    #[test]
    fn extracts_between_first_and_last_fence() {
        assert_eq!(extract_instruction("Sure!\n```\nBe terse.\n```\nDone."), "Be terse.");
        assert_eq!(extract_instruction("```markdown\nRule 1\n```"), "Rule 1");
        // Inner fences survive: first and last are used.
        assert_eq!(extract_instruction("```\nUse ```json``` blocks\n```"), "Use ```json``` blocks");
    }

    #[test]
    fn handles_missing_or_half_fences() {
        assert_eq!(extract_instruction("Just do it well."), "Just do it well.");
        assert_eq!(extract_instruction("```text\nCut off mid"), "Cut off mid");
        assert_eq!(extract_instruction("Ends with fence```"), "Ends with fence");
        assert_eq!(extract_instruction(""), "");
        assert_eq!(extract_instruction("```"), "");
    }

    #[test]
    fn a_fence_left_open_is_cut_off_and_a_fence_inside_the_instruction_is_not() {
        let cut = |a: &str| is_cut_off(a, false);
        assert!(cut("Here:\n```\nBe terse and"));
        assert!(cut("```\nA\n```\nand also:\n```\nB"));
        assert!(cut("Here:\n```markdown"));
        assert!(is_cut_off("```\nBe terse.\n```", true));
        // Whole answers: two fences, none, or an instruction that mentions or shows a fence.
        assert!(!cut("Sure!\n```\nBe terse.\n```\nDone."));
        assert!(!cut("Just do it well."));
        assert!(!cut("```\nStart your reply with ```json and nothing before it.\n```"));
        let shows_a_fence =
            "New instruction:\n```\nReply with the JSON only, e.g.\n```json\n{\"team\": \"billing\"}\n```";
        assert!(!cut(shows_a_fence));
        assert_eq!(
            extract_instruction(shows_a_fence),
            "Reply with the JSON only, e.g.\n```json\n{\"team\": \"billing\"}"
        );
    }

    #[test]
    fn prompt_has_text_dataset_and_reviewer_notes() {
        let mut inputs = serde_json::Map::new();
        inputs.insert("question".into(), Value::String("2+2?".into()));
        let r =
            ReflectiveRecord { inputs, generated_outputs: Value::String("5".into()), feedback: "Expected 4".into() };
        let p = build_prompt(DEFAULT_TEMPLATE, "Answer.", &[r], &["don't hard-code answers".into()]);
        assert!(p.contains("```\nAnswer.\n```"));
        assert!(p.contains(
            "# Example 1\n## Inputs\n### question\n2+2?\n\n## Generated Outputs\n5\n\n## Feedback\nExpected 4"
        ));
        assert!(p.ends_with("- don't hard-code answers\n"));
    }
}
