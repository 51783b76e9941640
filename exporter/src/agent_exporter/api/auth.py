"""Access control: bearer tokens for ingest and for the read API, basic auth for /metrics, CORS.

Everything is off by default (the server binds to 127.0.0.1, where the machine is the boundary).
Each kind of credential is switched on by configuring at least one token (or user), and takes
several, so that one can be rotated: add the new token, roll the clients over, remove the old one.

Requests are judged by path and method, before routing, so that routes added later are covered
without a line of their own:

- `/healthz`, `/readyz`, `/openapi.json` and `/docs` are always open (probes and the contract);
- `/metrics` needs basic auth when `metrics_users` are configured (Prometheus' `basic_auth`);
- `/login`, `/logout` and `/static/` (the web pages' token form and their stylesheet) are open;
- any other GET or HEAD needs a read token when `read_tokens` are configured, sent as a bearer
  token or, from a browser, in the HttpOnly cookie `/login` sets; a browser asking for a page
  without one is sent to `/login`;
- any other method (POST under `/api/v1`: ingest, reprice) needs an ingest token when
  `ingest_tokens` are configured.

Credentials are compared in constant time (`hmac.compare_digest` on SHA-256 digests, against every
configured token, so neither the position nor the length of a match shows in the timing) and are
never logged: a refusal is logged with the method, path, client address and the reason only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final
from urllib.parse import urlencode

import orjson

from ..config import SecuritySettings
from .http import error_body

log = logging.getLogger(__name__)

#: paths that stay open whatever is configured: probes, and the API's contract
OPEN_PATHS: Final = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
METRICS_PATH: Final = "/metrics"
LOGIN_PATH: Final = "/login"
LOGOUT_PATH: Final = "/logout"
STATIC_PREFIX: Final = "/static/"
#: the cookie the web pages keep a read token in (HttpOnly: no script can read it)
READ_COOKIE: Final = "agent_exporter_read"
READ_METHODS: Final = frozenset({"GET", "HEAD"})
REALM: Final = "agent-exporter"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _digest(secret: str | bytes) -> bytes:
    # Comparing fixed-length digests keeps a token's length out of the timing.
    return hashlib.sha256(secret.encode() if isinstance(secret, str) else secret).digest()


class Access(Enum):
    """What a request needs."""

    OPEN = "open"
    INGEST = "ingest"
    READ = "read"
    METRICS = "metrics"


@dataclass(frozen=True)
class AccessPolicy:
    """Digests of the accepted credentials; an empty set leaves that kind of access open."""

    ingest: tuple[bytes, ...] = ()
    read: tuple[bytes, ...] = ()
    metrics: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(cls, settings: SecuritySettings) -> AccessPolicy:
        """The policy the settings configure (their token and user files are read now)."""
        ingest, read, users = settings.credentials()
        return cls(
            ingest=tuple(_digest(t) for t in ingest),
            read=tuple(_digest(t) for t in read),
            metrics=tuple((_digest(u), _digest(p)) for u, p in users.items()),
        )

    def needs(self, method: str, path: str) -> Access:
        """What a request for `path` with `method` needs under this policy."""
        if path in OPEN_PATHS or path in {LOGIN_PATH, LOGOUT_PATH} or path.startswith(STATIC_PREFIX):
            return Access.OPEN
        if path == METRICS_PATH:
            return Access.METRICS if self.metrics else Access.OPEN
        if method in READ_METHODS:
            return Access.READ if self.read else Access.OPEN
        return Access.INGEST if self.ingest else Access.OPEN

    def allows(self, access: Access, authorization: str | None) -> tuple[bool, str]:
        """Whether the Authorization header grants `access`, and if not, why (never echoing it)."""
        if access is Access.OPEN:
            return True, ""
        scheme = "Basic" if access is Access.METRICS else "Bearer"
        if not authorization:
            return False, f"missing credentials: send Authorization: {scheme} ..."
        given_scheme, _, credentials = authorization.strip().partition(" ")
        if given_scheme.lower() != scheme.lower() or not credentials.strip():
            return False, f"the Authorization header must use the {scheme} scheme"
        credentials = credentials.strip()
        if access is Access.METRICS:
            if _match_basic(self.metrics, credentials):
                return True, ""
            return False, "wrong user or password"
        tokens = self.ingest if access is Access.INGEST else self.read
        if _match_any(tokens, _digest(credentials)):
            return True, ""
        return False, f"the token is not valid for {access.value}"


def _match_any(digests: Iterable[bytes], given: bytes) -> bool:
    found = False
    for digest in digests:  # no early exit: every token is compared every time
        found |= hmac.compare_digest(digest, given)
    return found


def _match_basic(users: Sequence[tuple[bytes, bytes]], credentials: str) -> bool:
    try:
        decoded = base64.b64decode(credentials, validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    if not sep:
        return False
    user_digest, password_digest = _digest(user), _digest(password)
    found = False
    for known_user, known_password in users:
        user_ok = hmac.compare_digest(known_user, user_digest)
        password_ok = hmac.compare_digest(known_password, password_digest)
        found |= user_ok & password_ok
    return found


class AccessControlMiddleware:
    """Refuses, with 401 and a JSON error, requests that lack the credentials their path needs."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access = self.policy.needs(scope["method"], scope["path"])
        if access is Access.OPEN:
            await self.app(scope, receive, send)
            return
        authorization = cookie = None
        html = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"cookie":
                cookie = _cookie(value.decode("latin-1"), READ_COOKIE)
            elif name == b"accept":
                html = b"text/html" in value
        if authorization is None and cookie is not None and access is Access.READ:
            authorization = f"Bearer {cookie}"
        allowed, reason = self.policy.allows(access, authorization)
        if allowed:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        log.info(
            "refused %s %s from %s: %s",
            scope["method"],
            scope["path"],
            client[0] if client else "unknown",
            reason,
        )
        if html and access is Access.READ and not scope["path"].startswith("/api/"):
            await _to_login(send, scope)
            return
        await _unauthorized(send, access, reason, given=authorization is not None)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name and value:
            return value
    return None


