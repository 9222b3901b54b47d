//! The long `--help` texts, written like a man page: what a command does, what it reads and
//! writes, its exit status and examples. `-h` shows the one-line summaries.

pub const MAIN_LONG: &str = "\
gepa-tui evolves the prompts of an LLM system with GEPA (reflective prompt evolution, Agrawal et \
al., arXiv 2507.19457). It runs your system on a few training examples, shows a reflection model \
what went in, what came out and what the evaluator said was wrong, and asks it for a better \
prompt. A child that does better on its minibatch is scored on the validation set, and a Pareto \
frontier keeps every candidate that is best on at least one validation example.

Without a command, gepa-tui opens the workbench (a terminal UI) on the project in DIR: start a new \
run, or pick an earlier one to resume (unfinished) or browse (finished). The optimizer runs inside \
the program; the screen shows it live, and you can pause it, approve or veto mutations, guide a \
reflection with a note, protect text from mutation, edit a candidate by hand, merge two, exclude \
or correct a mislabelled example (Traces view; your data files are not touched, `export \
--data-fixes` writes corrected copies), and export the winner (`gepa-tui steer` does the steering \
for a run without a screen). Press ? in the workbench for every key.

A project folder holds gepa.toml (models, components, system, data, evaluator, optimizer), \
prompts/ (one file per component: the seed candidate) and data/ (train, val and optional test \
JSONL). `gepa-tui init` writes a commented starter; docs/configuration.md documents every key.";

