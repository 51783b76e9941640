"""Configuration: defaults that run, a YAML file, `AGENT_EXPORTER_*` environment variables, CLI flags.

Later sources win: CLI flags over the environment over the file over the defaults. Nested keys
use `__` in the environment (`AGENT_EXPORTER_LIMITS__MAX_BATCH_RECORDS=500`). Everything is validated
once, at start-up; an unknown key or a bad value stops the process with a message naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from . import DEFAULT_PORT
from .budgets import BudgetFileError, OwnerBudget
from .budgets import load as load_budgets
from .metrics import DROPPABLE, PROMOTABLE, LabelConfig
from .scoring import ScoringSettings

ENV_PREFIX = "AGENT_EXPORTER_"
MIN_TOKEN_LENGTH: Final = 16
# RFC 6750 token68 characters: what fits in `Authorization: Bearer ...` without quoting
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = frozenset(
    {
        "agent",
        "model",
        "issue_type",
        "status",
        "token_type",
        "cost_source",
        "tool",
        "phase",
        "job",
        "instance",
        "le",
    }
)


def _check_token(token: str, where: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{where}: a token must be at least {MIN_TOKEN_LENGTH} characters")
    if not _TOKEN.match(token):
        raise ValueError(f"{where}: a token may hold letters, digits and -._~+/ (and = at the end) only")
    return token


def read_token_file(path: Path) -> list[str]:
    """The tokens in `path`: one a line; blank lines and lines starting with # are ignored."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read token file {path}: {exc.strerror}") from exc
    tokens = [line.strip() for line in text.splitlines()]
    tokens = [t for t in tokens if t and not t.startswith("#")]
    if not tokens:
        raise ValueError(f"token file {path} holds no token")
    return [_check_token(t, f"{path} line {i}") for i, t in enumerate(tokens, 1)]


def read_users_file(path: Path) -> dict[str, str]:
    """The `user:password` lines of `path` (blank lines and # comments ignored)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read users file {path}: {exc.strerror}") from exc
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"{path} line {number}: expected user:password")
        users[user] = password
    if not users:
        raise ValueError(f"users file {path} holds no user")
    return users


class Credentials(NamedTuple):
    """Who may do what, in plain text: `api.auth.AccessPolicy` keeps their digests only."""

    ingest: tuple[str, ...]
    read: tuple[str, ...]
    metrics: dict[str, str]


class SecuritySettings(BaseModel):
    """Who may write runs, read them and scrape /metrics, and which web origins may call the API."""

    model_config = ConfigDict(extra="forbid")

    ingest_tokens: list[SecretStr] = Field(
        default_factory=list, description="bearer tokens for POST (ingest); none: ingest is open"
    )
    ingest_token_file: Path | None = Field(default=None, description="a file of ingest tokens, one a line")
    read_tokens: list[SecretStr] = Field(
        default_factory=list, description="bearer tokens for GET under /api; none: reading is open"
    )
    read_token_file: Path | None = Field(default=None, description="a file of read tokens, one a line")
    metrics_users: dict[str, SecretStr] = Field(
        default_factory=dict, description="basic-auth users of /metrics (user: password); none: open"
    )
    metrics_users_file: Path | None = Field(default=None, description="a file of user:password lines")
    cors_allow_origins: list[str] = Field(
        default_factory=list, description="web origins allowed to call the API from a browser; none: CORS off"
    )

    @field_validator("ingest_tokens", "read_tokens")
    @classmethod
    def _tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for token in value:
            _check_token(token.get_secret_value(), "tokens")
        return value

    @field_validator("metrics_users")
    @classmethod
    def _users(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for user, password in value.items():
            if not user or ":" in user or not password.get_secret_value():
                raise ValueError("users need a name without ':' and a non-empty password")
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
                raise ValueError(f"{origin!r}: an origin is scheme://host[:port] with no path, or *")
        return value

    @model_validator(mode="after")
    def _files_readable(self) -> SecuritySettings:
        self.credentials()  # reads the files now, so that a missing one stops the start with its name
        return self

    def credentials(self) -> Credentials:
        """The tokens and users from the settings and the files (read now), in plain text."""
        ingest = [t.get_secret_value() for t in self.ingest_tokens]
        read = [t.get_secret_value() for t in self.read_tokens]
        users = {u: p.get_secret_value() for u, p in self.metrics_users.items()}
        if self.ingest_token_file is not None:
            ingest += read_token_file(self.ingest_token_file)
        if self.read_token_file is not None:
            read += read_token_file(self.read_token_file)
        if self.metrics_users_file is not None:
            users.update(read_users_file(self.metrics_users_file))
        return Credentials(tuple(ingest), tuple(read), users)


class LimitSettings(BaseModel):
    """Bounds on what one request may carry."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    max_batch_records: int = Field(default=1000, ge=1, le=100_000)
    max_future_skew_seconds: float = Field(default=300.0, ge=0, le=86_400)