async def _to_login(send: Send, scope: Scope) -> None:
    """Send a browser to the token form, to come back to the page it asked for."""
    target = scope["path"] + (
        ("?" + scope["query_string"].decode("latin-1")) if scope["query_string"] else ""
    )
    location = LOGIN_PATH + "?" + urlencode({"next": target})
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _unauthorized(send: Send, access: Access, reason: str, *, given: bool) -> None:
    if access is Access.METRICS:
        challenge = f'Basic realm="{REALM}", charset="UTF-8"'
    else:
        challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if given else "")
    body = orjson.dumps(error_body("unauthorized", f"{access.value} needs credentials: {reason}"))
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def document(schema: dict[str, Any], policy: AccessPolicy) -> dict[str, Any]:
    """Add the security schemes the policy enforces, and their 401, to an OpenAPI document."""
    schemes: dict[str, Any] = {}
    if policy.ingest:
        schemes["ingestToken"] = {"type": "http", "scheme": "bearer", "description": "an ingest token"}
    if policy.read:
        schemes["readToken"] = {"type": "http", "scheme": "bearer", "description": "a read token"}
    if policy.metrics:
        schemes["metricsBasic"] = {"type": "http", "scheme": "basic", "description": "a /metrics user"}
    if not schemes:
        return schema
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(schemes)
    names = {Access.INGEST: "ingestToken", Access.READ: "readToken", Access.METRICS: "metricsBasic"}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            access = policy.needs(method.upper(), path)
            if access is Access.OPEN:
                continue
            operation["security"] = [{names[access]: []}]
            operation.setdefault("responses", {})["401"] = {
                "description": "missing or wrong credentials",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
    return schema


def install(app: Any, settings: SecuritySettings) -> None:
    """Put access control and (when origins are configured) CORS in front of the app's routes.

    Access control goes innermost, so the HTTP metrics time refusals too; CORS goes outermost, so
    that browsers get preflight answers and can read a 401.
    """
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware

    policy = AccessPolicy.of(settings)
    if policy.ingest or policy.read or policy.metrics:
        app.user_middleware.append(Middleware(AccessControlMiddleware, policy=policy))
        log.info(
            "access control: %d ingest token(s), %d read token(s), %d /metrics user(s)",
            len(policy.ingest),
            len(policy.read),
            len(policy.metrics),
        )
    if settings.cors_allow_origins:
        app.user_middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allow_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            ),
        )
    unsecured = app.openapi
    app.openapi = lambda: document(unsecured(), policy)
