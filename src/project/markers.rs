//! Protected text, as a person writes it: a span of a prompt between `<<keep>>` and `<</keep>>`
//! (in a prompt file, a hand edit in the workbench, or `$EDITOR`). The markers are taken out
//! before the text goes anywhere (the task model sees the plain text); what they held is kept as
//! the component's protected spans, which later reflections must keep verbatim.
//!
//! The markers were chosen to be unlikely in a real prompt: `{{…}}` is the template syntax,
//! and `<tag>` / `[[…]]` / `<!-- -->` all occur in prompts that are themselves markup.

use crate::project::Candidate;
use std::collections::BTreeMap;

pub const KEEP_OPEN: &str = "<<keep>>";
pub const KEEP_CLOSE: &str = "<</keep>>";

/// Protected spans per component name, each the exact text to keep, in the order first marked.
pub type Protected = BTreeMap<String, Vec<String>>;

/// A marker that does not pair up, with the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for MarkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The text without its keep markers, and the spans they held (in order, each once). Err: a
/// marker opened inside another, a close without an open, one never closed, or an empty span.
pub fn strip_markers(text: &str) -> Result<(String, Vec<String>), MarkerError> {
    let line_at = |byte: usize| text[..byte].matches('\n').count() + 1;
    let mut plain = String::with_capacity(text.len());
    let mut spans: Vec<String> = Vec::new();
    let mut open: Option<(usize, usize)> = None; // (byte in text, byte in plain)
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if rest.starts_with(KEEP_OPEN) {
            if let Some((at, _)) = open {
                return Err(MarkerError {
                    line: line_at(i),
                    message: format!(
                        "{KEEP_OPEN} inside the protected span opened on line {}; close that one with {KEEP_CLOSE} first",
                        line_at(at)
                    ),
                });
            }
            open = Some((i, plain.len()));
            i += KEEP_OPEN.len();
        } else if rest.starts_with(KEEP_CLOSE) {
            let Some((at, from)) = open.take() else {
                return Err(MarkerError {
                    line: line_at(i),
                    message: format!("{KEEP_CLOSE} without a {KEEP_OPEN} before it"),
                });
            };
            let span = plain[from..].to_string();
            if span.trim().is_empty() {
                return Err(MarkerError {
                    line: line_at(at),
                    message: format!("{KEEP_OPEN} … {KEEP_CLOSE} holds no text; put the text to protect between them"),
                });
            }
            if !spans.contains(&span) {
                spans.push(span);
            }
            i += KEEP_CLOSE.len();
        } else {
            let c = rest.chars().next().expect("not at the end");
            plain.push(c);
            i += c.len_utf8();
        }
    }
    if let Some((at, _)) = open {
        return Err(MarkerError {
            line: line_at(at),
            message: format!("{KEEP_OPEN} is never closed; end the protected text with {KEEP_CLOSE}"),
        });
    }
    Ok((plain, spans))
}

/// Every component's text without markers, and the spans per component. Err: the component and
/// what is wrong in it.
pub fn strip_candidate(texts: &Candidate) -> Result<(Candidate, Protected), (String, MarkerError)> {
    let mut plain = Candidate::new();
    let mut protected = Protected::new();
    for (name, text) in texts {
        let (p, spans) = strip_markers(text).map_err(|e| (name.clone(), e))?;
        plain.insert(name.clone(), p);
        if !spans.is_empty() {
            protected.insert(name.clone(), spans);
        }
    }
    Ok((plain, protected))
}

/// `text` with the first occurrence of each span (that is not inside one already marked) wrapped
/// in keep markers: what a prompt file looks like when a candidate is written back to it.
pub fn mark_spans(text: &str, spans: &[String]) -> String {
    // Byte ranges to wrap, non-overlapping, in text order.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        if s.is_empty() || spans[..i].contains(s) {
            continue;
        }
        let mut from = 0;
        while let Some(pos) = text[from..].find(s.as_str()).map(|p| p + from) {
            let end = pos + s.len();
            if ranges.iter().all(|&(a, b)| end <= a || pos >= b) {
                ranges.push((pos, end));
                break;
            }
            from = pos + s.chars().next().map_or(1, char::len_utf8);
        }
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len() + ranges.len() * (KEEP_OPEN.len() + KEEP_CLOSE.len()));
    let mut at = 0;
    for (a, b) in ranges {
        out.push_str(&text[at..a]);
        out.push_str(KEEP_OPEN);
        out.push_str(&text[a..b]);
        out.push_str(KEEP_CLOSE);
        at = b;
    }
    out.push_str(&text[at..]);
    out
}

