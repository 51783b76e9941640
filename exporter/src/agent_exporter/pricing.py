"""Cost of a run: reported cost wins, otherwise an estimate from tokens and a price table.

Prices come from the `genai-prices` package's bundled snapshot (never fetched at run time), and a
YAML price file overrides and extends it for internal models and negotiated prices:

    # USD per million tokens
    models:
      - model: internal-coder-v2      # exact name (case-insensitive)
        input: 0.50
        output: 1.50
        cache_read: 0.05              # optional: defaults to the input price
        cache_write: 0.625            # optional: defaults to the input price
      - match: "claude-sonnet-4-5*"   # shell-style pattern; exact names win over patterns
        provider: anthropic           # optional: only for runs reporting this provider
        input: 2.70
        output: 13.50

A run's tokens are sums over many LLM calls, so they are priced at the base tier: per-request tiers
(long-context surcharges above 200k tokens in one prompt) say nothing about a sum. Token counts are
inclusive: cache reads and writes are part of the input and priced at their own rates, reasoning is
part of the output and priced as output, so nothing is priced twice.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .record import CostSource, Run, UsageLine

log = logging.getLogger(__name__)

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    """Per-million-token prices of one model, in USD."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    source: str = "price-file"

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Decimal:
        """USD for inclusive token counts: cached tokens are part of `input_tokens`."""
        uncached = input_tokens - cache_read_tokens - cache_write_tokens
        cache_read = self.cache_read if self.cache_read is not None else self.input
        cache_write = self.cache_write if self.cache_write is not None else self.input
        total = (
            uncached * self.input
            + cache_read_tokens * cache_read
            + cache_write_tokens * cache_write
            + output_tokens * self.output
        )
        return total / _MILLION


class PriceEntry(BaseModel):
    """One entry of the YAML price file."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1)
    match: str | None = Field(default=None, min_length=1)
    provider: str | None = None
    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cache_read: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_name(self) -> PriceEntry:
        if (self.model is None) == (self.match is None):
            raise ValueError("give exactly one of 'model' (an exact name) or 'match' (a pattern)")
        return self

    def applies_to(self, model: str, provider: str | None) -> bool:
        """Whether this entry prices `model` (as reported by a run with `provider`)."""
        if self.provider is not None and (provider or "").casefold() != self.provider.casefold():
            return False
        if self.model is not None:
            return model.casefold() == self.model.casefold()
        assert self.match is not None
        return fnmatch.fnmatchcase(model.casefold(), self.match.casefold())

    def price(self) -> Price:
        """The entry as a `Price`."""
        return Price(self.input, self.output, self.cache_read, self.cache_write, "price-file")


class PriceFile(BaseModel):
    """The YAML price file."""

    model_config = ConfigDict(extra="forbid")

    models: list[PriceEntry] = Field(default_factory=list)


class PriceFileError(ValueError):
    """The price file cannot be read or does not validate."""


def load_price_file(path: Path) -> PriceFile:
    """Read and validate a YAML price file; errors name the file and the entry."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise PriceFileError(f"price file {path}: cannot read it: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PriceFileError(f"price file {path}: not valid YAML: {exc}") from exc
    try:
        return PriceFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise PriceFileError(f"price file {path}: {problems}") from exc


