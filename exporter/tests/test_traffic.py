"""The demo's traffic: deterministic, valid, shaped like the real dataset, and incidents as documented."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from typing import Any

import pytest

from agent_exporter.client.delivery import encode
from agent_exporter.demo import swebench
from agent_exporter.demo.traffic import AGENTS, MODELS, Incident, Traffic, parse_incident
from agent_exporter.pricing import PriceBook
from agent_exporter.record import parse_record

from .support import SHARED_DATA, unavailable

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def records(seed: int = 1, n: int = 3000, incidents: tuple[Incident, ...] = ()) -> list[dict[str, Any]]:
    """The first `n` records of a demo started at T0 at 2 runs per second."""
    return [r for _, r in Traffic(seed, rate=2.0, start=T0, incidents=incidents).runs(limit=n)]


@pytest.fixture(scope="module")
def baseline() -> list[dict[str, Any]]:
    """Seed 1, 3,000 runs, no incident (about 25 minutes of traffic)."""
    return records()


def by_index(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records keyed by run id."""
    return {r["run_id"]: r for r in recs}


# determinism and validity -----------------------------------------------------------------------


def test_the_same_seed_and_start_give_the_same_records(baseline: list[dict[str, Any]]) -> None:
    assert records(n=300) == baseline[:300]
    assert records(seed=2, n=300) != baseline[:300]


def test_run_ids_are_unique_and_name_the_agent_and_the_session(baseline: list[dict[str, Any]]) -> None:
    assert len({r["run_id"] for r in baseline}) == 3000
    assert baseline[0]["run_id"] == "reviewer-t85s00-1-0000000"  # T0 in base 36, the seed, the index


def test_arrivals_follow_the_rate_and_stamp_the_records(baseline: list[dict[str, Any]]) -> None:
    traffic = Traffic(1, rate=2.0, start=T0)
    assert sum(1 for _ in traffic.runs(until=600)) == 1242  # 2/s for 10 minutes, Poisson
    offset, first = next(traffic.runs())
    assert first["ended_at"] == round(T0 + offset, 6)
    assert first["started_at"] == round(first["ended_at"] - first["duration_seconds"], 6)


def test_every_record_passes_the_exporters_validation(baseline: list[dict[str, Any]]) -> None:
    spiked = records(
        n=500, incidents=tuple(Incident(kind) for kind in ("failure-spike", "latency-regression"))
    )
    for record in baseline + spiked:
        wire = json.loads(encode(record))  # as the client sends it
        result = parse_record(wire, now=T0 + 10_000, max_future_skew=300)
        assert not isinstance(result, list), (record["run_id"], result)


# distributions (seed 1, 3,000 runs) ---------------------------------------------------------------


def test_the_mix_of_agents_models_and_issue_types(baseline: list[dict[str, Any]]) -> None:
    assert Counter(r["agent"] for r in baseline) == {"fixer": 1485, "reviewer": 894, "triager": 621}
    assert Counter(r["model"] for r in baseline) == {
        "claude-sonnet-4-5": 1231,
        "gpt-5": 914,
        "claude-haiku-4-5": 440,
        "gemini-2.5-pro": 234,
        "gpt-5-mini": 181,
    }
    assert Counter(r["issue_type"] for r in baseline) == {
        "complexity": 791,
        "test_failure": 578,
        "formatting": 574,
        "dead_code": 466,
        "security": 306,
        "dependency": 285,
    }


def test_statuses_per_agent(baseline: list[dict[str, Any]]) -> None:
    statuses = Counter((r["agent"], r["status"]) for r in baseline)
    assert {k: v for k, v in statuses.items() if k[0] == "fixer"} == {
        ("fixer", "success"): 1421,  # 95.7% (96.7% over the first 20,000 fixer runs)
        ("fixer", "failure"): 49,
        ("fixer", "error"): 10,
        ("fixer", "timeout"): 4,
        ("fixer", "cancelled"): 1,
    }
    assert statuses["reviewer", "success"] == 881  # 98.5% of 894
    assert statuses["triager", "success"] == 609  # 98% of 621 (99% over 8,000)


def test_runs_that_did_not_succeed_say_why(baseline: list[dict[str, Any]]) -> None:
    failed = [r for r in baseline if r["status"] != "success"]
    assert all(r["error_type"] and r["error_summary"] for r in failed)
    assert not any("error_type" in r for r in baseline if r["status"] == "success")
    timeouts = [r for r in failed if r["status"] == "timeout"]
    assert all(r["duration_seconds"] >= AGENTS[r["agent"]].timeout_seconds for r in timeouts)
    assert Counter(r["error_type"] for r in failed if r["agent"] == "fixer").most_common(2) == [
        ("patch_rejected", 15),
        ("tests_still_failing", 13),
    ]


