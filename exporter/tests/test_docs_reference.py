"""The reference (docs/metrics.md, docs/configuration.md, docs/record.md, docs/cost.md,
docs/scaling.md) against the code: the metrics catalogue is what a real exporter exposes, the
configuration reference is the service's settings, and the rule names, environment variables and YAML
examples it gives are the ones the code reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from starlette.routing import Mount
from typer.main import get_command

from agent_exporter.api.app import create_app
from agent_exporter.api.auth import AccessPolicy
from agent_exporter.cli import app
from agent_exporter.client import ClientSettings
from agent_exporter.config import Settings, load_settings
from agent_exporter.pricing import PriceBook
from agent_exporter.record import RULES

from .doc_examples import DOCS, block_of, code_spans, prose_lines, table
from .support import REPO, make_client, record, unavailable

RECORD = "docs/record.md"
METRICS = "docs/metrics.md"
CONFIGURATION = "docs/configuration.md"
PRICES = block_of("docs/cost.md", "models:", lang="yaml")
CONFIG = block_of(CONFIGURATION, "# agent-exporter.yaml", lang="yaml")
REMOTE_WRITE = block_of("docs/scaling.md", "remote_write:", lang="yaml")
#: the variables the client SDK, the CLI and `--config` read (the service's own are its settings)
CLIENT_AND_CLI_VARIABLES = {
    "AGENT_EXPORTER_URL",
    "AGENT_EXPORTER_TOKEN",
    "AGENT_EXPORTER_SPOOL",
    "AGENT_EXPORTER_CONFIG",
}


# -- the metrics catalogue -------------------------------------------------------------------------


def documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, label names) from docs/metrics.md's catalogue."""
    rows = table(METRICS, ["metric", "type", "labels", "meaning"])
    out = {}
    for name, kind, labels, _ in rows:
        [metric] = code_spans(name)
        out[metric] = (kind, frozenset(label.strip() for label in labels.split(",") if label.strip()))
    return out


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, label names) of every agent_ and agent_exporter_ family a real exporter serves
    on /metrics, after runs that touch every family: a complete priced run (with the seeds' pipeline
    attempts, debugging cycles and sub-agents, and a score), an unpriced one and a rejected record."""
    db = tmp_path_factory.mktemp("catalogue") / "app.db"
    complete = record(
        "complete",
        ended_at="2026-01-01T00:00:00Z",
        input_tokens=1000,
        cache_read_tokens=100,
        cache_write_tokens=50,
        output_tokens=200,
        reasoning_tokens=20,
        llm_calls=3,
        tools=[{"name": "bash", "calls": 2, "errors": 1}],
        phases=[{"name": "test", "duration_seconds": 1.5}],
        pipeline_attempts=[{"status": "success"}],
        debugging_cycles=[{"resolved": True}],
        subagents=[{"name": "testing", "retries": 1}],
    )
    unpriced = record("unpriced", model="nobody-prices-this-model", input_tokens=10, output_tokens=1)
    with make_client(f"sqlite:///{db}", CollectorRegistry()) as client:
        assert (
            client.post("/api/v1/runs", json={"runs": [complete, unpriced, {"run_id": "x"}]}).json()[
                "accepted"
            ]
            == 2
        )
        score = {"name": "quality", "value": 0.5, "source": "review"}
        assert client.post("/api/v1/runs/complete/scores", json=score).status_code == 201
        text = client.get("/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("agent_"):
            continue
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = {label for sample in family.samples for label in sample.labels} - {"le"}
        out[name] = (family.type, frozenset(labels))
    return out


def test_every_documented_metric_is_exposed_with_its_type_and_labels(
    exposed: dict[str, tuple[str, frozenset[str]]],
) -> None:
    documented = documented_metrics()
    wrong = {
        name: (spec, exposed.get(name)) for name, spec in documented.items() if exposed.get(name) != spec
    }
    assert wrong == {}


def test_every_exposed_metric_is_in_the_catalogue(exposed: dict[str, tuple[str, frozenset[str]]]) -> None:
    assert sorted(set(exposed) - set(documented_metrics())) == []


def test_the_documented_rule_names_are_the_validations_rules() -> None:
    # "The rules: `required`, `enum`, ... The same names label agent_exporter_records_rejected_total"
    text = " ".join(line for _, line in prose_lines(RECORD))
    paragraph = re.search(r"The rules: (.*?)The same names label", text)
    assert paragraph is not None
    documented = {span for span in code_spans(paragraph[1]) if re.fullmatch(r"[a-z0-9_]+", span)}
    assert documented == set(RULES)


# -- the configuration reference -------------------------------------------------------------------


def settings_keys(model: type[BaseModel] = Settings, prefix: str = "") -> dict[str, Any]:
    """Every leaf key of the settings (`limits.max_body_bytes`, ...) with its default."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.update(settings_keys(annotation, f"{prefix}{name}."))
        else:
            out[prefix + name] = info.get_default(call_default_factory=True)
    return out


