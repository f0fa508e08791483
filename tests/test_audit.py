"""The audit log: what is recorded, that the database keeps it append-only, the admin page and its CSV."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from portal.db import make_engine, migrate, utcnow
from portal.models import AuditEvent
from portal.services import accounts, audit
from tests.conftest import PASSWORD, login
from tests.test_migrations import empty_database_url


def actions(db) -> list[str]:
    db.rollback()
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_updates_and_deletes_of_audit_events_are_refused_by_the_database(db, world):
    audit.record(db, world.eu_admin, "test.event", "user", world.eu_admin.id)
    db.commit()
    event_id = db.scalar(select(func.max(AuditEvent.id)))
    for statement in (update(AuditEvent).where(AuditEvent.id == event_id).values(action="forged"),
                      delete(AuditEvent).where(AuditEvent.id == event_id),
                      delete(AuditEvent)):
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(statement)
        db.rollback()
    assert db.get(AuditEvent, event_id).action == "test.event"
    audit.record(db, None, "test.second", "user", None)  # appending still works
    db.commit()


def test_the_migration_creates_the_append_only_triggers(tmp_path):
    engine = make_engine(empty_database_url(tmp_path))
    try:
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO audit_events (created_at, action, target_type, details) "
                                    "VALUES (CURRENT_TIMESTAMP, 'x', 'y', '{}')"))
        for statement in ("UPDATE audit_events SET action = 'z'", "DELETE FROM audit_events"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def test_what_officials_and_admins_do_is_recorded_without_text_or_secrets(app, client, db, world):
    secret_body = "Confidential reply text that must stay out of the log"
    client.post("/login", data={"email": world.eu_member.email, "password": "wrong password here"})
    login(client, world.eu_member)
    note = world.notes["joint"]
    client.post(f"/notes/{note.id}/edit", data={"title": "Edited", "body": "Confidential edit text", "lang": "en",
                                                "marking": "limited", "answer_by": "2031-01-01"})
    client.post(f"/notes/{note.id}/replies", data={"body": secret_body})
    admin = app.test_client()
    login(admin, world.eu_admin)
    admin.post("/admin/users", data={"email": "new@ec.example.eu", "name": "New", "role": "member",
                                     "organisation_id": world.eu_member.organisation_id})
    admin.post(f"/admin/users/{world.outsider.id}", data={"role": "moderator"})
    admin.post(f"/admin/channels/{world.private.slug}/members", data={"email": world.outsider.email})
    admin.post(f"/admin/channels/{world.private.slug}", data={"name_en": "Renamed", "visibility": "private"})
    admin.post("/admin/organisations", data={"slug": "new-org", "name": "New Org", "side": "jp"})
    admin.post(f"/notes/{note.id}/delete")
    admin.post(f"/notes/{note.id}/restore")
    recorded = actions(db)
    for expected in ("user.sign_in_failed", "user.sign_in", "note.edit", "user.create", "user.invite",
                     "user.set_role", "channel.add_member", "channel.update", "organisation.create",
                     "user.enrol_two_factor", "note.delete", "note.restore"):
        assert expected in recorded, expected
    details = " ".join(str(d) for d in db.scalars(select(AuditEvent.details)))
    for secret in (secret_body, "Confidential edit text", PASSWORD, "wrong password here"):
        assert secret not in details


@pytest.fixture
def admin(app, world):
    client = app.test_client()
    login(client, world.eu_admin)
    return client


def seed(db, world, count: int) -> None:
    """count events by the member on notes, and one by the JP admin a week ago, on a user."""
    for i in range(count):
        audit.record(db, world.eu_member, "note.edit", "note", 1000 + i, revision=i)
    db.add(AuditEvent(actor_id=world.jp_admin.id, action="user.set_role", target_type="user",
                      target_id=world.jp_member.id, created_at=utcnow() - timedelta(days=7), details={}))
    db.commit()


def test_the_admin_page_filters_and_pages(admin, db, world):
    seed(db, world, 60)
    page = admin.get("/admin/audit?action=note.edit").get_data(as_text=True)
    assert "60 events." in page and "note:1059" in page and "note:1009" not in page and "Older" in page
    second = admin.get("/admin/audit?action=note.edit&page=2").get_data(as_text=True)
    assert "note:1009" in second and "note:1059" not in second and "Newer" in second
    by_actor = admin.get("/admin/audit?actor=AIKO@jftc").get_data(as_text=True)
    assert "1 event." in by_actor and f"user:{world.jp_member.id}" in by_actor
    by_target = admin.get("/admin/audit?target=note:1042").get_data(as_text=True)
    assert "1 event." in by_target and "revision=42" in by_target
    week_ago = (utcnow() - timedelta(days=7)).date()
    old = admin.get(f"/admin/audit?since={week_ago}&until={week_ago}").get_data(as_text=True)
    assert "1 event." in old and "user.set_role" in old
    assert "0 events." in admin.get("/admin/audit?action=user.set_role&since=2030-01-01").get_data(as_text=True)
    bad = admin.get("/admin/audit?since=yesterday&target=note:x")
    assert bad.status_code == 400
    assert "Write dates as YYYY-MM-DD." in bad.get_data(as_text=True)
    assert 'value="yesterday"' in bad.get_data(as_text=True)  # what was typed stays


def test_csv_export_is_filtered_injection_safe_and_audited(admin, db, world):
    seed(db, world, 3)
    hostile = accounts.create_user(db, email="=HYPERLINK(1)@ec.example.eu", name="Hostile",
                                   organisation=world.eu_member.organisation, password=PASSWORD)
    audit.record(db, hostile, "note.edit", "note", 7, title="-2+3")
    db.commit()
    page = admin.get("/admin/audit?action=note.edit").get_data(as_text=True)
    assert '<input type="hidden" name="action" value="note.edit">' in page  # the form carries the filters
    response = admin.post("/admin/audit/export.csv", data={"action": "note.edit"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == ["id", "created_at (UTC)", "actor", "action"]
    assert len(rows) == 1 + 4 and {row[3] for row in rows[1:]} == {"note.edit"}
    hostile_row = next(row for row in rows if "hyperlink" in row[2])
    assert hostile_row[2] == "'=hyperlink(1)@ec.example.eu"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    [export] = db.scalars(select(AuditEvent).where(AuditEvent.action == "audit.export"))
    assert export.actor_id == world.eu_admin.id
    assert export.details == {"count": 4, "filters": {"action": "note.edit"}}
    assert admin.post("/admin/audit/export.csv", data={"since": "bad"}).status_code == 400


def test_audit_pages_are_for_admins_only(app, world):
    member = app.test_client()
    login(member, world.eu_moderator)
    assert member.get("/admin/audit").status_code == 404
    assert member.post("/admin/audit/export.csv").status_code == 404
    assert app.test_client().get("/admin/audit").status_code == 302
