"""Every `flask --app portal …` command, checked in the database and by signing in through the web."""
from __future__ import annotations

import email
import email.policy
import html
import json
import re
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, inspect, select

from portal import create_app
from portal.db import engine, get_session, utcnow
from portal.models import (
    Act,
    Article,
    Channel,
    ChannelMembership,
    Invitation,
    Note,
    Organisation,
    Reply,
    Topic,
    User,
)
from portal.services import demo
from tests.conftest import PASSWORD, login, second_factor
from tests.test_migrations import empty_database_url

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "eu_acts_en.jsonl"
LINK = re.compile(r"(https?://\S+/invitations/\S+)")


def count(db, model, *where) -> int:
    db.rollback()  # see what the command committed, not this session's snapshot
    return db.scalar(select(func.count()).select_from(model).where(*where))


def user(db, email_address: str) -> User | None:
    db.rollback()
    return db.scalar(select(User).where(User.email == email_address))


def invitation_link(output: str) -> str:
    match = LINK.search(output)
    assert match, output
    return match.group(1)


def path_of(link: str) -> str:
    assert link.startswith("http://portal.test/invitations/"), link
    return urlsplit(link).path


def signed_in_as(client, person: User) -> bool:
    page = client.get("/")
    return page.status_code == 200 and html.escape(person.name) in page.get_data(as_text=True)


def refused(result, message: str) -> None:
    """A command that failed cleanly: non-zero exit, the message on stderr, no traceback."""
    assert result.exit_code != 0, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception


# --- init -------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_app(tmp_path):
    """An app on a database with no tables at all: `init` has to build the schema itself."""
    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "fresh-instance"),
        "DATABASE_URL": empty_database_url(tmp_path),
        "SECRET_KEY": "test-secret-key",
        "WTF_CSRF_ENABLED": False,
        "BASE_URL": "http://portal.test",
    })
    yield app
    with app.app_context():
        engine().dispose()


def content_counts(app) -> tuple[int, int, int]:
    with app.app_context():
        db = get_session()
        return count(db, Topic), count(db, Act), count(db, Article)


def test_init_creates_the_schema_with_alembic_and_loads_content(fresh_app):
    with fresh_app.app_context():
        assert inspect(engine()).get_table_names() == []
    runner = fresh_app.test_cli_runner()

    result = runner.invoke(args=["init"])
    assert result.exit_code == 0, result.output
    topics, acts, articles = content_counts(fresh_app)
    assert topics > 0 and acts > 0 and articles > 0
    assert f"loaded {topics} topics, {acts} acts, {articles} articles" in result.stdout
    with fresh_app.app_context():
        tables = set(inspect(engine()).get_table_names())
        assert "alembic_version" in tables and {"users", "notes", "replies", "topics"} <= tables

    again = runner.invoke(args=["init"])
    assert again.exit_code == 0, again.output
    assert content_counts(fresh_app) == (topics, acts, articles)

    # The migrated schema is the one the app works on: an account made there can sign in.
    assert runner.invoke(args=["orgs", "create", "dg-cnect", "--name", "DG CNECT", "--side", "eu"]).exit_code == 0
    created = runner.invoke(args=["users", "create", "eva@ec.example.eu", "--name", "Eva", "--org", "dg-cnect",
                                  "--password-stdin"], input=PASSWORD + "\n")
    assert created.exit_code == 0, created.output
    client = fresh_app.test_client()
    login(client, "eva@ec.example.eu")
    assert "Eva" in client.get("/").get_data(as_text=True)


# --- demo -------------------------------------------------------------------------------------------


def demo_counts(db) -> dict:
    return {
        "organisations": count(db, Organisation),
        "users": count(db, User),
        "channels": count(db, Channel),
        "notes": count(db, Note),
        "replies": count(db, Reply),
    }


