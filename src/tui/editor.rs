//! A small multi-line text editor for prompts: soft-wrapped at word boundaries (prompts are long
//! paragraphs, and a line that runs off the screen cannot be read while it is edited), with the
//! cursor moving over wrapped rows, undo/redo, and nothing else. Written here rather than taken
//! from tui-textarea (or its ratatui-textarea successor) because that widget scrolls long lines
//! sideways instead of wrapping them, and a prompt is mostly long lines.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_width::UnicodeWidthChar;

const UNDO_DEPTH: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    None,
    Insert,
    Delete,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    lines: Vec<String>,
    row: usize,
    col: usize,
}

#[derive(Debug, Clone)]
pub struct TextEditor {
    lines: Vec<String>,
    /// The cursor: a line and a char index in it (0..=len).
    row: usize,
    col: usize,
    /// The column to go back to when moving up and down through shorter rows.
    want_x: Option<usize>,
    /// The first visual row shown, kept by `render` so the cursor stays in view.
    top: usize,
    /// The text width at the last render (moving up and down follows the wrapped rows).
    width: usize,
    /// Rows visible at the last render (page up and down).
    height: usize,
    undo: Vec<Snapshot>,
    redo: Vec<Snapshot>,
    last_op: Op,
}

fn char_w(c: char) -> usize {
    if c == '\t' {
        4
    } else {
        c.width().unwrap_or(0)
    }
}

/// The char index of byte offset-free position `col` in `s`, as a byte offset.
fn byte_at(s: &str, col: usize) -> usize {
    s.char_indices().nth(col).map(|(i, _)| i).unwrap_or(s.len())
}

/// A line's visual rows when wrapped at `width` columns, as char ranges `[start, end)`: a row
/// breaks after the last space that fits, or mid-word when a word is longer than the row.
pub fn wrap_ranges(line: &str, width: usize) -> Vec<(usize, usize)> {
    let width = width.max(1);
    let chars: Vec<char> = line.chars().collect();
    let mut rows = Vec::new();
    let (mut start, mut w, mut last_break) = (0usize, 0usize, None::<usize>);
    let mut i = 0;
    while i < chars.len() {
        let cw = char_w(chars[i]);
        if w + cw > width && i > start {
            let end = match last_break {
                Some(b) if b > start => b,
                _ => i,
            };
            rows.push((start, end));
            start = end;
            last_break = None;
            w = chars[start..i].iter().map(|c| char_w(*c)).sum();
            continue;
        }
        w += cw;
        if chars[i] == ' ' {
            last_break = Some(i + 1);
        }
        i += 1;
    }
    rows.push((start, chars.len()));
    rows
}

