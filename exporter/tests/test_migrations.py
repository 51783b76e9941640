"""The migrations build exactly the schema that schema.py declares, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from agent_exporter import migrations, schema
from agent_exporter.store import Store, StoreSettings


def differences(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff: list[object] = compare_metadata(context, schema.metadata)
        return diff


def test_migrations_match_the_schema(store: Store) -> None:
    assert differences(store) == []
    assert migrations.current_revision(store) == migrations.head_revision()


def test_the_read_indexes_downgrade_and_upgrade_again(store_url: str) -> None:
    with Store(StoreSettings(store_url)) as store:
        migrations.upgrade(store)
        command.downgrade(migrations._config(store), "0001")  # no public downgrade: tests only
        with store.engine.connect() as conn:
            names = {ix["name"] for ix in inspect(conn).get_indexes("runs")}
        assert "ix_runs_figures" not in names
        assert "ix_runs_ended_at_run_id" in names
        migrations.upgrade(store)
        assert differences(store) == []