def test_demo_loads_everything_once_and_prints_sign_ins(app, runner, db):
    if not demo.DEMO_FILE.exists():
        pytest.skip(f"{demo.DEMO_FILE} has not been written yet")
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    expected = {"organisations": 8, "users": 12, "channels": 6, "notes": 60, "replies": 200}
    assert demo_counts(db) == expected
    assert "60 notes and 200 replies added" in result.stdout
    visibilities = db.scalars(select(Channel.visibility)).all()
    assert set(visibilities) == {"joint", "eu", "jp", "private"}
    assert count(db, Channel, Channel.is_archived.is_(True)) == 1

    # Every account is printed, with the one password they share.
    password = re.search(r"password for all: (.+?)\):", result.stdout).group(1)
    printed = re.findall(r"^\s+(\S+@\S+)\s+(member|moderator|admin)\s", result.stdout, re.MULTILINE)
    assert {email_address for email_address, _ in printed} == set(db.scalars(select(User.email)))

    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0, again.output
    assert demo_counts(db) == expected
    assert "0 notes and 0 replies added" in again.stdout

    # A printed account on each side signs in on the web with the printed password.
    for side in ("eu", "jp"):
        person = next(u for u in (user(db, e) for e, _ in printed) if u.side == side)
        client = app.test_client()
        login(client, person.email, password)
        assert signed_in_as(client, person)


# --- orgs create ------------------------------------------------------------------------------------


def test_orgs_create(runner, db):
    result = runner.invoke(args=["orgs", "create", "ppc", "--name", "Personal Information Protection Commission",
                                 "--side", "jp"])
    assert result.exit_code == 0, result.output
    assert "Created organisation ppc (JP)" in result.stdout
    db.rollback()
    organisation = db.scalar(select(Organisation).where(Organisation.slug == "ppc"))
    assert (organisation.name, organisation.side) == ("Personal Information Protection Commission", "jp")


def test_orgs_create_refuses_a_duplicate_slug(runner, db):
    assert runner.invoke(args=["orgs", "create", "ppc", "--name", "PPC", "--side", "jp"]).exit_code == 0
    result = runner.invoke(args=["orgs", "create", "ppc", "--name", "Another", "--side", "eu"])
    refused(result, "An organisation with this slug exists.")
    assert count(db, Organisation, Organisation.slug == "ppc") == 1


@pytest.mark.parametrize("args, message", [
    (["--side", "us"], "Invalid value for '--side'"),
    (["--side", "eu", "--name", " "], "Give the organisation's name."),
])
def test_orgs_create_refuses_bad_input(runner, db, args, message):
    result = runner.invoke(args=["orgs", "create", "dg-comp", "--name", "DG COMP", *args])
    refused(result, message)
    assert count(db, Organisation) == 0


def test_orgs_create_refuses_a_bad_slug(runner, db):
    refused(runner.invoke(args=["orgs", "create", "DG COMP!", "--name", "DG COMP", "--side", "eu"]),
            "Use lowercase letters, digits and hyphens.")
    assert count(db, Organisation) == 0


# --- users create -----------------------------------------------------------------------------------


