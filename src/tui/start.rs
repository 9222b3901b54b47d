//! The start screen: earlier runs of the project (newest first) to resume or browse, and "new run".

use crate::store::RunSummary;
use crate::tui::keymap::{Action, Keymap};
use crate::tui::theme::Theme;
use crossterm::event::{Event as TermEvent, KeyEventKind, MouseEventKind};

/// One earlier run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub id: String,
    pub finished: bool,
    /// Who runs it now ("pid 4242 on build-1 since …"), when a live process holds it.
    pub running: Option<String>,
    pub best_val: Option<f64>,
    pub test_score: Option<f64>,
    pub candidates: Option<u64>,
    pub metric_calls: Option<u64>,
    pub stop_reason: Option<String>,
}

impl RunEntry {
    pub fn from_summary(s: &RunSummary) -> RunEntry {
        let r = s.result.as_ref();
        let f = |k: &str| r.and_then(|v| v.get(k)).and_then(|v| v.as_f64());
        let u = |k: &str| r.and_then(|v| v.get(k)).and_then(|v| v.as_u64());
        RunEntry {
            id: s.id.clone(),
            finished: s.finished,
            running: s.running.as_ref().map(|h| h.describe()),
            best_val: f("best_val_score"),
            test_score: f("test_score"),
            candidates: u("candidates"),
            metric_calls: u("metric_calls"),
            stop_reason: r.and_then(|v| v.get("stop_reason")).and_then(|v| v.as_str()).map(str::to_string),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartChoice {
    New,
    /// An unfinished run: resume it.
    Resume(String),
    /// A finished run: browse it read-only.
    Browse(String),
    /// A run another process is running: follow it and steer it through its inbox.
    Attach(String),
    /// A new run seeded with candidate `id` of run `run` (the branch key in the workbench).
    Branch {
        run: String,
        id: usize,
    },
}

pub struct StartScreen {
    pub runs: Vec<RunEntry>,
    /// 0 is "new run"; k is `runs[k - 1]`.
    pub selected: usize,
    pub error: Option<String>,
    pub project_label: String,
    pub choice: Option<StartChoice>,
    pub quit: bool,
    pub keymap: Keymap,
    pub theme: Theme,
    pub help: bool,
}

impl StartScreen {
    pub fn new(runs: Vec<RunEntry>, project_label: String, keymap: Keymap, theme: Theme) -> StartScreen {
        StartScreen {
            runs,
            selected: 0,
            error: None,
            project_label,
            choice: None,
            quit: false,
            keymap,
            theme,
            help: false,
        }
    }

    /// The choice for the selected row.
    pub fn choice_at(&self, row: usize) -> Option<StartChoice> {
        if row == 0 {
            return Some(StartChoice::New);
        }
        let r = self.runs.get(row - 1)?;
        Some(if r.running.is_some() {
            StartChoice::Attach(r.id.clone())
        } else if r.finished {
            StartChoice::Browse(r.id.clone())
        } else {
            StartChoice::Resume(r.id.clone())
        })
    }

    pub fn on_terminal_event(&mut self, ev: &TermEvent) -> bool {
        match ev {
            TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                if let Some(a) = self.keymap.action_for(k) {
                    self.perform(a);
                }
                true
            }
            TermEvent::Mouse(m) => match m.kind {
                MouseEventKind::ScrollDown => {
                    self.perform(Action::Down);
                    true
                }
                MouseEventKind::ScrollUp => {
                    self.perform(Action::Up);
                    true
                }
                _ => false,
            },
            TermEvent::Resize(..) => true,
            _ => false,
        }
    }

    pub fn perform(&mut self, a: Action) {
        let n = self.runs.len() + 1;
        if self.help && matches!(a, Action::Help | Action::Back) {
            self.help = false;
            return;
        }
        match a {
            Action::Quit => self.quit = true,
            Action::Back => self.error = None,
            Action::Help => self.help = true,
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(n - 1),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = n - 1,
            Action::PageDown => self.selected = (self.selected + 10).min(n - 1),
            Action::PageUp => self.selected = self.selected.saturating_sub(10),
            Action::Open => {
                self.error = None;
                self.choice = self.choice_at(self.selected);
            }
            _ => {}
        }
    }
}
