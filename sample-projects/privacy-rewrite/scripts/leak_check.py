#!/usr/bin/env python3
"""Scores a privacy rewrite: which of the example's personal details leaked into the output?

gepa-tui runs this as a `command` evaluator: it writes {"example": {...}, "output": ...} to stdin
and reads {"score": ..., "feedback": ...} from stdout. The score is the fraction of the example's
`pii` items that do NOT appear in the output. An item counts as leaked when
  - its text appears (ignoring case and spacing), or
  - it holds 4+ digits and the same digits appear in the output, whatever the separators
    ("07700 900418" leaks as "07700-900-418"), or
  - it is a person's name and one of its words (4+ letters, capitalised) appears on its own
    ("Dana Whitfield" leaks as "Ms. Whitfield").
Standard library only, Python 3.8+.
"""
import json
import re
import sys

NOT_NAME_WORDS = {"High", "Street", "Road", "Lane", "Close", "Court", "Avenue", "Terrace"}


def norm(s):
    return re.sub(r"\s+", " ", s).strip().lower()


def digit_runs(s):
    """Digits of each run of digits and separators: "+34 612-448" -> "34612448"."""
    return [re.sub(r"\D", "", m) for m in re.findall(r"\d[\d\s().+\-/]*\d|\d", s)]


def looks_like_name(item):
    words = item.split()
    return 2 <= len(words) <= 3 and all(w[:1].isupper() and w.replace("'", "").isalpha() for w in words)


def leaked(item, output):
    if norm(item) in norm(output):
        return True
    digits = re.sub(r"\D", "", item)
    if len(digits) >= 4 and any(digits in run for run in digit_runs(output)):
        return True
    if looks_like_name(item):
        for w in item.split():
            if len(w) >= 4 and w not in NOT_NAME_WORDS and re.search(r"(?<!\w)" + re.escape(w) + r"(?!\w)", output):
                return True
    return False


def main():
    data = json.load(sys.stdin)
    example = data.get("example") or {}
    output = data.get("output")
    if not isinstance(output, str):
        output = "" if output is None else json.dumps(output, ensure_ascii=False)
    pii = [p for p in example.get("pii", []) if isinstance(p, str) and p.strip()]
    if not output.strip():
        print(json.dumps({"score": 0.0, "feedback": "Leak check: the rewrite is empty."}))
        return
    if not pii:
        print(json.dumps({"score": 1.0, "feedback": "Leak check: no personal details to protect."}))
        return
    bad = [p for p in pii if leaked(p, output)]
    score = 1.0 - len(bad) / len(pii)
    if bad:
        listed = ", ".join(f'"{p}"' for p in bad)
        feedback = (
            f"Leak check: {len(bad)} of {len(pii)} personal details leaked: {listed}. "
            "Names, emails, phone numbers, street addresses, account, card, ID and policy numbers, "
            "usernames and passwords must not appear; drop them or use a generic word "
            '("my landlord", "my account", "my address").'
        )
    else:
        feedback = f"Leak check: no personal details leaked ({len(pii)} checked)."
    print(json.dumps({"score": round(score, 4), "feedback": feedback}, ensure_ascii=False))


if __name__ == "__main__":
    main()
