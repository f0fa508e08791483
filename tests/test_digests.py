"""Digests over a real SMTP server on localhost: content, permissions at send time, exactly-once delivery,
one-click unsubscribe, the in-app page and the token-authenticated Atom feeds."""
from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import event, func, select

from portal.db import engine, utcnow
from portal.models import DigestDelivery, DigestEvent, FeedToken, Subscription
from portal.services import accounts, channels, digests, notes, replies, subscriptions
from tests.conftest import login, prepared_app
from tests.smtp import SMTPServer, free_port

TODAY = date.today()
TOMORROW = (TODAY + timedelta(days=1)).isoformat()


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture
def app(tmp_path, template, smtp):
    app = prepared_app(tmp_path, template, SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port,
                       SMTP_SECURITY="none", MAIL_FROM="digests@portal.test")
    yield app
    with app.app_context():
        engine().dispose()


def follow(db, user, frequency="daily", **target):
    """Only this subscription: the default weekly one is removed so each test says what it follows."""
    for existing in subscriptions.for_user(db, user):
        subscriptions.remove(db, existing, actor=None)
    sub = subscriptions.subscribe(db, user, frequency=frequency, **target)
    db.commit()
    return sub


def send(runner, frequency="daily", at=TOMORROW, *extra):
    return runner.invoke(args=["digests", "send", "--frequency", frequency, "--at", at, *extra])


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


def post(db, channel, author, title, *, kind="update", marking="limited", topics=("dsa",), **extra):
    note = notes.post_note(db, channel, author, kind, {"title": title, "body": f"Body of {title}", "lang": "en",
                                                       "marking": marking, "topics": list(topics), **extra})
    db.commit()
    return note


# ---------------------------------------------------------------------------------------------------
# Content and permissions.


def test_topic_subscriber_gets_one_multipart_digest_with_what_they_may_read(app, db, world, smtp, runner):
    follow(db, world.eu_member, topic="dsa")
    post(db, world.joint, world.jp_member, "Joint app store update")
    post(db, world.jp, world.jp_member, "JP-only update")
    post(db, world.joint, world.jp_member, "Update on another topic", topics=("gdpr",))
    result = send(runner)
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output

    [message] = smtp.mailbox.to(world.eu_member.email)
    assert message.get_content_type() == "multipart/alternative"
    assert message["From"] == "digests@portal.test"
    text, html = text_of(message), html_of(message)
    for body in (text, html):
        assert "Joint app store update" in body
        assert "Question in joint" in body and "Question in private" in body and "Question in eu" in body
        assert "JP-only update" not in body and "Question in jp" not in body
        assert "Update on another topic" not in body
        assert "Digital Services Act" in body  # grouped under the topic subscribed to
        assert "Joint channel" in body and "Private channel" in body
    # Summary at the top and in the subject, and permalinks.
    assert "2 updates" not in text and "1 update" in text and "4 new questions" in text and "4 replies" in text
    assert "1 question awaits your side" in text  # the private question, addressed to the EU side
    assert message["Subject"].startswith("Daily digest: ")
    assert f"http://portal.test/notes/{world.notes['joint'].id}" in text
    assert f"http://portal.test/notes/{world.notes['joint'].id}#reply-{world.replies['joint'].id}" in text
    assert "<script" not in html
    # RFC 8058 one-click unsubscribe.
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<http://portal\.test/unsubscribe/[^>]+>", message["List-Unsubscribe"])


def test_rerun_sends_nothing_twice_and_each_send_is_audited(app, db, world, smtp, runner):
    follow(db, world.eu_member, topic="dsa")
    assert send(runner).exit_code == 0
    again = send(runner)
    assert again.exit_code == 0 and "sent 0, 1 already sent" in again.output
    assert len(smtp.mailbox.to(world.eu_member.email)) == 1
    from portal.models import AuditEvent
    assert db.scalar(select(func.count()).where(AuditEvent.action == "digest.send")) == 1


def test_next_period_has_only_what_is_new(app, db, world, smtp, runner):
    follow(db, world.eu_member, channel="joint-channel")
    assert send(runner).exit_code == 0
    later = post(db, world.joint, world.jp_member, "Posted the next day")
    db.execute(DigestEvent.__table__.update().where(DigestEvent.note_id == later.id)
               .values(created_at=datetime.combine(TODAY + timedelta(days=1), datetime.min.time()) + timedelta(hours=9)))
    db.commit()
    assert send(runner, at=(TODAY + timedelta(days=2)).isoformat()).exit_code == 0
    first, second = smtp.mailbox.to(world.eu_member.email)
    assert "Question in joint" in text_of(first) and "Posted the next day" not in text_of(first)
    assert "Posted the next day" in text_of(second) and "Question in joint" not in text_of(second)


