//! What a run will use before it starts: how many proposals the budget buys, how many reflection
//! calls they make, and the tokens and dollars of the task and reflection models, each as a
//! range. `gepa-tui check` prints it; the dashboard shows the spend against it.
//!
//! The accounting follows the engine's: the seed is scored on all of val, then each proposal
//! scores its parent on a minibatch (served from the evaluation cache when that candidate was
//! scored on those examples before), skips when the parent is perfect there, else asks the
//! reflection model (again when the answer is cut off) and scores the child on the minibatch;
//! an accepted child is scored on all of val. The run stops when the budget of metric calls is
//! spent, then scores the best candidate on test (not counted in the budget). What no project
//! says in advance — how often children are accepted, how much of the parent's evaluations are
//! reused, how long the prompts grow — spans the range, with the assumptions written below.

use crate::eval::ExampleEval;
use crate::project::{Example, Project};
use serde::{Deserialize, Serialize};

/// A low, a middle and a high estimate.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Span {
    pub low: f64,
    pub mid: f64,
    pub high: f64,
}

impl Span {
    pub fn new(low: f64, mid: f64, high: f64) -> Span {
        Span { low: low.min(mid), mid, high: high.max(mid) }
    }
    pub fn exact(v: f64) -> Span {
        Span { low: v, mid: v, high: v }
    }
    fn scale(self, k: f64) -> Span {
        Span { low: self.low * k, mid: self.mid * k, high: self.high * k }
    }
    fn times(self, o: Span) -> Span {
        Span { low: self.low * o.low, mid: self.mid * o.mid, high: self.high * o.high }
    }
    fn plus(self, o: Span) -> Span {
        Span { low: self.low + o.low, mid: self.mid + o.mid, high: self.high + o.high }
    }
    /// Where `v` falls: "within", or how far outside, as a signed fraction of the middle.
    pub fn error_of(&self, v: f64) -> f64 {
        if self.mid == 0.0 {
            return if v == 0.0 { 0.0 } else { f64::INFINITY };
        }
        (self.mid - v) / v.max(f64::MIN_POSITIVE)
    }
}

/// One metric call as measured on the seed (a dry evaluation) or estimated from prompt sizes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PerCall {
    /// How many examples were evaluated to measure it; 0: estimated from the prompt sizes.
    pub examples: usize,
    /// Task model tokens of one metric call (all steps), with the spread over the examples.
    pub input_tokens: Span,
    pub output_tokens: Span,
    /// USD of one metric call (system and judge), as priced in gepa.toml.
    pub usd: Span,
    /// Share of the examples the seed scored perfect (`perfect_score`).
    pub perfect: f64,
    /// Characters of one example in the reflective dataset (inputs, output, feedback).
    pub record_chars: f64,
    /// Characters per token of the task model's prompts (measured; 4 when estimated).
    pub chars_per_token: f64,
    /// The mean score on the examples measured (none when estimated).
    pub seed_score: Option<f64>,
}

/// The forecast of one run of the project as configured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Forecast {
    pub per_call: PerCall,
    /// The budget, and what the seed's val pass takes of it.
    pub max_metric_calls: u64,
    pub seed_calls: u64,
    /// Metric calls used: the budget, plus at most one round's over it (a round that starts
    /// under the budget finishes).
    pub metric_calls: Span,
    /// Scored after the run on test (not counted in the budget).
    pub test_calls: u64,
    pub proposals: Span,
    pub reflection_calls: Span,
    pub task_input_tokens: Span,
    pub task_output_tokens: Span,
    pub reflection_input_tokens: Span,
    pub reflection_output_tokens: Span,
    pub task_usd: Span,
    pub reflection_usd: Span,
    /// Whether gepa.toml prices the models (else the dollars are 0 and the tokens are the measure).
    pub priced: bool,
}

impl Forecast {
    pub fn total_usd(&self) -> Span {
        self.task_usd.plus(self.reflection_usd)
    }
    pub fn total_tokens(&self) -> Span {
        self.task_input_tokens
            .plus(self.task_output_tokens)
            .plus(self.reflection_input_tokens)
            .plus(self.reflection_output_tokens)
    }
}