pub const MAIN_AFTER: &str = "\
Files:
  DIR/gepa.toml         the project's one config file
  DIR/.gepa/runs/RUN/   a run: events.jsonl (its history), result.json, best/, data-fixes/,
                        steer.jsonl and steer-acks.jsonl (gepa-tui steer's requests)
  DIR/.gepa/cache/      one file per model reply, keyed by the request
  CONFIG/keymap.toml    key bindings (CONFIG is ~/.config/gepa-tui on Linux)
  CONFIG/themes/        colour themes, one TOML file each

Environment:
  OPENAI_API_KEY, ANTHROPIC_API_KEY
      the providers' keys, or the variable a model's api_key_env names; read,
      never stored, logged or shown
  VISUAL, EDITOR
      the editor the workbench opens for `E` (default vi)
  NO_COLOR
      draw without colours (the glyphs stay)

Exit status:
  0 success; 1 a check or an evaluation found problems; 2 an error (a bad
  config, an unknown run); 3 a run stopped by its model provider (a refused
  key, an empty account, no answer for max_outage_secs; resumable once
  fixed); 130 a headless run stopped by Ctrl-C (it stays resumable). Leaving
  the workbench with q is 0, a live run stays resumable.

Examples:
  gepa-tui sample-projects/support-triage --offline
      replay a recorded sample run in the workbench (no key, no network)
  gepa-tui init my-project
      write a starter project
  gepa-tui check my-project
      validate it, list the commands it would run, ping its models
  gepa-tui eval my-project --split val
      the seed's score: the baseline to beat
  gepa-tui my-project
      the workbench
  gepa-tui --run 20261125-084012-3fa9 my-project
      reopen a run
  gepa-tui run --headless --json my-project > events.jsonl
      optimize without a screen (CI)";

pub const CHECK_LONG: &str = "\
Loads DIR/gepa.toml and everything it names, and reports each problem with the file, the line and \
the key (with a \"did you mean\" for a misspelt key): unknown keys, wrong types, missing prompt or \
data files, bad JSONL lines, template placeholders that name nothing, paths that leave the project \
folder, a missing [models.reflection].

It then prints what a run would use: the components and their sizes, the number of examples in \
each data split, the system's steps, the evaluator, and the models with their provider, base URL \
and whether their key variable is set (never the key); and every external program the project would start (a `command` system or \
evaluator), so you can read them before running someone else's project.

Then it pings each model with a tiny request (one retry, at most 60 s in all). With --offline no \
model is called: use it to validate a project whose recorded replies are in .gepa/cache/.

Last, it forecasts a run: the proposals the budget buys, the reflection calls, and the tokens and \
dollars of the task and reflection models, each as low – likely – high. It first scores the seed on \
3 val examples (a dry run through the response cache, part of no run); --estimate-only calls no \
model at all and estimates from the prompt sizes.

Nothing is written but the dry run's replies, to the response cache (.gepa/cache/).";

pub const CHECK_AFTER: &str = "\
Exit status:
  0 the project is ready; 1 something is wrong (every problem is listed);
  2 DIR cannot be read.

Examples:
  gepa-tui check
      the project in the current folder
  gepa-tui check my-project
      validate it and ping its models
  gepa-tui check --offline my-project
      validate without calling any model (the dry run from the cache)
  gepa-tui check --estimate-only my-project
      validate and forecast from the prompt sizes, calling no model";

pub const EVAL_LONG: &str = "\
Runs a candidate on every example of one data split and scores it with the project's evaluator, \
exactly as a run would: the seed candidate (the prompt files) by default, or candidate ID of an \
earlier run with --candidate RUN:ID. Prints one line per example (its id, score, the start of its \
output and the evaluator's feedback, or the error when the run failed), then the mean.

Use it for the baseline before a first run (`--split val`), and to check a winner on the held-out \
test split. Model calls go through the response cache, so scoring the same candidate twice calls \
no model the second time; with --offline every call must come from the cache.";

pub const EVAL_AFTER: &str = "\
Output:
  A table on stdout and a summary line (mean, failures, cost, requests and
  cache hits). With --json one object {\"split\", \"candidate\", \"mean\",
  \"failed\", \"cost_usd\", \"examples\"}, each example with its example_id,
  score, feedback, output, trace and error.

Exit status:
  0 scored; 1 every evaluation failed (the first error is printed); 2 an
  error (a bad config, an unknown split, run or candidate).

Examples:
  gepa-tui eval --split val
      the seed on val
  gepa-tui eval my-project --split test --json
      the seed on test, as JSON
  gepa-tui eval --candidate 20261125-101500-ab12:7 --split test
      candidate 7 of that run, on test";

pub const RUN_LONG: &str = "\
Runs the optimizer. With --headless it runs without a screen: a progress line on stderr (metric \
calls used of the budget, best val score, each objective's best value and candidate when \
[optimizer] objectives or a combined evaluator record some, candidates, cost, ETA) and a summary \
at the end; with --json also one JSON object per event on stdout, the last being

  {\"event\":\"finished\",\"run_id\":…,\"best_val_score\":…,
   \"test_score\":…,\"candidates\":…,\"metric_calls\":…,
   \"cost_usd\":…,\"wall_seconds\":…}

(with objectives, also \"objectives\": each one's best candidate and value, and \"non_dominated\").

Without --headless it opens the workbench on a new run with the same options.

A new run gets an id (date-time-random) and a folder DIR/.gepa/runs/RUN/. Its events.jsonl is \
appended and fsynced as the run goes, so a run stopped at any moment (Ctrl-C, kill -9, power \
loss) can be continued with --resume RUN and ends exactly as an uninterrupted run would: the rounds \
it had planned are redone from their recorded plans and their model calls come from the cache. At the end the best \
candidate (highest val mean) is scored on test, its texts are written to RUN/best/ and the whole \
outcome to RUN/result.json.

The run stops when the budget (max_metric_calls; one example scored is one metric call) is used, \
or on max_cost_usd, max_reflection_cost_usd, max_wall_secs, score_threshold, patience_rounds, \
max_rounds, max_proposals or max_candidates from [optimizer] (result.json's stopped_by names \
which), or when a file named `stop` appears in the run folder (the best is still scored on \
test). The budget can be exceeded by at most what the rounds in flight (pipeline_lag of them, and \
a few more whose parent is already perfect) spend: a round that starts under budget runs to its \
end. With pipeline_lag not written, up to 4 \
rounds are in flight, and one at a time once the task model's server is seen answering requests \
in turn (a llama-server or Ollama with one slot); the result is the same either way.

A project whose [review] asks a person to approve mutations or merges needs, headless, either \
--auto-approve (everything is approved as it comes) or --wait-for-review (each item waits for a \
person: a workbench attached to the run with `gepa-tui --run RUN DIR`, or `gepa-tui steer \
approve|veto`); or run it in the workbench, where you decide. A workbench opened on a run that \
a live process runs attaches to it: it follows the run, shows its live status (status.json in \
the run folder) and sends its decisions through the run's inbox; q detaches.

A provider that stops answering is waited for, never scored: its requests are held and tried \
again (at most a minute apart) until it answers or [optimizer] max_outage_secs (default 1800) \
has passed; then, or at once for a refused key, an exhausted quota or an invalid request, the run \
stops with exit 3 and the cause named, resumable with --resume.";

pub const RUN_AFTER: &str = "\
Exit status:
  0 finished; 130 stopped by Ctrl-C (resumable with --resume); 3 stopped by
  the model provider (resumable once fixed); 2 an error.

Examples:
  gepa-tui run --headless --offline sample-projects/math-word-problems
      replay a recorded sample run
  gepa-tui run --headless --json --seed 3 --max-metric-calls 300 my-project
      another seed and a smaller budget, events as JSON
  gepa-tui run --headless --resume 20261125-084012-3fa9 my-project
      continue a stopped run
  gepa-tui run --headless --branch 20261125-084012-3fa9:4 my-project
      a new run seeded with candidate 4 of an earlier one
  gepa-tui run --headless --offline --replay 20261125-084012-3fa9 my-project
      replay a run exactly, the replies of its sampling models included
  gepa-tui run --headless --add-seed variants/short --add-seed variants/strict
      more starting candidates, from folders of prompt files
  gepa-tui run --headless --wait-for-review my-project
      with [review] mutations = \"approve\": each child waits for a person, who
      attaches with `gepa-tui --run RUN my-project` (or uses `gepa-tui steer`)
  touch my-project/.gepa/runs/20261125-084012-3fa9/stop
      end a running run gracefully from outside";

pub const COMPLETIONS_LONG: &str = "\
Prints a completion script for SHELL on stdout, generated from gepa-tui's own argument \
definitions, so it always matches this version. Nothing is written anywhere else.";

pub const COMPLETIONS_AFTER: &str = "\
Exit status:
  0; 2 for a shell it does not know.

Examples:
  gepa-tui completions bash > ~/.local/share/bash-completion/completions/gepa-tui
  gepa-tui completions zsh > \"${fpath[1]}/_gepa-tui\"
  gepa-tui completions fish > ~/.config/fish/completions/gepa-tui.fish";

pub const MAN_LONG: &str = "\
Prints gepa-tui's manual page in roff on stdout, generated from the same definitions as --help.";

pub const MAN_AFTER: &str = "\
Exit status:
  0.

Examples:
  gepa-tui man > ~/.local/share/man/man1/gepa-tui.1
  gepa-tui man | man -l -";

pub const RUNS_LONG: &str = "\
Lists the runs in DIR/.gepa/runs/, newest first: the run id, whether it finished or can be \
resumed, its best val score, its test score (finished runs), how many candidates it has and how \
many metric calls it used. A run whose log is damaged is listed with what is wrong with it.

Nothing is written; a run being written by another gepa-tui is read as it stands.";

pub const RUNS_AFTER: &str = "\
Exit status:
  0, also when there are no runs yet.

Examples:
  gepa-tui runs
      the runs of the project in the current folder
  gepa-tui runs my-project";

pub const EXPORT_LONG: &str = "\
Writes the texts of a candidate of run RUN (the best by val mean unless --candidate ID, or \
--candidate OBJECTIVE for the best on that objective) to a \
folder, one file per component, named like the project's prompt files (prompts/instruction.md -> \
OUT/instruction.md). Existing files in OUT are never overwritten: choose a new or empty folder.

With --write-prompts the candidate's texts replace the project's own prompt files (the seed of \
the next run), with the text the run protected between <<keep>> and <</keep>> markers as in a \
prompt file, so the next run protects it too (--out writes the plain texts the model saw). \
gepa-tui asks first, naming each file; --yes skips the question, and without a \
terminal to ask on it refuses unless --yes is given. Files are replaced atomically.

With --blame it writes nothing: it prints the candidate's texts with, beside each line, the \
candidate and round that first wrote it (followed down the lineage from the seed with a line \
diff; ✎ marks a line a person wrote), then what wrote each of those candidates: a reflection, with \
the minibatch examples and the feedback it read, a person's guidance if any, and the review item it \
was if a person approved it; a person's own edit, with its note; or a merge. A review item a person \
edited before approving it has two writers: the lines its reflection wrote stay the reflection's \
(in the round it was proposed), the lines the person changed are the person's edit.

The ids of a run's candidates are in the workbench's Frontier view and in RUN/result.json, which \
also names each objective's best candidate and the non-dominated ones.

With --data-fixes it writes corrected copies of the data files instead: the train and val files \
of which run RUN (default: the newest run that changed any) excluded or fixed an example, in the \
workbench's Traces view. An excluded example's line is left out, a fixed one gets the corrected \
values, every other line is copied byte for byte. They go to --out DIR (default: the run's folder, \
RUN/data-fixes/), named like the data files; a file that exists there is replaced only with \
--force, and a data file itself is never written, whatever --out says. Each change is listed, with \
a warning where the file no longer holds what the run recorded. result.json lists the same changes \
(`excluded_examples`, `data_fixes`).";

pub const EXPORT_AFTER: &str = "\
Exit status:
  0 written (or nothing to write); 1 you answered no; 2 an error (an unknown
  run or candidate, a file that exists in OUT, an OUT that is the data folder).

Examples:
  gepa-tui export --run 20261125-084012-3fa9 --out exported/
      the best candidate's texts into exported/
  gepa-tui export --run 20261125-084012-3fa9 --candidate 4 --out exported/
      candidate 4's texts
  gepa-tui export --run 20261125-084012-3fa9 --candidate prompt_tokens --out short/
      the candidate with the shortest prompt (with objectives = [\"prompt_tokens\"])
  gepa-tui export --run 20261125-084012-3fa9 --candidate 4 --blame
      where each line of candidate 4's texts came from
  gepa-tui export --run 20261125-084012-3fa9 --write-prompts
      over prompts/*.md, after asking
  gepa-tui export --data-fixes --out fixed-data/
      the newest run's corrections: fixed-data/train.jsonl, fixed-data/val.jsonl";

pub const INIT_LONG: &str = "\
Writes a small, commented starter project into DIR (default: the current folder; created if \
missing): gepa.toml with every section explained, prompts/instruction.md (the seed prompt), and a \
few lines of data/train.jsonl, data/val.jsonl and data/test.jsonl to replace with your own, plus a \
.gitignore for .gepa/ when there is none.

It never overwrites a file: if any of them exists, nothing is written at all.";

pub const INIT_AFTER: &str = "\
Exit status:
  0 written; 2 a file exists or cannot be written.

Example:
  gepa-tui init my-project && cd my-project && $EDITOR gepa.toml
  gepa-tui check";

pub const STEER_LONG: &str = "\
Hands a decision to run RUN of the project in DIR while it runs (headless or in the workbench), \
as the workbench's keys do, and prints the run's answer:

  approve ITEM / veto ITEM [--reason WHY]
      decide review item ITEM, a child an `approve` policy holds for a person (a headless run \
started with --wait-for-review waits for these).
  pause / resume / stop
      the process running RUN pauses (calls in flight finish, nothing new starts), resumes, or \
stops now, resumable; taken at once, answered with no round. Only for a run a process is running.
  guide CANDIDATE NOTE [--example ID] [--component NAME]
      the run's next round is a reflection on CANDIDATE with NOTE added to the reflective prompt \
(and example ID, a train or val example, with the candidate's output and feedback on it, in its \
reflective dataset); the child is tested on the minibatch and scored on val like any other, \
counted in the budget, and shown in the Reflections view as guided by you.
  protect COMPONENT TEXT
      TEXT (exactly as a candidate's COMPONENT has it) is protected from then on: later \
reflections on COMPONENT are told to keep it verbatim, and a child that drops or changes it is \
refused before it is evaluated (no metric call spent).
  exclude EXAMPLE --reason WHY [--split train|val]
      the val or train example EXAMPLE counts for nothing from the round that takes it: no val \
mean, front or best uses it, it is not evaluated again and no minibatch draws it.
  fix EXAMPLE --expected VALUE [--field NAME] [--split train|val]
      field NAME of EXAMPLE (default: the evaluator's reference field) is VALUE from then on; for \
a val example every candidate's recorded output on it is scored again (a field holding a number, \
list or object takes VALUE as JSON). The data files are never touched: `gepa-tui export \
--data-fixes` writes corrected copies.

The request is appended to RUN's inbox, DIR/.gepa/runs/RUN/steer.jsonl (one JSON object a line: \
an id and the decision as events.jsonl records it). The running gepa-tui reads the inbox a few \
times a second and takes each request when it plans its next round, checked against the run as it \
is then; it records a request it takes as a `human` event carrying the request's id (so a resumed \
run never takes it twice), and appends its answer to DIR/.gepa/runs/RUN/steer-acks.jsonl: taken \
with round N, or refused and why (an unknown candidate, text that is in no candidate's component, \
a guide without a note). steer waits up to --wait seconds for that answer. What the run would \
refuse is refused at once, without writing anything.

A finished run, or a run that does not exist, is refused. A run that is not running (stopped, \
resumable) keeps the request in its inbox and takes it when it is resumed.";

pub const STEER_AFTER: &str = "\
Exit status:
  0 the run took it; 1 the run refused it (the reason is printed); 2 an error
  (no such run, a finished run, a bad argument); 4 sent, not answered yet
  (the run is not running, or did not plan a round within --wait): the
  request waits in the inbox.

Examples:
  gepa-tui steer --run 20261125-084012-3fa9 guide 4 \"the city code is the first three letters of the city\"
      a reflection on candidate 4 with that note
  gepa-tui steer my-project --run 20261125-084012-3fa9 guide 4 \"dates are ISO\" --example val-17
      the same, with val example val-17 in the reflective dataset
  gepa-tui steer --run 20261125-084012-3fa9 protect instruction \"Never promise a refund.\"
      keep that sentence in every later instruction
  gepa-tui steer --run 20261125-084012-3fa9 exclude val-03 --reason \"the label is wrong\"
      take val-03 out of the run
  gepa-tui steer --run 20261125-084012-3fa9 fix val-07 --expected billing
      val-07's expected answer is \"billing\" from now on
  gepa-tui steer --run 20261125-084012-3fa9 approve 3
      approve review item 3
  gepa-tui steer --run 20261125-084012-3fa9 pause
      pause the run (resume continues it)";