def test_users_create_with_password_stdin_can_sign_in(app, runner, world, db):
    result = runner.invoke(args=["users", "create", "Lena@EC.example.eu", "--name", "Lena Berg", "--org", "dg-cnect",
                                 "--role", "moderator", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Created lena@ec.example.eu (moderator, dg-cnect)." in result.stdout
    assert "invitations/" not in result.output
    lena = user(db, "lena@ec.example.eu")
    assert (lena.name, lena.role, lena.organisation.slug) == ("Lena Berg", "moderator", "dg-cnect")
    assert count(db, Invitation, Invitation.user_id == lena.id) == 0
    client = app.test_client()
    login(client, "lena@ec.example.eu")
    assert signed_in_as(client, lena)


@pytest.mark.parametrize("password, message", [
    ("short pw", "Use at least 12 characters."),
    ("qwerty123456", "This password is too common."),
    ("aaaaaaaaaaaaaaaa", "This password is too common."),
])
def test_users_create_refuses_weak_passwords(runner, world, db, password, message):
    result = runner.invoke(args=["users", "create", "lena@ec.example.eu", "--name", "Lena", "--org", "dg-cnect",
                                 "--password-stdin"], input=password + "\n")
    refused(result, message)
    assert user(db, "lena@ec.example.eu") is None


@pytest.mark.parametrize("args, message", [
    (["eva@ec.example.eu", "--name", "Eva", "--org", "dg-cnect"], "An account with this e-mail exists."),
    (["new@ec.example.eu", "--name", "New", "--org", "nowhere"], "No organisation 'nowhere'."),
    (["not-an-address", "--name", "New", "--org", "dg-cnect"], "Enter a valid e-mail address."),
])
def test_users_create_refuses_bad_input(runner, world, db, args, message):
    users_before = count(db, User)
    refused(runner.invoke(args=["users", "create", *args]), message)
    assert count(db, User) == users_before


def test_users_create_without_password_prints_a_single_use_invitation(app, runner, world, db):
    result = runner.invoke(args=["users", "create", "lena@ec.example.eu", "--name", "Lena Berg",
                                 "--org", "dg-cnect"])
    assert result.exit_code == 0, result.output
    assert "Invitation link (valid 7 days, single use): http://portal.test/invitations/" in result.stdout
    path = path_of(invitation_link(result.stdout))
    lena = user(db, "lena@ec.example.eu")
    assert lena.password_hash is None

    # Until the invitation is accepted the account cannot sign in.
    client = app.test_client()
    assert client.post("/login", data={"email": lena.email, "password": PASSWORD}).status_code == 401

    form = client.get(path)
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert "Set your password" in page and lena.email in page and 'name="password"' in page

    accepted = client.post(path, data={"password": PASSWORD, "confirm": PASSWORD})
    assert accepted.status_code == 302 and urlsplit(accepted.location).path == "/"
    assert signed_in_as(client, lena)

    # Single use: a second visit, or a second password, is refused.
    other = app.test_client()
    again = other.get(path)
    assert again.status_code == 400
    assert "This invitation has already been used. Sign in instead." in again.get_data(as_text=True)
    assert 'name="password"' not in again.get_data(as_text=True)
    hijack = other.post(path, data={"password": "another long passphrase 2", "confirm": "another long passphrase 2"})
    assert hijack.status_code == 400
    assert not signed_in_as(other, lena)
    login(app.test_client(), lena.email, PASSWORD)


@pytest.mark.parametrize("password, confirm, message", [
    ("short pw", "short pw", "Use at least 12 characters."),
    ("qwerty123456", "qwerty123456", "This password is too common. Choose another."),
    (PASSWORD, PASSWORD + "x", "The two passwords differ."),
])
def test_invitation_refuses_weak_passwords(app, runner, world, db, password, confirm, message):
    result = runner.invoke(args=["users", "create", "lena@ec.example.eu", "--name", "Lena", "--org", "dg-cnect"])
    path = path_of(invitation_link(result.stdout))
    client = app.test_client()
    response = client.post(path, data={"password": password, "confirm": confirm})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert user(db, "lena@ec.example.eu").password_hash is None
    # The refused attempt did not use the invitation up.
    assert client.post(path, data={"password": PASSWORD, "confirm": PASSWORD}).status_code == 302


def test_invitation_refused_once_expired_in_the_database(app, runner, world, db):
    result = runner.invoke(args=["users", "create", "lena@ec.example.eu", "--name", "Lena", "--org", "dg-cnect"])
    path = path_of(invitation_link(result.stdout))
    client = app.test_client()
    assert client.get(path).status_code == 200

    lena = user(db, "lena@ec.example.eu")
    invitation = db.scalar(select(Invitation).where(Invitation.user_id == lena.id))
    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db.commit()

    response = client.get(path)
    assert response.status_code == 400
    assert "This invitation has expired. Ask an administrator for a new one." in response.get_data(as_text=True)
    assert client.post(path, data={"password": PASSWORD, "confirm": PASSWORD}).status_code == 400
    assert user(db, "lena@ec.example.eu").password_hash is None


def resign(app, token: str, age: timedelta) -> str:
    """The same invitation token, signed as if issued `age` ago."""
    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age.total_seconds())

    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="invitation").loads(token)
    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="invitation", signer=Backdated).dumps(payload)


