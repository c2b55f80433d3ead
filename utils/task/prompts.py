"""The words the model sees, and the answer format it must write. One place for both.

Same content and tags as the public recipe (see README, "Sources"), in our own wording.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SYSTEM_PROMPT = (
    "You plan days precisely. First reason step by step inside <think> and </think>. "
    "Then give only the final plan inside <schedule> and </schedule>."
)

TASK_INSTRUCTIONS = """Build the best possible schedule from the events below.

Rules:
- Each chosen event keeps its exact name, start and end time from the list (24-hour HH:MM).
- List the chosen events in chronological order.
- No two chosen events may overlap. One event may start exactly when another ends.
- You may leave events out.
- Priority events count double: the value of an event is its duration in minutes,
  times 2 for a priority event. Make the total value as large as possible.

Answer format:
<think>your reasoning</think>
<schedule>
<event><name>EVENT NAME</name><start>HH:MM</start><end>HH:MM</end></event>
...
</schedule>

---
"""


def format_problem(events: Sequence[Sequence[str]], priority_events: Sequence[str]) -> str:
    """The dataset's ``prompt`` column: the events and the priorities, plain text."""
    lines = ["Events:"]
    lines += [f"- {name} ({start} - {end})" for name, start, end in events]
    lines += ["", "Priorities:"]
    lines += [f"- {name}" for name in priority_events]
    return "\n".join(lines)


def user_message(problem_text: str) -> str:
    return TASK_INSTRUCTIONS + problem_text


def build_messages(row: Mapping) -> list[dict[str, str]]:
    """Chat messages for one dataset row (system + user)."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(row["prompt"])},
    ]


def format_schedule(events: Sequence[Sequence[str]]) -> str:
    """The ``<schedule>`` block for a list of events."""
    body = "".join(f"<event><name>{n}</name><start>{s}</start><end>{e}</end></event>\n" for n, s, e in events)
    return f"<schedule>\n{body}</schedule>"


def format_answer(reasoning: str, events: Sequence[Sequence[str]]) -> str:
    return f"<think>{reasoning}</think>\n{format_schedule(events)}"