def configuration_rows() -> list[tuple[list[str], list[str], str]]:
    """(keys, CLI flags, default) of each row of docs/configuration.md's reference."""
    rows = []
    for key_cell, default, _ in table(CONFIGURATION, ["key", "default", ""]):
        spans = code_spans(key_cell)
        rows.append(
            ([s for s in spans if not s.startswith("--")], [s for s in spans if s.startswith("--")], default)
        )
    return rows


def test_the_configuration_reference_lists_exactly_the_settings() -> None:
    documented = [key for keys, _, _ in configuration_rows() for key in keys]
    assert sorted(documented) == sorted(settings_keys())


def _documented_default(cell: str) -> Any:
    """The value a cell of the reference's default column means."""
    if cell.startswith("none"):
        return None
    if (size := re.fullmatch(r"(\d+) MiB", cell)) is not None:
        return int(size[1]) * 1024 * 1024
    if (pairs := re.findall(r"(\w+) (\d+)", cell)) and "`" not in cell:
        return {name: int(value) for name, value in pairs}
    [value] = code_spans(cell) or [cell]
    return yaml.safe_load(value)


def test_the_configuration_reference_gives_each_keys_default() -> None:
    defaults = settings_keys()
    wrong = {}
    for keys, _, cell in configuration_rows():
        expected = _documented_default(cell)
        for key in keys:
            actual = defaults[key]
            if expected is None and actual in (None, [], {}):
                continue
            if actual != expected:
                wrong[key] = (cell, actual)
    assert wrong == {}


def test_the_documented_flags_are_options_of_serve() -> None:
    serve = get_command(app).commands["serve"]  # type: ignore[attr-defined]
    options = {opt for param in serve.params for opt in param.opts}
    flags = {flag for _, row_flags, _ in configuration_rows() for flag in row_flags}
    assert flags == {"--host", "--port", "--database-url", "--log-level"}
    assert flags <= options


def test_every_environment_variable_the_docs_name_is_read() -> None:
    keys = settings_keys()
    source = "".join(p.read_text() for p in (REPO / "exporter/src/agent_exporter").rglob("*.py"))
    named = {v for doc in DOCS for v in re.findall(r"AGENT_EXPORTER_[A-Z_]+", (REPO / doc).read_text())}
    unread = set()
    for variable in named:
        if variable in CLIENT_AND_CLI_VARIABLES:
            if f'"{variable}"' not in source:
                unread.add(variable)
        elif variable.removeprefix("AGENT_EXPORTER_").lower().replace("__", ".") not in keys:
            unread.add(variable)
    assert sorted(unread) == []


def test_the_nested_environment_variable_example_sets_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # "nested keys with `__`: `AGENT_EXPORTER_LIMITS__MAX_BATCH_RECORDS=500`"
    [example] = [
        s
        for _, line in prose_lines(CONFIGURATION)
        for s in code_spans(line)
        if s.startswith("AGENT_EXPORTER_LIMITS")
    ]
    name, value = example.split("=")
    monkeypatch.setenv(name, value)
    assert load_settings().limits.max_batch_records == 500


# -- the YAML examples -----------------------------------------------------------------------------


