"""Synthetic feedback texts for the benchmarks, generated at run time.

A small vocabulary mix (complaints, praise, feature requests, buying questions, campaign
chatter) is combined per item from a seeded RNG, so text ``i`` is the same in every run and
every process without storing anything: the fake source and the VADER reference produce
identical texts independently. Lengths vary from one short clause to a few sentences.
"""

from __future__ import annotations

import random

PRODUCTS = (
    "app",
    "dashboard",
    "export",
    "invoice",
    "checkout",
    "mobile app",
    "search",
    "sync",
    "login page",
    "API",
    "calendar",
    "notifications",
    "dark mode",
    "report builder",
    "payment page",
    "order",
    "subscription",
    "delivery",
    "refund",
    "account",
)
OPENERS = (
    "Hi team,",
    "Hello,",
    "Honestly",
    "Quick one:",
    "Ugh.",
    "Wow!",
    "So",
    "Hey @acme",
    "Dear support,",
    "",
    "",
    "",
    "FYI",
    "Not gonna lie,",
    "Love it:",
)
SERVICE = (
    "I have been on hold for {n} hours and still no reply",
    "my {p} never arrived and nobody answers the chat",
    "I was charged twice for the {p}, please refund me",
    "the {p} is down again, third outage this week",
    "still waiting on my refund after {n} days",
    "can't log in since the update, password reset email never arrives",
    "your agent fixed my {p} issue in {n} minutes, great service",
    "the {p} keeps crashing when I open it",
    "flight cancelled and no compensation yet",
    "support closed my ticket without solving anything",
)
PRODUCT = (
    "it would be great if the {p} had a dark mode",
    "please add an option to export the {p} as CSV",
    "feature request: let us schedule the {p}",
    "the new {p} layout is confusing, where did the filters go?",
    "I love the {p} but it needs keyboard shortcuts",
    "could you support bulk edit in the {p}",
    "the {p} is slow with more than {n} rows",
    "any plans for an offline mode in the {p}?",
)
SALES = (
    "how much does the team plan cost for {n} seats?",
    "do you offer a discount for nonprofits?",
    "we want to upgrade to the enterprise plan, who can I talk to?",
    "is there an annual billing option for the {p}?",
    "can I get a quote for {n} licences",
    "interested in a demo of the {p} for our company",
)
MARKETING = (
    "just saw your ad on the subway, love the campaign",
    "the webinar about the {p} was really useful, thanks!",
    "your newsletter is the only one I actually read",
    "great talk at the conference yesterday #acme",
    "shared your blog post about the {p} with my team",
    "the new logo looks awful tbh",
)
CLOSERS = (
    "",
    "",
    "",
    "Thanks!",
    "Please help.",
    "!!!",
    "Really disappointed.",
    "Keep it up :)",
    "This is ridiculous.",
    "Cheers",
    "😡",
    "🙏",
    "❤️",
    "#fail",
    "#acme",
    "Any update?",
)
POOLS = (SERVICE, SERVICE, PRODUCT, PRODUCT, SALES, MARKETING)


def text_for(index: int) -> tuple[str, str]:
    """Subject and description of synthetic item ``index`` (deterministic)."""
    rng = random.Random(index * 7919 + 17)
    pool = rng.choice(POOLS)
    clauses = [
        rng.choice(pool).format(p=rng.choice(PRODUCTS), n=rng.randint(2, 90))
        for _ in range(rng.choice((1, 1, 2, 2, 3)))
    ]
    opener = rng.choice(OPENERS)
    body = " ".join(c[0].upper() + c[1:] + ("" if c[-1] in "?!" else ".") for c in clauses)
    text = " ".join(part for part in (opener, body, rng.choice(CLOSERS)) if part)
    if rng.random() < 0.05:
        text = text.upper()
    subject = clauses[0][:60]
    return subject, text
