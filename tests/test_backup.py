"""`flask --app portal backup PATH` and `restore PATH`: a populated portal survives the round trip."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.db import engine, get_session
from portal.models import Note, NoteRevision, Reply, ReplyRevision, User
from portal.services import accounts, channels, notes, replies
from tests.conftest import PASSWORD, login, make_app


def sqlite_app(directory: Path):
    """A portal on its own SQLite file, built the way operators build one: `flask init`."""
    app = make_app(directory, DATABASE_URL=f"sqlite:///{directory / 'portal.sqlite3'}", SECRET_KEY=None)
    result = app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    return app


def populate(app) -> dict:
    """Users, a case with two revisions, a reply thread with an edited reply."""
    with app.app_context():
        db = get_session()
        org = accounts.create_organisation(db, slug="dg-cnect", name="DG CNECT", side="eu")
        author = accounts.create_user(db, email="eva@ec.example.eu", name="Eva", organisation=org,
                                      password=PASSWORD)
        channel = channels.create_channel(db, {"slug": "cases", "name_en": "Cases", "name_ja": "事件",
                                               "visibility": "joint"}, actor=None)
        note = notes.post_note(db, channel, author, "case", {
            "title": "Marketplace ranking", "body": "First draft about ranking", "lang": "en",
            "case_reference": "AT.40001", "case_status": "open"})
        db.flush()
        notes.edit_note(db, note, author, {"title": "Marketplace ranking", "lang": "en", "case_status": "open",
                                           "case_reference": "AT.40001",
                                           "body": "Second draft about zebra-striped ranking"})
        first = replies.post_reply(db, note, author, "A reply about interoperability")
        db.flush()
        child = replies.post_reply(db, note, author, "A nested reply", parent=first)
        db.flush()
        replies.edit_reply(db, child, author, "An edited nested reply about sideloading")
        db.commit()
        return {"note": note.id, "reply": child.id}


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def totals(app) -> dict[str, int]:
    with app.app_context():
        db = get_session()
        result = {model.__tablename__: db.scalar(select(func.count()).select_from(model))
                  for model in (User, Note, NoteRevision, Reply, ReplyRevision)}
        engine().dispose()
    return result


@pytest.fixture
def source(tmp_path):
    app = sqlite_app(tmp_path / "source")
    ids = populate(app)
    yield app, ids
    with app.app_context():
        engine().dispose()


def test_round_trip_keeps_every_note_reply_revision_and_user_and_search_works(tmp_path, source):
    app, ids = source
    archive = tmp_path / "backup-1"
    result = run(app, "backup", str(archive))
    assert result.exit_code == 0, result.output
    assert "restore` rebuilds it" in result.output
    manifest = json.loads((archive / "manifest.json").read_text())
    assert manifest["revision"] and manifest["has_secret_key"]
    assert manifest["counts"]["note_revisions"] == 2 and manifest["counts"]["reply_revisions"] == 3
    assert (archive / "secret_key").read_text() == (Path(app.instance_path) / "secret_key").read_text()

    target = sqlite_app(tmp_path / "target")
    result = run(target, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert "rebuilt the search index" in result.output
    with target.app_context():
        engine().dispose()
    restored = make_app(tmp_path / "target", DATABASE_URL=f"sqlite:///{tmp_path / 'target' / 'portal.sqlite3'}",
                        SECRET_KEY=None)
    assert totals(restored) == totals(app)
    assert restored.config["SECRET_KEY"] == app.config["SECRET_KEY"]  # sessions and links stay valid

    client = restored.test_client()
    login(client, "eva@ec.example.eu")
    history = client.get(f"/notes/{ids['note']}/history").get_data(as_text=True)
    assert "First draft about ranking" in history
    found = client.get("/search?q=zebra").get_data(as_text=True)
    assert "Marketplace ranking" in found
    found = client.get("/search?q=sideloading").get_data(as_text=True)
    assert f"reply-{ids['reply']}" in found
    verify = run(restored, "search", "verify")
    assert verify.exit_code == 0 and "matches the database" in verify.output
    with restored.app_context():
        engine().dispose()


def test_restore_refuses_to_overwrite_a_portal_without_force(tmp_path, source):
    app, _ = source
    archive = tmp_path / "backup"
    assert run(app, "backup", str(archive)).exit_code == 0
    with app.app_context():
        db = get_session()
        notes.post_note(db, channels.channel_by_slug(db, "cases"),
                        accounts.user_by_email(db, "eva@ec.example.eu"), "update",
                        {"title": "Written after the backup", "body": "Later text", "lang": "en"})
        db.commit()
    before = totals(app)
    refused = run(app, "restore", str(archive))
    assert refused.exit_code != 0
    assert "--force" in refused.output
    assert totals(app) == before
    forced = run(app, "restore", str(archive), "--force")
    assert forced.exit_code == 0, forced.output
    assert totals(app)["notes"] == before["notes"] - 1
    client = app.test_client()
    login(client, "eva@ec.example.eu")
    assert "Written after the backup" not in client.get("/search?q=later").get_data(as_text=True)


def test_backup_refuses_a_non_empty_directory_and_restore_a_damaged_backup(tmp_path, source):
    app, _ = source
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "something").write_text("keep me")
    result = run(app, "backup", str(occupied))
    assert result.exit_code != 0 and "not empty" in result.output
    assert (occupied / "something").read_text() == "keep me"

    archive = tmp_path / "backup"
    assert run(app, "backup", str(archive)).exit_code == 0
    target = sqlite_app(tmp_path / "target")
    with (archive / "portal.sqlite3").open("r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00corrupt")
    result = run(target, "restore", str(archive))
    assert result.exit_code != 0 and "checksum" in result.output
    assert totals(target)["notes"] == 0

    (archive / "manifest.json").unlink()
    result = run(target, "restore", str(archive))
    assert result.exit_code != 0 and "no manifest.json" in result.output
    with target.app_context():
        engine().dispose()


def test_with_postgresql_backup_points_to_pg_dump(tmp_path):
    app = make_app(tmp_path, DATABASE_URL=f"postgresql+psycopg://nobody@/nothing?host={tmp_path / 'no-server'}")
    for args in (["backup", str(tmp_path / "b")], ["restore", str(tmp_path)]):
        result = run(app, *args)
        assert result.exit_code != 0
        assert "pg_dump" in result.output
    assert not (tmp_path / "b").exists()


def test_a_backup_taken_while_notes_are_being_written_is_consistent(tmp_path, source):
    """The online backup API copies one snapshot: a writer in another thread never tears it."""
    app, _ = source
    stop = threading.Event()
    written = []

    def writer():
        with app.app_context():
            db = get_session()
            channel = channels.channel_by_slug(db, "cases")
            author = accounts.user_by_email(db, "eva@ec.example.eu")
            while not stop.is_set():
                note = notes.post_note(db, channel, author, "update",
                                       {"title": f"Concurrent {len(written)}", "body": "Text", "lang": "en"})
                db.commit()
                written.append(note.id)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 3:
            time.sleep(0.05)
        result = run(app, "backup", str(tmp_path / "during"))
        more = len(written)
        while len(written) < more + 3:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "during" / "manifest.json").read_text())
    with sqlite3.connect(tmp_path / "during" / "portal.sqlite3") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        saved_notes, saved_revisions = copy.execute(
            "SELECT (SELECT count(*) FROM notes), (SELECT count(*) FROM note_revisions)").fetchone()
    assert saved_notes == manifest["counts"]["notes"] == saved_revisions - 1  # every note has its revision
    assert 1 + 3 <= saved_notes < 1 + len(written)  # taken mid-stream, not before or after