class MetricSettings(BaseModel):
    """Which labels the agent metrics carry, and their caps."""

    model_config = ConfigDict(extra="forbid")

    extra_labels: list[str] = Field(
        default_factory=list,
        description="run fields (project, team, environment, provider, agent_version) or labels.<key>",
    )
    drop_labels: list[str] = Field(default_factory=list, description="model and/or issue_type")
    label_limits: dict[str, int] = Field(
        default_factory=lambda: {"agent": 50, "model": 30, "issue_type": 30, "tool": 100, "phase": 30}
    )
    default_label_limit: int = Field(default=50, ge=1, le=100_000)

    @field_validator("extra_labels")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        names = set()
        for source in value:
            name = source.removeprefix("labels.")
            if source not in PROMOTABLE and not source.startswith("labels."):
                raise ValueError(
                    f"{source!r}: extra labels are {', '.join(sorted(PROMOTABLE))} or labels.<key>"
                )
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ValueError(f"{source!r}: {name!r} is not a valid Prometheus label name")
            if name in _RESERVED_LABELS or name in names:
                raise ValueError(f"{source!r}: label {name!r} is already used")
            names.add(name)
        return value

    @field_validator("drop_labels")
    @classmethod
    def _drop(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in DROPPABLE:
                raise ValueError(f"{name!r}: only {', '.join(sorted(DROPPABLE))} can be dropped")
        return value

    @field_validator("label_limits")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        for name, limit in value.items():
            if limit < 1:
                raise ValueError(f"label_limits.{name}: must be at least 1")
        return value

    def label_config(self) -> LabelConfig:
        """The metrics module's view of these settings."""
        return LabelConfig(
            extra=tuple(self.extra_labels),
            drop=tuple(self.drop_labels),
            limits=dict(self.label_limits),
            default_limit=self.default_label_limit,
        )


class WebSettings(BaseModel):
    """The web pages (`/`, `/runs`, ...): where their links lead."""

    model_config = ConfigDict(extra="forbid")

    grafana_url: str | None = Field(
        default=None,
        description="Grafana's base URL (https://grafana.example.com): a run's page links to its run "
        "dashboard there; none: no link",
    )

    @field_validator("grafana_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"{value!r}: give an http(s) URL such as https://grafana.example.com")
        return value.rstrip("/") if value else value


class OtlpSettings(BaseModel):
    """OTLP traces in (`POST /v1/traces`): how long a trace's spans wait, and bounds on them."""

    model_config = ConfigDict(extra="forbid")

    grace_seconds: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="after a trace's root span arrived, wait this long for its other spans before "
        "writing its runs",
    )
    pending_timeout_seconds: float = Field(
        default=600.0,
        ge=1,
        le=7 * 86400,
        description="a trace whose root span never arrives is assembled from what came this long after "
        "its first span",
    )
    max_pending_spans: int = Field(
        default=200_000, ge=100, le=100_000_000, description="spans held at most; more are dropped"
    )


class Settings(BaseSettings):
    """Everything the service reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", yaml_file=None
    )

    host: str = Field(default="127.0.0.1", description="address to bind; 127.0.0.1 unless told otherwise")
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    database_url: str = Field(
        default="sqlite:///agent-exporter.db",
        description="sqlite:///path/to/file.db (WAL) or postgresql://user@host/db",
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        default="FULL", description="FULL: a 2xx means the record survived a power cut"
    )
    price_file: Path | None = Field(default=None, description="YAML price overrides (see pricing.py)")
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="delete runs that ended more than this many whole UTC days ago; rollups keep the history",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    limits: LimitSettings = Field(default_factory=LimitSettings)
    metrics: MetricSettings = Field(default_factory=MetricSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    web: WebSettings = Field(default_factory=WebSettings)
    otlp: OtlpSettings = Field(default_factory=OtlpSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    budgets_file: Path | None = Field(
        default=None,
        description="alerts/config.yaml: its cost.owner_budgets are GET /api/v1/budget's budgets",
    )
    _budgets: list[OwnerBudget] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _price_file_exists(self) -> Settings:
        if self.price_file is not None and not self.price_file.is_file():
            raise ValueError(f"price_file {self.price_file} does not exist")
        return self

    @model_validator(mode="after")
    def _budgets_load(self) -> Settings:
        if self.budgets_file is not None:
            try:
                self._budgets = load_budgets(self.budgets_file)
            except BudgetFileError as exc:
                raise ValueError(str(exc)) from exc
        return self

    @property
    def owner_budgets(self) -> list[OwnerBudget]:
        """The budgets of `budgets_file` (validated at start-up), none without one."""
        return list(self._budgets)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """CLI flags (init), then the environment, then the YAML file."""
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls)


class ConfigError(ValueError):
    """The configuration does not validate; the message names every offending key."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `config_file` (YAML), the environment and `overrides` (CLI flags; None is unset)."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(yaml_file=config_file)

    try:
        return _FromFile(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        source = f" ({config_file})" if config_file else ""
        raise ConfigError("invalid configuration" + source + ":\n" + "\n".join(lines)) from exc
