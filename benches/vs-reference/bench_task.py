"""The benchmark's tasks, shared by the mock server, the project generator and the reference runner.

Two tasks; call `configure(task)` first (the default is "main"). Everything below answers for the
configured task: `seed_candidate()`, `trainset()`, `valset()`, `system_message()`,
`system_template()`, and the scripted models `task_reply()` and `reflection_reply()`.

"main": a richer version of tests/common/mod.rs. Every example belongs to a group A-J and the task
model answers it right ("C-ok") only when the system prompt mentions that group's rule ("rule C").
The evaluator's feedback names the rule ("hint: group C needs rule C"), and the scripted
reflection model copies the current instruction and adds at most two of the rules it reads about
(`--rules-per-reflection`; 1 is "the harder task"), so a prompt that knows every rule takes several
accepted steps down one lineage. The seed knows rule A only. Two components: instruction, format.

"deep": depth matters more. Three components (instruction, format, examples), eight groups A-H,
and each group's rules live in one component (A, D, G: instruction; B, E, H: format; C, F:
examples), so the reflection on a component can only fix that component's groups and round-robin
selection matters. Each group has two rules, found one after the other: a "level 1" example of
group C is right when the examples component holds "rule C1", a "level 2" one needs "rule C1"
and "rule C2". While C1 is missing the task model's wrong answer says so
("unsure: group C needs rule C1 in the examples"); once C1 is there it names C2 instead (the
data's hint only says where the group is set). The reflection model adds at most one rule a
reflection (`--rules-per-reflection`, default 1 here), only to the component it is rewriting
(found by the tag its text opens with), and only a rule the feedback names for that component.
So a perfect prompt takes 15 accepted reflections down one lineage (the seed knows rule A1 of 16),
rule 2 of a group only after its rule 1 was accepted; siblings proposed from the same parent
without seeing each other's results each add their rule to a different copy. The sequential
reference reaches 1.0 at 600-800 metric calls (about 0.4 at 300).

Stdlib only: the mock server and the reference runner both import this file.
"""

import re

TASKS = ("main", "deep")
TASK = "main"

TASK_MODEL = "mock-task"
REFLECTION_MODEL = "mock-reflection"

# New rules one reflection adds at most; None: the task's default (main 2, deep 1).
RULES_PER_REFLECTION = None
DEFAULT_RULES_PER_REFLECTION = {"main": 2, "deep": 1}


def configure(task="main", rules_per_reflection=None):
    """Selects the task (and optionally the reflection model's rules per reflection)."""
    global TASK, RULES_PER_REFLECTION
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (one of {', '.join(TASKS)})")
    TASK = task
    RULES_PER_REFLECTION = rules_per_reflection


def rules_per_reflection():
    if RULES_PER_REFLECTION is not None:
        return RULES_PER_REFLECTION
    return DEFAULT_RULES_PER_REFLECTION[TASK]


def seed_candidate():
    return dict(DEEP_SEED_CANDIDATE if TASK == "deep" else SEED_CANDIDATE)


def components():
    """Component names, in the order the system message joins them."""
    return list(seed_candidate())


def trainset():
    return _deep_trainset() if TASK == "deep" else _main_trainset()


def valset():
    return _deep_valset() if TASK == "deep" else _main_valset()


def testset():
    return _deep_testset() if TASK == "deep" else _main_testset()


def system_message(candidate):
    """The task's system message, as gepa-tui's `system_template()` renders it: the components
    joined by newlines."""
    return "\n".join(candidate[c] for c in components())


def system_template():
    """gepa-tui's `[[system.steps]] system` for the task, escaped for a TOML basic string:
    `{{instruction}}\\n{{format}}`, and `\\n{{examples}}` for deep."""
    return "\\n".join("{{" + c + "}}" for c in components())


def task_reply(system, user):
    return _deep_task_reply(system, user) if TASK == "deep" else _main_task_reply(system, user)


def reflection_reply(prompt):
    current, rest = _split_reflection_prompt(prompt)
    if TASK == "deep":
        text = _deep_reflect(current, rest)
    else:
        text = _main_reflect(current, rest)
    return f"Here is a better instruction:\n```\n{text}\n```"


def exact_feedback(expected, output, hint):
    """Score and feedback as gepa-tui's `exact` evaluator with `feedback_fields = ["hint"]` writes
    them (src/eval/compare.rs, src/eval/task.rs)."""
    got = output.strip()
    if got.lower() == expected.strip().lower():
        return 1.0, f'Correct: "{got}".\nhint: {hint}'
    return 0.0, f'Expected "{expected}", got "{got}".\nhint: {hint}'


def _split_reflection_prompt(prompt):
    """The current text (the first ``` fenced block of the reflection prompt, which both tools'
    default template opens with) and everything after it (the examples with their feedback)."""
    start = prompt.find("```\n")
    start = start + 4 if start >= 0 else 0
    end = prompt.find("\n```", start)
    if end < 0:
        end = start
    return prompt[start:end], prompt[end:]


# --- main ---------------------------------------------------------------------------------------

GROUPS = "ABCDEFGHIJ"

SEED_CANDIDATE = {
    "instruction": "Answer the item. rule A",
    "format": "Reply with the code only.",
}