def test_sensitive_notes_leave_only_their_channel(app, db, world, smtp, runner):
    follow(db, world.eu_member, topic="dsa")
    secret = post(db, world.joint, world.jp_member, "Secret investigation title", marking="sensitive")
    replies.post_reply(db, secret, world.jp_member, "Secret reply text")
    db.commit()
    assert send(runner).exit_code == 0
    [message] = smtp.mailbox.to(world.eu_member.email)
    raw = message.as_string()
    assert "Secret investigation title" not in raw and "Body of Secret" not in raw and "Secret reply" not in raw
    assert "A sensitive note was posted in Joint channel" in text_of(message)
    assert "Activity on a sensitive note in Joint channel" in text_of(message)
    assert f"http://portal.test/notes/{secret.id}" in text_of(message)


def test_permissions_are_those_at_send_time(app, db, world, smtp, runner):
    for user in (world.eu_member, world.outsider, world.jp_member):
        follow(db, user, topic="dsa")
    channels.remove_member(db, world.private, world.eu_member, actor=world.eu_admin)
    accounts.set_active(db, world.outsider, False, actor=world.eu_admin)
    db.commit()
    assert send(runner).exit_code == 0
    [message] = smtp.mailbox.to(world.eu_member.email)
    assert "Question in private" not in message.as_string()
    assert "Question in joint" in text_of(message)
    assert smtp.mailbox.to(world.outsider.email) == []  # deactivated
    assert len(smtp.mailbox.to(world.jp_member.email)) == 1


def test_only_active_officials_with_a_password_get_their_unmuted_subscriptions(app, db, world, smtp, runner):
    invited = accounts.create_user(db, email="invited@ec.example.eu", name="Invited",
                                   organisation=world.eu_member.organisation)  # no password set yet
    for user in (world.eu_member, invited, world.jp_member):
        follow(db, user, topic="dsa")
    subscriptions.set_muted(db, follow(db, world.jp_member, topic="dsa"), True, actor=None)
    follow(db, world.eu_moderator, "weekly", topic="dsa")
    db.commit()
    result = send(runner)
    assert result.exit_code == 0 and "sent 1," in result.output
    assert [message["To"] for message in smtp.mailbox.messages] == [world.eu_member.email]


def test_empty_digests_are_not_sent(app, db, world, smtp, runner):
    follow(db, world.eu_member, topic="minors")
    result = send(runner)
    assert result.exit_code == 0 and "sent 0" in result.output and "1 empty" in result.output
    assert smtp.mailbox.messages == []


def test_case_status_answers_declines_and_overdue_are_reported_in_the_readers_language(app, db, world, smtp, runner):
    # English, Japanese, English in one run (readers go in id order): no reader gets another's language.
    for reader in (world.eu_member, world.jp_member, world.outsider):
        follow(db, reader, channel="joint-channel")
    case = post(db, world.joint, world.eu_member, "Case on app stores", kind="case", case_status="open")
    notes.set_case_status(db, case, world.eu_member, "investigating")
    question = world.notes["joint"]
    notes.accept_answer(db, question, world.replies["joint"], world.eu_member)
    asked = post(db, world.joint, world.eu_member, "Declined question", kind="question",
                 answer_by=TODAY.isoformat())
    notes.decline_question(db, asked, world.jp_member, "Outside our remit")
    # Due yesterday: overdue since midnight, so within today's digest.
    late = post(db, world.joint, world.eu_member, "Late question", kind="question",
                answer_by=(TODAY - timedelta(days=1)).isoformat())
    assert send(runner).exit_code == 0
    [message] = smtp.mailbox.to(world.jp_member.email)
    text, html = text_of(message), html_of(message)
    assert message["Subject"].startswith("日次ダイジェスト：案件の変更2件、新規質問3件、")
    assert "Kenji 様" in text
    assert "案件の状況が「対応中」から「調査中」に変わりました：Case on app stores" in text
    assert "回答が得られた質問：Question in joint" in text
    assert "回答が辞退された質問：Declined question" in text
    assert "回答期限を過ぎた質問：Late question" in text
    assert "== 貴側の回答待ちの質問 ==" in text and late.title in text
    assert "購読の管理" in html and "配信停止" in html and "== Digital Services Act ==" not in text
    assert "Case status" not in text and "Daily digest" not in text and "Manage subscriptions" not in html
    for english_reader in (world.eu_member, world.outsider):
        [message] = smtp.mailbox.to(english_reader.email)
        text = text_of(message)
        assert message["Subject"].startswith("Daily digest: 2 cases changed, 3 new questions, ")
        assert "Case status open → investigating: Case on app stores" in text
        assert "Question answered: Question in joint" in text and "Question now overdue: Late question" in text
        assert "Question declined: Declined question" in text
        assert not re.search(r"[\u3040-\u30ff]", text.replace("joint\u30c1\u30e3\u30f3\u30cd\u30eb", "")), text


