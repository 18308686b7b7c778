"""The demand dashboard in a real Chromium against a live server with the demo data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import Keys, screenshot

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Any]


def open_dashboard(new_page: OpenPage, key: str | None, query: str = "", **size: int) -> Any:
    page = new_page(**size)
    if key:  # the viewer signed in earlier in this tab: the key is in session storage
        page.add_init_script(f"sessionStorage.setItem('andon.apiKey', {key!r})")
    page.goto(f"/dashboard{query}")
    page.locator("body[data-ready='true'][data-loading='false']").wait_for()
    return page


def kpi(page: Any, name: str) -> str:
    text: str = page.locator(f"#kpi-{name}").inner_text()
    return text


def test_dashboard_renders_the_demand_signal(new_page: OpenPage, keys: Keys) -> None:
    page = open_dashboard(new_page, keys.viewer)

    assert page.locator("#alert").is_hidden(), page.locator("#alert").inner_text()
    assert int(kpi(page, "count").replace(",", "")) >= 300
    assert kpi(page, "negative").endswith("%")
    volume = page.locator("#volume-chart svg[role='img']")
    assert "Items per day and queue" in volume.get_attribute("aria-label")
    days = page.locator("#volume-chart g.column").count()
    assert 25 <= days <= 31, "thirty days of demo data, one column per day"
    drawn = set(
        page.locator("#volume-chart rect.mark").evaluate_all("els => els.map(e => e.dataset.key)")
    )
    assert drawn >= {"product", "marketing", "sales", "service"}
    assert page.locator("#volume-legend li").count() == 5
    assert page.locator("#volume-table tbody tr").count() == days

    assert page.locator("#mix-chart g.row").count() >= 4
    for tone in ("s-negative", "s-neutral", "s-positive"):
        assert page.locator(f"#mix-chart rect.{tone}").count() >= 1
    demand = page.locator("#demand-chart g.row").evaluate_all("els => els.map(e => e.dataset.name)")
    assert set(demand) >= {"product", "marketing", "sales", "service"}

    # Spikes, themes and ideas: a list, an explicit empty state, or an explicit "not available".
    for panel in ("spikes", "themes", "ideas"):
        node = page.locator(f"#{panel}")
        assert node.locator("ol > li, [data-state]").count() >= 1, f"{panel} panel shows nothing"
    screenshot(page, "dashboard-1280")


def test_filters_narrow_the_charts_and_live_in_the_address(new_page: OpenPage, keys: Keys) -> None:
    page = open_dashboard(new_page, keys.viewer)
    everything = int(kpi(page, "count").replace(",", ""))

    page.get_by_label("triage").uncheck()
    page.get_by_label("marketing").uncheck()
    page.locator("body[data-loading='false']").wait_for()
    page.wait_for_function("!document.querySelector('#volume-chart rect.q-marketing')")
    assert page.locator("#volume-chart rect.q-triage").count() == 0
    assert "queue=product" in page.url
    assert "queue=marketing" not in page.url

    channels = page.locator("#channel option").all_inner_texts()
    assert {"twitter", "zendesk"} <= set(channels)
    page.get_by_label("Channel").select_option("zendesk")
    page.wait_for_function("location.search.includes('channel=zendesk')")
    page.locator("body[data-loading='false']").wait_for()
    page.wait_for_function(
        f"Number(document.querySelector('#kpi-count').textContent.replace(/,/g, '')) < {everything}"
    )

    page.get_by_label("Time range").select_option("24h")
    page.wait_for_function("location.search.includes('range=24h')")
    page.locator(
        "#volume-chart svg[aria-label*='per hour'], #volume-chart [data-state='empty']"
    ).wait_for()

    # The address is the state: reloading it gives the same view.
    page.reload()
    page.locator("body[data-ready='true'][data-loading='false']").wait_for()
    assert page.get_by_label("Channel").input_value() == "zendesk"
    assert page.get_by_label("Time range").input_value() == "24h"
    assert not page.get_by_label("marketing").is_checked()


def test_dashboard_on_a_phone_and_with_the_keyboard(new_page: OpenPage, keys: Keys) -> None:
    page = open_dashboard(new_page, keys.viewer, width=390, height=844)

    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    width = page.locator("#volume-chart svg").evaluate("svg => svg.getBoundingClientRect().width")
    assert width <= 390
    screenshot(page, "dashboard-390")

    # Keyboard only: Tab reaches the range filter, arrows change it.
    page.locator("body").press("Tab")  # the skip link
    for _ in range(12):
        if page.evaluate("document.activeElement.id") == "range":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "range"
    page.keyboard.press("ArrowDown")
    page.wait_for_function("location.search.includes('range=90d')")


def test_dashboard_asks_for_a_key_when_the_api_wants_one(new_page: OpenPage, keys: Keys) -> None:
    page = new_page()
    page.goto("/dashboard")
    signin = page.locator("#signin")
    page.locator("body[data-ready='true'], #signin:visible").first.wait_for()
    if signin.is_visible():  # reads need a key on this server (ANDON_PUBLIC_READ is off)
        page.get_by_label("API key").fill(keys.viewer)
        page.get_by_label("API key").press("Enter")
    page.locator("body[data-ready='true'][data-loading='false']").wait_for()
    assert page.locator("#volume-chart rect.mark").count() > 0