def _example(i, g):
    return {
        "id": f"ex{i}",
        "input": f"item {i} of group {g}",
        "expected": f"{g}-ok",
        "hint": f"group {g} needs rule {g}",
    }


def _main_trainset():
    """30 examples, 3 per group, groups interleaved."""
    return [_example(i, GROUPS[(i * 3) % 10]) for i in range(30)]


def _main_valset():
    """20 examples, 2 per group."""
    return [_example(i, GROUPS[i % 10]) for i in range(100, 120)]


def _main_testset():
    """10 examples, 1 per group."""
    return [_example(i, GROUPS[(i + 1) % 10]) for i in range(200, 210)]


_GROUP_RE = re.compile(r"of group ([A-Z])\s*$")


def _main_task_reply(system, user):
    """The task model: "G-ok" when the system prompt mentions "rule G", else a wrong answer."""
    m = _GROUP_RE.search(user.strip())
    if not m:
        return "not sure"
    g = m.group(1)
    return f"{g}-ok" if f"rule {g}" in system else "not sure"


def _main_reflect(current, rest):
    """The current text plus the rules the feedback after it names, at most
    rules_per_reflection() new ones (in group order)."""
    text = current
    added = 0
    for g in GROUPS:
        rule = f"rule {g}"
        if f"needs {rule}" in rest and rule not in text and added < rules_per_reflection():
            text += f" {rule}"
            added += 1
    return text


# --- deep ---------------------------------------------------------------------------------------

DEEP_GROUPS = "ABCDEFGH"
DEEP_COMPONENTS = ("instruction", "format", "examples")
# Each component's text opens with its tag, which the reflection keeps (it copies the current
# text): the task model finds a component's part of the system message by it, and the reflection
# model which component it is rewriting.
DEEP_TAGS = {"instruction": "Instruction:", "format": "Format:", "examples": "Examples:"}

DEEP_SEED_CANDIDATE = {
    "instruction": "Instruction: answer the item. rule A1",
    "format": "Format: reply with the code only.",
    "examples": "Examples: none yet.",
}


def deep_component(g):
    """The component holding group g's rules (round robin over the groups)."""
    return DEEP_COMPONENTS[DEEP_GROUPS.index(g) % len(DEEP_COMPONENTS)]


def _deep_example(i, g, level):
    return {
        "id": f"ex{i}",
        "input": f"item {i} of group {g} level {level}",
        "expected": f"{g}-ok",
        "hint": f"group {g} is set in the {deep_component(g)}",
    }


def _deep_rows(first, per_group, levels):
    """per_group examples for each group, groups interleaved; the k-th example of a group has
    level levels[k]."""
    rows = []
    for k in range(per_group):
        for g in DEEP_GROUPS:
            rows.append((g, levels[k]))
    return [_deep_example(first + n, g, lvl) for n, (g, lvl) in enumerate(rows)]


def _deep_trainset():
    """48 examples, 6 per group (3 of level 1, 3 of level 2)."""
    return _deep_rows(0, 6, (1, 2, 1, 2, 1, 2))


def _deep_valset():
    """24 examples, 3 per group (1 of level 1, 2 of level 2)."""
    return _deep_rows(100, 3, (1, 2, 2))


def _deep_testset():
    """16 examples, 2 per group (one of each level)."""
    return _deep_rows(200, 2, (2, 1))


_DEEP_ITEM_RE = re.compile(r"of group ([A-Z]) level ([12])\s*$")


def _deep_sections(system):
    """Each component's part of the system message, found by its tag ("" when absent)."""
    found = sorted((system.find(tag), c) for c, tag in DEEP_TAGS.items() if tag in system)
    out = {c: "" for c in DEEP_COMPONENTS}
    for k, (pos, c) in enumerate(found):
        end = found[k + 1][0] if k + 1 < len(found) else len(system)
        out[c] = system[pos:end]
    return out


def _deep_task_reply(system, user):
    """"G-ok" when G's component holds G's rule 1 (level 1) or rules 1 and 2 (level 2); else a
    wrong answer naming the next rule that component lacks."""
    m = _DEEP_ITEM_RE.search(user.strip())
    if not m:
        return "not sure"
    g, level = m.group(1), int(m.group(2))
    comp = deep_component(g)
    sec = _deep_sections(system)[comp]
    has1, has2 = f"rule {g}1" in sec, f"rule {g}2" in sec
    if has1 and (level == 1 or has2):
        return f"{g}-ok"
    missing = 1 if not has1 else 2
    return f"unsure: group {g} needs rule {g}{missing} in the {comp}"


_DEEP_NEEDS_RE = re.compile(r"needs rule ([A-Z])([12]) in the (\w+)")


def _deep_reflect(current, rest):
    """The current text plus the rules the feedback names for the component being rewritten (the
    one whose tag the current text opens with), in the order the feedback names them, at most
    rules_per_reflection() new ones."""
    comp = next((c for c, tag in DEEP_TAGS.items() if current.lstrip().startswith(tag)), None)
    text = current
    added = 0
    for m in _DEEP_NEEDS_RE.finditer(rest):
        if added >= rules_per_reflection():
            break
        rule = f"rule {m.group(1)}{m.group(2)}"
        if m.group(3) == comp and rule not in text:
            text += f" {rule}"
            added += 1
    return text
