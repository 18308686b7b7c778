"""The agent console in a real Chromium against a live server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.browser.conftest import XSS_IMG, XSS_SCRIPT, Keys, LiveServer, screenshot

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Any]


def sign_in(page: Any, key: str) -> None:
    page.goto("/console")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    page.locator("#app").wait_for(state="visible")


def alert_text(page: Any) -> str:
    page.locator("#alert").wait_for(state="visible")
    text: str = page.locator("#alert").inner_text()
    return text


def test_agent_claims_reroutes_and_resolves(
    new_page: OpenPage, keys: Keys, admin_api: httpx.Client
) -> None:
    page = new_page()
    sign_in(page, keys.agent)

    assert page.locator("#who-name").inner_text() == "sam-agent · agent"
    options = page.locator("#queue option").all_inner_texts()
    assert options == ["marketing", "service"], "only the queues in the key's scope"
    stored = page.evaluate("[sessionStorage.getItem('andon.apiKey'), localStorage.length]")
    assert stored == [keys.agent, 0], "the key lives in sessionStorage only"

    # Claim with the keyboard.
    page.locator("#queue").select_option("service")
    page.locator("body").press("n")
    page.locator("#item").wait_for(state="visible")
    entry_id = int(page.locator("#item").get_attribute("data-entry-id"))
    item_id = int(page.locator("#item").get_attribute("data-item-id"))
    assert re.fullmatch(r"1[45]:\d\d", page.locator("#lease-left").inner_text())
    assert page.locator("#item-queue").inner_text() == "service"
    assert page.locator("#item-text").inner_text().strip()
    assert re.fullmatch(r"\d+%", page.locator("#item-confidence").inner_text())
    assert page.locator("#item-reason").inner_text().strip()
    assert page.locator("#item-scores li").count() == 4
    assert page.locator("#item-breakdown li").count() == 6  # the title and five parts
    claimed = admin_api.get(f"/entries/{entry_id}").json()
    assert claimed["entry"]["state"] == "claimed"
    assert claimed["entry"]["claimed_by"] == "sam-agent"
    screenshot(page, "console-claimed-1280")

    page.get_by_role("button", name="Extend").click()
    page.locator("#status").filter(has_text="Lease extended").wait_for()

    # Re-route with the keyboard: E jumps to the queue picker.
    page.locator("body").press("e")
    assert page.evaluate("document.activeElement.id") == "reroute-queue"
    page.locator("#reroute-queue").select_option("marketing")
    page.get_by_label("Reason", exact=True).first.fill("asks about the spring campaign")
    page.get_by_role("button", name="Re-route").click()
    page.locator("#status").filter(has_text="Re-routed to marketing").wait_for()
    assert page.locator("#item").is_hidden()
    moved = admin_api.get(f"/items/{item_id}").json()
    assert moved["queue"] == "marketing"
    assert admin_api.get(f"/entries/{entry_id}").json()["entry"]["state"] == "rerouted"

    # Claim the next one and resolve it with a note (R, type, Ctrl+Enter).
    page.get_by_role("button", name="Next item").click()
    page.locator("#item").wait_for(state="visible")
    second = int(page.locator("#item").get_attribute("data-entry-id"))
    assert second != entry_id
    page.locator("body").press("r")
    assert page.evaluate("document.activeElement.id") == "note"
    page.keyboard.type("Refund issued and the customer told")
    page.keyboard.press("Control+Enter")
    page.locator("#status").filter(has_text="Resolved").wait_for()
    resolved = admin_api.get(f"/entries/{second}").json()["entry"]
    assert (resolved["state"], resolved["note"]) == (
        "resolved",
        "Refund issued and the customer told",
    )


def test_correct_sentiment_dismiss_and_release(
    new_page: OpenPage, keys: Keys, admin_api: httpx.Client
) -> None:
    page = new_page()
    sign_in(page, keys.agent)
    page.locator("#queue").select_option("marketing")

    page.get_by_role("button", name="Next item").click()
    page.locator("#item").wait_for(state="visible")
    entry_id = int(page.locator("#item").get_attribute("data-entry-id"))
    item_id = int(page.locator("#item").get_attribute("data-item-id"))
    before = page.locator("#item-sentiment .chip").inner_text()
    label = "positive" if before != "positive" else "negative"
    page.locator("body").press("s")
    page.locator("#sentiment-label").select_option(label)
    page.get_by_role("button", name="Save sentiment").click()
    page.locator("#status").filter(has_text=f"Sentiment corrected to {label}").wait_for()
    assert page.locator("#item-sentiment .chip").inner_text() == label
    assert admin_api.get(f"/items/{item_id}").json()["sentiment"]["label"] == label

    page.locator("body").press("l")
    page.locator("#status").filter(has_text="Released").wait_for()
    assert admin_api.get(f"/entries/{entry_id}").json()["entry"]["state"] == "open"

    page.get_by_role("button", name="Next item").click()
    page.locator("#item").wait_for(state="visible")
    dismissed = int(page.locator("#item").get_attribute("data-entry-id"))
    page.locator("body").press("d")
    page.keyboard.type("spam")
    page.keyboard.press("Enter")
    page.locator("#status").filter(has_text="Dismissed").wait_for()
    assert admin_api.get(f"/entries/{dismissed}").json()["entry"]["state"] == "dismissed"


def test_triage_one_click_assigns_a_queue(
    new_page: OpenPage, keys: Keys, admin_api: httpx.Client
) -> None:
    waiting = admin_api.get("/items", params={"queue": "triage", "limit": 5}).json()["items"]
    assert waiting, "the demo leaves some items in triage"
    page = new_page()
    sign_in(page, keys.agent)

    page.get_by_role("tab", name=re.compile("Triage")).click()
    first = page.locator(".triage-item").first
    first.wait_for()
    item_id = int(first.get_attribute("data-item-id"))
    guesses = first.locator("button.guess")
    assert guesses.count() == 4
    scores = [int(text.rstrip("%")) for text in first.locator(".guess-score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True), "the model's best guesses come first"
    screenshot(page, "console-triage-1280")

    choice = guesses.nth(1).get_attribute("data-queue")
    guesses.nth(1).click()
    page.locator("#status").filter(has_text=f"Sent to {choice}").wait_for()
    assert page.locator(f'.triage-item[data-item-id="{item_id}"]').count() == 0
    assert admin_api.get(f"/items/{item_id}").json()["queue"] == choice


def test_item_text_is_shown_as_text_never_run(
    new_page: OpenPage, keys: Keys, admin_api: httpx.Client, live_server: LiveServer
) -> None:
    hostile = admin_api.get("/items", params={"thread_id": "thread-hostile"}).json()["items"]
    first = next(item for item in hostile if item["external_id"] == "hostile-1")
    detail = admin_api.get(f"/items/{first['id']}").json()
    entry = {
        "id": 999_001,
        "item_id": detail["id"],
        "queue": "service",
        "state": "claimed",
        "priority": 1.0,
        "priority_breakdown": {"sentiment": 1, "reach": 0, "votes": 0, "age": 0, "channel": 0},
        "claimed_by": "sam-agent",
        "lease_expires_at": "2999-01-01T00:00:00Z",
        "created_at": "2026-01-02T10:00:00Z",
        "note": None,
        "routed_by": "model",
    }
    page = new_page()
    # The claim answers with the hostile item; everything else is the live server.
    page.route(
        "**/queues/service/claim",
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"entry": entry, "item": detail}),
        ),
    )
    page.route(
        re.compile(r".*/items\?queue=triage.*"),
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps(
                {"items": [{**first, "entry": {**entry, "id": 999_002}}], "next_cursor": None}
            ),
        ),
    )
    sign_in(page, keys.agent)
    page.locator("#queue").select_option("service")
    page.get_by_role("button", name="Next item").click()
    page.locator("#item").wait_for(state="visible")

    text = page.locator("#item-text").inner_text()
    assert XSS_IMG in text
    assert XSS_SCRIPT in text
    assert page.locator("#item-title").inner_text() == "<b>bold</b> title"
    assert "<svg onload=alert(1)>" in page.locator("#item-author").inner_text()
    assert page.locator("#item img, #item script, #item svg, #item b").count() == 0
    assert page.locator("#item-url").get_attribute("href") is None, "javascript: URLs are refused"
    page.locator("#thread li").filter(has_text="still nothing after two weeks").wait_for()

    page.get_by_role("tab", name=re.compile("Triage")).click()
    row = page.locator(".triage-item").first
    row.wait_for()
    assert XSS_IMG in row.inner_text()
    assert page.locator("#triage-list img, #triage-list script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_wrong_key_and_viewer_get_clear_messages(new_page: OpenPage, keys: Keys) -> None:
    page = new_page()
    page.goto("/console")
    page.get_by_label("API key").fill("andon_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    assert "not accepted" in alert_text(page)
    assert page.evaluate("sessionStorage.getItem('andon.apiKey')") is None
    assert page.locator("#app").is_hidden()

    page.get_by_label("API key").fill(keys.viewer)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#app").wait_for(state="visible")
    assert page.get_by_role("button", name="Next item").is_disabled()
    assert "viewer key" in page.locator("#empty-text").inner_text()


@pytest.mark.parametrize(
    ("status", "problem", "expected"),
    [
        (403, {"detail": "key 'sam-agent' is scoped to service"}, "not allowed"),
        (
            409,
            {"detail": "held", "held_by": "kim", "lease_expires_at": "2026-01-01T10:15:00Z"},
            "held by kim until",
        ),
        (429, {"detail": "limit", "limit": "agent"}, "your work-in-progress limit"),
        (429, {"detail": "limit", "limit": "queue"}, "This queue has reached"),
        (401, {"detail": "revoked"}, "not accepted"),
    ],
)
def test_claim_errors_are_explained(
    new_page: OpenPage, keys: Keys, status: int, problem: dict[str, Any], expected: str
) -> None:
    page = new_page()
    sign_in(page, keys.agent)
    body = json.dumps({"title": "x", "status": status, **problem})
    page.route(
        "**/queues/*/claim",
        lambda route: route.fulfill(
            status=status, content_type="application/problem+json", body=body
        ),
    )
    page.get_by_role("button", name="Next item").click()
    assert expected in alert_text(page)
    assert page.locator("#item").is_hidden()


def test_every_control_is_labelled_and_the_page_fits_a_phone(
    new_page: OpenPage, keys: Keys
) -> None:
    page = new_page(width=390, height=844)
    sign_in(page, keys.agent)
    page.locator("#queue").select_option("service")
    page.get_by_role("button", name="Next item").click()
    page.locator("#item").wait_for(state="visible")

    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input, select, textarea, button')]
             .filter((el) => !el.closest('[hidden]'))
             .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                             && !el.textContent.trim())
             .map((el) => el.id || el.outerHTML)"""
    )
    assert unlabelled == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "console-claimed-390")
    page.get_by_role("button", name="Release").click()
    page.locator("#status").filter(has_text="Released").wait_for()