/// The assumptions of the range: of the proposals that reflect, the share whose child is
/// accepted (then scored on val); the share of a parent's minibatch evaluations not served from
/// the evaluation cache; how long the candidates' texts grow over the seed's on average; and how
/// often a reflection is asked again (cut off, unchanged) out of `truncation_retries` + 1.
/// Ordered (low use, middle, high use).
const ACCEPTED: [f64; 3] = [0.1, 0.25, 0.5];
const PARENT_UNCACHED: [f64; 3] = [0.4, 0.75, 1.0];
const TEXT_GROWTH: [f64; 3] = [1.0, 1.5, 3.0];
const REASKED: [f64; 3] = [0.0, 0.25, 1.0];
/// What a reflection's answer holds besides the new text (the fence, a line around it).
const FENCE_TOKENS: f64 = 40.0;

/// Measures one metric call from the seed's evaluations (a dry run of a few examples, or the
/// run's own val pass).
pub fn measure(perfect_score: f64, evals: &[(&Example, &ExampleEval)]) -> PerCall {
    let n = evals.len().max(1) as f64;
    let tokens = |f: fn(&crate::llm::Usage) -> u64| -> Vec<f64> {
        evals.iter().map(|(_, e)| e.trace.steps.iter().map(|s| f(&s.usage) as f64).sum()).collect()
    };
    let input: Vec<f64> = tokens(|u| u.input_tokens);
    let output: Vec<f64> = tokens(|u| u.output_tokens);
    let usd: Vec<f64> = evals.iter().map(|(_, e)| e.cost_usd).collect();
    let prompt_chars: f64 = evals
        .iter()
        .flat_map(|(_, e)| e.trace.steps.iter())
        .flat_map(|s| s.messages.iter())
        .map(|m| m.content.chars().count() as f64)
        .sum();
    let input_sum: f64 = input.iter().sum();
    let record_chars =
        evals.iter().map(|(ex, e)| record_chars(ex, e.output.chars().count(), e.feedback.chars().count())).sum::<f64>()
            / n;
    PerCall {
        examples: evals.len(),
        input_tokens: spread(&input),
        output_tokens: spread(&output),
        usd: spread(&usd),
        perfect: evals.iter().filter(|(_, e)| e.score >= perfect_score).count() as f64 / n,
        record_chars,
        chars_per_token: if input_sum > 0.0 { (prompt_chars / input_sum).clamp(1.0, 10.0) } else { 4.0 },
        seed_score: Some(evals.iter().map(|(_, e)| e.score).sum::<f64>() / n),
    }
}

/// Estimates one metric call from the prompt sizes alone (`check --estimate-only`): each step's
/// messages rendered with the seed on the val examples, 4 characters a token; each step's answer
/// as long as the example's reference answer (at least a few tokens), up to its `max_tokens`.
pub fn estimate(project: &Project) -> PerCall {
    let c = &project.config;
    let examples: Vec<&Example> = project.val.iter().chain(&project.train).take(50).collect();
    let reference = |ex: &Example| {
        c.evaluator.field.as_deref().and_then(|f| ex.field_text(f)).map(|t| t.chars().count()).unwrap_or(0)
    };
    let (mut input, mut output, mut usd, mut records) = (Vec::new(), Vec::new(), Vec::new(), 0.0);
    for ex in &examples {
        let answer_chars = reference(ex).max(16) as f64;
        let (mut i, mut o, mut cost) = (0.0, 0.0, 0.0);
        if c.system.kind == crate::project::config::SystemKind::Chat {
            for step in &c.system.steps {
                let lookup = |name: &str| -> Option<String> {
                    if crate::project::template::step_output_name(name).is_some() {
                        return Some("x".repeat(answer_chars as usize));
                    }
                    project.seed.get(name).cloned().or_else(|| ex.field_text(name))
                };
                let render = |t: &str| {
                    crate::project::template::Template::parse(t)
                        .ok()
                        .and_then(|t| t.render(lookup).ok())
                        .map_or(t.chars().count(), |s| s.chars().count())
                };
                let chars = step.system.as_deref().map_or(0, render) + render(&step.user);
                let model = c.models.get(&step.model);
                let max = model.and_then(|m| m.max_tokens).map_or(f64::INFINITY, f64::from);
                let (step_in, step_out) = (chars as f64 / 4.0 + 8.0, (answer_chars / 4.0 + 4.0).min(max));
                i += step_in;
                o += step_out;
                if let Some(m) = model {
                    cost += crate::llm::usage::cost_usd(
                        crate::llm::Usage { input_tokens: step_in as u64, output_tokens: step_out as u64 },
                        m,
                    );
                }
            }
        }
        input.push(i);
        output.push(o);
        usd.push(cost);
        records += record_chars(ex, answer_chars as usize, 80);
    }
    let n = examples.len().max(1) as f64;
    // The answers are not known: from a reference answer's length up to max_tokens for each step.
    let max_out: f64 =
        c.system.steps.iter().map(|s| c.models.get(&s.model).and_then(|m| m.max_tokens).map_or(0.0, f64::from)).sum();
    let mut out = spread(&output);
    out.high = out.high.max(max_out);
    PerCall {
        examples: 0,
        input_tokens: spread(&input),
        output_tokens: out,
        usd: spread(&usd),
        perfect: 0.0,
        record_chars: records / n,
        chars_per_token: 4.0,
        seed_score: None,
    }
}

