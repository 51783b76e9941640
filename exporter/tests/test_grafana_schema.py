"""Every dashboard type-checked against Grafana's published schema, oldest and newest supported Grafana.

Grafana publishes its dashboard and panel types as the npm package @grafana/schema, one version per
Grafana release. grafana/schema-check/package.json pins the two this repository supports (11.6,
the oldest, and the version docker-compose.yml runs) and TypeScript; `npm ci` there installs them
(.ci/run does). This test writes each dashboard as a TypeScript object literal typed as the
schema's `Dashboard`, and each panel's `options` and `fieldConfig.defaults.custom` as that panel
plugin's `Options` and `FieldConfig`, then runs `tsc` once per version. Object literals get
TypeScript's excess-property check, so an option a version does not know (`options.footer` of a
table in 12.x) is an error, as is a wrong type or value (`"stacking": "yes"`).

What it does not check: the queries (`targets`) beyond the common DataQuery fields (refId,
datasource): @grafana/schema publishes no Prometheus or PostgreSQL query type. test_grafana_sql.py
runs every SQL query; test_stack_live.py runs every PromQL one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from agent_exporter.mixin.generate import DASHBOARDS

from .support import REPO, unavailable

CHECK: Final = REPO / "grafana" / "schema-check"
#: panel type -> the plugin's types module (under dist/esm/raw/composable/) and whether it has custom
PLUGINS: Final = {
    "timeseries": ("timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen", True),
    "stat": ("stat/panelcfg/x/StatPanelCfg_types.gen", False),
    "gauge": ("gauge/panelcfg/x/GaugePanelCfg_types.gen", False),
    "table": ("table/panelcfg/x/TablePanelCfg_types.gen", True),
    "barchart": ("barchart/panelcfg/x/BarChartPanelCfg_types.gen", True),
}
VERSIONS: Final = ("oldest", "newest")


def _package(version: str) -> Path:
    return CHECK / "node_modules" / f"grafana-schema-{version}"


def _tsc() -> list[str]:
    node = shutil.which("node")
    tsc = CHECK / "node_modules" / "typescript" / "bin" / "tsc"
    if node is None:
        unavailable("node is not installed: apt-get install nodejs npm")
    if not tsc.exists() or not all(_package(v).exists() for v in VERSIONS):
        unavailable("the schema packages are not installed: cd grafana/schema-check && npm ci")
    return [node, str(tsc)]


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((REPO / DASHBOARDS).glob("*.json"))}


def _identifier(text: str) -> str:
    return re.sub(r"\W", "_", text)


def typescript(dashboards: dict[str, dict[str, Any]], prefix: str = "") -> str:
    """A TypeScript module that type-checks only if every dashboard matches the schema; with a
    `prefix`, declarations only, to append to one without (its imports and types)."""
    lines: list[str] = []
    if not prefix:
        lines.append('import type * as g from "@grafana/schema";')
        lines.extend(
            f'import type * as {panel_type} from "@grafana/schema/dist/esm/raw/composable/{module}";'
            for panel_type, (module, _custom) in PLUGINS.items()
        )
        lines.append(
            """
// JSON holds an enum's value ("absolute"), TypeScript wants the enum (ThresholdsMode.Absolute):
// J<T> is T with every string enum replaced by the union of its values, at every depth
type J<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<J<U>>
      : { [K in keyof T]: J<T[K]> };