def test_the_period_is_shown_in_each_readers_time_zone_and_language(app, db, world, smtp, runner):
    """Daily digests cover midnight to midnight UTC: 09:00 to 09:00 in Tokyo, 01:00 (or 02:00) in Brussels."""
    world.outsider.time_zone = "Asia/Tokyo"  # an EU official posted to Tokyo, reading in English
    for reader in (world.eu_member, world.jp_member, world.outsider):
        follow(db, reader, channel="joint-channel")
    assert send(runner).exit_code == 0
    until = datetime.combine(date.fromisoformat(TOMORROW), datetime.min.time(), timezone.utc)
    since = until - timedelta(days=1)

    def shown(moment, zone, fmt):
        local = moment.astimezone(ZoneInfo(zone))
        return f"{local.strftime(fmt)} {local.tzname()}"

    expected = {
        world.eu_member: f"{shown(since, 'Europe/Brussels', '%Y-%m-%d %H:%M')} – "
                         f"{shown(until, 'Europe/Brussels', '%Y-%m-%d %H:%M')}",
        world.jp_member: f"{shown(since, 'Asia/Tokyo', '%Y年%-m月%-d日 %H:%M')}～"
                         f"{shown(until, 'Asia/Tokyo', '%Y年%-m月%-d日 %H:%M')}",
        world.outsider: f"{shown(since, 'Asia/Tokyo', '%Y-%m-%d %H:%M')} – {shown(until, 'Asia/Tokyo', '%Y-%m-%d %H:%M')}",
    }
    assert "09:00 JST" in expected[world.jp_member] and ":00 CE" in expected[world.eu_member]
    for reader, period in expected.items():
        [message] = smtp.mailbox.to(reader.email)
        assert period in text_of(message) and period in html_of(message), (reader.email, text_of(message))
        assert "UTC" not in text_of(message)


def test_an_item_is_listed_once_under_the_topic_subscribed_to(app, db, world, smtp, runner):
    follow(db, world.eu_member, topic="gdpr")
    subscriptions.subscribe(db, world.eu_member, frequency="daily", channel="joint-channel")
    db.commit()
    post(db, world.joint, world.jp_member, "Both topics", topics=("dsa", "gdpr"))
    assert send(runner).exit_code == 0
    text = text_of(smtp.mailbox.to(world.eu_member.email)[0])
    assert text.count("Both topics") == 1
    gdpr, dsa = text.index("== General Data Protection Regulation =="), text.index("== Digital Services Act ==")
    assert dsa < gdpr < text.index("Both topics")  # topics in order, the item under GDPR, not DSA


def test_immediate_sends_one_message_per_event_once(app, db, world, smtp, runner):
    follow(db, world.eu_member, "daily", channel="joint-channel")
    # Subscribing again to the same channel changes its frequency rather than adding a second one.
    subscriptions.subscribe(db, world.eu_member, frequency="immediate", channel="joint-channel")
    db.commit()
    assert [s.frequency for s in subscriptions.for_user(db, world.eu_member)] == ["immediate"]
    first = post(db, world.joint, world.jp_member, "First immediate")
    replies.post_reply(db, first, world.jp_member, "an answer")
    db.commit()
    now = utcnow().isoformat()
    assert send(runner, "immediate", now).exit_code == 0
    subjects = sorted(m["Subject"] for m in smtp.mailbox.to(world.eu_member.email))
    assert subjects == ["New reply by Kenji on First immediate", "New update First immediate"]
    assert send(runner, "immediate", now).exit_code == 0
    assert len(smtp.mailbox.messages) == 2


def test_dry_run_composes_but_sends_and_records_nothing(app, db, world, smtp, runner):
    follow(db, world.eu_member, topic="dsa")
    result = send(runner, "daily", TOMORROW, "--dry-run")
    assert result.exit_code == 0 and "would send 1" in result.output
    assert smtp.mailbox.messages == []
    assert db.scalar(select(func.count()).select_from(DigestDelivery)) == 0


