"""Rate limits on sign-in, posting and search: per user, per address, shared by every process.

The web tests use day-long windows: fixed windows restart on the clock, and a short one could restart
in the middle of a slow test."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.db import engine, utcnow
from portal.errors import RateLimited, ValidationError
from portal.models import Note, Reply
from portal.services import ratelimits
from tests.conftest import PASSWORD, login, make_app


def count(db, model) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model))


def assert_limited(response, what: str) -> str:
    body = response.get_data(as_text=True)
    assert response.status_code == 429, body[:300]
    assert f"Too many {what} in a short time. Try again in" in body
    assert 0 < int(response.headers["Retry-After"]) <= 86400
    return body


def test_sign_in_is_limited_per_account_and_the_form_keeps_the_address(app, client, world):
    app.config["RATE_LIMIT_SIGN_IN_USER"] = "3/86400"
    for _ in range(3):
        assert client.post("/login", data={"email": world.eu_member.email, "password": "x"}).status_code == 401
    body = assert_limited(client.post("/login", data={"email": world.eu_member.email, "password": PASSWORD}),
                          "sign-in attempts")
    assert f'value="{world.eu_member.email}"' in body
    assert client.get("/").status_code == 302  # even the right password waits
    # Another account from the same address is not held up.
    assert client.post("/login", data={"email": world.jp_member.email, "password": PASSWORD}).status_code == 302


def test_sign_in_is_limited_per_address(app, world):
    app.config["RATE_LIMIT_SIGN_IN_ADDRESS"] = "2/86400"
    here, there = app.test_client(), app.test_client()
    there.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for email in ("a@example.org", "b@example.org"):
        here.post("/login", data={"email": email, "password": "x"})
    assert_limited(here.post("/login", data={"email": world.eu_member.email, "password": PASSWORD}),
                   "sign-in attempts")
    assert there.post("/login", data={"email": world.eu_member.email, "password": PASSWORD}).status_code == 302


def test_the_code_step_counts_toward_the_sign_in_limit(app, client, world):
    login(app.test_client(), world.eu_admin)  # enrols
    app.config["RATE_LIMIT_SIGN_IN_USER"] = "3/86400"
    client.post("/login", data={"email": world.eu_admin.email, "password": PASSWORD})
    client.post("/login/code", data={"code": "000000"})
    client.post("/login/code", data={"code": "000001"})
    assert_limited(client.post("/login/code", data={"code": "000002"}), "sign-in attempts")


@pytest.fixture
def second_app(tmp_path, app):
    """Another app on the same database: another gunicorn worker, or another host."""
    apps = []

    def make(**overrides):
        apps.append(make_app(tmp_path, **overrides))
        return apps[-1]

    yield make
    for other in apps:
        with other.app_context():
            engine().dispose()


def test_behind_a_proxy_the_forwarded_address_counts(second_app, world):
    # PROXY_COUNT is read at start-up, hence an app of its own.
    client = second_app(PROXY_COUNT=1, RATE_LIMIT_SIGN_IN_ADDRESS="1/86400").test_client()
    first = {"X-Forwarded-For": "198.51.100.1"}
    client.post("/login", data={"email": "a@example.org", "password": "x"}, headers=first)
    assert_limited(client.post("/login", data={"email": "b@example.org", "password": "x"}, headers=first),
                   "sign-in attempts")
    other = client.post("/login", data={"email": "b@example.org", "password": "x"},
                        headers={"X-Forwarded-For": "198.51.100.2"})
    assert other.status_code == 401


def test_posting_notes_is_limited_per_user_and_keeps_what_was_typed(app, client, db, world):
    app.config["RATE_LIMIT_POST_USER"] = "2/86400"
    login(client, world.eu_member)
    form = {"title": "A note", "body": "Typed with care", "lang": "en", "marking": "limited"}
    for _ in range(2):
        assert client.post(f"/channels/{world.joint.slug}/new/update", data=form).status_code == 302
    notes_before = count(db, Note)
    body = assert_limited(client.post(f"/channels/{world.joint.slug}/new/update",
                                      data={**form, "title": "Third note"}), "posts")
    assert 'value="Third note"' in body and "Typed with care" in body
    assert count(db, Note) == notes_before
    # Replies share the posting limit.
    note = world.notes["joint"]
    replies_before = count(db, Reply)
    body = assert_limited(client.post(f"/notes/{note.id}/replies", data={"body": "A careful reply"}), "posts")
    assert "A careful reply</textarea>" in body
    assert count(db, Reply) == replies_before
    # Another official is not held up.
    other = app.test_client()
    login(other, world.jp_member)
    assert other.post(f"/notes/{note.id}/replies", data={"body": "Mine"}).status_code == 302


def test_editing_counts_toward_the_posting_limit_and_keeps_what_was_typed(app, client, db, world):
    """An edit is a new revision, indexed and shown to every reader: as costly as a post."""
    app.config["RATE_LIMIT_POST_USER"] = "1/86400"
    login(client, world.eu_member)
    note, reply = world.notes["joint"], world.replies["joint"]
    assert client.post(f"/notes/{note.id}/replies", data={"body": "A first reply"}).status_code == 302
    body = assert_limited(client.post(f"/notes/{note.id}/edit", data={
        "title": "A better title", "body": "Reworded with care", "lang": "en", "marking": "limited",
        "answer_by": note.answer_by.isoformat()}), "posts")
    assert 'value="A better title"' in body and "Reworded with care" in body
    body = assert_limited(client.post(f"/replies/{reply.id}/edit", data={"body": "A reworded reply"}), "posts")
    assert "A reworded reply</textarea>" in body
    db.rollback()
    assert (note.revision, reply.revision) == (1, 1)


def test_a_refused_post_does_not_count(app, client, world):
    app.config["RATE_LIMIT_POST_USER"] = "1/86400"
    login(client, world.eu_member)
    archived = world.notes["archived"]
    for _ in range(3):
        assert client.post(f"/notes/{archived.id}/replies", data={"body": "x"}).status_code == 403
    assert client.post(f"/notes/{world.notes['joint'].id}/replies", data={"body": "x"}).status_code == 302


def test_search_is_limited_per_user_and_keeps_the_query(app, client, world):
    app.config["RATE_LIMIT_SEARCH_USER"] = "2/86400"
    login(client, world.eu_member)
    for _ in range(2):
        assert client.get("/search?q=question").status_code == 200
    body = assert_limited(client.get("/search?q=platform+duties"), "searches")
    assert 'value="platform duties"' in body
    assert client.get("/search").status_code == 200  # the empty search page is not a search


def test_limits_are_shared_by_every_process_on_the_database(second_app, app, client, world):
    """Two apps on one database stand for two gunicorn workers, or two hosts sharing PostgreSQL."""
    app.config["RATE_LIMIT_SEARCH_USER"] = "3/86400"
    other_worker = second_app(RATE_LIMIT_SEARCH_USER="3/86400").test_client()
    login(client, world.eu_member)
    login(other_worker, world.eu_member)
    assert client.get("/search?q=one").status_code == 200
    assert other_worker.get("/search?q=two").status_code == 200
    assert client.get("/search?q=three").status_code == 200
    assert_limited(other_worker.get("/search?q=four"), "searches")


def test_a_window_ends_and_off_disables_a_limit(app, db):
    now = utcnow().replace(second=0, microsecond=0)
    with app.test_request_context():
        app.config["RATE_LIMIT_SEARCH_USER"] = "2/60"
        for _ in range(2):
            ratelimits.hit(db, "search", user_key="7", address=None, now=now)
        with pytest.raises(RateLimited) as raised:
            ratelimits.hit(db, "search", user_key="7", address=None, now=now + timedelta(seconds=20))
        assert raised.value.retry_after == 41
        ratelimits.hit(db, "search", user_key="7", address=None, now=now + timedelta(seconds=60))
        app.config["RATE_LIMIT_SEARCH_USER"] = "off"
        for _ in range(5):
            ratelimits.hit(db, "search", user_key="7", address=None, now=now + timedelta(seconds=61))
        app.config["RATE_LIMIT_SEARCH_USER"] = "lots"
        with pytest.raises(ValidationError, match="hits/seconds"):
            ratelimits.hit(db, "search", user_key="7", address=None, now=now)