def test_phases_add_up_to_the_duration(baseline: list[dict[str, Any]]) -> None:
    for r in baseline:
        assert sum(p["duration_seconds"] for p in r["phases"]) == pytest.approx(
            r["duration_seconds"], abs=0.01
        )
    fixer = [r for r in baseline if r["agent"] == "fixer" and r["status"] == "success"]
    assert all([p["name"] for p in r["phases"][:4]] == ["plan", "edit", "test", "review"] for r in fixer)
    assert statistics.median(r["duration_seconds"] for r in fixer) == pytest.approx(498.525, abs=0.001)


def test_totals_are_the_sums_of_the_per_model_usage(baseline: list[dict[str, Any]]) -> None:
    for r in baseline:
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            assert r[name] == sum(u.get(name, 0) for u in r["usage"])
        assert r["llm_calls"] == sum(u["calls"] for u in r["usage"])
        assert r["tool_calls"] == sum(t["calls"] for t in r["tools"])
    multi = [r for r in baseline if len(r["usage"]) == 2]
    assert len(multi) == 449  # fixer runs on Sonnet that compact their context with Haiku


def test_reported_costs_are_the_exporters_own_estimates_at_list_prices(
    baseline: list[dict[str, Any]],
) -> None:
    prices = PriceBook()
    for r in baseline[:400]:
        for u in r["usage"]:
            estimate = prices.estimate(
                u["model"],
                u["provider"],
                input_tokens=u["input_tokens"],
                output_tokens=u["output_tokens"],
                cache_read_tokens=u.get("cache_read_tokens"),
                cache_write_tokens=u.get("cache_write_tokens"),
            )
            expected = MODELS[u["model"]].cost(
                u["input_tokens"],
                u["output_tokens"],
                u.get("cache_read_tokens", 0),
                u.get("cache_write_tokens", 0),
            )
            assert estimate == pytest.approx(expected, rel=1e-9)
            if "cost_usd" in u:
                assert u["cost_usd"] == round(expected, 6)
    # the reviewer lets the exporter estimate its cost
    assert not any("cost_usd" in r for r in baseline if r["agent"] == "reviewer")


def test_fixer_costs(baseline: list[dict[str, Any]]) -> None:
    fixer = [r["cost_usd"] for r in baseline if r["agent"] == "fixer"]
    assert round(statistics.median(fixer), 2) == 1.62
    assert round(statistics.mean(fixer), 2) == 2.18
    assert round(max(fixer), 2) == 13.34


def test_fixer_runs_on_complexity_findings_are_shaped_like_the_swe_bench_pro_runs() -> None:
    if not SHARED_DATA.is_file():
        unavailable(f"the shared dataset is not at {SHARED_DATA}")
    real = list(swebench.records(SHARED_DATA))
    demo = [r for r in records(n=12_000) if r["agent"] == "fixer" and r["issue_type"] == "complexity"]
    for model in ("claude-sonnet-4-5", "gpt-5"):
        ours = [r for r in demo if r["model"] == model]
        theirs = [r for r in real if r["model"] == model]
        for field in ("input_tokens", "llm_calls"):
            mine = statistics.median(r["usage"][0][field.replace("llm_", "")] for r in ours)
            dataset = statistics.median(r[field] for r in theirs)
            assert mine == pytest.approx(dataset, rel=0.15), (model, field)
        mine = statistics.median(r["usage"][0]["output_tokens"] for r in ours)
        assert mine == pytest.approx(statistics.median(r["output_tokens"] for r in theirs), rel=0.15), model


def test_the_fixers_tool_mix_is_the_datasets(baseline: list[dict[str, Any]]) -> None:
    calls: Counter[str] = Counter()
    for r in baseline:
        if r["agent"] == "fixer" and r["model"] == "claude-sonnet-4-5":
            calls.update({t["name"]: t["calls"] for t in r["tools"]})
    total = calls.total() - calls["submit"]
    assert round(calls["bash"] / total, 3) == 0.428  # SWE-agent on Sonnet 4.5: 42.2%
    assert round(calls["view"] / total, 3) == 0.199  # 19.5%


# incidents ----------------------------------------------------------------------------------------


def _hit(recs: list[dict[str, Any]], agent: str = "fixer") -> list[dict[str, Any]]:
    return [r for r in recs if r["agent"] == agent and r["labels"].get("demo_incident")]


def test_a_failure_spike_makes_most_of_the_agents_runs_fail_and_leaves_the_rest_alone(
    baseline: list[dict[str, Any]],
) -> None:
    spike = records(incidents=(Incident("failure-spike", start=300, duration=600),))
    before = by_index(baseline)
    hit = _hit(spike)
    assert len(hit) == 617  # the fixer's runs between 300 s and 900 s
    assert sum(1 for r in hit if r["status"] != "success") == 563  # 91% of them fail
    assert sum(1 for r in hit if before[r["run_id"]]["status"] != "success") == 36  # 6% did before
    changed = [r for r in hit if r["status"] != before[r["run_id"]]["status"]]
    assert {r["error_type"] for r in changed} == {"pipeline_failed", "llm_api_error"}
    untouched = [r for r in spike if not r["labels"].get("demo_incident")]
    assert len(untouched) == 3000 - 617
    assert all(r == before[r["run_id"]] for r in untouched)


