"""Server-side sessions: new ids at sign-in, timeouts, ending them, and the user's own list."""
from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select

from portal.db import utcnow
from portal.models import AuditEvent, UserSession
from portal.services import accounts
from tests.conftest import PASSWORD, login
from tests.test_security import signed_in_user_id


def rows(db, user=None) -> list[UserSession]:
    db.rollback()
    query = select(UserSession).order_by(UserSession.id)
    if user is not None:
        query = query.where(UserSession.user_id == user.id)
    return list(db.scalars(query))


def signed_in(client) -> bool:
    return client.get("/channels").status_code == 200


def age(db, user, **delta) -> None:
    """Move a user's sessions back in time, as if that long had passed."""
    for row in rows(db, user):
        row.created_at -= timedelta(**delta.get("created", {}))
        row.last_seen_at -= timedelta(**delta.get("seen", {}))
    db.commit()


def test_sign_in_makes_a_new_session_id_and_stores_only_its_hash(app, client, db, world):
    with client.session_transaction() as cookie:
        cookie["_user_id"] = "planted-by-an-attacker"
    assert not signed_in(client)
    login(client, world.eu_member)
    key = signed_in_user_id(client)
    assert key and key != "planted-by-an-attacker"
    [row] = rows(db, world.eu_member)
    assert row.id_hash == hashlib.sha256(key.encode()).hexdigest() and key not in row.id_hash
    login(client := app.test_client(), world.eu_member)
    assert signed_in_user_id(client) != key and len(rows(db, world.eu_member)) == 2


def test_sign_out_ends_the_session_on_the_server(app, client, db, world):
    login(client, world.eu_member)
    with client.session_transaction() as cookie:
        stolen = dict(cookie)
    assert client.post("/logout").status_code == 302
    assert rows(db, world.eu_member) == []
    replay = app.test_client()
    with replay.session_transaction() as cookie:
        cookie.update(stolen)  # the cookie as it was before signing out
    assert not signed_in(replay)
    assert db.scalar(select(AuditEvent.action).where(AuditEvent.action == "user.sign_out"))


def test_an_idle_session_ends(client, db, world, app):
    login(client, world.eu_member)
    age(db, world.eu_member, seen={"minutes": app.config["SESSION_IDLE_MINUTES"] - 1})
    assert signed_in(client)  # in use: its idle time starts again
    age(db, world.eu_member, seen={"minutes": app.config["SESSION_IDLE_MINUTES"] + 1})
    assert not signed_in(client)
    assert rows(db, world.eu_member) == []


def test_a_session_ends_after_the_absolute_limit_even_when_in_use(client, db, world, app):
    login(client, world.eu_member)
    age(db, world.eu_member, created={"hours": app.config["SESSION_ABSOLUTE_HOURS"], "minutes": -1})
    assert signed_in(client)
    age(db, world.eu_member, created={"minutes": 2})
    assert not signed_in(client)


def test_last_seen_is_written_at_most_once_a_minute(client, db, world):
    login(client, world.eu_member)
    [row] = rows(db, world.eu_member)
    for _ in range(3):
        assert signed_in(client)
    assert rows(db, world.eu_member)[0].last_seen_at == row.last_seen_at  # no write per request
    age(db, world.eu_member, seen={"seconds": 61})
    assert signed_in(client)
    assert rows(db, world.eu_member)[0].last_seen_at >= utcnow() - timedelta(seconds=5)


def test_changing_the_password_ends_the_other_sessions_and_renews_this_one(app, client, db, world):
    other = app.test_client()
    login(other, world.eu_member)
    login(client, world.eu_member)
    before = signed_in_user_id(client)
    response = client.post("/account/password", data={"current": PASSWORD, "password": "a brand new passphrase 5",
                                                      "confirm": "a brand new passphrase 5"})
    assert response.status_code == 302
    assert signed_in(client) and signed_in_user_id(client) != before
    assert not signed_in(other)
    assert len(rows(db, world.eu_member)) == 1


def test_role_change_and_deactivation_end_every_session(app, client, db, world):
    member, outsider = app.test_client(), app.test_client()
    login(member, world.eu_member)
    login(outsider, world.outsider)
    login(client, world.eu_admin)
    client.post(f"/admin/users/{world.eu_member.id}", data={"role": "moderator"})
    assert not signed_in(member) and rows(db, world.eu_member) == []
    client.post(f"/admin/users/{world.outsider.id}", data={"is_active": "0"})
    assert not signed_in(outsider) and rows(db, world.outsider) == []
    assert signed_in(client)


def test_the_sessions_page_lists_and_ends_other_sessions(app, client, db, world):
    phone, laptop = app.test_client(), app.test_client()
    login(phone, world.eu_member)
    laptop.environ_base.update(HTTP_USER_AGENT="Laptop browser 1.0", REMOTE_ADDR="198.51.100.7")
    login(laptop, world.eu_member)
    login(client, world.eu_member)
    page = client.get("/account/sessions").get_data(as_text=True)
    assert "Laptop browser 1.0" in page and "198.51.100.7" in page and "this browser" in page
    laptop_row = next(r for r in rows(db, world.eu_member) if r.address == "198.51.100.7")
    assert client.post(f"/account/sessions/{laptop_row.id}/end").status_code == 302
    assert not signed_in(laptop) and signed_in(phone) and signed_in(client)
    assert client.post("/account/sessions/end-others").status_code == 302
    assert not signed_in(phone) and signed_in(client)
    assert len(rows(db, world.eu_member)) == 1
    # Someone else's session is not there to end.
    login(other := app.test_client(), world.jp_member)
    [theirs] = rows(db, world.jp_member)
    assert client.post(f"/account/sessions/{theirs.id}/end").status_code == 404
    assert signed_in(other)


def test_deactivation_by_the_service_ends_sessions_without_the_web(app, client, db, world):
    login(client, world.jp_member)
    accounts.set_active(db, world.jp_member, False, actor=world.jp_admin)
    db.commit()
    assert not signed_in(client)
