"""The Alembic migrations build exactly the schema the models describe, and run down and up again."""
from __future__ import annotations

import os

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import portal.models  # noqa: F401  (registers every table on Base.metadata)
from portal.db import Base, alembic_config, make_engine, migrate

pytestmark = pytest.mark.database


def empty_database_url(tmp_path) -> str:
    """A database with no tables: a new SQLite file, or PORTAL_TEST_DATABASE_URL emptied (as conftest does)."""
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    engine = make_engine(url)
    try:
        Base.metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        assert inspect(engine).get_table_names() == [], "the test database holds tables the models do not know"
    finally:
        engine.dispose()
    return url


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(empty_database_url(tmp_path))
    yield engine
    engine.dispose()


def schema_diff(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def current_revision(engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine) -> str:
    return ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(False))).get_current_head()


def downgrade_to_base(engine) -> None:
    with engine.begin() as connection:
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        config.attributes["connection"] = connection
        command.downgrade(config, "base")


def test_upgrade_head_matches_the_models(engine):
    assert inspect(engine).get_table_names() == []
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    assert schema_diff(engine) == []


def test_migrate_again_is_a_no_op(engine):
    migrate(engine)
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    assert schema_diff(engine) == []


def test_downgrade_to_base_then_upgrade_again(engine):
    migrate(engine)
    downgrade_to_base(engine)
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    assert schema_diff(engine) == []


def test_compare_detects_a_missing_table(engine):
    """Guards the check itself: a schema that lacks a model's table is not reported as matching."""
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE sign_in_failures"))
    assert any(diff[0] == "add_table" and diff[1].name == "sign_in_failures" for diff in schema_diff(engine))