/// The characters one example adds to the reflective dataset: its fields, the output and the
/// feedback, with the labels around them.
fn record_chars(ex: &Example, output: usize, feedback: usize) -> f64 {
    let fields: usize =
        ex.fields.iter().filter(|(k, _)| *k != "id").map(|(k, v)| k.len() + v.to_string().len() + 8).sum();
    (fields + output + feedback + 60) as f64
}

/// The mean, with the range the mean of many examples plausibly falls in (two standard errors
/// of the mean measured; exactly the mean with one example).
fn spread(xs: &[f64]) -> Span {
    if xs.is_empty() {
        return Span::default();
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return Span::exact(mean);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let err = 2.0 * (var / n).sqrt();
    Span::new((mean - err).max(0.0), mean, mean + err)
}

/// What of a project the forecast reads (kept by the workbench, which has no project at hand
/// when the seed's evaluations arrive).
#[derive(Debug, Clone)]
pub struct Plan {
    config: crate::project::config::ProjectConfig,
    val: usize,
    test: usize,
    seed_chars: f64,
    components: usize,
    template_chars: f64,
}

impl Plan {
    pub fn of(project: &Project) -> Plan {
        Plan {
            config: project.config.clone(),
            val: project.val.len(),
            test: project.test.len(),
            seed_chars: project.seed.values().map(|s| s.chars().count() as f64).sum(),
            components: project.seed.len().max(1),
            template_chars: crate::engine::reflect::template_for(project).map_or(2000, |t| t.chars().count()) as f64,
        }
    }

    pub fn perfect_score(&self) -> f64 {
        self.config.optimizer.perfect_score
    }

    /// The run the project's settings and `per_call` make.
    pub fn forecast(&self, per_call: PerCall) -> Forecast {
        let c = &self.config;
        let o = &c.optimizer;
        // A val pass scores each example `val_repeats` times, each a metric call.
        let k = f64::from(o.val_repeats.max(1));
        let (v, m, t) = (self.val as f64 * k, o.minibatch_size as f64, self.test as f64);
        let budget = o.max_metric_calls as f64;
        // A parent perfect on all of its minibatch is skipped (no reflection, no child).
        let skip = if o.skip_perfect_score { per_call.perfect.powf(m) } else { 0.0 };
        // Merges (when on) take their subsample, and val when accepted, out of the budget.
        let merges = if o.merge { o.max_merges as f64 } else { 0.0 };
        let merge_calls = |accepted: f64| merges * (o.merge_subsample as f64 * k + accepted * v);
        // Metric calls of one proposal, and so the proposals the rest of the budget buys.
        let scenario = |i: usize, accepted: f64| {
            let per = m * PARENT_UNCACHED[i] + (1.0 - skip) * (m + accepted * v);
            ((budget - v - merge_calls(accepted)).max(0.0) / per.max(1.0)).max(0.0)
        };
        // Fewest proposals when each costs most (most accepted, nothing reused), and the reverse.
        let proposals = Span::new(scenario(2, ACCEPTED[2]), scenario(1, ACCEPTED[1]), scenario(0, ACCEPTED[0]));
        let asks = |i: usize| 1.0 + REASKED[i] * c.reflection.truncation_retries as f64;
        let reflecting = proposals.scale(1.0 - skip);
        let reflection_calls = Span::new(reflecting.low * asks(0), reflecting.mid * asks(1), reflecting.high * asks(2));
        let overshoot = 2.0 * m + v;
        let metric_calls = Span::new(budget, budget + overshoot / 2.0, budget + overshoot);
        let evaluated = metric_calls.plus(Span::exact(t));
        // Task tokens: every evaluation run, the prompts growing with the candidates' texts.
        // A reflection reads the template, one component's text and the minibatch's records, and
        // writes the new text (up to the reflection model's max_tokens).
        let seed_chars = self.seed_chars;
        let component_chars = seed_chars / self.components as f64;
        let cpt = per_call.chars_per_token;
        let reflect_in =
            |i: usize| (self.template_chars + component_chars * TEXT_GROWTH[i] + m * per_call.record_chars) / cpt;
        let reflection = c.models.get("reflection");
        let max_out = reflection.and_then(|r| r.max_tokens).map_or(f64::INFINITY, f64::from);
        let reflect_out = |i: usize| (component_chars * TEXT_GROWTH[i] / cpt * 1.2 + FENCE_TOKENS).min(max_out);
        let per_in = Span::new(reflect_in(0), reflect_in(1), reflect_in(2));
        let per_out =
            Span::new(reflect_out(0), reflect_out(1), if max_out.is_finite() { max_out } else { reflect_out(2) });
        // Task tokens: every evaluation run; a candidate's prompt holds the text a reflection
        // wrote in place of the seed's (a small model that rambles to max_tokens writes long ones).
        let grown = |answer: f64| (answer - FENCE_TOKENS - component_chars / cpt).max(0.0);
        let growth = Span::new(grown(per_out.low), grown(per_out.mid), grown(per_out.high));
        let task_input_tokens = evaluated.times(per_call.input_tokens.plus(growth));
        let task_output_tokens = evaluated.times(per_call.output_tokens);
        // The growth of the prompts is paid at the task model's input price.
        let price_task = c.models.get("task").map_or(0.0, |m| m.price_input_per_mtok / 1e6);
        let task_usd = evaluated.times(per_call.usd.plus(growth.scale(price_task)));
        let reflection_input_tokens = reflection_calls.times(per_in);
        let reflection_output_tokens = reflection_calls.times(per_out);
        let (price_in, price_out) =
            reflection.map_or((0.0, 0.0), |r| (r.price_input_per_mtok / 1e6, r.price_output_per_mtok / 1e6));
        let reflection_usd = reflection_input_tokens.scale(price_in).plus(reflection_output_tokens.scale(price_out));
        let priced = c.models.values().any(|m| m.price_input_per_mtok > 0.0 || m.price_output_per_mtok > 0.0);
        Forecast {
            per_call,
            max_metric_calls: o.max_metric_calls,
            seed_calls: v as u64,
            metric_calls,
            test_calls: t as u64,
            proposals,
            reflection_calls,
            task_input_tokens,
            task_output_tokens,
            reflection_input_tokens,
            reflection_output_tokens,
            task_usd,
            reflection_usd,
            priced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = "[models.task]\nprovider = \"openai\"\nmodel = \"m\"\nprice_input_per_mtok = 1.0\n\
        price_output_per_mtok = 2.0\n\n[models.reflection]\nprovider = \"openai\"\nmodel = \"r\"\nmax_tokens = 500\n\
        price_input_per_mtok = 10.0\nprice_output_per_mtok = 20.0\n\n\
        [[components]]\nname = \"instruction\"\nfile = \"p.md\"\n\n[system]\nkind = \"chat\"\n[[system.steps]]\n\
        name = \"answer\"\nuser = \"{{input}}\"\n\n[data]\ntrain = \"t.jsonl\"\nval = \"v.jsonl\"\n\n\
        [evaluator]\nkind = \"exact\"\nfield = \"expected\"\n\n[optimizer]\nmax_metric_calls = 100\n";

    fn plan() -> Plan {
        Plan {
            config: crate::project::config::parse(TOML).unwrap(),
            val: 10,
            test: 5,
            seed_chars: 400.0,
            components: 1,
            template_chars: 1000.0,
        }
    }

    fn per_call(perfect: f64) -> PerCall {
        PerCall {
            examples: 3,
            input_tokens: Span::exact(100.0),
            output_tokens: Span::exact(10.0),
            usd: Span::exact(0.001),
            perfect,
            record_chars: 200.0,
            chars_per_token: 4.0,
            seed_score: Some(0.5),
        }
    }

    /// Worked by hand: val 10, minibatch 3, budget 100. A likely proposal costs 3 × 0.75 (the
    /// parent, partly reused) + 3 (the child) + 0.25 × 10 (val when accepted) = 7.75 metric calls,
    /// so the 90 left after the seed buy 90 / 7.75 = 11.6 proposals; at most (nothing reused, half
    /// accepted) 3 + 3 + 5 = 11 each: 8.2; at least 1.2 + 3 + 1 = 5.2 each: 17.3.
    #[test]
    fn the_budget_buys_what_the_accounting_says() {
        let f = plan().forecast(per_call(0.0));
        let near = |a: f64, b: f64| (a - b).abs() < 0.01;
        assert!(near(f.proposals.mid, 90.0 / 7.75) && near(f.proposals.low, 90.0 / 11.0), "{:?}", f.proposals);
        assert!(near(f.proposals.high, 90.0 / 5.2), "{:?}", f.proposals);
        // Every proposal reflects (nothing is perfect); a quarter of them asked again once (retries 1).
        assert!(near(f.reflection_calls.mid, 90.0 / 7.75 * 1.25), "{:?}", f.reflection_calls);
        // Task dollars at the least: (100 + test 5) evaluations at $0.001, their prompts grown by
        // what the shortest answer (400 / 4 × 1.2 + 40 = 160 tokens, 40 of them the fence) adds
        // over the seed's 100 tokens: 20 tokens at $1 per million.
        assert!((f.task_usd.low - 105.0 * (0.001 + 20e-6)).abs() < 1e-9, "{:?}", f.task_usd);
        // A reflection reads the template, the text (1.5 × 400 likely) and 3 records: 2200 chars, 550 tokens.
        assert!(near(f.reflection_input_tokens.mid, f.reflection_calls.mid * 550.0), "{:?}", f.reflection_input_tokens);
        // Its answer is capped by the reflection model's max_tokens at the high end.
        assert!(near(f.reflection_output_tokens.high, f.reflection_calls.high * 500.0));
        assert!(f.priced && f.total_usd().mid > f.task_usd.mid);
    }

    /// With `val_repeats = 3` a val pass is 30 metric calls: the seed takes 30 of the 100, and a
    /// likely proposal 3 × 0.75 + 3 + 0.25 × 30 = 12.75, so the 70 left buy 70 / 12.75.
    #[test]
    fn a_repeated_val_pass_costs_k_times_the_val_examples() {
        let mut p = plan();
        p.config.optimizer.val_repeats = 3;
        let f = p.forecast(per_call(0.0));
        assert_eq!(f.seed_calls, 30);
        assert!((f.proposals.mid - 70.0 / 12.75).abs() < 0.01, "{:?}", f.proposals);
    }

    /// A seed already perfect on most examples makes most proposals skip: more of them, fewer reflections each.
    #[test]
    fn perfect_parents_skip_their_reflection() {
        let f = plan().forecast(per_call(0.9));
        let g = plan().forecast(per_call(0.0));
        let skip = 0.9f64.powi(3);
        assert!(f.proposals.mid > g.proposals.mid);
        assert!((f.reflection_calls.mid - f.proposals.mid * (1.0 - skip) * 1.25).abs() < 1e-9);
    }
}