def test_invitation_refused_once_the_signed_link_is_too_old(app, runner, world, db):
    result = runner.invoke(args=["users", "create", "lena@ec.example.eu", "--name", "Lena", "--org", "dg-cnect"])
    token = path_of(invitation_link(result.stdout)).rsplit("/", 1)[1]
    client = app.test_client()

    # Six days old is still inside the 7-day validity, so the back-dated signature itself is sound.
    assert client.get(f"/invitations/{resign(app, token, timedelta(days=6))}").status_code == 200

    old = f"/invitations/{resign(app, token, timedelta(days=8))}"
    response = client.get(old)
    assert response.status_code == 400
    assert "This invitation has expired. Ask an administrator for a new one." in response.get_data(as_text=True)
    assert client.post(old, data={"password": PASSWORD, "confirm": PASSWORD}).status_code == 400
    assert user(db, "lena@ec.example.eu").password_hash is None


def test_tampered_invitation_link_is_refused(app, runner, world):
    result = runner.invoke(args=["users", "create", "lena@ec.example.eu", "--name", "Lena", "--org", "dg-cnect"])
    path = path_of(invitation_link(result.stdout))
    response = app.test_client().get(path[:-2] + ("AA" if not path.endswith("AA") else "BB"))
    assert response.status_code == 400
    assert "This invitation link is not valid." in response.get_data(as_text=True)


# --- users invite -----------------------------------------------------------------------------------


def test_users_invite_issues_a_new_link_and_invalidates_earlier_ones(app, runner, world, db):
    created = runner.invoke(args=["users", "create", "lena@ec.example.eu", "--name", "Lena", "--org", "dg-cnect"])
    first = path_of(invitation_link(created.stdout))

    result = runner.invoke(args=["users", "invite", "lena@ec.example.eu", "--no-send"])
    assert result.exit_code == 0, result.output
    second = path_of(invitation_link(result.stdout))
    assert second != first
    assert not (Path(app.instance_path) / "mail").exists()

    client = app.test_client()
    stale = client.get(first)
    assert stale.status_code == 400
    assert "This invitation has expired." in stale.get_data(as_text=True)
    assert client.post(first, data={"password": PASSWORD, "confirm": PASSWORD}).status_code == 400

    assert client.get(second).status_code == 200
    assert client.post(second, data={"password": PASSWORD, "confirm": PASSWORD}).status_code == 302
    assert signed_in_as(client, user(db, "lena@ec.example.eu"))

    # Once a password is set there is nothing left to invite to.
    refused(runner.invoke(args=["users", "invite", "lena@ec.example.eu", "--no-send"]),
            "This person has already set a password.")


