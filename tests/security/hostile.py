"""Hostile payloads: a listener's genuine payload with fields dropped or replaced by random
JSON or by strings chosen to confuse, or random objects that keep only what Bolt routes on."""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from bot.sandbox.records import DeliveryKind

DECIDER = "U0BOB"  # the one approver the tests' policy names: no generated value is his id
SLACK_ID = re.compile(r"[A-Z0-9]{2,40}")
SLACK_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")

Key = tuple[str | int, ...]
DROP = object()  # as a new value: remove the field


@dataclass(frozen=True)
class Template:
    kind: DeliveryKind
    payload: dict[str, Any]
    # What Bolt routes on: kept, so every example reaches the listener under test (a payload
    # that no listener matches is Bolt's business, and Bolt does not ack it over Socket Mode).
    routing: tuple[Key, ...]
    # Fields the listener needs intact to act. Where a well-formed payload starts real work
    # (a model turn), one of them is always broken.
    required: tuple[Key, ...] = ()


LISTENER_READS: set[Key] = {
    ("user",),
    ("user", "id"),
    ("channel",),
    ("channel", "id"),
    ("container",),
    ("container", "channel_id"),
    ("container", "message_ts"),
    ("message",),
    ("message", "thread_ts"),
    ("trigger_id",),
    ("actions", 0, "value"),
    ("view", "private_metadata"),
    ("view", "state"),
    ("view", "state", "values"),
    ("event", "text"),
    ("event", "thread_ts"),
    ("event", "channel_type"),
    ("text",),
    ("response_url",),
}


def keys(node: Any, prefix: Key = ()) -> list[Key]:
    """The path to every field and list item below `node`."""
    items: Any = ()
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    found: list[Key] = []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(keys(child, (*prefix, key)))
    return found


def lookup(node: Any, key: Key) -> Any:
    for part in key:
        node = node[part]
    return node


def mutate(payload: dict[str, Any], changes: list[tuple[Key, Any]]) -> dict[str, Any]:
    """Apply each change whose parent still exists after the earlier ones."""
    result = copy.deepcopy(payload)
    for key, value in changes:
        try:
            parent = lookup(result, key[:-1])
            if value is DROP:
                del parent[key[-1]]
            else:
                parent[key[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return result


def hostile_strings(approval_ids: list[str]) -> st.SearchStrategy[str]:
    chosen = [
        *approval_ids,
        ",".join(approval_ids),
        "",
        " ",
        "<!channel>",
        "<@U0BOB>",
        "U0BOB ",
        "u0bob",
        "U0ALICE",
        "C0GENERAL",
        "0000000000.000000",
        "1.2.3",
        "ap_' OR '1'='1",
        "\x00",
        "\u202eevil",
        "x" * 5000,
        "[" * 5000,
        "deny_reason",
        "edit_args",
        "approval_approve",
    ]
    return st.sampled_from(chosen) | st.text(max_size=30)


def json_values(strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | strings
    return st.recursive(
        leaves,
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(strings, kids, max_size=3),
        max_leaves=6,
    ).filter(lambda v: v != DECIDER)


def broken(strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """A value no Slack id or timestamp field accepts: gone, of another type, or misshapen."""
    return st.just(DROP) | json_values(strings).filter(
        lambda v: not (isinstance(v, str) and (SLACK_ID.fullmatch(v) or SLACK_TS.fullmatch(v)))
    )


def mutated(
    template: Template, strings: st.SearchStrategy[str]
) -> st.SearchStrategy[dict[str, Any]]:
    """The genuine payload with one to four fields dropped or replaced."""
    free = [
        key
        for key in keys(template.payload)
        if not any(route[: len(key)] == key for route in template.routing)
    ]
    # The fields the listeners read get ten times the attention of the others.
    free += [key for key in free if key in LISTENER_READS] * 9
    change = st.tuples(st.sampled_from(free), st.just(DROP) | json_values(strings))
    changes = st.lists(change, min_size=1, max_size=4)
    if template.required:
        must_break = st.tuples(st.sampled_from(template.required), broken(strings))
        changes = st.tuples(changes, must_break).map(lambda c: [*c[0], c[1]])
    return changes.map(lambda c: mutate(template.payload, c))


@st.composite
def random_shaped(
    draw: st.DrawFn, template: Template, strings: st.SearchStrategy[str]
) -> dict[str, Any]:
    """Random objects all the way down, but for the template's routing fields."""
    objects = st.dictionaries(strings, json_values(strings), max_size=5)
    result: dict[str, Any] = draw(objects)
    for route in template.routing:
        node: Any = result
        for part, after in itertools.pairwise(route):
            child = node.get(part) if isinstance(node, dict) else node[part]
            if isinstance(after, int):
                if not (isinstance(child, list) and child and isinstance(child[0], dict)):
                    child = [draw(objects)]
            elif not isinstance(child, dict):
                child = draw(objects)
            node[part] = child
            node = child
        node[route[-1]] = lookup(template.payload, route)
    return result


def hostile(template: Template, approval_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    strings = hostile_strings(approval_ids)
    return mutated(template, strings) | random_shaped(template, strings)