def test_the_configuration_example_loads_with_every_key_it_sets(tmp_path: Path) -> None:
    # the example's files, made real: the price file is docs/cost.md's own example
    files = {
        "/etc/agent-exporter/prices.yaml": PRICES.text,
        "/run/secrets/ingest-tokens": "# ingest\n" + "i" * 32 + "\n",
        "/run/secrets/read-tokens": "r" * 32 + "\n",
    }
    text = CONFIG.text
    for i, (path, content) in enumerate(files.items()):
        local = tmp_path / f"file-{i}"
        local.write_text(content)
        assert path in text, path
        text = text.replace(path, str(local))
    config = tmp_path / "agent-exporter.yaml"
    config.write_text(text)
    settings = load_settings(config)
    assert settings.database_url == "postgresql://agents@db.internal/agents"
    assert (settings.metrics.extra_labels, settings.metrics.drop_labels) == (["team"], ["issue_type"])
    policy = AccessPolicy.of(settings.security)
    assert (len(policy.ingest), len(policy.read), len(policy.metrics)) == (1, 1, 0)
    assert PriceBook.from_file(settings.price_file).lookup("internal-coder-v2", None) is not None


def test_the_price_file_example_prices_as_its_comments_say(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES.text)
    book = PriceBook.from_file(path)
    # an exact name, case-insensitive; cache reads at their own price
    cost = book.estimate(
        "Internal-Coder-V2", None, input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=200_000
    )
    assert cost == pytest.approx(0.8 * 0.50 + 0.2 * 0.05 + 0.1 * 1.50)
    # a pattern, for runs reporting its provider only; cache reads at the input price when absent
    pattern = book.estimate(
        "claude-sonnet-4-5-20250929",
        "anthropic",
        input_tokens=1_000_000,
        output_tokens=0,
        cache_read_tokens=500_000,
    )
    assert pattern == pytest.approx(2.70)
    elsewhere = book.estimate(
        "claude-sonnet-4-5-20250929", "bedrock", input_tokens=1_000_000, output_tokens=0
    )
    assert elsewhere != pytest.approx(2.70)


@pytest.mark.prometheus
def test_the_remote_write_example_is_valid_prometheus_configuration(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        unavailable("promtool is not installed (apt-get install prometheus)")
    config = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
    config.update(yaml.safe_load(REMOTE_WRITE.text))
    config["rule_files"] = []  # this checks the remote_write section, not the rule files' paths
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    checked = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert config["remote_write"] == [
        {"url": "http://mimir.internal:8080/api/v1/push", "send_exemplars": True}
    ]


# -- the client SDK's tuning -----------------------------------------------------------------------


def test_the_client_tuning_table_gives_each_knobs_default() -> None:
    defaults = ClientSettings._field_defaults
    documented: dict[str, float] = {}
    for names, values, _ in table("docs/sdk.md", ["argument", "default", ""]):
        for name, value in zip(code_spans(names), values.split(", "), strict=True):
            documented[name] = float(value)
    assert documented == {name: float(value) for name, value in defaults.items()}


# -- the routes ------------------------------------------------------------------------------------

#: routes of the app that docs/api.md leaves out, as it says
UNLISTED_ROUTES = {("GET", "/docs/oauth2-redirect")}


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the app, HEAD aside, path parameters without converters."""
    out: set[tuple[str, str]] = set()

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, Mount):
                continue  # the web pages' static files
            inner = getattr(route, "routes", None) or getattr(
                getattr(route, "original_router", None), "routes", None
            )
            if inner is not None and not hasattr(route, "path"):
                walk(inner)  # an included router
                continue
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            out.update((method, path) for method in route.methods - {"HEAD"})

    walk(create_app(Settings()).routes)
    return out


def documented_routes() -> set[tuple[str, str]]:
    """(method, path) of docs/api.md's table: `GET /api/v1/summary`, `/timeseries` is two routes,
    the second relative to the first one's directory; a lone method applies to the path after it."""
    out: set[tuple[str, str]] = set()
    for cell, _, _ in table("docs/api.md", ["route", "what", "more"]):
        methods: list[str] = []
        base = "/"
        for span in code_spans(cell):
            method, _, path = span.rpartition(" ") if " " in span else ("", "", span)
            if not path.startswith("/"):
                methods.append(path)  # `POST`, then `GET /path`
                continue
            if method:
                methods.append(method)
                base = path.rsplit("/", 1)[0] + "/"
            elif not path.startswith(("/api/", "/v1/")):
                path = base + path.lstrip("/")
            out.update((m, path) for m in methods)
    return out


def test_the_route_table_lists_every_route_of_the_app() -> None:
    assert documented_routes() == app_routes() - UNLISTED_ROUTES
