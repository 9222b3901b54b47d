//! What a person asks of a reflection beyond approve and veto: text it must keep verbatim
//! (`protect`, or `<<keep>>` markers in a prompt file), a bound on how much a mutation may add
//! (`[[components]] max_growth`), and a note guiding one reflection (`guide`). The prompt
//! sections the reflection model reads, and the checks a child's new text must pass before any
//! metric call is spent on it.
//!
//! gepa has neither (its issues #267/#268/#277 ask for control over mutation size and structure);
//! the sections are appended after the template, as the veto reasons are, so a custom template
//! gets them too.

use super::event::ProposalOutcome;

/// The reflective prompt's section on protected text: each span the current text holds, to be
/// copied into the new text exactly.
pub fn protected_section(spans: &[String]) -> String {
    if spans.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n\nA person protected these passages of the current instruction. The new instruction must contain each of them exactly as written, character for character (do not reword, shorten or reformat them):\n",
    );
    for span in spans {
        s.push_str("<protected>\n");
        s.push_str(span);
        s.push_str("\n</protected>\n");
    }
    s
}

/// The reflective prompt's section with a person's note (`guide`), and the example they were
/// looking at when they wrote it (it is one of the examples of the dataset above).
pub fn guidance_section(note: &str, example: Option<&str>) -> String {
    let mut s =
        String::from("\n\nA person watching this optimization asks the new instruction to take this into account");
    if let Some(id) = example {
        s.push_str(&format!(" (they were looking at example `{id}`, one of the examples above)"));
    }
    s.push_str(":\n");
    s.push_str(note.trim());
    s.push('\n');
    s
}

/// Why a child's new text for `component` is refused before it is evaluated, if it is: it lost
/// a protected span its parent's text held (`kept`: those spans), or it grew more than
/// `max_growth` characters over the parent's text.
pub fn refusal(
    component: &str,
    parent: &str,
    child: &str,
    kept: &[String],
    max_growth: Option<usize>,
) -> Option<ProposalOutcome> {
    let missing: Vec<String> = kept.iter().filter(|s| !child.contains(s.as_str())).cloned().collect();
    if !missing.is_empty() {
        return Some(ProposalOutcome::ProtectedTextChanged { component: component.to_string(), missing });
    }
    let (parent_chars, child_chars) = (parent.chars().count(), child.chars().count());
    match max_growth {
        Some(max) if child_chars > parent_chars + max => Some(ProposalOutcome::GrewTooMuch {
            component: component.to_string(),
            parent_chars,
            child_chars,
            max_growth: max,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_loses_a_protected_span_or_grows_too_much_is_refused() {
        let kept = vec!["Never promise a refund.".to_string()];
        let parent = "Route tickets. Never promise a refund.";
        assert_eq!(refusal("i", parent, "Route tickets well. Never promise a refund.", &kept, None), None);
        // Reworded: the span is gone.
        assert_eq!(
            refusal("i", parent, "Route tickets. Do not promise refunds.", &kept, None),
            Some(ProposalOutcome::ProtectedTextChanged { component: "i".into(), missing: kept.clone() })
        );
        // 38 chars -> 48 is 10 more: within 10, over 9.
        let child = "Route tickets. Never promise a refund. Be brief.";
        assert_eq!(refusal("i", parent, child, &kept, Some(10)), None);
        assert_eq!(
            refusal("i", parent, child, &kept, Some(9)),
            Some(ProposalOutcome::GrewTooMuch {
                component: "i".into(),
                parent_chars: 38,
                child_chars: 48,
                max_growth: 9
            })
        );
        // Shrinking is always within the bound.
        assert_eq!(refusal("i", parent, "Never promise a refund.", &kept, Some(0)), None);
    }

    #[test]
    fn the_sections_hold_the_spans_and_the_note() {
        let s = protected_section(&["Sign as Ada.".into()]);
        assert!(s.contains("<protected>\nSign as Ada.\n</protected>"), "{s}");
        assert_eq!(protected_section(&[]), "");
        let g = guidance_section("  the city code is the first three letters  ", Some("v7"));
        assert!(g.contains("example `v7`") && g.ends_with(":\nthe city code is the first three letters\n"), "{g}");
    }
}