def test_composition_costs_a_fixed_number_of_queries_per_reader(app, db, world, runner):
    """No N+1: more items do not mean more queries; each further reader costs the same few."""
    def queries_for(frequency_at: str) -> int:
        count = 0

        def counter(*_args):
            nonlocal count
            count += 1
        event.listen(engine(), "before_cursor_execute", counter)
        try:
            assert send(runner, "daily", frequency_at, "--dry-run").exit_code == 0
        finally:
            event.remove(engine(), "before_cursor_execute", counter)
        return count

    for user in (world.eu_member, world.jp_member):
        follow(db, user, topic="dsa")
    few = queries_for(TOMORROW)
    for number in range(30):
        note = post(db, world.joint, world.jp_member, f"More {number}")
        replies.post_reply(db, note, world.eu_member, "reply")
    db.commit()
    assert queries_for(TOMORROW) == few
    for user in (world.outsider, world.eu_moderator):
        follow(db, user, topic="dsa")
    per_reader = (queries_for(TOMORROW) - few) / 2
    assert per_reader <= 2


# ---------------------------------------------------------------------------------------------------
# Exactly once, under failure.


def readers(db, world):
    people = [world.eu_member, world.jp_member, world.eu_moderator, world.eu_admin, world.jp_admin]
    for user in people:
        follow(db, user, topic="dsa")
    return people


def test_refused_data_leaves_that_digest_pending_and_the_next_run_sends_it_once(app, db, world, smtp, runner):
    people = readers(db, world)
    smtp.mailbox.fail_data_at = 2
    result = send(runner)
    assert result.exit_code == 1
    assert "failed: " in result.output and "451" in result.output and "sent 4" in result.output
    assert db.scalar(select(func.count()).where(DigestDelivery.status == "pending")) == 1
    again = send(runner)
    assert again.exit_code == 0, again.output
    assert "sent 1, 4 already sent" in again.output
    assert sorted(len(smtp.mailbox.to(user.email)) for user in people) == [1] * 5


def test_refused_recipient_is_reported_and_retried(app, db, world, smtp, runner):
    people = readers(db, world)
    smtp.mailbox.refuse_rcpt = {world.jp_member.email}
    result = send(runner)
    assert result.exit_code == 1 and f"refused {world.jp_member.email}" in result.output
    assert [len(smtp.mailbox.to(u.email)) for u in people] == [1, 0, 1, 1, 1]
    smtp.mailbox.refuse_rcpt = set()
    assert send(runner).exit_code == 0
    assert [len(smtp.mailbox.to(u.email)) for u in people] == [1] * 5


def test_unreachable_smtp_is_reported_and_nothing_is_marked_sent(app, db, world, runner, smtp):
    readers(db, world)
    app.config["SMTP_PORT"] = closed = free_port()
    result = send(runner)
    app.config["SMTP_PORT"] = smtp.port
    assert result.exit_code == 1
    assert f"Could not connect to the SMTP server 127.0.0.1:{closed}" in result.output
    assert "pending for the next run" in result.output
    assert db.scalar(select(func.count()).where(DigestDelivery.status == "sent")) == 0
    assert send(runner).exit_code == 0
    assert len(smtp.mailbox.messages) == 5


def test_a_send_killed_midway_and_run_again_sends_each_digest_once(app, db, world, smtp, tmp_path):
    """A real `flask digests send` process, killed while the server holds its third message."""
    people = readers(db, world)
    db.close()
    smtp.mailbox.stall_data_at = 3
    env = {**os.environ, "PORTAL_DATABASE_URL": app.config["DATABASE_URL"],
           "PORTAL_INSTANCE_PATH": app.instance_path, "PORTAL_SECRET_KEY": app.config["SECRET_KEY"],
           "PORTAL_BASE_URL": "http://portal.test", "PORTAL_SEARCH_DIR": app.config["SEARCH_DIR"],
           "PORTAL_SMTP_HOST": "127.0.0.1", "PORTAL_SMTP_PORT": str(smtp.port), "PORTAL_SMTP_SECURITY": "none"}
    command = [str(Path(sys.executable).parent / "flask"), "--app", "portal", "digests", "send",
               "--frequency", "daily", "--at", TOMORROW]
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        try:
            assert smtp.mailbox.stalled.wait(60), process.communicate(timeout=5)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
    assert len(smtp.mailbox.messages) == 2
    smtp.mailbox.stall_data_at = None
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "sent 3, 2 already sent" in rerun.stdout
    assert sorted(len(smtp.mailbox.to(user.email)) for user in people) == [1] * 5


# ---------------------------------------------------------------------------------------------------
# Unsubscribe.


def unsubscribe_path(message) -> str:
    return urlsplit(message["List-Unsubscribe"].strip("<>")).path


