"""The benchmark's task, shared by the mock server, the project generator and the reference runner.

A richer version of tests/common/mod.rs: every example belongs to a group A-J and the task model
answers it right ("C-ok") only when the system prompt mentions that group's rule ("rule C"). The
evaluator's feedback names the rule ("hint: group C needs rule C"), and the scripted reflection
model copies the current instruction and adds at most two of the rules it reads about, so a prompt
that knows every rule takes several accepted steps down one lineage. The seed knows rule A only.

Stdlib only: the mock server and the reference runner both import this file.
"""

import re

GROUPS = "ABCDEFGHIJ"

TASK_MODEL = "mock-task"
REFLECTION_MODEL = "mock-reflection"

SEED_CANDIDATE = {
    "instruction": "Answer the item. rule A",
    "format": "Reply with the code only.",
}

# Rules added per reflection at most (learning takes several accepted steps).
RULES_PER_REFLECTION = 2


def _example(i, g):
    return {
        "id": f"ex{i}",
        "input": f"item {i} of group {g}",
        "expected": f"{g}-ok",
        "hint": f"group {g} needs rule {g}",
    }


def trainset():
    """30 examples, 3 per group, groups interleaved."""
    return [_example(i, GROUPS[(i * 3) % 10]) for i in range(30)]


def valset():
    """20 examples, 2 per group."""
    return [_example(i, GROUPS[i % 10]) for i in range(100, 120)]


def testset():
    """10 examples, 1 per group."""
    return [_example(i, GROUPS[(i + 1) % 10]) for i in range(200, 210)]


def system_message(candidate):
    """The task's system message, as gepa-tui's `system = "{{instruction}}\\n{{format}}"` renders it."""
    return f"{candidate['instruction']}\n{candidate['format']}"


_GROUP_RE = re.compile(r"of group ([A-Z])\s*$")


def task_reply(system, user):
    """The task model: "G-ok" when the system prompt mentions "rule G", else a wrong answer."""
    m = _GROUP_RE.search(user.strip())
    if not m:
        return "not sure"
    g = m.group(1)
    return f"{g}-ok" if f"rule {g}" in system else "not sure"


def reflection_reply(prompt):
    """The reflection model: the current text (first fenced block) plus the rules the feedback
    after it names, at most RULES_PER_REFLECTION new ones, in a fenced block."""
    start = prompt.find("```\n")
    start = start + 4 if start >= 0 else 0
    end = prompt.find("\n```", start)
    if end < 0:
        end = start
    current = prompt[start:end]
    rest = prompt[end:]
    text = current
    added = 0
    for g in GROUPS:
        rule = f"rule {g}"
        if f"needs {rule}" in rest and rule not in text and added < RULES_PER_REFLECTION:
            text += f" {rule}"
            added += 1
    return f"Here is a better instruction:\n```\n{text}\n```"


def exact_feedback(expected, output, hint):
    """Score and feedback as gepa-tui's `exact` evaluator with `feedback_fields = ["hint"]` writes
    them (src/eval/compare.rs, src/eval/task.rs)."""
    got = output.strip()
    if got.lower() == expected.strip().lower():
        return 1.0, f'Correct: "{got}".\nhint: {hint}'
    return 0.0, f'Expected "{expected}", got "{got}".\nhint: {hint}'
