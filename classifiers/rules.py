"""Routing rules that operators edit: evaluated before the model, first match wins.

A rule sends an item to a queue when its ``pattern`` matches one fact about the item:

- ``keyword``: a word or phrase in the text (case-insensitive, whole words: "refund"
  does not match "refunded"; write a regex for that);
- ``regex``: a Python regular expression searched in the text (case-insensitive);
- ``source``: the name of the source the item came from;
- ``author``: the author's handle (with or without ``@``) or id;
- ``channel`` / ``kind``: the connector's channel (twitter, zendesk ...) or kind (post, ticket ...).

Rules are ordered by ``priority`` (lower first), then ``id``. A ``RuleSet`` carries the
version of the whole set, so a decision's reason names both the rule and the set it came
from: ``rule 3 (v7): keyword 'refund'``. This module is pure: the app loads the rules from
its database and passes a ``RuleSet`` in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PATTERN_TYPES: tuple[str, ...] = ("keyword", "regex", "source", "author", "channel", "kind")
RULE_QUEUES: tuple[str, ...] = ("product", "marketing", "sales", "service", "triage")
MAX_PATTERN = 500


class RuleError(ValueError):
    """A rule cannot be used: unknown type or queue, empty pattern, a regex that fails."""


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What a rule may look at. ``text`` is the classified text (title and body)."""

    text: str
    channel: str | None = None
    kind: str | None = None
    source: str | None = None
    author: Sequence[str] = ()
    """The author's identifiers: handle, id, e-mail; any of them may match an author rule."""
    lang: str | None = None
    """The language the source declared, used when the text is too short to detect."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    pattern_type: str
    pattern: str
    queue: str
    priority: int = 100
    enabled: bool = True
    _matcher: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_rule(self.pattern_type, self.pattern, self.queue)
        if self.pattern_type in ("keyword", "regex"):
            object.__setattr__(self, "_matcher", compile_pattern(self.pattern_type, self.pattern))

    def matches(self, facts: ItemFacts) -> bool:
        if self._matcher is not None:
            return self._matcher.search(facts.text) is not None
        wanted = _fold(self.pattern)
        if self.pattern_type == "author":
            return any(_fold(value) == wanted for value in facts.author if value)
        value = {"source": facts.source, "channel": facts.channel, "kind": facts.kind}[
            self.pattern_type
        ]
        return value is not None and _fold(value) == wanted

    def describe(self, version: int) -> str:
        return f"rule {self.id} (v{version}): {self.pattern_type} {self.pattern!r}"


def _fold(value: str) -> str:
    return value.strip().lstrip("@").casefold()


def compile_pattern(pattern_type: str, pattern: str) -> re.Pattern[str]:
    if pattern_type == "keyword":
        words = r"\s+".join(re.escape(word) for word in pattern.split())
        return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise RuleError(f"regex {pattern!r} does not compile: {exc}") from None


def check_rule(pattern_type: str, pattern: str, queue: str) -> None:
    """Raise ``RuleError`` naming what is wrong with a rule's fields."""
    if pattern_type not in PATTERN_TYPES:
        raise RuleError(f"pattern_type {pattern_type!r} is not one of {', '.join(PATTERN_TYPES)}")
    if queue not in RULE_QUEUES:
        raise RuleError(f"queue {queue!r} is not one of {', '.join(RULE_QUEUES)}")
    if not pattern.strip():
        raise RuleError("pattern is empty")
    if len(pattern) > MAX_PATTERN:
        raise RuleError(f"pattern is longer than {MAX_PATTERN} characters")
    if pattern_type == "regex":
        compile_pattern(pattern_type, pattern)


@dataclass(frozen=True, slots=True)
class RuleMatch:
    rule: Rule
    reason: str


class RuleSet:
    """An ordered, versioned set of enabled rules."""

    def __init__(self, rules: Iterable[Rule] = (), *, version: int = 0) -> None:
        self.version = version
        self.rules: tuple[Rule, ...] = tuple(
            sorted((rule for rule in rules if rule.enabled), key=lambda r: (r.priority, r.id))
        )

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, facts: ItemFacts) -> RuleMatch | None:
        for rule in self.rules:
            if rule.matches(facts):
                return RuleMatch(rule=rule, reason=rule.describe(self.version))
        return None

    def match_batch(self, facts: Sequence[ItemFacts]) -> list[RuleMatch | None]:
        if not self.rules:
            return [None] * len(facts)
        return [self.match(one) for one in facts]


EMPTY_RULES = RuleSet()