def test_users_invite_creates_the_account_and_mails_the_link(app, runner, world, db):
    result = runner.invoke(args=["users", "invite", "kaito@meti.example.jp", "--name", "Kaito Mori",
                                 "--org", "jftc", "--role", "admin"])
    assert result.exit_code == 0, result.output
    link = invitation_link(result.stdout)
    kaito = user(db, "kaito@meti.example.jp")
    assert (kaito.name, kaito.role, kaito.organisation.slug, kaito.password_hash) == ("Kaito Mori", "admin",
                                                                                     "jftc", None)

    [sent] = (Path(app.instance_path) / "mail").glob("*.eml")
    message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    assert message["To"] == "kaito@meti.example.jp"
    assert link in message.get_body(("plain",)).get_content()
    # A Japanese-side organisation: the invitation and the account are in Japanese unless told.
    assert message["Subject"] == "日EUデジタル規制対話ポータルへのご招待" and kaito.lang == "ja"
    assert "Kaito Mori 様" in message.get_body(("plain",)).get_content()

    client = app.test_client()
    response = client.post(path_of(link), data={"password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    second_factor(client, response, kaito.email)  # an admin enrols in 2FA before the first page
    assert signed_in_as(client, kaito)


def test_users_invite_in_the_language_chosen(app, runner, world, db):
    result = runner.invoke(args=["users", "invite", "sam@jftc.example.jp", "--name", "Sam", "--org", "jftc",
                                 "--lang", "en"])
    assert result.exit_code == 0, result.output
    [sent] = (Path(app.instance_path) / "mail").glob("*.eml")
    message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Your invitation to the EU–Japan digital regulation exchange portal"
    assert "Dear Sam," in message.get_body(("plain",)).get_content() and user(db, "sam@jftc.example.jp").lang == "en"
    refused(runner.invoke(args=["users", "create", "x@jftc.example.jp", "--name", "X", "--org", "jftc",
                                "--lang", "fr"]), "'fr' is not one of 'en', 'ja'")


def test_users_invite_refuses_an_unknown_person_without_name_and_org(runner, world, db):
    users_before = count(db, User)
    refused(runner.invoke(args=["users", "invite", "nobody@ec.example.eu", "--no-send"]),
            "No user 'nobody@ec.example.eu'.")
    assert count(db, User) == users_before
    assert count(db, Invitation) == 0


# --- channels ---------------------------------------------------------------------------------------


def test_channels_create(app, runner, world, db):
    result = runner.invoke(args=["channels", "create", "ai-governance", "--name", "AI governance",
                                 "--name-ja", "AIガバナンス", "--description", "AI Act and AI Promotion Act",
                                 "--description-ja", "AI法", "--visibility", "jp"])
    assert result.exit_code == 0, result.output
    assert "Created channel ai-governance (jp)." in result.stdout
    db.rollback()
    channel = db.scalar(select(Channel).where(Channel.slug == "ai-governance"))
    assert (channel.name_en, channel.name_ja, channel.description_en, channel.description_ja, channel.visibility,
            channel.is_archived) == ("AI governance", "AIガバナンス", "AI Act and AI Promotion Act", "AI法", "jp",
                                     False)

    # A jp channel is for the JP side only.
    jp_client, eu_client = app.test_client(), app.test_client()
    login(jp_client, world.jp_member)
    login(eu_client, world.eu_member)
    assert jp_client.get("/channels/ai-governance").status_code == 200
    assert eu_client.get("/channels/ai-governance").status_code == 404


@pytest.mark.parametrize("args, message", [
    (["joint-channel", "--name", "Again", "--visibility", "joint"], "A channel with this slug exists."),
    (["new-channel", "--name", "New", "--visibility", "public"], "Invalid value for '--visibility'"),
    (["new-channel", "--name", " ", "--visibility", "joint"], "Give the channel an English name."),
])
def test_channels_create_refuses_bad_input(runner, world, db, args, message):
    channels_before = count(db, Channel)
    refused(runner.invoke(args=["channels", "create", *args]), message)
    assert count(db, Channel) == channels_before


def membership(db, channel: Channel, person: User) -> ChannelMembership | None:
    db.rollback()
    return db.get(ChannelMembership, (channel.id, person.id))


def test_channels_add_member_opens_a_private_channel(app, runner, world, db):
    client = app.test_client()
    login(client, world.outsider)
    assert client.get("/channels/private-channel").status_code == 404

    result = runner.invoke(args=["channels", "add-member", "private-channel", world.outsider.email])
    assert result.exit_code == 0, result.output
    assert f"{world.outsider.email} is now a member of private-channel." in result.stdout
    assert membership(db, world.private, world.outsider).is_moderator is False
    assert client.get("/channels/private-channel").status_code == 200

    promoted = runner.invoke(args=["channels", "add-member", "private-channel", world.outsider.email, "--moderator"])
    assert promoted.exit_code == 0, promoted.output
    assert "is now a moderator of private-channel" in promoted.stdout
    assert membership(db, world.private, world.outsider).is_moderator is True
    assert count(db, ChannelMembership, ChannelMembership.channel_id == world.private.id) == 3


def test_channels_add_member_refuses_a_jp_official_on_an_eu_channel(runner, world, db):
    result = runner.invoke(args=["channels", "add-member", "eu-channel", world.jp_member.email])
    refused(result, f"{world.jp_member.email} is on the JP side; this channel is EU only.")
    assert membership(db, world.eu, world.jp_member) is None


@pytest.mark.parametrize("slug, email_address, message", [
    ("no-such-channel", "eva@ec.example.eu", "No channel 'no-such-channel'."),
    ("private-channel", "nobody@ec.example.eu", "No user 'nobody@ec.example.eu'."),
])
def test_channels_add_member_refuses_unknown_names(runner, world, db, slug, email_address, message):
    refused(runner.invoke(args=["channels", "add-member", slug, email_address]), message)
    assert count(db, ChannelMembership) == 2


# --- notes import -----------------------------------------------------------------------------------


def jsonl(path: Path, *lines) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n"
                            for line in lines), encoding="utf-8")
    return path


