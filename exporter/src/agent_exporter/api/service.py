"""`Service`: everything a request handler needs, built once per application, and how a handler
finds it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from starlette.requests import Request

from .. import __version__, migrations
from ..config import Settings
from ..ingest import Ingest, Writer
from ..metrics import Metrics
from ..otlp.assembly import Assembler
from ..pricing import PriceBook
from ..store import Store, StoreError, StoreSettings

log = logging.getLogger(__name__)


@dataclass
class Service:
    """The store, the metrics, the prices and the writer of one application."""

    settings: Settings
    store: Store
    registry: CollectorRegistry
    metrics: Metrics
    prices: PriceBook
    writer: Writer
    ingest: Ingest
    assembler: Assembler

    @classmethod
    def start(cls, settings: Settings, registry: CollectorRegistry | None = None) -> Service:
        """Open the store (migrating an empty one), build the metrics and start the writer."""
        prices = PriceBook.from_file(settings.price_file)
        store = Store(
            StoreSettings(
                settings.database_url, settings.sqlite_synchronous, sqlite_background_checkpoints=True
            )
        )
        try:
            migrations.prepare(store)
        except Exception:
            store.close()
            raise
        store.start_checkpoints()
        store.start_maintenance(settings.retention_days)
        registry = registry or CollectorRegistry(auto_describe=True)
        metrics = Metrics(registry, settings.metrics.label_config(), version=__version__)
        writer = Writer(store, metrics)
        try:
            store.check_writable()  # a read-only file or a full disk: serve, but not as ready
        except StoreError as exc:
            writer.last_error = exc
            log.warning("the store does not take writes: %s", exc)
        ingest = Ingest(writer, metrics, prices, max_future_skew=settings.limits.max_future_skew_seconds)
        assembler = Assembler(store, ingest, metrics, settings.otlp)
        try:
            assembler.load()
        except StoreError as exc:  # spans held before a restart wait for a store that answers
            log.warning("the OTLP spans held in the store could not be read: %s", exc)
        return cls(settings, store, registry, metrics, prices, writer, ingest, assembler)

    def stop(self) -> None:
        """Store what is queued and release the database."""
        self.writer.close()
        self.store.close()

    def reprice_with(self, prices: PriceBook) -> None:
        """Price the runs ingested from now on with `prices`."""
        self.prices = prices
        self.ingest.prices = prices


def service(request: Request) -> Service:
    """The service of the application serving `request`."""
    found: Service = request.app.state.service
    return found
