"""Operators' routing rules, evaluated before the model (pure, no database)."""

from __future__ import annotations

import pytest

from classifiers.rules import ItemFacts, Rule, RuleError, RuleSet


def test_first_matching_rule_by_priority_wins_and_names_itself() -> None:
    rules = RuleSet(
        [
            Rule(id=1, pattern_type="keyword", pattern="refund", queue="service", priority=50),
            Rule(id=2, pattern_type="regex", pattern=r"\bquote\b", queue="sales", priority=10),
            Rule(id=3, pattern_type="channel", pattern="canny", queue="product"),
        ],
        version=7,
    )
    match = rules.match(ItemFacts(text="Need a quote, and a REFUND for the last one"))
    assert match is not None
    assert match.rule.id == 2
    assert match.reason == "rule 2 (v7): regex '\\\\bquote\\\\b'"
    match = rules.match(ItemFacts(text="Where is my Refund?"))
    assert match is not None
    assert match.reason == "rule 1 (v7): keyword 'refund'"
    assert rules.match(ItemFacts(text="I was refunded, thanks")) is None  # whole words only
    assert rules.match(ItemFacts(text="add tags", channel="Canny")) is not None


def test_source_author_and_kind_rules_match_their_fact_only() -> None:
    rules = RuleSet(
        [
            Rule(id=1, pattern_type="author", pattern="@BigCustomer", queue="sales"),
            Rule(id=2, pattern_type="source", pattern="partners-mail", queue="marketing"),
            Rule(id=3, pattern_type="kind", pattern="idea", queue="product", enabled=False),
        ],
        version=2,
    )
    assert len(rules) == 2  # a disabled rule is not in force
    by_author = rules.match(ItemFacts(text="hello", author=("u1", "bigcustomer")))
    assert by_author is not None
    assert by_author.rule.id == 1
    by_source = rules.match(ItemFacts(text="bigcustomer", source="partners-mail"))
    assert by_source is not None
    assert by_source.rule.id == 2
    assert rules.match(ItemFacts(text="an idea", kind="idea")) is None
    assert (
        rules.match_batch([ItemFacts(text="x"), ItemFacts(text="y", source="partners-mail")])[0]
        is None
    )


@pytest.mark.parametrize(
    ("pattern_type", "pattern", "queue", "message"),
    [
        ("regex", "([unclosed", "sales", "does not compile"),
        ("colour", "red", "sales", "pattern_type 'colour'"),
        ("keyword", "refund", "legal", "queue 'legal'"),
        ("keyword", "   ", "sales", "empty"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(
    pattern_type: str, pattern: str, queue: str, message: str
) -> None:
    with pytest.raises(RuleError, match=message):
        Rule(id=1, pattern_type=pattern_type, pattern=pattern, queue=queue)
