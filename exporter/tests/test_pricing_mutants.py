"""Pricing details the mutation run (make mutate, docs/quality.md) found untested: prices of the day a
run ended, the provider's own price, cache tokens of usage lines, price-file provenance and messages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from agent_exporter.pricing import Price, PriceBook, PriceFileError, _base, load_price_file
from agent_exporter.record import CostSource

from .support import priced, record

#: DeepSeek V4 Flash at DeepSeek: $0.14 in / $0.28 out per million until 2026-08-16, $0.22 / $0.66 from
#: 2026-08-17 (genai-prices' bundled snapshot)
FLASH = {"model": "deepseek-v4-flash", "provider": "deepseek"}
MILLION_EACH = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}


@pytest.mark.parametrize(
    ("ended_at", "cost"), [("2026-08-16T23:59:00Z", 0.14 + 0.28), ("2026-08-17T00:01:00Z", 0.22 + 0.66)]
)
def test_a_run_is_priced_at_the_prices_of_the_day_it_ended(ended_at: str, cost: float) -> None:
    run = priced(record("r", **FLASH, **MILLION_EACH, ended_at=ended_at))
    assert run.cost_usd == pytest.approx(cost, abs=1e-12)
    assert run.cost_source is CostSource.ESTIMATED


def test_a_usage_line_is_priced_at_the_prices_of_the_day_its_run_ended() -> None:
    run = priced(record("r", model=None, usage=[FLASH | MILLION_EACH], ended_at="2026-08-16T12:00:00Z"))
    assert run.usage[0].cost_usd == pytest.approx(0.42, abs=1e-12)
    assert run.cost_usd == pytest.approx(0.42, abs=1e-12)


def test_the_day_is_the_utc_day_and_the_lookup_takes_it() -> None:
    book = PriceBook()
    before = book.estimate(
        "deepseek-v4-flash", "deepseek", input_tokens=1_000_000, output_tokens=0, at=1786924799
    )
    after = book.estimate(
        "deepseek-v4-flash", "deepseek", input_tokens=1_000_000, output_tokens=0, at=1786924801
    )
    assert before == pytest.approx(0.14, abs=1e-12)
    assert after == pytest.approx(0.22, abs=1e-12)
    assert book.lookup("deepseek-v4-flash", "deepseek", "2026-08-16") == Price(
        Decimal("0.14"), Decimal("0.28"), Decimal("0.0028"), None, "genai-prices"
    )


def test_the_reporting_provider_picks_its_own_price() -> None:
    # gpt-oss-120b: $0.35 in per million at Cerebras, $0.039 at the first provider genai-prices knows
    own = priced(record("r", model="gpt-oss-120b", provider="cerebras", input_tokens=1_000_000))
    line = priced(
        record(
            "r", model=None, usage=[{"model": "gpt-oss-120b", "provider": "cerebras", "input_tokens": 10**6}]
        )
    )
    assert own.cost_usd == pytest.approx(0.35, abs=1e-12)
    assert line.usage[0].cost_usd == pytest.approx(0.35, abs=1e-12)


def test_a_model_without_an_output_price_is_unknown() -> None:
    run = priced(record("r", model="text-embedding-3-small", provider="openai", **MILLION_EACH))
    assert (run.cost_usd, run.cost_source) == (None, CostSource.UNKNOWN)


def test_input_or_output_alone_is_enough_for_an_estimate_and_the_other_counts_zero() -> None:
    only_input = priced(record("r", input_tokens=1_000_000))
    only_output = priced(record("r", output_tokens=1_000_000))
    assert (only_input.cost_usd, only_input.cost_source) == (3.0, CostSource.ESTIMATED)
    assert only_output.cost_usd == 15.0


def test_usage_lines_price_their_cache_tokens_at_cache_rates() -> None:
    # Sonnet 4.5: 400k uncached x $3 + 200k reads x $0.30 + 400k writes x $3.75 = $2.76
    line = {"input_tokens": 1_000_000, "cache_read_tokens": 200_000, "cache_write_tokens": 400_000}
    run = priced(
        record("r", model=None, usage=[{"model": "claude-sonnet-4-5", "provider": "anthropic", **line}])
    )
    assert run.usage[0].cost_usd == pytest.approx(2.76, abs=1e-12)


def test_an_unpriced_usage_line_is_marked_unknown() -> None:
    run = priced(record("r", model=None, usage=[{"model": "internal-coder-v2", "input_tokens": 5}]))
    assert (run.usage[0].cost_usd, run.usage[0].cost_source) == (None, CostSource.UNKNOWN)


def test_a_free_usage_line_adds_nothing() -> None:
    run = priced(
        record("r", model=None, usage=[{"model": "a", "cost_usd": 0.0}, {"model": "b", "cost_usd": 0.5}])
    )
    assert (run.cost_usd, run.cost_source) == (0.5, CostSource.REPORTED)


def test_cache_tokens_default_to_none_in_a_price() -> None:
    assert Price(Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75")).cost(1_000_000, 0) == Decimal(3)


def test_price_file_entries_keep_all_their_prices_and_say_where_they_come_from(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        "  - model: internal-coder-v2\n    input: 0.5\n    output: 1.5\n    cache_read: 0.05\n"
        "    cache_write: 0.625\n"
        '  - match: "acme-*"\n    provider: acme-eu\n    input: 2\n    output: 4\n'
    )
    book = PriceBook.from_file(path)
    assert book.lookup("internal-coder-v2", None) == Price(
        Decimal("0.5"), Decimal("1.5"), Decimal("0.05"), Decimal("0.625"), "price-file"
    )
    assert book.lookup("acme-large", "ACME-EU") == Price(Decimal(2), Decimal(4), None, None, "price-file")
    # the pattern names a provider: another provider's acme-large is not its model
    assert book.lookup("acme-large", "acme-us") is None
    assert book.lookup("gpt-5", "openai", "2026-11-18") == Price(
        Decimal("1.25"), Decimal(10), Decimal("0.125"), None, "genai-prices"
    )


def test_a_price_file_lists_every_problem_and_names_the_file_itself(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  - model: m\n    input: -1\n")
    with pytest.raises(PriceFileError) as info:
        load_price_file(path)
    assert str(info.value) == (
        f"price file {path}: models.0.input: Input should be greater than or equal to 0; "
        "models.0.output: Field required"
    )
    path.write_text("- model: m\n")
    with pytest.raises(PriceFileError) as info:
        load_price_file(path)
    assert (
        str(info.value)
        == f"price file {path}: (file): Input should be a valid dictionary or instance of PriceFile"
    )


def test_a_price_that_is_not_a_decimal_is_converted_exactly() -> None:
    assert (_base(0.1), _base(2), _base(None)) == (Decimal("0.1"), Decimal(2), None)


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's time zone set to UTC+9 for one test."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tokyo")
def test_the_price_day_is_the_utc_day_whatever_the_hosts_zone() -> None:
    # 2026-08-16 23:59:59 UTC is already 2026-08-17 in Tokyo: still the old price
    cost = PriceBook().estimate(
        "deepseek-v4-flash", "deepseek", input_tokens=10**6, output_tokens=0, at=1786924799
    )
    assert cost == pytest.approx(0.14, abs=1e-12)


def test_an_estimate_without_a_time_takes_todays_price() -> None:
    book = PriceBook()
    now = book.estimate("gpt-5", "openai", input_tokens=10**6, output_tokens=0, at=time.time())
    assert book.estimate("gpt-5", "openai", input_tokens=10**6, output_tokens=0) == now