def test_one_click_unsubscribe_mutes_the_subscription_without_signing_in(app, db, world, smtp, runner, client):
    sub = follow(db, world.eu_member, topic="dsa")
    assert send(runner).exit_code == 0
    path = unsubscribe_path(smtp.mailbox.to(world.eu_member.email)[0])
    page = client.get(path)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and "Topic: Digital Services Act" in page.get_data(as_text=True)
    db.expire_all()
    assert db.get(Subscription, sub.id).is_muted is False
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "Muted" in done.get_data(as_text=True)
    db.expire_all()
    assert db.get(Subscription, sub.id).is_muted is True
    post(db, world.joint, world.jp_member, "After unsubscribing")
    assert send(runner, at=(TODAY + timedelta(days=2)).isoformat()).exit_code == 0
    assert len(smtp.mailbox.messages) == 1


def test_tampered_and_expired_unsubscribe_tokens_change_nothing(app, db, world, smtp, runner, client):
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    sub = follow(db, world.eu_member, topic="dsa")
    assert send(runner).exit_code == 0
    path = unsubscribe_path(smtp.mailbox.to(world.eu_member.email)[0])
    token = path.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")

    class WeeksAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 61 * 86400

    expired = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="unsubscribe", signer=WeeksAgo).dumps(
        {"u": world.eu_member.id, "s": [sub.id]})
    forged_user = URLSafeTimedSerializer("another key", salt="unsubscribe").dumps({"u": world.eu_member.id,
                                                                                   "s": [sub.id]})
    for bad, reason in ((tampered, "not valid"), (expired, "expired"), (forged_user, "not valid")):
        for method in ("GET", "POST"):
            response = client.open(f"/unsubscribe/{bad}", method=method)
            assert response.status_code == 400
            assert reason in response.get_data(as_text=True) and "Nothing was changed" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Subscription, sub.id).is_muted is False


# ---------------------------------------------------------------------------------------------------
# Subscriptions: CLI and page, with bad input.


def test_cli_adds_lists_and_removes_subscriptions(app, db, world, runner):
    email = world.eu_member.email
    added = runner.invoke(args=["subscriptions", "add", email, "--topic", "app-stores", "--frequency", "daily"])
    assert added.exit_code == 0 and "Topic: App stores, daily" in added.output
    runner.invoke(args=["subscriptions", "add", email, "--channel", "private-channel", "--frequency", "in-app"])
    listed = runner.invoke(args=["subscriptions", "list", email])
    assert "weekly\tEverything you can read" in listed.output  # the default for new officials
    assert "daily\tTopic: App stores" in listed.output and "in-app\tChannel: Private channel" in listed.output
    removed = runner.invoke(args=["subscriptions", "remove", email, "--topic", "app-stores"])
    assert removed.exit_code == 0
    assert "App stores" not in runner.invoke(args=["subscriptions", "list", email]).output


@pytest.mark.parametrize("args, message", [
    (["--topic", "no-such-topic"], "There is no topic 'no-such-topic'"),
    (["--channel", "jp-channel"], "There is no channel 'jp-channel' that you can read"),
    (["--channel", "missing-channel"], "There is no channel 'missing-channel' that you can read"),
])
def test_cli_refuses_unknown_topics_and_invisible_channels(app, db, world, runner, args, message):
    before = db.scalar(select(func.count()).select_from(Subscription))
    result = runner.invoke(args=["subscriptions", "add", world.eu_member.email, *args, "--frequency", "daily"])
    assert result.exit_code == 1 and message in result.output
    assert db.scalar(select(func.count()).select_from(Subscription)) == before


def test_subscriptions_page_adds_mutes_removes_and_keeps_bad_input(app, db, world, client):
    login(client, world.eu_member)
    bad = client.post("/subscriptions", data={"target": "channel", "channel": "jp-channel", "frequency": "daily"})
    assert bad.status_code == 400 and "that you can read" in bad.get_data(as_text=True)
    assert 'value="jp-channel"' not in bad.get_data(as_text=True)  # the invisible channel is not offered
    bad = client.post("/subscriptions", data={"target": "note", "note": "12", "frequency": "hourly"})
    assert bad.status_code == 400 and 'value="12"' in bad.get_data(as_text=True)
    assert db.scalar(select(func.count()).where(Subscription.user_id == world.eu_member.id)) == 1
    ok = client.post("/subscriptions", data={"target": "note", "note": str(world.notes["private"].id),
                                             "frequency": "immediate"})
    assert ok.status_code == 302
    sub = db.scalar(select(Subscription).where(Subscription.target == "note"))
    assert client.post(f"/subscriptions/{sub.id}/mute").status_code == 302
    db.expire_all()
    assert db.get(Subscription, sub.id).is_muted
    other = app.test_client()
    login(other, world.jp_admin)
    assert other.post(f"/subscriptions/{sub.id}/delete").status_code == 404  # not theirs
    sub_id = sub.id
    assert client.post(f"/subscriptions/{sub_id}/delete").status_code == 302
    db.expunge_all()
    assert db.get(Subscription, sub_id) is None


