"""The web pages for people: `/` (the overview, when the client asks for HTML), `/runs`, `/runs/{run_id}`,
`/report` and `/health`, read-only, from the store, through the read API's handlers (`pages`).

Pages are rendered on the server (Jinja2, autoescaped: text from a record is text, never markup)
with SVG charts (`charts`); a small script only submits the filter form as it changes. Every
response carries a Content-Security-Policy that allows scripts and styles from this origin only.
With read tokens configured, `auth` sends a browser without one to `/login`, which takes a token
and keeps it in an HttpOnly cookie; the token is never in a URL.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.staticfiles import StaticFiles

from .. import __version__, humanize
from . import auth, pages
from .pages import STATUS_SIGNS, STATUS_TONES
from .viewstate import BUCKETS, PRESETS, SHOWN, View, ViewError, canonical, since_value, until_value

STATIC_DIR: Final = Path(str(files("agent_exporter.api").joinpath("static")))
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
DEFAULT_RANGE: Final = "7d"

router = APIRouter(include_in_schema=False)
static = StaticFiles(directory=STATIC_DIR)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The templates, autoescaped, failing loudly on a missing variable."""
    env = Environment(
        loader=PackageLoader("agent_exporter.api", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        count=humanize.count,
        compact=humanize.compact,
        usd=humanize.usd,
        rate=humanize.rate,
        duration=humanize.duration,
        moment=humanize.moment,
        ago=humanize.ago,
        span=humanize.span,
        urlpart=lambda value: quote(str(value), safe=""),
    )
    env.globals.update(
        version=__version__,
        status_tones=STATUS_TONES,
        status_signs=STATUS_SIGNS,
        presets=PRESETS,
        buckets=BUCKETS,
        shown=SHOWN,
        dimension_labels={
            "status": "Status",
            "agent": "Agent",
            "model": "Model",
            "issue_type": "Issue type",
            "project": "Project",
            "team": "Team",
        },
    )
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page, with the security headers."""
    service = getattr(request.app.state, "service", None)
    logged_in = auth.READ_COOKIE in request.cookies
    html = (
        environment()
        .get_template(template)
        .render(
            request_path=request.url.path,
            base_url=str(request.base_url),
            logged_in=logged_in,
            settings=service.settings if service else None,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def wants_html(request: Request) -> bool:
    """Whether the client asks for a page (a browser) rather than JSON (an agent, curl)."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def _view(request: Request, default_from: str | None) -> View | Response:
    query = {k: request.query_params.getlist(k) for k in request.query_params}
    try:
        fixed = canonical(query)
        if fixed is not None:
            target = View.parse(fixed).link(request.url.path)
            return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        return View.parse(query, default_from=default_from)
    except ViewError as exc:
        return render(request, "error.html", 400, title="This view cannot be shown", message=str(exc))


def _page(
    request: Request, template: str, view: View, build: Callable[[Request, View], dict[str, Any]], title: str
) -> HTMLResponse:
    """A page of `view` with the data `build` reads; a store that does not answer is a 503 page."""
    try:
        data = build(request, view)
        options = pages.filter_options(request, view)
    except HTTPException as exc:
        if exc.status_code != 503:
            raise
        return render(request, "error.html", 503, title="The store did not answer", message=str(exc.detail))
    return render(
        request,
        template,
        title=title,
        view=view,
        options=options,
        since=since_value(view),
        until=until_value(view),
        exporter=pages.exporter_strip(request),
        **data,
    )


@router.get("/")
def overview(request: Request) -> Response:
    """The overview for a browser; for an API client, the JSON 404 it has always had."""
    if not wants_html(request):
        raise HTTPException(404, "no route for GET /; the API is described at /openapi.json")
    view = _view(request, DEFAULT_RANGE)
    if not isinstance(view, View):
        return view
    return _page(request, "overview.html", view, pages.overview, "Overview")


@router.get("/runs")
def runs(request: Request) -> Response:
    """The run history table."""
    view = _view(request, None)
    if not isinstance(view, View):
        return view
    return _page(request, "runs.html", view, pages.runs_page, "Runs")


@router.get("/runs/{run_id:path}")
def run(request: Request, run_id: str) -> Response:
    """One run, everything about it."""
    view = _view(request, None)
    if not isinstance(view, View):
        return view
    try:
        data = pages.run_page(request, view, run_id)
    except HTTPException as exc:
        if exc.status_code != 404:
            raise
        return render(request, "error.html", 404, title="No such run", message=str(exc.detail))
    grafana = request.app.state.service.settings.web.grafana_url
    return render(
        request,
        "run.html",
        view=view,
        title=f"Run {run_id}",
        grafana=grafana,
        grafana_dashboard=pages.GRAFANA_RUN_DASHBOARD,
        **data,
    )


@router.get("/report")
def report(request: Request) -> Response:
    """The performance report and the trends."""
    view = _view(request, "30d")
    if not isinstance(view, View):
        return view
    return _page(request, "report.html", view, pages.report_page, "Report")


@router.get("/health")
def health(request: Request) -> Response:
    """The on-call digest."""
    view = _view(request, "24h")
    if not isinstance(view, View):
        return view
    return _page(request, "health.html", view, pages.health_page, "Health")


# --- the read token ------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """A path on this site to go back to (never another site: no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get(auth.LOGIN_PATH)
def login_form(request: Request, next: str | None = None) -> Response:
    """The form that asks for a read token."""
    needed = bool(auth.AccessPolicy.of(request.app.state.service.settings.security).read)
    return render(
        request, "login.html", title="Read token", next=_safe_next(next), needed=needed, failed=False
    )


MAX_FORM_BYTES: Final = 8192


@router.post(auth.LOGIN_PATH)
async def login(request: Request) -> Response:
    """Check the token; a valid one goes into an HttpOnly cookie, and the browser back to its page.

    The form is parsed here (a urlencoded body of two fields) rather than by a multipart library."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"the form is over {MAX_FORM_BYTES} bytes")
    form = parse_qs(body.decode("utf-8", errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    policy = auth.AccessPolicy.of(request.app.state.service.settings.security)
    allowed, _ = policy.allows(auth.Access.READ, f"Bearer {token}")
    if not allowed:
        return render(request, "login.html", 401, title="Read token", next=target, needed=True, failed=True)
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        auth.READ_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/"
    )
    return response


@router.post(auth.LOGOUT_PATH)
def logout() -> Response:
    """Forget the token."""
    response = RedirectResponse(auth.LOGIN_PATH, status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(auth.READ_COOKIE, path="/")
    return response
