"""Cost: reported wins; estimates price cache and reasoning tokens once, at the base tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_exporter.pricing import PriceBook, PriceFileError, load_price_file
from agent_exporter.record import CostSource

from .support import priced, record


def write_prices(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return path


def test_reported_cost_wins_over_an_estimate() -> None:
    run = priced(record("r", cost_usd=1.25, input_tokens=1_000_000, output_tokens=100_000))
    assert (run.cost_usd, run.cost_source) == (1.25, CostSource.REPORTED)


def test_a_long_run_is_priced_at_the_base_tier_with_cache_reads_at_their_rate() -> None:
    # DESIGN.md's example: 1M input (200k cache reads) and 100k output on Claude Sonnet 4.5.
    # 800k x $3 + 200k x $0.30 + 100k x $15 per million = $3.96 (the >200k tier would say $7.17).
    run = priced(
        record("r", input_tokens=1_000_000, cache_read_tokens=200_000, output_tokens=100_000, cost_usd=None)
    )
    assert run.cost_source is CostSource.ESTIMATED
    assert run.cost_usd == pytest.approx(3.96, abs=1e-12)


def test_reasoning_tokens_are_priced_once_as_output() -> None:
    # GPT-5: $1.25 input, $0.125 cache read, $10 output per million; reasoning is part of the output.
    run = priced(
        record(
            "r",
            model="gpt-5",
            provider="openai",
            input_tokens=1_000_000,
            cache_read_tokens=200_000,
            output_tokens=100_000,
            reasoning_tokens=60_000,
        )
    )
    assert run.cost_usd == pytest.approx(0.8 * 1.25 + 0.2 * 0.125 + 0.1 * 10, abs=1e-12)  # 2.025


def test_cache_writes_without_their_own_price_cost_the_input_price() -> None:
    # GPT-5 has no cache-write price: written tokens are still input tokens.
    run = priced(
        record("r", model="gpt-5", input_tokens=1_000_000, cache_write_tokens=400_000, output_tokens=0)
    )
    assert run.cost_usd == pytest.approx(1.25, abs=1e-12)


def test_cache_writes_are_priced_at_their_rate() -> None:
    # Sonnet 4.5 cache writes (5 minutes) cost $3.75 per million.
    run = priced(record("r", input_tokens=1_000_000, cache_write_tokens=1_000_000, output_tokens=0))
    assert run.cost_usd == pytest.approx(3.75, abs=1e-12)


def test_a_dated_model_name_finds_its_price() -> None:
    run = priced(record("r", model="claude-sonnet-4-5-20250929", input_tokens=1_000_000, output_tokens=0))
    assert run.cost_usd == pytest.approx(3.0, abs=1e-12)


def test_a_model_nobody_prices_is_unknown_not_zero() -> None:
    run = priced(record("r", model="internal-coder-v2", provider="acme", input_tokens=10, output_tokens=10))
    assert (run.cost_usd, run.cost_source) == (None, CostSource.UNKNOWN)


def test_a_run_without_tokens_or_model_cannot_be_estimated() -> None:
    assert priced(record("r")).cost_source is CostSource.UNKNOWN
    assert priced(record("r", model=None, input_tokens=10)).cost_source is CostSource.UNKNOWN


def test_the_price_file_prices_internal_models(tmp_path: Path) -> None:
    path = write_prices(
        tmp_path,
        """
models:
  - model: internal-coder-v2
    input: 0.50
    output: 1.50
    cache_read: 0.05
""",
    )
    run = priced(
        record(
            "r",
            model="Internal-Coder-V2",
            input_tokens=2_000_000,
            cache_read_tokens=1_000_000,
            output_tokens=1_000_000,
        ),
        PriceBook.from_file(path),
    )
    assert run.cost_source is CostSource.ESTIMATED
    assert run.cost_usd == pytest.approx(0.50 + 0.05 + 1.50, abs=1e-12)


def test_the_price_file_overrides_genai_prices_by_pattern(tmp_path: Path) -> None:
    path = write_prices(
        tmp_path,
        """
models:
  - match: "claude-sonnet-4-5*"
    input: 2.7
    output: 13.5
""",
    )
    run = priced(
        record("r", model="claude-sonnet-4-5-20250929", input_tokens=1_000_000, output_tokens=1_000_000),
        PriceBook.from_file(path),
    )
    assert run.cost_usd == pytest.approx(16.2, abs=1e-12)


def test_exact_names_win_over_patterns_and_providers_narrow_an_entry(tmp_path: Path) -> None:
    path = write_prices(
        tmp_path,
        """
models:
  - match: "acme-*"
    input: 1
    output: 1
  - model: acme-large
    provider: acme-eu
    input: 3
    output: 3
  - model: acme-large
    input: 2
    output: 2
""",
    )
    book = PriceBook.from_file(path)
    tokens = {"input_tokens": 1_000_000, "output_tokens": 0}
    assert priced(record("r", model="acme-large", provider="acme-eu", **tokens), book).cost_usd == 3.0
    assert priced(record("r", model="acme-large", provider="acme-us", **tokens), book).cost_usd == 2.0
    assert priced(record("r", model="acme-small", provider=None, **tokens), book).cost_usd == 1.0


def test_a_usage_breakdown_is_priced_line_by_line() -> None:
    run = priced(
        record(
            "r",
            model=None,
            usage=[
                {"model": "gpt-5", "input_tokens": 1_000_000, "output_tokens": 0},
                {
                    "model": "claude-sonnet-4-5",
                    "input_tokens": 1_000_000,
                    "output_tokens": 0,
                    "cost_usd": 2.5,
                },
            ],
        )
    )
    assert [(u.cost_usd, u.cost_source) for u in run.usage] == [
        (pytest.approx(1.25), CostSource.ESTIMATED),
        (2.5, CostSource.REPORTED),
    ]
    assert run.cost_usd == pytest.approx(3.75)
    assert run.cost_source is CostSource.ESTIMATED


def test_a_breakdown_with_an_unpriced_line_leaves_the_run_unknown() -> None:
    run = priced(
        record(
            "r",
            model=None,
            usage=[
                {"model": "gpt-5", "input_tokens": 1_000_000, "output_tokens": 0},
                {"model": "internal-coder-v2", "input_tokens": 5, "output_tokens": 5},
            ],
        )
    )
    assert (run.cost_usd, run.cost_source) == (None, CostSource.UNKNOWN)
    assert run.usage[0].cost_usd == pytest.approx(1.25)


def test_a_breakdown_of_reported_costs_is_reported() -> None:
    run = priced(
        record("r", model=None, usage=[{"model": "a", "cost_usd": 1.0}, {"model": "b", "cost_usd": 0.5}])
    )
    assert (run.cost_usd, run.cost_source) == (1.5, CostSource.REPORTED)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [", "not valid YAML"),
        ("models:\n  - input: 1\n    output: 1\n", "give exactly one of 'model' (an exact name) or 'match'"),
        (
            "models:\n  - model: m\n    input: -1\n    output: 1\n",
            "models.0.input: Input should be greater than or equal to 0",
        ),
        ("models:\n  - model: m\n    input: 1\n", "models.0.output: Field required"),
        ("prices: []\n", "prices: Extra inputs are not permitted"),
    ],
)
def test_a_bad_price_file_is_refused_with_the_entry_named(tmp_path: Path, text: str, message: str) -> None:
    path = write_prices(tmp_path, text)
    with pytest.raises(PriceFileError, match=r"price file .*prices\.yaml") as info:
        load_price_file(path)
    assert message in str(info.value)


def test_a_missing_price_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="cannot read it"):
        load_price_file(tmp_path / "nope.yaml")
