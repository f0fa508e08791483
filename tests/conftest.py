"""Fixtures: a fresh app, database and instance folder per test, and a small world of officials."""
from __future__ import annotations

import contextvars
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from hypothesis import settings
from jinja2 import BytecodeCache
from sqlalchemy import URL, event, make_url, select, text

from portal import create_app
from portal.db import Base, engine, get_session, make_engine
from portal.models import Channel, Note, Reply, TwoFactorCredential, User
from portal.services import accounts, channels, content, notes, replies

PASSWORD = "a long test passphrase 1"


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production, not in the one a test holds open.

    Otherwise Flask reuses the test's context: `g` (the database session, Flask-Login's user)
    would leak from one request, or one simulated browser, to the next.
    """

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context() and "db_session" in g:
            g.db_session.expire_all()
        return response


class CompiledTemplates(BytecodeCache):
    """Compiled templates kept for the whole run. Each test's app has its own Jinja environment,
    which would otherwise compile again every template it renders; Jinja checks each entry against
    the template's source, so an edited template is still compiled afresh."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if (code := self.code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self.code[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


def make_app(tmp_path, **overrides):
    """An app on its own instance folder; the database is the caller's to prepare."""
    url = os.environ.get("PORTAL_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": url,
        "SECRET_KEY": "test-secret-key",
        "WTF_CSRF_ENABLED": False,
        "BASE_URL": "http://portal.test",
        "SEARCH_DIR": str(tmp_path / "search"),
        # The real algorithm at its lowest cost: the suite signs in thousands of times.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 1024,
        **overrides,
    })
    app.test_client_class = IsolatedClient
    app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
    return app


