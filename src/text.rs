//! Text from a model or a data file is untrusted: it may hold terminal escape sequences.

/// Removes terminal control sequences (CSI, OSC, DCS, other escapes), C0/C1 control characters
/// other than newline and tab, and Unicode bidi overrides, so the text cannot move the cursor,
/// change colours, set the window title or reorder what the user reads.
pub fn sanitize(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                // CSI: ESC [ params... final byte in 0x40..=0x7e
                Some('[') => {
                    chars.next();
                    for d in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&d) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: terminated by BEL or ESC \
                Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => {
                    chars.next();
                    while let Some(d) = chars.next() {
                        if d == '\u{7}' {
                            break;
                        }
                        if d == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() => {}
            // bidi embeddings/overrides/isolates and marks
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Shortens `s` to at most `max` chars, adding an ellipsis when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `HH:MM:SS` of a Unix time in milliseconds, in the machine's local time zone.
pub fn clock(unix_ms: u64) -> String {
    let secs = (unix_ms / 1000) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives on this stack frame.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        let day = unix_ms / 1000 % 86_400;
        return format!("{:02}:{:02}:{:02} UTC", day / 3600, day / 60 % 60, day % 60);
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// Untrusted text on one line: control sequences stripped, newlines and tabs shown as spaces.
pub fn one_line(s: &str) -> String {
    sanitize(s).replace(['\n', '\t'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_osc_and_bidi() {
        let s = "ok\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}x\u{202e}y\r\n\u{1b}]8;;http://e\u{1b}\\link";
        assert_eq!(sanitize(s), "okred xy\nlink");
    }

    #[test]
    fn keeps_plain_unicode() {
        assert_eq!(sanitize("héllo\tworld — ✓"), "héllo\tworld — ✓");
    }
}