def note(db, external_id: str) -> Note | None:
    db.rollback()
    return db.scalar(select(Note).where(Note.external_id == external_id))


def import_notes(runner, path: Path, *extra, channel="joint-channel", author="eva@ec.example.eu"):
    return runner.invoke(args=["notes", "import", str(path), "--channel", channel, "--author", author, *extra])


GOOD_UPDATE = {"id": "imp-1", "title": "DSA transparency database", "body": "Statements of reasons are public.",
               "lang": "en", "topics": ["dsa", "transparency-reporting"], "articles": "DSA Art. 16; DSA Art. 24(5)",
               "marking": "public"}
GOOD_CASE = {"id": "imp-7", "kind": "case", "title": "アプリストア事業者への調査", "body": "スマホ法に基づく調査。",
             "lang": "ja", "topics": "msca, app-stores", "case_reference": "JFTC-2026-1"}


def test_notes_import_reports_bad_lines_and_imports_the_rest(runner, world, db, tmp_path):
    path = jsonl(
        tmp_path / "notes.jsonl",
        GOOD_UPDATE,
        '{"id": "imp-2", "title": "broken',
        {"id": "imp-3", "title": "No body", "lang": "en"},
        {"id": "imp-4", "title": "Unknown topic", "body": "x", "lang": "en", "topics": ["no-such-topic"]},
        {"id": "imp-5", "title": "Unknown article", "body": "x", "lang": "en", "articles": "DSA Art. 999"},
        {"id": "imp-6", "title": "French", "body": "x", "lang": "fr"},
        GOOD_CASE,
        "",
    )
    result = import_notes(runner, path)

    assert result.exit_code == 1, result.output
    reported = {int(n): message for n, message in re.findall(rf"^{re.escape(str(path))}:(\d+): skipped: (.*)$",
                                                              result.stderr, re.MULTILINE)}
    assert sorted(reported) == [2, 3, 4, 5, 6]
    assert "not valid JSON" in reported[2]
    assert "missing body" in reported[3]
    assert "Unknown topic: no-such-topic" in reported[4]
    assert "DSA has no Art. 999 in the index" in reported[5]
    assert "The language is en or ja" in reported[6]
    assert "Imported 2 new and 0 updated notes; 5 lines skipped." in result.stdout

    assert count(db, Note, Note.channel_id == world.joint.id, Note.external_id.is_not(None)) == 2
    for skipped in ("imp-2", "imp-3", "imp-4", "imp-5", "imp-6"):
        assert note(db, skipped) is None
    update = note(db, "imp-1")
    assert (update.kind, update.title, update.lang, update.marking, update.author.email, update.revision) == (
        "update", "DSA transparency database", "en", "public", "eva@ec.example.eu", 1)
    assert [topic.slug for topic in update.topics] == ["dsa", "transparency-reporting"]
    assert sorted(citation.label for citation in update.citations) == ["DSA Art. 16", "DSA Art. 24(5)"]
    case = note(db, "imp-7")
    assert (case.kind, case.lang, case.case_reference, case.case_status) == ("case", "ja", "JFTC-2026-1", "open")
    assert {topic.slug for topic in case.topics} == {"msca", "app-stores"}