type Typed<O, C> = J<Omit<g.Panel, "options" | "fieldConfig">> & {
  options: J<Partial<O>>;
  fieldConfig: J<Omit<g.FieldConfigSource, "defaults">> & {
    defaults: J<Omit<g.FieldConfig, "custom">> & { custom?: J<Partial<C>> };
  };
};
"""
        )
    for name, dashboard in dashboards.items():
        ident = prefix + _identifier(name)
        lines.append(f"export const {ident}: J<g.Dashboard> = {json.dumps(dashboard, indent=1)};")
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                lines.append(f"export const {ident}_{panel['id']}: J<g.RowPanel> = {json.dumps(panel)};")
                continue
            _module, custom = PLUGINS[panel["type"]]
            options = f"{panel['type']}.Options"
            field = f"{panel['type']}.FieldConfig" if custom else "Record<string, never>"
            lines.append(
                f"// {name}: {panel['title']}\n"
                f"export const {ident}_{panel['id']}: Typed<{options}, {field}> = {json.dumps(panel)};"
            )
    return "\n".join(lines) + "\n"


def _check(tmp_path: Path, version: str, source: str) -> subprocess.CompletedProcess[str]:
    package = _package(version)
    index = next(p for p in ("dist/types/index.d.ts", "dist/esm/index.d.ts") if (package / p).exists())
    project = tmp_path / version
    project.mkdir()
    (project / "dashboards.ts").write_text(source)
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "skipLibCheck": True,
            "module": "esnext",
            "moduleResolution": "bundler",
            "target": "es2022",
            "types": [],
            "paths": {
                "@grafana/schema": [str(package / index)],
                "@grafana/schema/*": [str(package / "*")],
            },
        },
        "files": ["dashboards.ts"],
    }
    (project / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [*_tsc(), "-p", str(project), "--pretty", "false"], capture_output=True, text=True, timeout=120
    )


def _installed_version(version: str) -> str:
    version_text: str = json.loads((_package(version) / "package.json").read_text())["version"]
    return version_text


def _broken() -> dict[str, Any]:
    """run-history with a table footer in options (Grafana 11.6 takes it, 12.x moved it to the
    fields; the dashboards had one before this check) and a stacking mode no Grafana knows."""
    history = _dashboards()["run-history"]
    table = next(p for p in history["panels"] if p["type"] == "table")
    table["options"]["footer"] = {"show": False, "reducer": ["sum"]}
    series = next(p for p in history["panels"] if p["type"] == "timeseries")
    series["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] = "sideways"
    return history


@pytest.fixture(scope="module", params=VERSIONS)
def checked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, int, list[tuple[int, str]]]:
    """One tsc run per version over the dashboards and, after them, the broken copy: (version,
    the dashboards' last line, (line, error) of every error)."""
    _tsc()
    version: str = request.param
    real = typescript(_dashboards())
    result = _check(tmp_path_factory.mktemp(version), version, real + typescript({"broken": _broken()}, "x_"))
    errors = [
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"dashboards\.ts\((\d+),\d+\): error (.*)", result.stdout)
    ]
    assert errors or result.returncode == 0, result.stdout + result.stderr
    return version, real.count("\n"), errors


def test_every_dashboard_matches_grafanas_schema(checked: tuple[str, int, list[tuple[int, str]]]) -> None:
    version, last_line, errors = checked
    assert [e for line, e in errors if line <= last_line] == [], (
        f"@grafana/schema {_installed_version(version)}"
    )


def test_the_check_catches_a_wrong_value_and_an_option_grafana_12_dropped(
    checked: tuple[str, int, list[tuple[int, str]]],
) -> None:
    version, last_line, errors = checked
    broken = [e for line, e in errors if line > last_line]
    wrong = (
        'TS2322: Type \'"sideways"\' is not assignable to type \'"none" | "normal" | "percent" | undefined\'.'
    )
    footer = (
        "TS2353: Object literal may only specify known properties, and '\"footer\"' does not exist in type"
    )
    assert wrong in broken
    assert [e.startswith(footer) for e in broken if e != wrong] == ([] if version == "oldest" else [True])


def test_the_pinned_schemas_are_the_oldest_supported_and_the_one_compose_runs() -> None:
    package = json.loads((CHECK / "package.json").read_text())
    pins = {k: v.removeprefix("npm:@grafana/schema@") for k, v in package["dependencies"].items()}
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    image = compose["services"]["grafana"]["image"]
    assert image == f"grafana/grafana:{pins['grafana-schema-newest']}"
    assert pins["grafana-schema-oldest"] == "11.6.0"
    lock = json.loads((CHECK / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/grafana-schema-newest"]["version"] == pins["grafana-schema-newest"]
    assert "resolved" not in json.dumps(lock)  # npm ci takes the registry npm is configured with
