"""In-app notifications: who gets one, mention parsing, permissions now and later, the pages."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal.markup import render_markdown
from portal.models import Notification
from portal.services import accounts, acknowledgements, channels, notes, notifications, replies
from tests.conftest import PASSWORD, signed_in_client, statements_to_get


def _received(db, note=None) -> set[tuple[int, str]]:
    """(user id, kind) of every notification, about one note if given."""
    db.expire_all()
    query = select(Notification.user_id, Notification.kind)
    if note is not None:
        query = query.where(Notification.note_id == note.id)
    return {tuple(row) for row in db.execute(query)}


@pytest.mark.parametrize("markdown, expected", [
    ("Thanks @eva.", ["eva"]),
    ("@Eva, @mia and @eva again", ["eva", "mia"]),
    ("cc @eva@ec.example.eu.", ["eva@ec.example.eu"]),
    ("Write to eva@ec.example.eu", []),  # an address in a sentence is not a mention
    ("@@eva", []),
    ("See https://example.org/@eva", []),
    ("`@eva` and\n\n```\n@mia\n```", []),  # nothing in code
    ("佐藤さん＠kenji ご確認ください", ["kenji"]),  # full-width at sign, Japanese right before it
    ("宛先:@jftc", ["jftc"]),
    ("(@dg-cnect)", ["dg-cnect"]),
    ("@ alone, @-dash, @.", []),
    ("**@eva**", ["eva"]),
])
def test_mention_parsing(markdown, expected):
    assert notifications.mentions(render_markdown(markdown)) == expected


def test_a_reply_notifies_the_note_author_and_the_author_of_the_reply_answered(app, db, world):
    note = world.notes["joint"]  # by eva
    first = replies.post_reply(db, note, world.jp_member, "A reply from kenji")
    db.commit()
    assert _received(db, note) == {(world.eu_member.id, "reply")}
    replies.post_reply(db, note, world.eu_moderator, "Answering kenji", parent=first)
    db.commit()
    assert _received(db, note) == {(world.eu_member.id, "reply"), (world.jp_member.id, "reply")}
    assert len(db.scalars(select(Notification).where(Notification.user_id == world.eu_member.id)).all()) == 2


def test_never_for_the_actor(app, db, world):
    note = world.notes["joint"]  # by eva
    replies.post_reply(db, note, world.eu_member, "My own reply mentioning @eva and @dg-cnect")
    db.commit()
    assert (world.eu_member.id, "reply") not in _received(db)
    # The organisation mention reaches eva's colleagues, never eva.
    assert _received(db, note) == {(world.eu_moderator.id, "org_mention"), (world.eu_admin.id, "org_mention"),
                                   (world.outsider.id, "org_mention")}


def test_mentions_of_people_and_organisations(app, db, world):
    note = notes.post_note(db, world.joint, world.eu_member, "update", {
        "title": "Mentions", "body": "@kenji please look; @aiko@jftc.example.jp too; and @nobody"})
    db.commit()
    assert _received(db, note) == {(world.jp_member.id, "mention"), (world.jp_admin.id, "mention")}
    reply = replies.post_reply(db, note, world.jp_member, "Forwarding to @jftc")
    db.commit()
    got = _received(db, note)
    # aiko: mentioned with her organisation; eva: the author, notified of the reply once, as a reply.
    assert (world.jp_admin.id, "org_mention") in got and (world.eu_member.id, "reply") in got
    assert not any(user_id == world.eu_member.id and kind != "reply" for user_id, kind in got)
    assert db.scalar(select(Notification).where(Notification.reply_id == reply.id,
                                                Notification.user_id == world.eu_member.id)).kind == "reply"


def test_an_ambiguous_handle_notifies_nobody(app, db, world):
    other = accounts.create_organisation(db, slug="edps", name="EDPS", side="eu")
    accounts.create_user(db, email="eva@edps.example.eu", name="Eva Two", organisation=other, password=PASSWORD)
    note = notes.post_note(db, world.joint, world.jp_member, "update", {"title": "Ambiguous", "body": "Hi @eva"})
    db.commit()
    assert _received(db, note) == set()
    note = notes.post_note(db, world.joint, world.jp_member, "update",
                           {"title": "Precise", "body": "Hi @eva@ec.example.eu"})
    db.commit()
    assert _received(db, note) == {(world.eu_member.id, "mention")}


def test_only_those_who_can_see_the_note_are_notified(app, db, world):
    # A mention of a JP official or organisation in an EU-only channel notifies nobody on the JP side.
    note = notes.post_note(db, world.eu, world.eu_member, "update",
                           {"title": "EU only", "body": "@kenji @jftc @otto"})
    db.commit()
    assert _received(db, note) == {(world.outsider.id, "mention")}
    # In a private channel, only its members.
    note = notes.post_note(db, world.private, world.jp_member, "update",
                           {"title": "Private", "body": "@dg-cnect"})
    db.commit()
    assert _received(db, note) == {(world.eu_member.id, "org_mention")}


def test_an_inactive_account_is_not_notified(app, db, world):
    world.eu_member.is_active = False
    replies.post_reply(db, world.notes["joint"], world.jp_member, "To a deactivated author")
    db.commit()
    assert _received(db) == set()


def test_accepted_answer(app, db, world):
    question = world.notes["joint"]  # asked by eva
    answer = replies.post_reply(db, question, world.jp_member, "The answer")
    db.commit()
    db.execute(Notification.__table__.delete())
    notes.accept_answer(db, question, answer, world.eu_moderator)  # a moderator accepts for eva
    db.commit()
    assert _received(db, question) == {(world.eu_member.id, "answer_accepted"),
                                       (world.jp_member.id, "answer_accepted")}
    db.execute(Notification.__table__.delete())
    notes.accept_answer(db, question, answer, world.eu_member)  # the asker herself: only the answerer
    db.commit()
    assert _received(db, question) == {(world.jp_member.id, "answer_accepted")}


def test_acknowledgement_request_notifies_the_side_asked(app, db, world):
    note = world.notes["joint"]
    acknowledgements.request_acknowledgement(db, note, world.eu_member)
    db.commit()
    assert _received(db, note) == {(world.jp_member.id, "acknowledgement"), (world.jp_admin.id, "acknowledgement")}
    note = world.notes["private"]
    acknowledgements.request_acknowledgement(db, note, world.jp_member)
    db.commit()
    assert _received(db, note) == {(world.eu_member.id, "acknowledgement")}  # the one EU member


def test_overdue_questions_from_the_cli(app, runner, db, world):
    question = world.notes["joint"]
    question.answer_by = date.today() - timedelta(days=1)
    world.notes["eu"].answer_by = date.today()  # due today: not overdue yet
    db.commit()
    result = runner.invoke(args=["notifications", "overdue"])
    assert result.exit_code == 0 and "1 overdue notifications created." in result.output
    assert _received(db) == {(world.eu_member.id, "overdue")}
    # Running again (cron) does not repeat it.
    assert "0 overdue" in runner.invoke(args=["notifications", "overdue"]).output
    # Given a later date, which passes in turn, the question goes overdue again.
    db.execute(Notification.__table__.update().values(created_at=question.created_at - timedelta(days=30)))
    db.commit()
    assert "1 overdue" in runner.invoke(args=["notifications", "overdue"]).output
    # Answered questions are not overdue.
    question.question_state = "answered"
    db.execute(Notification.__table__.delete())
    db.commit()
    assert "0 overdue" in runner.invoke(args=["notifications", "overdue"]).output


def test_unread_count_in_the_header_and_opening_one(app, db, world):
    note = world.notes["joint"]
    reply = replies.post_reply(db, note, world.jp_member, "Reply one")
    replies.post_reply(db, note, world.jp_member, "Reply two")
    db.commit()
    eva = signed_in_client(app, world.eu_member)
    for path in ("/", "/channels", f"/notes/{note.id}", "/search?q=x"):
        page = eva.get(path).get_data(as_text=True)
        assert re.search(r'Notifications <span class="count">2<span class="visually-hidden"> unread', page), path
    listing = eva.get("/notifications").get_data(as_text=True)
    links = re.findall(r'action="(/notifications/\d+)"', listing)
    assert len(links) == 2 and listing.count('class="notification unread"') == 2
    # Newest first: the second reply's notification is listed first; the first one opens reply one.
    response = eva.post(links[1])
    assert response.status_code == 302 and response.location.endswith(f"/notes/{note.id}#reply-{reply.id}")
    assert 'Notifications <span class="count">1<' in eva.get("/").get_data(as_text=True)
    assert eva.post("/notifications/read").status_code == 302
    assert 'class="count"' not in eva.get("/").get_data(as_text=True)
    assert 'class="notification unread"' not in eva.get("/notifications").get_data(as_text=True)


def test_someone_elses_notification_is_404(app, db, world):
    replies.post_reply(db, world.notes["joint"], world.jp_member, "For eva")
    db.commit()
    mine = db.scalar(select(Notification.id))
    response = signed_in_client(app, world.outsider).post(f"/notifications/{mine}")
    assert response.status_code == 404
    assert db.get(Notification, mine).read_at is None


def test_removed_from_the_channel_no_longer_sees_its_notifications(app, db, world):
    note = world.notes["private"]  # by kenji; eva is a member
    replies.post_reply(db, note, world.jp_member, "Hello @eva")
    db.commit()
    notification = db.scalar(select(Notification).where(Notification.user_id == world.eu_member.id))
    assert notification is not None
    channels.remove_member(db, world.private, world.eu_member, actor=world.eu_admin)
    db.commit()
    eva = signed_in_client(app, world.eu_member)
    assert 'class="count"' not in eva.get("/").get_data(as_text=True)
    listing = eva.get("/notifications").get_data(as_text=True)
    assert note.title not in listing and "No notifications." in listing
    assert eva.post(f"/notifications/{notification.id}").status_code == 404
    # Added back, she sees it again: the rule is applied when reading, not only when creating.
    channels.add_member(db, world.private, world.eu_member, actor=world.eu_admin)
    db.commit()
    assert 'Notifications <span class="count">1<' in eva.get("/").get_data(as_text=True)


def test_a_deleted_note_hides_its_notifications(app, db, world):
    note = world.notes["joint"]
    replies.post_reply(db, note, world.jp_member, "Reply")
    notes.delete_note(db, note, world.eu_moderator)
    db.commit()
    assert "No notifications." in signed_in_client(app, world.eu_member).get("/notifications").get_data(as_text=True)


def test_notifications_page_is_paginated(app, db, world):
    app.config["PAGE_SIZE"] = 3
    note = world.notes["joint"]
    for n in range(5):
        replies.post_reply(db, note, world.jp_member, f"Reply number {n}")
    db.commit()
    eva = signed_in_client(app, world.eu_member)
    first = eva.get("/notifications").get_data(as_text=True)
    second = eva.get("/notifications?page=2").get_data(as_text=True)
    ids = [re.findall(r'action="/notifications/(\d+)"', page) for page in (first, second)]
    assert [len(i) for i in ids] == [3, 2]
    every = [int(i) for i in ids[0] + ids[1]]
    assert every == sorted(every, reverse=True)
    assert "Older →" in first and "← Newer" in second and "Older →" not in second


def test_the_notifications_page_queries_do_not_grow_with_its_rows(app, db, world):
    note = world.notes["joint"]
    eva = signed_in_client(app, world.eu_member)


    replies.post_reply(db, note, world.jp_member, "One")
    db.commit()
    one = statements_to_get(eva, "/notifications")
    for author in (world.jp_admin, world.eu_moderator, world.outsider, world.jp_member):
        replies.post_reply(db, note, author, "More")
    db.commit()
    assert statements_to_get(eva, "/notifications") == one