def test_notes_reimport_updates_with_a_new_revision(runner, world, db, tmp_path):
    assert import_notes(runner, jsonl(tmp_path / "a.jsonl", GOOD_UPDATE, GOOD_CASE)).exit_code == 0
    first_id = note(db, "imp-1").id
    notes_before = count(db, Note)

    changed = {**GOOD_UPDATE, "title": "DSA transparency database, second look", "topics": ["dsa"]}
    result = import_notes(runner, jsonl(tmp_path / "b.jsonl", changed, GOOD_CASE,
                                        {**GOOD_CASE, "kind": "question", "answer_by": "2030-01-01"}))
    assert result.exit_code == 1, result.output
    assert f"{tmp_path / 'b.jsonl'}:3: skipped:" in result.stderr and "the kind cannot change" in result.stderr
    assert "Imported 0 new and 2 updated notes; 1 lines skipped." in result.stdout
    assert count(db, Note) == notes_before

    update = note(db, "imp-1")
    assert update.id == first_id
    assert (update.title, update.revision, [topic.slug for topic in update.topics]) == (
        "DSA transparency database, second look", 2, ["dsa"])
    assert [(r.number, r.title) for r in update.revisions] == [
        (1, "DSA transparency database"), (2, "DSA transparency database, second look")]
    # An unchanged line is not a new revision.
    case = note(db, "imp-7")
    assert (case.kind, case.revision, len(case.revisions)) == ("case", 1, 1)


def test_notes_import_json_lists_the_notes_written(app, runner, world, db, tmp_path):
    result = import_notes(runner, jsonl(tmp_path / "notes.jsonl", GOOD_UPDATE, GOOD_CASE), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # stdout holds the JSON alone; progress and summary go to stderr
    assert "Imported 2 new and 0 updated notes; 0 lines skipped." in result.stderr
    ids = {external_id: note(db, external_id).id for external_id in ("imp-1", "imp-7")}
    assert rows == [{"id": ids[e], "external_id": e, "url": f"http://portal.test/notes/{ids[e]}"}
                    for e in ("imp-1", "imp-7")]

    client = app.test_client()
    login(client, world.jp_member)
    page = client.get(urlsplit(rows[1]["url"]).path)
    assert page.status_code == 200 and "アプリストア事業者への調査" in page.get_data(as_text=True)

    # A re-import lists the updated notes too, under the same ids.
    again = import_notes(runner, jsonl(tmp_path / "notes.jsonl", GOOD_UPDATE), "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == rows[:1]


@pytest.mark.parametrize("channel, author, message", [
    ("eu-channel", "kenji@jftc.example.jp", "kenji@jftc.example.jp cannot see the channel eu-channel."),
    ("archived-channel", "eva@ec.example.eu", "This channel is archived and read-only."),
    ("no-such-channel", "eva@ec.example.eu", "No channel 'no-such-channel'."),
    ("joint-channel", "nobody@ec.example.eu", "No user 'nobody@ec.example.eu'."),
])
def test_notes_import_refuses_a_channel_the_author_cannot_write_in(runner, world, db, tmp_path,
                                                                   channel, author, message):
    notes_before = count(db, Note)
    refused(import_notes(runner, jsonl(tmp_path / "notes.jsonl", GOOD_UPDATE), channel=channel, author=author),
            message)
    assert count(db, Note) == notes_before


def test_notes_import_of_a_corpus_sample(runner, world, db, tmp_path):
    if not CORPUS.exists():
        pytest.skip(f"corpus sample {CORPUS} is not present (expected ../shared/corpus next to the repository)")
    with CORPUS.open(encoding="utf-8") as corpus:
        sample = [next(corpus) for _ in range(200)]
    path = tmp_path / "sample.jsonl"
    path.write_text("".join(sample), encoding="utf-8")

    result = import_notes(runner, path)
    assert result.exit_code == 0, result.stderr[-2000:]
    assert "Imported 200 new and 0 updated notes; 0 lines skipped." in result.stdout
    assert count(db, Note, Note.channel_id == world.joint.id, Note.external_id.is_not(None)) == 200
    first = json.loads(sample[0])
    imported = note(db, first["id"])
    assert (imported.title, imported.body, imported.kind) == (first["title"], first["body"].strip(), "update")
