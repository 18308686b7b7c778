"""A live Andon server and a real headless Chromium for the browser tests.

The server runs uvicorn in a thread on a free loopback port against its own SQLite database
(the browser suite runs once, not once per database), seeded with the demo source and a
small hostile export. Chromium is Debian's package, driven by Playwright; without it (or
without the playwright package) these tests skip — under CI=true they fail.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.config import Settings
from app.db import make_engine, make_sessionmaker, unit_of_work
from app.learning.service import Classifier
from app.main import create_app
from app.sources import service as sources
from app.sources.runner import run_sync
from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

XSS_IMG = '<img src=x onerror="window.__xss = 1">'
XSS_SCRIPT = "<script>window.__xss = 2</script>"
HOSTILE = [
    {
        "id": "hostile-1",
        "text": f"My refund never arrived {XSS_IMG} {XSS_SCRIPT} please help",
        "title": "<b>bold</b> title",
        "author": {"id": "h1", "handle": "<svg onload=alert(1)>", "display_name": XSS_IMG},
        "channel": "zendesk",
        "thread_id": "thread-hostile",
        "created_at": "2026-01-02T10:00:00Z",
        "url": "javascript:alert(1)",
    },
    {
        "id": "hostile-2",
        "text": "Following up on my refund, still nothing after two weeks",
        "author": {"id": "h1", "handle": "refund-waiter"},
        "channel": "zendesk",
        "thread_id": "thread-hostile",
        "created_at": "2026-01-03T10:00:00Z",
    },
]


@dataclass
class LiveServer:
    url: str
    factory: sessionmaker[Session]
    settings: Settings
    app: Any
    extra: dict[str, Any] = field(default_factory=dict)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, classifier: Classifier, model_dir: Path
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{root / 'andon.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_sessionmaker(engine)

    export = root / "hostile.jsonl"
    export.write_text("".join(json.dumps(record) + "\n" for record in HOSTILE))
    with unit_of_work(factory) as session:
        sources.create(session, name="demo", kind="demo", config={})
        sources.create(session, name="hostile", kind="jsonl", config={"path": str(export)})
    for name in ("demo", "hostile"):
        summary = run_sync(factory, name, classifier)
        assert summary.status == "ok", summary

    settings = Settings(database_url=url, model_dir=model_dir, scheduler=False, demo=False)
    app = create_app(settings, classifier=classifier, start_scheduler=False)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, ws="none", http="h11", lifespan="on"
    )
    server = uvicorn.Server(config)
    sock = _free_socket()
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    assert httpx.get(f"{base}/healthz").status_code == 200
    try:
        yield LiveServer(url=base, factory=factory, settings=settings, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        require(f"browser tests need Debian's chromium at {CHROMIUM} (make system-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("browser tests need the playwright package (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageErrors:
    """Uncaught exceptions and console errors seen by a page; a test ends with none."""

    uncaught: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def new_page(
    browser: Any, live_server: LiveServer, page_errors: PageErrors
) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def open_page(width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            base_url=live_server.url,
            locale="en-GB",
            timezone_id="UTC",
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda error: page_errors.uncaught.append(str(error)))
        page.on("console", lambda message: _console(message, page_errors))
        page.on(
            "dialog", lambda dialog: (page_errors.dialogs.append(dialog.message), dialog.dismiss())
        )
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert page_errors.uncaught == [], "uncaught JavaScript errors"
    assert page_errors.dialogs == [], "a dialog opened (injected script?)"
    assert page_errors.console == [], "console errors"


def _console(message: Any, errors: PageErrors) -> None:
    # A 4xx answer the page handles (a 404 from an optional endpoint, a 409 it explains) is
    # logged by Chromium as "Failed to load resource"; that is not a page error.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.console.append(message.text)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass(frozen=True)
class Keys:
    admin: str
    agent: str
    viewer: str


@pytest.fixture(scope="session")
def keys(live_server: LiveServer) -> Keys:
    """API keys made through the key service, straight into the live server's database."""
    from app.auth.service import create_key

    made: dict[str, str] = {}
    with unit_of_work(live_server.factory) as session:
        for name, role, queues in (
            ("ada-admin", "admin", None),
            ("sam-agent", "agent", ["service", "marketing", "triage"]),
            ("val-viewer", "viewer", None),
        ):
            _key, plain = create_key(session, name=name, role=role, queues=queues, actor="tests")
            made[role] = plain
    return Keys(admin=made["admin"], agent=made["agent"], viewer=made["viewer"])


@pytest.fixture
def admin_api(live_server: LiveServer, keys: Keys) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {keys.admin}"}
    with httpx.Client(base_url=live_server.url, headers=headers) as client:
        yield client
