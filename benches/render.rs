//! Render benchmark: one full frame of the frontier and of the win matrix for a run with 1,000
//! candidates and 500 val examples, on ratatui's TestBackend (drawing only, no terminal I/O).
//!
//! `cargo bench --bench render` prints the fold time and per-frame times; record them in
//! BENCHMARKS.md with the machine and the date.

use gepa_tui::engine::{Event, Origin};
use gepa_tui::eval::ExampleEval;
use gepa_tui::tui::app::{App, View};
use gepa_tui::tui::keymap::Keymap;
use gepa_tui::tui::model::Model;
use gepa_tui::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};

const CANDIDATES: usize = 1000;
const EXAMPLES: usize = 500;

/// A deterministic pseudo-random score in {0, 0.5, 1} with candidates improving over time.
fn score(c: usize, e: usize) -> f64 {
    let h = (c as u64).wrapping_mul(2654435761) ^ (e as u64).wrapping_mul(40503) ^ 0x9e37;
    let x = (h % 1000) as f64 / 1000.0 + c as f64 / CANDIDATES as f64 * 0.4;
    if x > 1.0 {
        1.0
    } else if x > 0.6 {
        0.5
    } else {
        0.0
    }
}

fn events() -> Vec<Event> {
    let val_ids: Vec<String> = (0..EXAMPLES).map(|e| format!("ex{e}")).collect();
    let mut out = vec![Event::RunStarted {
        run_id: "bench".into(),
        version: "0".into(),
        seed: 0,
        components: vec!["instruction".into()],
        train_ids: vec![],
        val_ids: val_ids.clone(),
        test_ids: vec![],
        max_metric_calls: (CANDIDATES * EXAMPLES) as u64,
        proposals_per_round: 1,
        pipeline_lag: None,
        config_hash: String::new(),
        branched_from: None,
        draws: None,
        frontier: Default::default(),
        protected: Default::default(),
        settings: None,
    }];
    for c in 0..CANDIDATES {
        out.push(Event::RoundStarted { round: c as u64, proposals: vec![], planned_after: None, merge: None });
        out.push(Event::CandidateAdded {
            id: c,
            texts: [("instruction".to_string(), format!("Answer carefully. Variant {c}. ").repeat(20))].into(),
            parents: if c == 0 { vec![] } else { vec![c / 2] },
            origin: if c == 0 { Origin::Seed } else { Origin::Mutation },
            changed: if c == 0 { vec![] } else { vec!["instruction".into()] },
            round: c as u64,
            discovered_at: (c * EXAMPLES) as u64,
            note: None,
            review_item: None,
        });
        let evals = (0..EXAMPLES).map(|e| ExampleEval::scored(val_ids[e].clone(), score(c, e))).collect();
        out.push(Event::ValEvaluated { candidate: c, evals, round: None });
        out.push(Event::RoundFinished {
            round: c as u64,
            metric_calls: ((c + 1) * EXAMPLES) as u64,
            cost_usd: 0.0,
            cost_usd_replayed: 0.0,
            cost_usd_dropped: 0.0,
            best: 0,
            best_val: 0.0,
            merges_due: 0,
            found_new: c > 0,
            input_tokens: 0,
            output_tokens: 0,
            objective_bests: Default::default(),
        });
    }
    out
}

fn time_frames(app: &mut App, w: u16, h: u16, n: usize) -> (Duration, Duration) {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| app.render(f)).unwrap(); // warm the caches, as the first frame after a change does
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            term.draw(|f| app.render(f)).unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n - 1])
}

fn main() {
    let evs = events();
    let t = Instant::now();
    let model = Model::from_events(&evs);
    let fold = t.elapsed();
    println!("fold of {} events ({CANDIDATES} candidates x {EXAMPLES} val examples): {fold:.2?}", evs.len());
    let mut app = App::new(model, Keymap::default(), Theme::default());
    app.select_candidate(CANDIDATES / 2);
    app.views.matrix.col = EXAMPLES / 2;
    for (name, view) in [("frontier", View::Frontier), ("win matrix", View::WinMatrix), ("dashboard", View::Dashboard)]
    {
        app.goto(view);
        for (w, h) in [(80, 24), (160, 48), (250, 70)] {
            let (median, worst) = time_frames(&mut app, w, h, 60);
            println!("{name:<10} {w}x{h}: median {median:.2?}, worst {worst:.2?} per frame");
        }
    }
    // The first frame after the model changed also rebuilds the cached row orders.
    app.goto(View::Frontier);
    app.views.frontier.sort = gepa_tui::tui::views::frontier::FrontierSort::ValMean;
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let t = Instant::now();
    for _ in 0..20 {
        app.model.version += 1;
        term.draw(|f| app.render(f)).unwrap();
    }
    println!("frontier 160x48 after a model change (re-sort 1,000 rows): {:.2?} per frame", t.elapsed() / 20);
}