impl TextEditor {
    pub fn new(text: &str) -> TextEditor {
        let lines: Vec<String> = text.split('\n').map(|l| l.replace('\r', "")).collect();
        TextEditor {
            lines,
            row: 0,
            col: 0,
            want_x: None,
            top: 0,
            width: 80,
            height: 10,
            undo: Vec::new(),
            redo: Vec::new(),
            last_op: Op::None,
        }
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.col)
    }

    fn line_len(&self, row: usize) -> usize {
        self.lines[row].chars().count()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot { lines: self.lines.clone(), row: self.row, col: self.col }
    }

    /// Remembers the text before an edit; a run of typed characters (or deletions) is one step.
    fn record(&mut self, op: Op) {
        if op != self.last_op || op == Op::Other {
            self.undo.push(self.snapshot());
            if self.undo.len() > UNDO_DEPTH {
                self.undo.remove(0);
            }
        }
        self.redo.clear();
        self.last_op = op;
    }

    fn restore(&mut self, s: Snapshot) {
        self.lines = s.lines;
        self.row = s.row.min(self.lines.len() - 1);
        self.col = s.col.min(self.line_len(self.row));
    }

    pub fn undo(&mut self) -> bool {
        let Some(s) = self.undo.pop() else { return false };
        self.redo.push(self.snapshot());
        self.restore(s);
        self.last_op = Op::None;
        true
    }

    pub fn redo(&mut self) -> bool {
        let Some(s) = self.redo.pop() else { return false };
        self.undo.push(self.snapshot());
        self.restore(s);
        self.last_op = Op::None;
        true
    }

    pub fn insert_char(&mut self, c: char) {
        if c == '\n' {
            return self.newline();
        }
        if c.is_control() && c != '\t' {
            return;
        }
        // A space ends the word being typed: undo takes back a word at a time.
        self.record(if c == ' ' { Op::Other } else { Op::Insert });
        let b = byte_at(&self.lines[self.row], self.col);
        self.lines[self.row].insert(b, c);
        self.col += 1;
        self.want_x = None;
    }

    pub fn insert_str(&mut self, s: &str) {
        self.record(Op::Other);
        for c in crate::text::sanitize(s).chars() {
            if c == '\n' {
                self.split_line();
            } else {
                let b = byte_at(&self.lines[self.row], self.col);
                self.lines[self.row].insert(b, c);
                self.col += 1;
            }
        }
        self.last_op = Op::Other;
        self.want_x = None;
    }

    /// Wraps the line under the cursor in keep markers (protected text), or unwraps it when it
    /// is wrapped already; an empty line is left alone. Returns whether it is protected now.
    pub fn toggle_keep_line(&mut self) -> Option<bool> {
        if self.lines[self.row].trim().is_empty() {
            return None;
        }
        self.record(Op::Other);
        let line = &self.lines[self.row];
        let toggled = crate::project::markers::toggle_line(line);
        let protected = toggled.chars().count() > line.chars().count();
        let shift = crate::project::markers::KEEP_OPEN.chars().count();
        self.col = if protected { self.col + shift } else { self.col.saturating_sub(shift) };
        self.lines[self.row] = toggled;
        self.col = self.col.min(self.line_len(self.row));
        self.last_op = Op::Other;
        self.want_x = None;
        Some(protected)
    }

    fn split_line(&mut self) {
        let b = byte_at(&self.lines[self.row], self.col);
        let rest = self.lines[self.row].split_off(b);
        self.lines.insert(self.row + 1, rest);
        self.row += 1;
        self.col = 0;
    }

    pub fn newline(&mut self) {
        self.record(Op::Other);
        self.split_line();
        self.want_x = None;
    }

    pub fn backspace(&mut self) {
        if self.col == 0 && self.row == 0 {
            return;
        }
        self.record(Op::Delete);
        if self.col > 0 {
            let b = byte_at(&self.lines[self.row], self.col - 1);
            self.lines[self.row].remove(b);
            self.col -= 1;
        } else {
            let line = self.lines.remove(self.row);
            self.row -= 1;
            self.col = self.line_len(self.row);
            self.lines[self.row].push_str(&line);
        }
        self.want_x = None;
    }

    pub fn delete(&mut self) {
        if self.col == self.line_len(self.row) && self.row + 1 == self.lines.len() {
            return;
        }
        self.record(Op::Delete);
        if self.col < self.line_len(self.row) {
            let b = byte_at(&self.lines[self.row], self.col);
            self.lines[self.row].remove(b);
        } else {
            let next = self.lines.remove(self.row + 1);
            self.lines[self.row].push_str(&next);
        }
    }

    fn left(&mut self) {
        if self.col > 0 {
            self.col -= 1;
        } else if self.row > 0 {
            self.row -= 1;
            self.col = self.line_len(self.row);
        }
    }

    fn right(&mut self) {
        if self.col < self.line_len(self.row) {
            self.col += 1;
        } else if self.row + 1 < self.lines.len() {
            self.row += 1;
            self.col = 0;
        }
    }

    fn char_at(&self, row: usize, col: usize) -> Option<char> {
        self.lines[row].chars().nth(col)
    }

    fn word_left(&mut self) {
        self.left();
        while self.col > 0 && self.char_at(self.row, self.col - 1).is_some_and(|c| !c.is_whitespace()) {
            self.col -= 1;
        }
    }

    fn word_right(&mut self) {
        self.right();
        while self.char_at(self.row, self.col).is_some_and(|c| !c.is_whitespace()) {
            self.col += 1;
        }
    }

    /// The cursor's visual row within its line, and its column on that row.
    fn visual(&self) -> (usize, usize, Vec<(usize, usize)>) {
        let ranges = wrap_ranges(&self.lines[self.row], self.width);
        let k = ranges.iter().rposition(|(s, _)| *s <= self.col).unwrap_or(0);
        let x = self.lines[self.row].chars().skip(ranges[k].0).take(self.col - ranges[k].0).map(char_w).sum();
        (k, x, ranges)
    }

    /// The char index on visual row `(s, e)` of `row` closest to column `x`.
    fn col_at_x(&self, row: usize, (s, e): (usize, usize), last: bool, x: usize) -> usize {
        let mut w = 0;
        let mut col = s;
        for c in self.lines[row].chars().skip(s).take(e - s) {
            if w + char_w(c) > x {
                return col;
            }
            w += char_w(c);
            col += 1;
        }
        // On a row that wraps, the end belongs to the next row: stop before it.
        if !last && col == e && e > s {
            col - 1
        } else {
            col
        }
    }

    /// Moves the cursor `n` visual rows down (up when negative), keeping its column.
    fn vertical(&mut self, n: isize) {
        let (k, x, ranges) = self.visual();
        let x = *self.want_x.get_or_insert(x);
        let (mut row, mut k) = (self.row, k as isize + n);
        let mut ranges = ranges;
        while k < 0 {
            if row == 0 {
                k = 0;
                break;
            }
            row -= 1;
            ranges = wrap_ranges(&self.lines[row], self.width);
            k += ranges.len() as isize;
        }
        while k >= ranges.len() as isize {
            if row + 1 == self.lines.len() {
                k = ranges.len() as isize - 1;
                break;
            }
            k -= ranges.len() as isize;
            row += 1;
            ranges = wrap_ranges(&self.lines[row], self.width);
        }
        let k = k as usize;
        self.col = self.col_at_x(row, ranges[k], k + 1 == ranges.len(), x);
        self.row = row;
    }

    /// Handles a key; false when it is not an editing key (the caller may use it).
    pub fn input(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let vertical = matches!(key.code, KeyCode::Up | KeyCode::Down | KeyCode::PageUp | KeyCode::PageDown);
        if !vertical {
            self.want_x = None;
        }
        if !matches!(key.code, KeyCode::Char(_) | KeyCode::Backspace | KeyCode::Delete) || ctrl || alt {
            self.last_op = Op::None;
        }
        let page = self.height.max(2) as isize - 1;
        match key.code {
            KeyCode::Char(c) if !ctrl && !alt => self.insert_char(c),
            KeyCode::Enter => self.newline(),
            KeyCode::Backspace => self.backspace(),
            KeyCode::Delete => self.delete(),
            KeyCode::Left if ctrl || alt => self.word_left(),
            KeyCode::Right if ctrl || alt => self.word_right(),
            KeyCode::Left => self.left(),
            KeyCode::Right => self.right(),
            KeyCode::Up => self.vertical(-1),
            KeyCode::Down => self.vertical(1),
            KeyCode::PageUp => self.vertical(-page),
            KeyCode::PageDown => self.vertical(page),
            KeyCode::Home if ctrl => (self.row, self.col) = (0, 0),
            KeyCode::End if ctrl => {
                self.row = self.lines.len() - 1;
                self.col = self.line_len(self.row);
            }
            KeyCode::Home => {
                let (k, _, r) = self.visual();
                self.col = r[k].0;
            }
            KeyCode::End => {
                let (k, _, r) = self.visual();
                self.col = if k + 1 == r.len() { r[k].1 } else { r[k].1.saturating_sub(1).max(r[k].0) };
            }
            _ => return false,
        }
        true
    }

    /// Draws the text wrapped to `area`, scrolled so the cursor shows, with the cursor cell
    /// reversed (and the terminal's cursor placed there).
    pub fn render(&mut self, frame: &mut Frame, area: Rect, text: Style, cursor: Style) {
        if area.width < 2 || area.height == 0 {
            return;
        }
        // One column spare, so the cursor after a full row still shows.
        let width = area.width as usize - 1;
        self.width = width;
        self.height = area.height as usize;
        let mut rows: Vec<Line<'static>> = Vec::new();
        let mut cursor_at = (0usize, 0usize);
        for (r, line) in self.lines.iter().enumerate() {
            let ranges = wrap_ranges(line, width);
            let chars: Vec<char> = line.chars().collect();
            let n = ranges.len();
            for (k, (s, e)) in ranges.into_iter().enumerate() {
                if r == self.row && s <= self.col && (self.col < e || k + 1 == n) {
                    let x: usize = chars[s..self.col].iter().map(|c| char_w(*c)).sum();
                    cursor_at = (rows.len(), x);
                }
                let row: String =
                    chars[s..e].iter().map(|c| if *c == '\t' { "    ".to_string() } else { c.to_string() }).collect();
                rows.push(Line::styled(row, text));
            }
        }
        let h = area.height as usize;
        let mut top = self.top;
        if cursor_at.0 < top {
            top = cursor_at.0;
        } else if cursor_at.0 >= top + h {
            top = cursor_at.0 + 1 - h;
        }
        top = top.min(rows.len().saturating_sub(h).max(cursor_at.0.saturating_sub(h - 1)));
        self.top = top;
        let visible: Vec<Line> = rows.into_iter().skip(top).take(h).collect();
        frame.render_widget(Paragraph::new(visible), area);
        let pos = Position::new(area.x + cursor_at.1 as u16, area.y + (cursor_at.0 - top) as u16);
        if let Some(cell) = frame.buffer_mut().cell_mut(pos) {
            // A block in the cursor colour where there is one (some terminals and renderers drop
            // the reverse attribute); reversed video without colours.
            match cursor.fg {
                Some(c) if c != ratatui::style::Color::Reset => {
                    cell.set_style(Style::default().bg(c).fg(ratatui::style::Color::Black))
                }
                _ => cell.set_style(cursor.add_modifier(Modifier::REVERSED)),
            };
            if cell.symbol().is_empty() {
                cell.set_symbol(" ");
            }
        }
        frame.set_cursor_position(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEventKind, KeyEventState};

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent { code, modifiers: KeyModifiers::NONE, kind: KeyEventKind::Press, state: KeyEventState::NONE }
    }
    fn typ(e: &mut TextEditor, s: &str) {
        for c in s.chars() {
            e.input(k(if c == '\n' { KeyCode::Enter } else { KeyCode::Char(c) }));
        }
    }

    #[test]
    fn wraps_at_spaces_and_splits_long_words() {
        assert_eq!(wrap_ranges("", 5), vec![(0, 0)]);
        assert_eq!(wrap_ranges("aaa bbb ccc", 8), vec![(0, 8), (8, 11)]);
        assert_eq!(wrap_ranges("abcdefghij", 4), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(wrap_ranges("ab cdefghij", 4), vec![(0, 3), (3, 7), (7, 11)]);
    }

    #[test]
    fn typing_moving_and_joining_lines() {
        let mut e = TextEditor::new("héllo\nworld");
        e.input(k(KeyCode::End));
        typ(&mut e, "!\nnew");
        assert_eq!(e.text(), "héllo!\nnew\nworld");
        e.input(k(KeyCode::Down));
        e.input(k(KeyCode::Home));
        e.input(k(KeyCode::Backspace));
        assert_eq!(e.text(), "héllo!\nnewworld");
        e.input(k(KeyCode::Up));
        e.input(k(KeyCode::End));
        e.input(k(KeyCode::Delete));
        assert_eq!(e.text(), "héllo!newworld");
        assert_eq!(e.cursor(), (0, 6));
    }

    #[test]
    fn undo_takes_back_a_word_at_a_time_and_redo_restores() {
        let mut e = TextEditor::new("");
        typ(&mut e, "one two");
        e.undo();
        assert_eq!(e.text(), "one ");
        e.undo();
        assert_eq!(e.text(), "one");
        e.undo();
        assert_eq!(e.text(), "");
        e.redo();
        e.redo();
        assert_eq!(e.text(), "one ");
    }

    #[test]
    fn up_and_down_follow_wrapped_rows() {
        let mut e = TextEditor::new("aaa bbb ccc ddd\nxy");
        e.width = 8;
        e.input(k(KeyCode::Right));
        e.input(k(KeyCode::Down));
        assert_eq!(e.cursor(), (0, 9), "second visual row of the first line");
        e.input(k(KeyCode::Down));
        assert_eq!(e.cursor(), (1, 1));
        e.input(k(KeyCode::Up));
        e.input(k(KeyCode::Up));
        assert_eq!(e.cursor(), (0, 1));
    }
}
#[cfg(test)]
mod render_tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    #[test]
    fn the_cursor_cell_is_drawn_reversed() {
        let mut e = TextEditor::new("abc def");
        e.input(KeyEvent::from(KeyCode::End));
        let mut term = Terminal::new(TestBackend::new(6, 3)).unwrap();
        term.draw(|f| e.render(f, f.area(), Style::default(), Style::default())).unwrap();
        let buf = term.backend().buffer().clone();
        let cells: Vec<_> = (0..3)
            .flat_map(|y| (0..6).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[(x, y)].modifier.contains(Modifier::REVERSED))
            .collect();
        assert_eq!(cells, vec![(3, 1)], "{buf:?}");
    }
}