# ---------------------------------------------------------------------------------------------------
# In-app digest and Atom feeds.


def test_my_digest_shows_the_period_with_unread_markers(app, db, world, client):
    follow(db, world.eu_member, "in-app", topic="dsa")
    post(db, world.joint, world.jp_member, "Sensitive in-app", marking="sensitive")
    login(client, world.eu_member)
    page = client.get(f"/digest?period=daily&date={TODAY.isoformat()}").get_data(as_text=True)
    assert "Question in joint" in page and "Question in jp" not in page
    assert "Sensitive in-app" in page  # inside the portal, a reader who may read it sees its title
    assert page.count('<span class="badge">unread</span>') > 3
    assert client.post("/digest/read", data={"period": "daily", "date": TODAY.isoformat()}).status_code == 302
    page = client.get(f"/digest?period=daily&date={TODAY.isoformat()}").get_data(as_text=True)
    assert "unread</span>" not in page and "Question in joint" in page
    yesterday = client.get(f"/digest?period=daily&date={(TODAY - timedelta(days=1)).isoformat()}")
    assert "Question in joint" not in yesterday.get_data(as_text=True)
    assert client.get("/digest?date=not-a-date").status_code == 400


def test_my_digest_and_the_token_feeds_are_in_the_readers_language(app, db, world, client):
    follow(db, world.jp_member, "in-app", topic="dsa")
    post(db, world.joint, world.eu_member, "Sensitive for Kenji", marking="sensitive")
    login(client, world.jp_member)
    page = client.get(f"/digest?period=daily&date={TODAY.isoformat()}").get_data(as_text=True)
    assert "新規質問：Question in joint" in page and "Kenjiさんから返信がありました：Question in jp" in page
    assert "報告1件、新規質問4件、返信4件" in page and f"{TODAY.year}年" in page
    assert "トピック：デジタルサービス法" in client.get("/subscriptions").get_data(as_text=True)
    assert "New question" not in page and "replies" not in page
    token = feed_token(client)
    # The feed reader has no session and an English browser: the token's owner decides.
    feed = app.test_client().get(f"/feeds/{token}/digest.atom", headers={"Accept-Language": "en"})
    body = feed.get_data(as_text=True)
    assert "<title>ダイジェスト：" in body and "jointチャンネルに機密の投稿がありました" in body
    assert "Sensitive for Kenji" not in body and "New question" not in body
    channel = app.test_client().get(f"/feeds/{token}/channels/joint-channel.atom").get_data(as_text=True)
    assert "jointチャンネルに機密の投稿がありました" in channel


def feed_token(client) -> str:
    page = client.post("/subscriptions/feed-token").get_data(as_text=True)
    return re.search(r"/feeds/([^/]+)/digest\.atom", page).group(1)


def test_feed_tokens_authenticate_atom_feeds_with_the_same_rules(app, db, world, client):
    follow(db, world.eu_member, "in-app", topic="dsa")
    post(db, world.joint, world.jp_member, "Sensitive feed title", marking="sensitive")
    login(client, world.eu_member)
    token = feed_token(client)
    stored = db.scalar(select(FeedToken.token_hash).where(FeedToken.user_id == world.eu_member.id))
    assert stored != token and token not in stored  # only a hash is kept
    anonymous = app.test_client()
    digest = anonymous.get(f"/feeds/{token}/digest.atom")
    assert digest.status_code == 200 and digest.content_type.startswith("application/atom+xml")
    body = digest.get_data(as_text=True)
    assert "Question in private" in body and "Question in jp" not in body
    assert "Sensitive feed title" not in body and "A sensitive note was posted in Joint channel" in body
    channel = anonymous.get(f"/feeds/{token}/channels/joint-channel.atom").get_data(as_text=True)
    assert "Question in joint" in channel and "Body of the joint question" in channel
    assert "Sensitive feed title" not in channel and "Body of Sensitive" not in channel
    assert anonymous.get(f"/feeds/{token}/channels/jp-channel.atom").status_code == 404
    topic = anonymous.get(f"/feeds/{token}/topics/dsa.atom").get_data(as_text=True)
    assert "Question in eu" in topic and "Question in jp" not in topic
    assert anonymous.get(f"/feeds/{token}/topics/no-such-topic.atom").status_code == 404
    # Regenerating replaces the token; revoking ends them all.
    new = feed_token(client)
    assert anonymous.get(f"/feeds/{token}/digest.atom").status_code == 404
    assert anonymous.get(f"/feeds/{new}/digest.atom").status_code == 200
    assert client.post("/subscriptions/feed-token/revoke").status_code == 302
    assert anonymous.get(f"/feeds/{new}/digest.atom").status_code == 404


