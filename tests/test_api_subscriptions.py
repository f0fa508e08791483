"""Subscriptions and notifications through the API: the same services, rules and results as the web pages."""
from __future__ import annotations

from sqlalchemy import select

from portal.db import engine
from portal.models import Notification, Subscription
from portal.services import channels, notes, notifications, replies, subscriptions
from tests.conftest import login
from tests.test_api import api_for, problem_of  # noqa: F401 (api_for is a fixture)


def subscription_rows(db) -> list[tuple]:
    """Every subscription of every user, as stored."""
    db.rollback()
    with engine().connect() as connection:
        return connection.execute(select(Subscription.__table__).order_by(Subscription.id)).all()


def listed(script) -> list[dict]:
    response = script.get("/api/v1/subscriptions")
    assert response.status_code == 200
    return response.get_json()["items"]


# Subscriptions -----------------------------------------------------------------------------------

def test_create_list_and_delete_agree_with_the_web_page_and_the_service(app, db, world, api_for):
    script = api_for(world.eu_member)
    browser = app.test_client()
    login(browser, world.eu_member)
    assert [(s["target"], s["frequency"]) for s in listed(script)] == [("all", "weekly")]  # the default

    created = script.post("/api/v1/subscriptions", json={"channel": world.joint.slug, "frequency": "daily"})
    assert created.status_code == 201
    made = created.get_json()
    assert (made["target"], made["channel"], made["frequency"], made["is_muted"]) == (
        "channel", world.joint.slug, "daily", False)
    assert "Channel: Joint channel" in browser.get("/subscriptions").get_data(as_text=True)

    # What the web form adds, the API lists, in the service's order.
    assert browser.post("/subscriptions", data={"target": "topic", "topic": "dsa", "frequency": "weekly"},
                        follow_redirects=False).status_code == 302
    db.expire_all()
    from_service = [s.id for s in subscriptions.for_user(db, world.eu_member)]
    items = listed(script)
    assert [s["id"] for s in items] == from_service
    assert [(s["target"], s["topic"]) for s in items][1] == ("topic", "dsa")

    note = script.post("/api/v1/subscriptions", json={"note_id": world.notes["joint"].id, "frequency": "in-app"})
    assert note.status_code == 201 and note.get_json()["note_id"] == world.notes["joint"].id
    everything = script.post("/api/v1/subscriptions", json={"frequency": "immediate"})
    assert everything.get_json()["target"] == "all"
    # Subscribing to everything again changed the default's frequency; it made no second one.
    assert [s["frequency"] for s in listed(script) if s["target"] == "all"] == ["immediate"]

    assert script.delete(f"/api/v1/subscriptions/{made['id']}").status_code == 204
    assert made["id"] not in [s["id"] for s in listed(script)]
    assert made["id"] not in [s.id for s in subscriptions.for_user(db, world.eu_member)]
    assert "Channel: Joint channel" not in browser.get("/subscriptions").get_data(as_text=True)