/// Whether a text holds a keep marker (a span to protect was written, or one left half-typed).
pub fn has_markers(text: &str) -> bool {
    text.contains(KEEP_OPEN) || text.contains(KEEP_CLOSE)
}

/// One line of text wrapped in keep markers, or unwrapped when it already is (the editor's key).
pub fn toggle_line(line: &str) -> String {
    match line.strip_prefix(KEEP_OPEN).and_then(|l| l.strip_suffix(KEEP_CLOSE)) {
        Some(inner) => inner.to_string(),
        None => format!("{KEEP_OPEN}{line}{KEEP_CLOSE}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_come_out_and_their_text_is_kept() {
        let (plain, spans) = strip_markers(
            "Route tickets.\n<<keep>>Never promise a refund.<</keep>>\nBe brief. <<keep>>Sign as Ada.<</keep>>",
        )
        .unwrap();
        assert_eq!(plain, "Route tickets.\nNever promise a refund.\nBe brief. Sign as Ada.");
        assert_eq!(spans, vec!["Never promise a refund.".to_string(), "Sign as Ada.".to_string()]);
        // Text without markers is unchanged.
        assert_eq!(strip_markers("a {{x}} <b>").unwrap(), ("a {{x}} <b>".to_string(), vec![]));
        // A span over several lines stays whole.
        let (_, spans) = strip_markers("<<keep>>one\ntwo<</keep>>").unwrap();
        assert_eq!(spans, vec!["one\ntwo".to_string()]);
    }

    #[test]
    fn a_marker_that_does_not_pair_names_its_line() {
        let e = strip_markers("a\n<<keep>>b\nc").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("never closed"), "{e}");
        let e = strip_markers("a\nb<</keep>>").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("without"), "{e}");
        let e = strip_markers("<<keep>>a\n<<keep>>b<</keep>><</keep>>").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("line 1"), "{e}");
        let e = strip_markers("x <<keep>>  <</keep>>").unwrap_err();
        assert!(e.message.contains("holds no text"), "{e}");
    }

    #[test]
    fn marking_spans_writes_back_what_stripping_reads() {
        let text = "Route tickets. Never promise a refund. Sign as Ada.";
        let spans = vec!["Sign as Ada.".to_string(), "Never promise a refund.".to_string(), "absent".to_string()];
        let marked = mark_spans(text, &spans);
        assert_eq!(marked, "Route tickets. <<keep>>Never promise a refund.<</keep>> <<keep>>Sign as Ada.<</keep>>");
        let (plain, back) = strip_markers(&marked).unwrap();
        assert_eq!(plain, text);
        assert_eq!(back, vec!["Never promise a refund.".to_string(), "Sign as Ada.".to_string()]);
        // A span listed twice is marked once; one overlapping a marked span is looked for later
        // in the text, and left unmarked when it only occurs inside the other.
        assert_eq!(mark_spans("abcabc", &["abc".into(), "abc".into()]), "<<keep>>abc<</keep>>abc");
        assert_eq!(mark_spans("abcd", &["abc".into(), "bcd".into()]), "<<keep>>abc<</keep>>d");
        assert_eq!(mark_spans("abcd bcd", &["abc".into(), "bcd".into()]), "<<keep>>abc<</keep>>d <<keep>>bcd<</keep>>");
    }

    #[test]
    fn toggling_a_line_wraps_and_unwraps_it() {
        assert_eq!(toggle_line("Be kind."), "<<keep>>Be kind.<</keep>>");
        assert_eq!(toggle_line("<<keep>>Be kind.<</keep>>"), "Be kind.");
    }
}