def test_a_deactivated_officials_feed_token_stops_working(app, db, world, client):
    login(client, world.eu_member)
    token = feed_token(client)
    accounts.set_active(db, world.eu_member, False, actor=world.eu_admin)
    db.commit()
    assert app.test_client().get(f"/feeds/{token}/digest.atom").status_code == 404


def test_session_channel_feed_redacts_sensitive_notes(app, db, world, client):
    post(db, world.joint, world.jp_member, "Sensitive session feed", marking="sensitive")
    login(client, world.eu_member)
    body = client.get("/channels/joint-channel/feed.atom").get_data(as_text=True)
    assert "Sensitive session feed" not in body and "A sensitive note was posted in Joint channel" in body


def test_feed_and_unsubscribe_tokens_are_redacted_from_the_access_log():
    import logging

    from portal.security import RedactSecretPaths

    for path in ("/feeds/SECRETTOKEN/digest.atom", "/unsubscribe/SECRETTOKEN"):
        record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s',
                                   (f"GET {path} HTTP/1.1", "200"), None)
        RedactSecretPaths().filter(record)
        assert "SECRETTOKEN" not in record.getMessage() and "[redacted]" in record.getMessage()


def test_period_boundaries():
    at = datetime(2026, 11, 19, 6, 30)  # a Thursday
    assert digests.period_end("daily", at) == datetime(2026, 11, 19)
    assert digests.period_end("weekly", at) == datetime(2026, 11, 16)
    assert digests.period_around("weekly", date(2026, 11, 22)) == (datetime(2026, 11, 16), datetime(2026, 11, 23))


def test_one_click_unsubscribe_works_with_csrf_protection_on(tmp_path, bare_template, smtp):
    """Mail providers POST `List-Unsubscribe=One-Click` with no form token (RFC 8058); the signed token suffices."""
    app = prepared_app(tmp_path, bare_template, WTF_CSRF_ENABLED=True)
    try:
        with app.app_context():
            from portal.db import get_session

            db = get_session()
            org = accounts.create_organisation(db, slug="dg-cnect", name="DG CNECT", side="eu")
            user = accounts.create_user(db, email="eva@ec.example.eu", name="Eva", organisation=org)
            db.commit()
            [sub] = subscriptions.for_user(db, user)
            link = digests.unsubscribe_link(user, [sub.id])
            response = app.test_client().post(urlsplit(link).path, data={"List-Unsubscribe": "One-Click"})
            assert response.status_code == 200
            db.expire_all()
            assert db.get(Subscription, sub.id).is_muted is True
    finally:
        with app.app_context():
            engine().dispose()


# ---------------------------------------------------------------------------------------------------
# Transport security and authentication, against aiosmtpd with a certificate the test makes and trusts.


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # what ssl.create_default_context() trusts
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_digests_go_over_starttls_or_tls_with_authentication(app, db, world, runner, certificate, security):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((server.transport.get_extra_info("ssl_object") is not None, auth_data.login,
                       auth_data.password))
        return AuthResult(success=auth_data.password == b"correct horse", handled=False)

    # aiosmtpd offers AUTH only after STARTTLS unless told that the connection is TLS from the start.
    tls = {"tls_context": certificate, "require_starttls": True} if security == "starttls" else {
        "ssl_context": certificate, "auth_require_tls": False}
    with SMTPServer(authenticator=authenticator, **tls) as secure:
        app.config.update(SMTP_PORT=secure.port, SMTP_SECURITY=security, SMTP_USER="portal",
                          SMTP_PASSWORD="wrong password")
        follow(db, world.eu_member, topic="dsa")
        refused = send(runner)
        assert refused.exit_code == 1 and "535" in refused.output and "wrong password" not in refused.output
        app.config["SMTP_PASSWORD"] = "correct horse"
        assert send(runner).exit_code == 0
        assert len(secure.mailbox.to(world.eu_member.email)) == 1
    assert logins[-1] == (True, b"portal", b"correct horse")  # credentials only ever went over TLS
    assert all(encrypted for encrypted, _, _ in logins)


def test_an_unknown_smtp_security_setting_is_refused_not_downgraded(app, db, world, runner, smtp):
    app.config["SMTP_SECURITY"] = "ssl"
    follow(db, world.eu_member, topic="dsa")
    result = send(runner)
    assert result.exit_code == 1 and "PORTAL_SMTP_SECURITY is 'ssl'" in result.output
    assert smtp.mailbox.messages == []


