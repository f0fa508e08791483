"""Backup and restore of a SQLite portal: the database, the secret key and a manifest.

The search index is not copied: it is derived data, and restore rebuilds it from the restored
database, which is both smaller to keep and immune to an index that lagged the database when the
backup was taken. PostgreSQL deployments back up with pg_dump or PITR instead (README, "Backups").
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from portal.db import alembic_config, migrate
from portal.errors import ValidationError
from portal.models import User

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "portal.sqlite3"
SECRET_KEY = "secret_key"
POSTGRES_ADVICE = (
    "The database is PostgreSQL: back it up with pg_dump (or continuous archiving for "
    "point-in-time recovery) as README.md explains; `backup` and `restore` handle SQLite only."
)


@dataclass
class Manifest:
    revision: str | None
    created_at: str
    sha256: str
    counts: dict[str, int]
    has_secret_key: bool
    format: int = FORMAT


def create_backup(session: Session, destination: Path, *, secret_key_file: Path | None) -> Manifest:
    """Copy the live SQLite database (online backup API: consistent while the portal runs), the
    secret key file if there is one, and a manifest, into a new directory."""
    database = _sqlite_path(session)
    if destination.exists() and any(destination.iterdir()):
        raise ValidationError(f"{destination} exists and is not empty; choose a new directory.")
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / DATABASE
    source = sqlite3.connect(database)
    copy = sqlite3.connect(target)
    try:
        with copy:
            source.backup(copy)
    finally:
        copy.close()
        source.close()
    # Counts and revision from the copy, not the live database: they describe what was saved.
    with sqlite3.connect(target) as saved:
        counts = {table: saved.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                  for table in ("users", "notes", "replies", "note_revisions", "reply_revisions")}
        revision = _revision_of(saved)
    saved.close()
    has_key = secret_key_file is not None and secret_key_file.is_file()
    if has_key:
        shutil.copyfile(secret_key_file, destination / SECRET_KEY)
        (destination / SECRET_KEY).chmod(0o600)
    manifest = Manifest(revision=revision, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        sha256=_sha256(target), counts=counts, has_secret_key=has_key)
    (destination / MANIFEST).write_text(json.dumps(manifest.__dict__, indent=2) + "\n")
    return manifest


def read_manifest(source: Path) -> Manifest:
    """The backup's manifest, checked against the files beside it and this version's migrations."""
    try:
        data = json.loads((source / MANIFEST).read_text())
        manifest = Manifest(**data)
    except FileNotFoundError:
        raise ValidationError(f"{source} is not a portal backup: it has no {MANIFEST}.") from None
    except (ValueError, TypeError) as error:
        raise ValidationError(f"{source / MANIFEST} is not a valid manifest ({error}).") from None
    if manifest.format != FORMAT:
        raise ValidationError(f"Backup format {manifest.format} is not supported (this version reads {FORMAT}).")
    if not (source / DATABASE).is_file() or _sha256(source / DATABASE) != manifest.sha256:
        raise ValidationError(f"{source / DATABASE} is missing or does not match the manifest's checksum.")
    if manifest.has_secret_key and not (source / SECRET_KEY).is_file():
        raise ValidationError(f"The manifest lists a secret key but {source / SECRET_KEY} is missing.")
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()}
    if manifest.revision is not None and manifest.revision not in known:
        raise ValidationError(f"The backup is at migration {manifest.revision}, which this version of the "
                              "portal does not know; restore it with the version that made it.")
    return manifest


def restore_backup(session: Session, source: Path, *, secret_key_file: Path | None, force: bool) -> Manifest:
    """Replace this portal's database (and secret key) with a backup, then migrate it to this version.

    Refuses to overwrite a database that holds accounts unless `force`. The caller rebuilds the index.
    """
    database = _sqlite_path(session)
    manifest = read_manifest(source)
    if not force and _holds_data(session):
        raise ValidationError(f"{database} already holds a portal; add --force to overwrite it.")
    bind = session.get_bind()
    session.close()
    bind.dispose()  # no pooled connection may keep reading the old pages
    backup = sqlite3.connect(source / DATABASE)
    live = sqlite3.connect(database)
    try:
        with live:
            backup.backup(live)  # page by page through SQLite, so the WAL and locks stay coherent
    finally:
        live.close()
        backup.close()
    if manifest.has_secret_key and secret_key_file is not None:
        shutil.copyfile(source / SECRET_KEY, secret_key_file)
        secret_key_file.chmod(0o600)
    if manifest.revision is not None:
        migrate(bind)
    return manifest


def _sqlite_path(session: Session) -> Path:
    url = session.get_bind().url
    if url.get_backend_name() != "sqlite":
        raise ValidationError(POSTGRES_ADVICE)
    if not url.database or url.database == ":memory:":
        raise ValidationError("An in-memory database cannot be backed up or restored.")
    return Path(url.database)


def _holds_data(session: Session) -> bool:
    if "users" not in inspect(session.get_bind()).get_table_names():
        return False
    return (session.scalar(select(func.count(User.id))) or 0) > 0


def _revision_of(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # built without Alembic (create_all): no revision to record
        return None
    return row[0] if row else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