def test_the_list_carries_an_etag(db, world, api_for):
    script = api_for(world.eu_member)
    first = script.get("/api/v1/subscriptions")
    assert script.get("/api/v1/subscriptions", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    script.post("/api/v1/subscriptions", json={"topic": "dsa", "frequency": "daily"})
    assert script.get("/api/v1/subscriptions", headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


def test_bad_subscriptions_name_the_field_and_change_nothing(db, world, api_for):
    script = api_for(world.outsider)  # no member of the private channel
    before = subscription_rows(db)
    cases = [
        ({"topic": "no-such-topic", "frequency": "daily"}, {"topic"}),
        ({"channel": world.private.slug, "frequency": "daily"}, {"channel"}),  # invisible: as if missing
        ({"channel": "no-such-channel", "frequency": "daily"}, {"channel"}),
        ({"note_id": world.notes["private"].id, "frequency": "daily"}, {"note_id"}),
        ({"note_id": 999999, "frequency": "daily"}, {"note_id"}),
        ({"topic": "dsa", "frequency": "hourly"}, {"frequency"}),
        ({"topic": "dsa"}, {"frequency"}),
        ({"topic": "dsa", "frequency": "daily", "colour": "red"}, {"colour"}),
        ({"topic": "dsa", "channel": world.joint.slug, "frequency": "daily"}, {"topic", "channel"}),
        ({"note_id": "12", "frequency": "daily"}, {"note_id"}),
    ]
    for send, fields in cases:
        problem = problem_of(script.post("/api/v1/subscriptions", json=send), 422)
        assert set(problem["errors"]) == fields, (send, problem)
    # The invisible channel gets the answer a missing one gets: the error confirms nothing.
    hidden = problem_of(script.post("/api/v1/subscriptions", json=cases[1][0]), 422)["errors"]["channel"]
    missing = problem_of(script.post("/api/v1/subscriptions", json=cases[2][0]), 422)["errors"]["channel"]
    assert hidden.replace(world.private.slug, "?") == missing.replace("no-such-channel", "?")
    assert subscription_rows(db) == before


def test_another_users_subscription_is_404_and_stays(db, world, api_for):
    eva = api_for(world.eu_member)
    hers = listed(eva)[0]["id"]
    before = subscription_rows(db)
    problem_of(api_for(world.jp_member).delete(f"/api/v1/subscriptions/{hers}"), 404)
    problem_of(eva.delete("/api/v1/subscriptions/999999"), 404)
    assert subscription_rows(db) == before
    assert hers not in [s["id"] for s in listed(api_for(world.jp_member))]


def test_a_read_token_cannot_subscribe_or_unsubscribe(db, world, api_for):
    reader = api_for(world.eu_member, scope="read")
    own = listed(reader)[0]["id"]
    before = subscription_rows(db)
    problem_of(reader.post("/api/v1/subscriptions", json={"topic": "dsa", "frequency": "daily"}), 403)
    problem_of(reader.delete(f"/api/v1/subscriptions/{own}"), 403)
    assert subscription_rows(db) == before


# Notifications -----------------------------------------------------------------------------------

def notification_rows(db) -> list[tuple]:
    db.rollback()
    with engine().connect() as connection:
        return connection.execute(select(Notification.__table__).order_by(Notification.id)).all()


def test_notifications_newest_first_with_unread_state_and_cursor_pages(app, db, world, api_for):
    note = world.notes["joint"]  # by eva
    for n in range(5):
        replies.post_reply(db, note, world.jp_member, f"Reply number {n}")
    db.commit()
    eva = api_for(world.eu_member)
    first = eva.get("/api/v1/notifications?limit=3").get_json()
    second = eva.get(f"/api/v1/notifications?limit=3&cursor={first['next_cursor']}").get_json()
    assert second["next_cursor"] is None
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)
    # The same rows, in the same order, as the web page's query.
    web, _more = notifications.page(db, world.eu_member)
    assert ids == [row.id for row in web]
    item = first["items"][0]
    assert (item["kind"], item["note_id"], item["note_title"], item["is_read"]) == ("reply", note.id, note.title, False)
    assert item["actor"]["id"] == world.jp_member.id and item["url"].endswith(f"#reply-{item['reply_id']}")
    problem_of(eva.get("/api/v1/notifications?cursor=forged"), 400)
    notes_cursor = eva.get("/api/v1/notes?limit=1").get_json()["next_cursor"]
    assert notes_cursor
    problem = problem_of(eva.get(f"/api/v1/notifications?cursor={notes_cursor}"), 400)
    assert problem["detail"] == "The cursor belongs to another listing."


def test_reading_one_and_all(app, db, world, api_for):
    note = world.notes["joint"]
    replies.post_reply(db, note, world.jp_member, "One")
    replies.post_reply(db, note, world.jp_member, "Two")
    db.commit()
    eva = api_for(world.eu_member)
    newest, older = eva.get("/api/v1/notifications").get_json()["items"]
    read = eva.post(f"/api/v1/notifications/{older['id']}/read")
    assert read.status_code == 200 and read.get_json()["is_read"] and read.get_json()["read_at"]
    states = {item["id"]: item["is_read"] for item in eva.get("/api/v1/notifications").get_json()["items"]}
    assert states == {newest["id"]: False, older["id"]: True}
    browser = app.test_client()
    login(browser, world.eu_member)
    assert 'Notifications <span class="count">1<' in browser.get("/").get_data(as_text=True)
    assert eva.post("/api/v1/notifications/read-all").get_json() == {"marked": 1}
    assert 'class="count"' not in browser.get("/").get_data(as_text=True)
    assert eva.post("/api/v1/notifications/read-all").get_json() == {"marked": 0}


def test_only_notifications_the_owner_may_still_see(db, world, api_for):
    note = world.notes["private"]  # by kenji; eva is a member
    replies.post_reply(db, note, world.jp_member, "Hello @eva")
    replies.post_reply(db, world.notes["eu"], world.eu_moderator, "On eva's note")
    db.commit()
    eva = api_for(world.eu_member)
    assert {item["note_id"] for item in eva.get("/api/v1/notifications").get_json()["items"]} == {
        note.id, world.notes["eu"].id}
    hidden = db.scalar(select(Notification.id).where(Notification.note_id == note.id))
    channels.remove_member(db, world.private, world.eu_member, actor=world.eu_admin)
    notes.delete_note(db, world.notes["eu"], world.eu_moderator)
    db.commit()
    assert eva.get("/api/v1/notifications").get_json()["items"] == []
    before = notification_rows(db)
    problem_of(eva.post(f"/api/v1/notifications/{hidden}/read"), 404)
    assert notification_rows(db) == before


def test_another_users_notification_is_404_and_a_read_token_cannot_mark(db, world, api_for):
    replies.post_reply(db, world.notes["joint"], world.jp_member, "For eva")
    db.commit()
    hers = db.scalar(select(Notification.id))
    before = notification_rows(db)
    problem_of(api_for(world.outsider).post(f"/api/v1/notifications/{hers}/read"), 404)
    assert api_for(world.outsider).get("/api/v1/notifications").get_json()["items"] == []
    reader = api_for(world.eu_member, scope="read")
    assert len(reader.get("/api/v1/notifications").get_json()["items"]) == 1
    problem_of(reader.post(f"/api/v1/notifications/{hers}/read"), 403)
    problem_of(reader.post("/api/v1/notifications/read-all"), 403)
    assert notification_rows(db) == before