class PriceBook:
    """Looks up a model's price: the price file first (exact names, then patterns), then genai-prices."""

    def __init__(self, entries: Iterable[PriceEntry] = (), *, use_genai_prices: bool = True) -> None:
        entries = list(entries)
        self._exact = [e for e in entries if e.model is not None]
        self._patterns = [e for e in entries if e.match is not None]
        self._use_genai_prices = use_genai_prices
        self.lookup = lru_cache(maxsize=4096)(self._lookup)

    @classmethod
    def from_file(cls, path: Path | None) -> PriceBook:
        """A price book with the overrides of `path` (if any) on top of genai-prices."""
        return cls(load_price_file(path).models if path is not None else ())

    def _lookup(self, model: str, provider: str | None, day: str | None = None) -> Price | None:
        """The price of `model`, or None when nobody knows it. `day` (ISO date) picks dated prices."""
        for entry in self._exact:
            if entry.applies_to(model, provider):
                return entry.price()
        for entry in self._patterns:
            if entry.applies_to(model, provider):
                return entry.price()
        if self._use_genai_prices:
            return _genai_price(model, provider, day)
        return None

    def estimate(
        self,
        model: str | None,
        provider: str | None,
        *,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        at: float | None = None,
    ) -> float | None:
        """Estimated USD for these tokens, or None when the model or the tokens are unknown."""
        if model is None or (input_tokens is None and output_tokens is None):
            return None
        day = datetime.fromtimestamp(at, UTC).date().isoformat() if at is not None else None
        price = self.lookup(model, provider, day)
        if price is None:
            return None
        return float(
            price.cost(input_tokens or 0, output_tokens or 0, cache_read_tokens or 0, cache_write_tokens or 0)
        )

    def price(self, run: Run) -> None:
        """Fill in `run.cost_usd` and `run.cost_source` (and each usage line's) unless reported.

        Reported cost wins. With a per-model breakdown, the run's estimate is the sum of its lines,
        and is unknown if any line is: a partial sum would undercount, so it is not given.
        """
        for line in run.usage:
            self._price_line(line, run.ended_at)
        if run.cost_source is CostSource.REPORTED:
            return
        if run.usage:
            if any(line.cost_usd is None for line in run.usage):
                run.cost_usd, run.cost_source = None, CostSource.UNKNOWN
                return
            run.cost_usd = sum(line.cost_usd or 0.0 for line in run.usage)
            all_reported = all(line.cost_source is CostSource.REPORTED for line in run.usage)
            run.cost_source = CostSource.REPORTED if all_reported else CostSource.ESTIMATED
            return
        cost = self.estimate(
            run.model,
            run.provider,
            input_tokens=run.input_tokens,
            output_tokens=run.output_tokens,
            cache_read_tokens=run.cache_read_tokens,
            cache_write_tokens=run.cache_write_tokens,
            at=run.ended_at,
        )
        run.cost_usd = cost
        run.cost_source = CostSource.UNKNOWN if cost is None else CostSource.ESTIMATED

    def _price_line(self, line: UsageLine, at: float) -> None:
        if line.cost_source is CostSource.REPORTED:
            return
        cost = self.estimate(
            line.model,
            line.provider,
            input_tokens=line.input_tokens,
            output_tokens=line.output_tokens,
            cache_read_tokens=line.cache_read_tokens,
            cache_write_tokens=line.cache_write_tokens,
            at=at,
        )
        line.cost_usd = cost
        line.cost_source = CostSource.UNKNOWN if cost is None else CostSource.ESTIMATED


def _base(value: Any) -> Decimal | None:
    """A genai-prices price at its base tier (see the module docstring for why)."""
    if value is None:
        return None
    base = getattr(value, "base", value)
    return base if isinstance(base, Decimal) else Decimal(str(base))


def _genai_price(model: str, provider: str | None, day: str | None) -> Price | None:
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    try:
        try:
            _, info = snapshot.find_provider_model(model, None, provider, None)
        except LookupError:
            if provider is None:
                raise
            # an unknown provider (a gateway, an internal proxy) still tells us nothing about the model
            _, info = snapshot.find_provider_model(model, None, None, None)
    except LookupError:
        return None
    when = datetime.fromisoformat(day).replace(tzinfo=UTC) if day else datetime.now(UTC)
    prices = info.get_prices(when)
    input_price, output_price = _base(prices.input_mtok), _base(prices.output_mtok)
    if input_price is None or output_price is None:
        return None
    return Price(
        input=input_price,
        output=output_price,
        cache_read=_base(prices.cache_read_mtok),
        cache_write=_base(prices.cache_write_mtok),
        source="genai-prices",
    )