def test_a_cost_spike_multiplies_the_cost_of_each_run_and_nothing_else(
    baseline: list[dict[str, Any]],
) -> None:
    before = by_index(baseline)
    for r in _hit(records(incidents=(Incident("cost-spike", magnitude=5),))):
        old = before[r["run_id"]]
        assert r["cost_usd"] == pytest.approx(old["cost_usd"] * 5, abs=1e-5)
        assert (r["input_tokens"], r["output_tokens"], r["duration_seconds"]) == (
            old["input_tokens"],
            old["output_tokens"],
            old["duration_seconds"],
        )


def test_a_cost_spike_on_the_reviewer_reports_a_cost(baseline: list[dict[str, Any]]) -> None:
    hit = _hit(records(n=200, incidents=(Incident("cost-spike", agent="reviewer", magnitude=3),)), "reviewer")
    assert len(hit) == 63
    assert all(r["cost_usd"] > 0 for r in hit)


def test_a_latency_regression_stretches_the_slow_phase(baseline: list[dict[str, Any]]) -> None:
    before = by_index(baseline)
    hit = _hit(records(incidents=(Incident("latency-regression", magnitude=4),)))
    for r in hit:
        old = before[r["run_id"]]
        assert r["duration_seconds"] == pytest.approx(old["duration_seconds"] * 4, abs=1e-5)
        assert r["ended_at"] == old["ended_at"]
        assert r["started_at"] == pytest.approx(r["ended_at"] - r["duration_seconds"], abs=1e-5)
        assert sum(p["duration_seconds"] for p in r["phases"]) == pytest.approx(
            r["duration_seconds"], abs=0.01
        )
        assert r["status"] == old["status"]

    def p95(values: list[float]) -> int:
        return round(sorted(values)[int(0.95 * len(values))])

    assert p95([before[r["run_id"]]["duration_seconds"] for r in hit]) == 906
    assert p95([r["duration_seconds"] for r in hit]) == 3625


def test_a_token_spike_adds_cache_reads_and_their_cost(baseline: list[dict[str, Any]]) -> None:
    before = by_index(baseline)
    hit = _hit(records(incidents=(Incident("token-spike", magnitude=4),)))
    ratios = []
    for r in hit:
        old = before[r["run_id"]]
        main, old_main = r["usage"][0], old["usage"][0]
        extra = round(old_main["input_tokens"] * 3)  # x4 in all
        assert main["input_tokens"] == old_main["input_tokens"] + extra
        assert main["cache_read_tokens"] == old_main.get("cache_read_tokens", 0) + extra
        assert r["input_tokens"] == old["input_tokens"] + extra
        ratios.append(r["cost_usd"] / old["cost_usd"])
    assert round(statistics.median(ratios), 2) == 1.66  # cache reads are cheap: cost grows far less


def test_a_silent_agent_sends_nothing_during_the_incident(baseline: list[dict[str, Any]]) -> None:
    silent = Incident("agent-silent", agent="triager", start=300, duration=600)
    traffic = Traffic(1, rate=2.0, start=T0, incidents=(silent,))
    runs = list(traffic.runs(until=1200))
    assert not [o for o, r in runs if r["agent"] == "triager" and 300 <= o < 900]
    assert len([o for o, r in runs if r["agent"] == "triager" and o >= 900]) == 128
    quiet = {r["run_id"]: r for _, r in runs}
    assert all(quiet[r["run_id"]] == r for r in baseline if r["run_id"] in quiet)


def test_incidents_parse_from_the_command_line() -> None:
    assert parse_incident("cost-spike") == Incident("cost-spike", magnitude=10.0)
    assert parse_incident("failure-spike") == Incident("failure-spike", magnitude=0.9)
    assert parse_incident("failure-spike:agent=reviewer,magnitude=0.8,start=60,duration=300") == Incident(
        "failure-spike", agent="reviewer", magnitude=0.8, start=60, duration=300
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("outage", "unknown incident 'outage': use one of failure-spike, cost-spike"),
        ("cost-spike:agent=planner", "unknown agent 'planner'"),
        ("cost-spike:size=3", "expected key=value with key agent, magnitude, start or duration"),
        ("cost-spike:magnitude=lots", "magnitude must be a number"),
        ("cost-spike:magnitude=0.5", "magnitude is a multiplier and must be > 1"),
        ("failure-spike:magnitude=2", "magnitude is the share of runs that fail, in (0, 1]"),
        ("agent-silent:duration=0", "start must be >= 0 and duration > 0"),
    ],
)
def test_a_bad_incident_is_refused_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        parse_incident(spec)
