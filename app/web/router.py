"""Serve the console and dashboard pages and their static assets (vanilla JS/CSS, no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app import __version__

HERE = Path(__file__).parent
STATIC_PATH = "/static"

# Item text is untrusted. The pages render it with textContent; this policy is the second
# wall: no inline script, no third-party origin, nothing framed.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(tags=["web"], include_in_schema=False)


def _page(request: Request, template: str, title: str) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"title": title, "version": __version__, "static": STATIC_PATH},
    )
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/console", response_class=HTMLResponse)
def console(request: Request) -> HTMLResponse:
    return _page(request, "console.html", "Agent console")


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    return _page(request, "dashboard.html", "Demand dashboard")


def install_web(app: FastAPI) -> None:
    """Add the pages and mount the static assets on ``app``."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="static")