def test_follow_button_on_a_note_subscribes_to_it(app, db, world, client):
    login(client, world.eu_member)
    page = client.get(f"/notes/{world.notes['joint'].id}").get_data(as_text=True)
    assert 'name="target" value="note"' in page
    assert client.post("/subscriptions", data={"target": "note", "note": str(world.notes["joint"].id),
                                               "frequency": "immediate"}).status_code == 302
    listed = client.get("/subscriptions").get_data(as_text=True)
    assert f"Note #{world.notes['joint'].id}" in listed and "immediate" in listed
    # Following a note in a channel one cannot read is refused like a missing note.
    refused = client.post("/subscriptions", data={"target": "note", "note": str(world.notes["jp"].id),
                                                  "frequency": "immediate"})
    assert refused.status_code == 400 and f"no note {world.notes['jp'].id} that you can read" in refused.get_data(as_text=True)


def test_token_feeds_show_exactly_what_each_official_may_read(app, db, world):
    """Both ways, for every kind of official: each visible channel's notes are in the feeds, no other."""
    sees = {  # written out from the portal's rules, not computed by portal/auth.py
        "eu_member": {"joint", "eu", "private", "archived"}, "outsider": {"joint", "eu", "archived"},
        "eu_admin": {"joint", "eu", "archived"}, "jp_member": {"joint", "jp", "private", "archived"},
        "jp_admin": {"joint", "jp", "archived"},
    }
    tokens = {name: subscriptions.issue_feed_token(db, getattr(world, name)) for name in sees}
    db.commit()
    client = app.test_client()
    failures = []
    for name, visible in sees.items():
        token = tokens[name]
        digest = client.get(f"/feeds/{token}/digest.atom").get_data(as_text=True)  # the default subscription
        topic = client.get(f"/feeds/{token}/topics/dsa.atom").get_data(as_text=True)
        for key, note in world.notes.items():
            for feed, body in (("digest", digest), ("topic", topic)):
                if (note.title in body) != (key in visible):
                    failures.append(f"{name} {feed} feed: {'shows' if note.title in body else 'omits'} {key}")
            response = client.get(f"/feeds/{token}/channels/{note.channel.slug}.atom")
            if response.status_code != (200 if key in visible else 404):
                failures.append(f"{name} {key} channel feed: {response.status_code}")
            elif key in visible and note.title not in response.get_data(as_text=True):
                failures.append(f"{name} {key} channel feed omits its note")
    assert not failures, "\n".join(failures)


def test_without_smtp_digests_are_written_as_eml_files(tmp_path, bare_template):
    """The development default: no PORTAL_SMTP_HOST, so each message lands in <instance>/mail/."""
    from email import message_from_bytes, policy

    from portal.db import get_session

    app = prepared_app(tmp_path, bare_template)
    try:
        with app.app_context():
            db = get_session()
            org = accounts.create_organisation(db, slug="dg-cnect", name="DG CNECT", side="eu")
            user = accounts.create_user(db, email="eva@ec.example.eu", name="Eva", organisation=org,
                                        password="a long test passphrase 1")
            channel = channels.create_channel(db, {"slug": "joint", "name_en": "Joint", "visibility": "joint"},
                                              actor=None)
            follow(db, user, channel="joint")
            post(db, channel, user, "Written to a file")
        result = app.test_cli_runner().invoke(args=["digests", "send", "--frequency", "daily", "--at", TOMORROW])
        assert result.exit_code == 0 and "sent 1" in result.output
        [eml] = (Path(app.instance_path) / "mail").glob("*.eml")
        message = message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert message["To"] == "eva@ec.example.eu" and message["List-Unsubscribe"]
        assert "Written to a file" in message.get_body(("plain",)).get_content()
    finally:
        with app.app_context():
            engine().dispose()


def test_questions_awaiting_alone_do_not_make_a_digest(app, db, world, smtp, runner):
    """The private question awaits the EU side, but nothing moved in the period: no message."""
    follow(db, world.eu_member, topic="dsa")
    assert send(runner).exit_code == 0
    result = send(runner, at=(TODAY + timedelta(days=2)).isoformat())
    assert result.exit_code == 0 and "1 empty" in result.output
    assert len(smtp.mailbox.to(world.eu_member.email)) == 1


def test_an_immediate_message_unsubscribes_only_the_subscription_that_matched(app, db, world, smtp, runner, client):
    by_channel = follow(db, world.eu_member, "immediate", channel="joint-channel")
    by_topic = subscriptions.subscribe(db, world.eu_member, frequency="immediate", topic="gdpr")
    db.commit()
    post(db, world.joint, world.jp_member, "Channel only", topics=("dsa",))
    assert send(runner, "immediate", utcnow().isoformat()).exit_code == 0
    [message] = smtp.mailbox.to(world.eu_member.email)
    assert client.post(unsubscribe_path(message)).status_code == 200
    db.expire_all()
    assert db.get(Subscription, by_channel.id).is_muted and not db.get(Subscription, by_topic.id).is_muted
