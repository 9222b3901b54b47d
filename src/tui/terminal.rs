//! Terminal hygiene: raw mode, the alternate screen and mouse capture on the way in; restored on
//! every way out (a guard's Drop, and a panic hook chained in front of the previous one).

use crossterm::event::{DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{stdout, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::ThreadId;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Puts the terminal back as we found it; safe to call more than once.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = crossterm::execute!(
            stdout(),
            DisableBracketedPaste,
            DisableMouseCapture,
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        let _ = disable_raw_mode();
    }
}

/// Hands the terminal to another program (`$EDITOR`): the shell's screen, cooked mode, no mouse.
pub fn suspend() {
    restore();
}

/// Takes the terminal back after `suspend` and redraws everything on the next frame.
pub fn resume(term: &mut Term) -> std::io::Result<()> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    crossterm::execute!(stdout(), EnterAlternateScreen, EnableMouseCapture, EnableBracketedPaste)?;
    term.clear()
}

/// Restores the terminal when dropped (early returns, errors).
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// A panic on the UI thread restores the terminal and then reports as usual (the previous hook is
/// chained, as ratatui's `init` does). A panic on an engine thread is only logged: tokio turns it
/// into an error the workbench shows, and printing it would scribble over the screen.
fn install_panic_hook() {
    let _ = UI_THREAD.set(std::thread::current().id());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let on_ui = UI_THREAD.get() == Some(&std::thread::current().id());
        if on_ui || !ACTIVE.load(Ordering::SeqCst) {
            restore();
            previous(info);
        } else {
            tracing::error!("panic on a worker thread: {info}");
        }
    }));
}

/// Enters the alternate screen in raw mode with mouse capture and bracketed paste (a pasted
/// prompt arrives as one piece, newlines and all).
pub fn init() -> std::io::Result<(Term, Guard)> {
    install_panic_hook();
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = Guard;
    crossterm::execute!(stdout(), EnterAlternateScreen, EnableMouseCapture, EnableBracketedPaste)?;
    let terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
    Ok((terminal, guard))
}