@dataclass(frozen=True)
class Template:
    """A prepared database and its search index, copied for each test: on SQLite the file
    `directory/portal.sqlite3`, on PostgreSQL (PORTAL_TEST_DATABASE_URL) the database `database`."""

    directory: Path
    database: str
    ids: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        if os.environ.get("PORTAL_TEST_DATABASE_URL"):
            return postgres_maintenance_url().set(database=self.database).render_as_string(hide_password=False)
        return f"sqlite:///{self.directory / 'portal.sqlite3'}"

    def app(self, **overrides):
        """An app working on the template itself, to fill it."""
        return create_app({"INSTANCE_PATH": str(self.directory / "instance"), "DATABASE_URL": self.url,
                           "SECRET_KEY": "template", "SEARCH_DIR": str(self.directory / "search"),
                           "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024, **overrides})


@pytest.fixture(scope="session")
def bare_template(tmp_path_factory) -> Template:
    """The schema and content/ loaded (and indexed through the outbox), nothing else."""
    template = Template(tmp_path_factory.mktemp("bare"), f"{postgres_test_database()}_template")
    if os.environ.get("PORTAL_TEST_DATABASE_URL"):
        recreate_database(postgres_maintenance_url(), template.database)
    app = template.app()
    with app.app_context():
        Base.metadata.create_all(engine())
        content.load_content(get_session())
        get_session().commit()
        engine().dispose()
    return template


@pytest.fixture(scope="session")
def world_template(tmp_path_factory, bare_template) -> Template:
    """The bare template with `build_world` in it. Building the world costs more than most tests
    that use it, so it is built once and copied like the schema."""
    template = Template(tmp_path_factory.mktemp("world"), f"{postgres_test_database()}_world")
    copy_template(bare_template, template.directory, template.database)
    app = template.app()
    with app.app_context():
        w = build_world(get_session())
        template.ids.update({name: getattr(w, name).id for name in WORLD_USERS + WORLD_CHANNELS},
                            notes={k: n.id for k, n in w.notes.items()},
                            replies={k: r.id for k, r in w.replies.items()})
        engine().dispose()
    return template


@pytest.fixture
def template(request, bare_template) -> Template:
    """What this test starts from: the world's template when it asks for `world`, else the bare one."""
    if "world" in request.fixturenames:
        return request.getfixturevalue("world_template")
    return bare_template


def postgres_test_database() -> str:
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    return make_url(url).database if url else "portal_test"


def postgres_maintenance_url() -> URL:
    """The PostgreSQL server's maintenance database, from which test databases are made."""
    return make_url(os.environ["PORTAL_TEST_DATABASE_URL"]).set(database="postgres")


def recreate_database(maintenance: URL, name: str, template: str | None = None) -> None:
    """Drop and create a database; copying a template is far faster than creating the schema each time."""
    admin = make_engine(maintenance.render_as_string(hide_password=False)).execution_options(
        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    finally:
        admin.dispose()


def copy_template(template: Template, directory: Path, database: str) -> None:
    """The template's database into `directory/portal.sqlite3` (or the PostgreSQL database `database`)
    and its search index into `directory/search`."""
    if os.environ.get("PORTAL_TEST_DATABASE_URL"):
        recreate_database(postgres_maintenance_url(), database, template.database)
    else:
        shutil.copyfile(template.directory / "portal.sqlite3", directory / "portal.sqlite3")
    shutil.copytree(template.directory / "search", directory / "search")


def prepared_app(tmp_path, template: Template, **overrides):
    """An app on a copy of `template`'s database and index."""
    copy_template(template, tmp_path, postgres_test_database())
    return make_app(tmp_path, **overrides)


@pytest.fixture
def app(tmp_path, template):
    app = prepared_app(tmp_path, template)
    yield app
    with app.app_context():
        engine().dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    with app.app_context():
        yield get_session()


def signed_in_client(app, user) -> FlaskClient:
    """A new browser, signed in as this official."""
    client = app.test_client()
    login(client, user)
    return client


def statements_to_get(client, path: str) -> int:
    """How many SQL statements one page costs (it must answer 200)."""
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine(), "before_cursor_execute", listener)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine(), "before_cursor_execute", listener)
    return len(statements)


def login(client, user_or_email, password: str = PASSWORD):
    """Sign in through the real pages, with a real TOTP code where the account needs a second factor."""
    email = user_or_email if isinstance(user_or_email, str) else user_or_email.email
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return second_factor(client, response, email)


def second_factor(client, response, email: str):
    """After the password: enrol in 2FA (first time, through the enrolment page) or enter a code, as a user
    with an authenticator app would. Returns the final response; other responses pass through."""
    step = urlsplit(response.location or "").path
    if step not in ("/login/code", "/account/two-factor"):
        return response
    page = client.get(step).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    data = {"csrf_token": token.group(1)} if token else {}
    if step == "/account/two-factor":
        secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', page).group(1)
        response = client.post(step, data={**data, "code": pyotp.TOTP(secret).now()})
        assert response.status_code == 200 and 'class="recovery-codes"' in response.get_data(as_text=True)
    else:
        response = client.post(step, data={**data, "code": next_totp_code(client.application, email)})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def next_totp_code(app, email: str) -> str:
    """A valid code the server has not seen yet: the current step's, or the next one's (±1 step is
    accepted); after both are used, wait for the clock, as a user would."""
    with app.app_context():
        db = get_session()
        credential = db.scalar(select(TwoFactorCredential).join(User, User.id == TwoFactorCredential.user_id)
                               .where(User.email == email.lower()))
        assert credential is not None, f"{email} has no second factor"
        secret, last_step = credential.secret, credential.last_step
    totp = pyotp.TOTP(secret)
    while (step := totp.timecode(datetime.now(UTC))) + 1 <= last_step:
        time.sleep(totp.interval - time.time() % totp.interval + 0.05)
    return totp.generate_otp(max(step, last_step + 1))


@dataclass
class World:
    """Two sides, every role, a channel of every visibility, and a note with replies in each."""

    eu_member: User
    eu_moderator: User
    eu_admin: User
    jp_member: User
    jp_admin: User
    outsider: User  # EU member of no private channel
    joint: Channel
    eu: Channel
    jp: Channel
    private: Channel
    archived: Channel
    notes: dict[str, Note]
    replies: dict[str, Reply]


WORLD_USERS = ("eu_member", "eu_moderator", "eu_admin", "jp_member", "jp_admin", "outsider")
WORLD_CHANNELS = ("joint", "eu", "jp", "private", "archived")


@pytest.fixture
def world(app, db, world_template) -> World:
    """The world, copied with the database from `world_template`: here it is only looked up."""
    ids = world_template.ids
    w = World(**{name: db.get(User, ids[name]) for name in WORLD_USERS},
              **{name: db.get(Channel, ids[name]) for name in WORLD_CHANNELS},
              notes={k: db.get(Note, i) for k, i in ids["notes"].items()},
              replies={k: db.get(Reply, i) for k, i in ids["replies"].items()})
    assert w.eu_member is not None and w.eu_member.email == "eva@ec.example.eu", \
        "the app under this test was not made from the `template` fixture, so the world is not in its database"
    return w


def build_world(db) -> World:
    eu_org = accounts.create_organisation(db, slug="dg-cnect", name="DG CNECT", side="eu")
    jp_org = accounts.create_organisation(db, slug="jftc", name="Japan Fair Trade Commission", side="jp")

    def user(email, org, role="member", lang="en"):
        return accounts.create_user(db, email=email, name=email.split("@")[0].title(), organisation=org,
                                    role=role, password=PASSWORD, lang=lang)

    w = dict(
        eu_member=user("eva@ec.example.eu", eu_org),
        eu_moderator=user("mia@ec.example.eu", eu_org, "moderator"),
        eu_admin=user("ada@ec.example.eu", eu_org, "admin"),
        jp_member=user("kenji@jftc.example.jp", jp_org, lang="ja"),
        jp_admin=user("aiko@jftc.example.jp", jp_org, "admin", lang="ja"),
        outsider=user("otto@ec.example.eu", eu_org),
    )
    chans = {}
    for slug, visibility in [("joint", "joint"), ("eu", "eu"), ("jp", "jp"), ("private", "private"),
                             ("archived", "joint")]:
        chans[slug] = channels.create_channel(
            db, {"slug": f"{slug}-channel", "name_en": f"{slug.title()} channel", "name_ja": f"{slug}チャンネル",
                 "visibility": visibility}, actor=None)
    channels.add_member(db, chans["private"], w["eu_member"], actor=None)
    channels.add_member(db, chans["private"], w["jp_member"], is_moderator=True, actor=None)
    authors = {"joint": w["eu_member"], "eu": w["eu_member"], "jp": w["jp_member"],
               "private": w["jp_member"], "archived": w["eu_member"]}
    note_map, reply_map = {}, {}
    for slug, channel in chans.items():
        author = authors[slug]
        note = notes.post_note(db, channel, author, "question", {
            "title": f"Question in {slug}", "body": f"Body of the {slug} question", "lang": "en",
            "topics": ["dsa"], "articles": "DSA Art. 16",
            "answer_by": (date.today() + timedelta(days=10)).isoformat()})
        note_map[slug] = note
        reply_map[slug] = replies.post_reply(db, note, author, f"First reply in {slug}")
    chans["archived"].is_archived = True
    db.commit()
    return World(**w, **chans, notes=note_map, replies=reply_map)


def pytest_configure(config):
    config.addinivalue_line("markers", "database: works on the database without the `bare_template` fixture")


def pytest_collection_modifyitems(config, items):
    """The PostgreSQL pass of `make test` runs what touches a database; the rest (the parsers, the
    sanitiser, the catalogue, the search engine on its own) cannot behave differently there and
    already ran in the SQLite pass."""
    if not os.environ.get("PORTAL_TEST_DATABASE_URL"):
        return
    skip = pytest.mark.skip(reason="touches no database: runs in the SQLite pass only")
    for item in items:
        if "bare_template" not in item.fixturenames and item.get_closest_marker("database") is None:
            item.add_marker(skip)


# Property-based tests: few examples, always the same ones, so the suite stays fast and repeatable.
# HYPOTHESIS_PROFILE=thorough searches more widely (random, 500 examples) when working on a parser.
settings.register_profile("portal", max_examples=40, derandomize=True, deadline=None, database=None,
                          print_blob=True)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "portal"))
