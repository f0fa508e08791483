"""End-to-end security checks through the web: stored XSS, CSRF, headers, cookies, limits, ids,
open redirects and log hygiene.

Every page is checked the way a browser would read it (tests/test_markup.py's html.parser checks):
the app's only scripts are its own files under /static/ (an enhancement such as the compose preview),
so any other <script> element, any on* attribute, any style attribute and any href/src/action whose
scheme is not http/https/mailto is a failure.
"""
from __future__ import annotations

import html as htmllib
import logging
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from portal.db import Base, engine, get_session
from portal.models import Reply
from portal.services import accounts, content
from tests.conftest import PASSWORD, login, prepared_app, second_factor
from tests.test_markup import (
    XSS_CASES,
    XSS_PAYLOADS,
    assert_safe_markup,
    html_problems,
    parse_html,
    url_scheme,
)

CSRF_MESSAGE = "The form had expired or was not sent from this site."


# -- Helpers -----------------------------------------------------------------------------------

def dispose(app):
    with app.app_context():
        engine().dispose()


OWN_SCRIPT = re.compile(r'<script src="/static/[a-z-]+\.js" defer></script>')


def page_problems(page: str) -> list[str]:
    return html_problems(OWN_SCRIPT.sub("", page))


def assert_safe_page(page: str, where: str) -> None:
    problems = page_problems(page)
    assert not problems, f"{where}: {problems}"


def text_of(pattern: str, page: str) -> str:
    """The decoded text of the first match of a regex group; escaped markup cannot hold `<`."""
    match = re.search(pattern, page, re.S)
    assert match, f"{pattern!r} not found"
    return htmllib.unescape(match.group(1))


def db_state(app) -> dict[str, list[str]]:
    """Every row of every table, for "nothing changed" assertions that cover future tables too."""
    with app.app_context():
        session = get_session()
        return {
            table.name: sorted(repr(tuple(row)) for row in session.execute(table.select()))
            for table in Base.metadata.sorted_tables
        }


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


def count(app, model) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model))


def signed_in_user_id(client) -> str | None:
    with client.session_transaction() as session:
        return session.get("_user_id")


def csrf_token_from(page: str) -> str:
    return text_of(r'name="csrf_token" value="([^"]+)"', page)


def note_id_from(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    match = re.search(r"/notes/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def reply_id_from(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    match = re.search(r"#reply-(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def get_page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, f"GET {url}: {response.status_code}"
    return response.get_data(as_text=True)


def single_line(text: str) -> str:
    """A title as the app stores it: whitespace collapsed."""
    return " ".join(text.split())


# -- 2. Stored XSS, end to end -----------------------------------------------------------------

@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_payload_as_title_body_and_reply_is_inert_on_every_page(client, world, payload):
    login(client, world.eu_member)
    slug = world.joint.slug
    compose = f"/channels/{slug}/new/update"
    note_id = note_id_from(client.post(compose, data={
        "title": payload, "body": payload, "lang": "en", "marking": "limited"}))
    reply_id = reply_id_from(client.post(f"/notes/{note_id}/replies", data={"body": payload}))
    nested_id = reply_id_from(client.post(f"/notes/{note_id}/replies", data={
        "body": payload, "parent_id": str(reply_id)}))
    # The same text as the accepted answer of a question, which shows it a second time.
    question = world.notes["joint"]
    answer_id = reply_id_from(client.post(f"/notes/{question.id}/replies", data={"body": payload}))
    assert client.post(f"/notes/{question.id}/accept", data={"reply_id": str(answer_id)}).status_code == 302

    pages = {name: get_page(client, url) for name, url in {
        "note": f"/notes/{note_id}",
        "channel": f"/channels/{slug}",
        "dashboard": "/",
        "edit note": f"/notes/{note_id}/edit",
        "note history": f"/notes/{note_id}/history",
        "subthread": f"/notes/{note_id}/replies/{reply_id}",
        "edit reply": f"/replies/{nested_id}/edit",
        "reply history": f"/replies/{nested_id}/history",
        "question with accepted answer": f"/notes/{question.id}",
    }.items()}
    # Forms shown again after a mistake echo what was typed.
    for name, data in {"compose, no body": {"title": payload, "body": "", "lang": "en"},
                       "compose, no title": {"title": "", "body": payload, "lang": "en"}}.items():
        response = client.post(compose, data=data)
        assert response.status_code == 400, name
        pages[name] = response.get_data(as_text=True)
    response = client.post(f"/notes/{note_id}/replies", data={  # a parent from another note
        "body": payload, "parent_id": str(world.replies["joint"].id)})
    assert response.status_code == 400
    pages["reply form with errors"] = response.get_data(as_text=True)
    for name, page in pages.items():
        assert_safe_page(page, name)

    # Titles are plain text: each place that shows one shows exactly what was typed.
    title = single_line(payload)
    assert text_of(r"<h1 lang=\"en\">(.*?)</h1>", pages["note"]) == title
    assert text_of(r"<title>(.*?) · EU–Japan", pages["note"]) == title
    link = rf'<a href="/notes/{note_id}" lang="en">(.*?)</a>'
    assert text_of(link, pages["channel"]) == title
    assert text_of(link, pages["dashboard"]) == title
    for name, typed_title, typed_body in [("edit note", title, payload.strip()),
                                          ("compose, no body", payload, ""),
                                          ("compose, no title", "", payload)]:
        fields = {dict(e.attrs).get("id"): dict(e.attrs) for e in parse_html(pages[name]).elements}
        assert fields["title"]["value"] == typed_title, name
        assert text_of(r'<textarea id="body"[^>]*>(.*?)</textarea>', pages[name]) == typed_body, name
    assert text_of(r'<textarea[^>]*name="body"[^>]*>(.*?)</textarea>', pages["edit reply"]) == payload.strip()
    assert text_of(r'<textarea id="reply-body"[^>]*>(.*?)</textarea>', pages["reply form with errors"]) == payload

    # And as an administrator sees it once deleted.
    assert client.post(f"/notes/{note_id}/delete").status_code == 302
    client.post("/logout")
    login(client, world.eu_admin)
    assert_safe_page(get_page(client, "/admin/deleted"), "deleted notes")
    assert_safe_page(get_page(client, f"/notes/{note_id}"), "deleted note (admin)")


def test_atom_feed_escapes_titles_and_bodies(client, world):
    login(client, world.eu_member)
    cases = [("DSA & DMA", "Line one  \nline two\n\n---"), *XSS_CASES[:10]]
    for title, body in cases:
        note_id_from(client.post(f"/channels/{world.joint.slug}/new/update", data={
            "title": title, "body": body, "lang": "en", "marking": "limited"}))
    response = client.get(f"/channels/{world.joint.slug}/feed.atom")
    assert response.status_code == 200
    feed = ET.fromstring(response.get_data())  # must be well-formed XML
    atom = "{http://www.w3.org/2005/Atom}"
    entries = feed.findall(f"{atom}entry")
    titles = [entry.findtext(f"{atom}title") for entry in entries]
    for title, _ in cases:
        assert single_line(title) in titles
    for entry in entries:
        assert [child.tag for child in entry.find(f"{atom}title")] == []
        content_ = entry.find(f"{atom}content")
        if content_ is not None:
            assert list(content_) == [], "content type=html must be escaped text, not elements"
            assert_safe_markup(content_.text or "")


# -- 3. CSRF -----------------------------------------------------------------------------------

FORM = {
    # Enough for any POST route to succeed (and change something) if its CSRF check were missing.
    "title": "Forged", "body": "Forged text", "lang": "en", "marking": "limited",
    "answer_by": (date.today() + timedelta(days=5)).isoformat(), "case_status": "closed",
    "grounds": "Forged grounds", "email": "forged@ec.example.eu", "name": "Forged",
    "role": "moderator", "is_active": "0", "slug": "forged", "side": "eu", "visibility": "joint",
    "name_en": "Forged channel", "name_ja": "偽", "archive": "1", "is_moderator": "1",
    "password": "another long passphrase 2", "confirm": "another long passphrase 2",
    "current": PASSWORD,
}


class TestCSRF:
    @pytest.fixture
    def app(self, tmp_path, template):
        app = prepared_app(tmp_path, template, WTF_CSRF_ENABLED=True)
        yield app
        dispose(app)

    @pytest.fixture
    def invitation_token(self, app, db, world):
        pending = accounts.create_user(db, email="new@ec.example.eu", name="New",
                                       organisation=world.eu_member.organisation)
        link = accounts.invite(db, pending, actor=None)
        db.commit()
        return link.rsplit("/", 1)[1]

    @staticmethod
    def sign_in(client, user, password=PASSWORD):
        token = csrf_token_from(get_page(client, "/login"))
        response = client.post("/login", data={"email": user.email, "password": password, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return second_factor(client, response, user.email)

    # RFC 8058 one-click unsubscribe is POSTed by mail providers without a form of ours; its signed
    # token is the proof (tests/test_digests.py checks it works with CSRF on, and refuses bad tokens).
    CSRF_EXEMPT = {"digests.unsubscribe"}

    @staticmethod
    def post_urls(app, world, invitation_token, form_data):
        """Every POST route in the url map, with its URL arguments filled from the world."""
        values = {
            "note_id": world.notes["joint"].id, "reply_id": world.replies["joint"].id,
            "user_id": world.jp_member.id, "slug": world.joint.slug, "kind": "update",
            "token": invitation_token,
            "token_id": 1,  # any id: the CSRF check comes before the API token is looked up
            "subscription_id": 1,
            "session_id": 1,
            "notification_id": 1,  # refused for its token before anyone looks it up
        }
        adapter = app.url_map.bind("localhost")
        urls = []
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "POST" not in rule.methods or rule.endpoint in TestCSRF.CSRF_EXEMPT:
                continue
            if rule.rule.startswith("/api/"):
                continue  # bearer tokens only, never cookies, so exempt (tests/test_api.py checks both)
            missing = rule.arguments - values.keys()
            assert not missing, f"{rule.rule}: add a test value for {missing} to post_urls()"
            data = dict(form_data)
            if rule.endpoint == "notes.accept":
                data["reply_id"] = str(world.replies["joint"].id)
            if rule.endpoint == "admin.add_member":
                data["email"] = world.outsider.email
            data["organisation_id"] = str(world.eu_member.organisation.id)
            urls.append((rule.endpoint, adapter.build(rule.endpoint, {a: values[a] for a in rule.arguments},
                                                      method="POST"), data))
        return urls

    def test_every_post_route_is_walked(self, app, world, invitation_token):
        endpoints = {endpoint for endpoint, _, _ in self.post_urls(app, world, invitation_token, FORM)}
        assert {"auth.login", "auth.logout", "notes.reply", "channels.compose", "admin.users"} <= endpoints
        assert len(endpoints) >= 20

    @pytest.mark.parametrize("variant", ["missing", "empty", "garbage", "other-session", "header-only"])
    def test_every_post_route_refuses_a_missing_or_wrong_token(self, app, client, world, invitation_token, variant):
        self.sign_in(client, world.eu_admin)
        other = app.test_client()
        other_token = csrf_token_from(get_page(other, "/login"))
        user_id = signed_in_user_id(client)
        assert user_id
        failures = []
        for endpoint, url, data in self.post_urls(app, world, invitation_token, FORM):
            headers = {}
            if variant == "empty":
                data["csrf_token"] = ""
            elif variant == "garbage":
                data["csrf_token"] = "IjAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OSI.Zm9v.YmFy"
            elif variant == "other-session":
                data["csrf_token"] = other_token
            elif variant == "header-only":
                headers["X-CSRFToken"] = other_token
            before = db_state(app)
            response = client.post(url, data=data, headers=headers)
            after = db_state(app)
            body = response.get_data(as_text=True)
            if response.status_code != 400:
                failures.append(f"{endpoint} {url}: status {response.status_code}")
            elif CSRF_MESSAGE not in body:
                failures.append(f"{endpoint} {url}: 400 without the CSRF message")
            if changed := changed_tables(before, after):
                failures.append(f"{endpoint} {url}: changed {changed}")
            if signed_in_user_id(client) != user_id:
                failures.append(f"{endpoint} {url}: the session changed")
            problems = header_problems(response)
            if problems:
                failures.append(f"{endpoint} {url}: {problems}")
        assert not failures, "\n".join(failures)

    @pytest.mark.parametrize("variant", ["missing", "garbage", "other-session"])
    def test_sign_in_refuses_a_missing_or_wrong_token(self, app, client, world, variant):
        get_page(client, "/login")  # the session now holds this client's CSRF secret
        other = app.test_client()
        data = {"email": world.eu_member.email, "password": PASSWORD}
        if variant == "garbage":
            data["csrf_token"] = "garbage"
        elif variant == "other-session":
            data["csrf_token"] = csrf_token_from(get_page(other, "/login"))
        before = db_state(app)
        response = client.post("/login", data=data)
        assert response.status_code == 400
        assert CSRF_MESSAGE in response.get_data(as_text=True)
        assert signed_in_user_id(client) is None
        assert db_state(app) == before  # no sign-in recorded, no failure counted
        assert client.get("/").status_code == 302  # still signed out

    def test_a_correct_token_signs_in_and_posts_a_reply(self, app, client, world):
        self.sign_in(client, world.eu_member)
        assert signed_in_user_id(client)
        assert client.get("/").status_code == 200
        note = world.notes["joint"]
        page = get_page(client, f"/notes/{note.id}")
        form = re.search(r'<form[^>]*id="respond".*?</form>', page, re.S)
        assert form, "reply form not found"
        token = csrf_token_from(form.group(0))
        replies_before = count(app, Reply)
        response = client.post(f"/notes/{note.id}/replies", data={"body": "With a token", "csrf_token": token})
        reply_id_from(response)
        assert count(app, Reply) == replies_before + 1
        assert "With a token" in get_page(client, f"/notes/{note.id}")

    def test_the_forged_requests_would_change_state_without_csrf(self, app, client, world, invitation_token):
        """Control: the walk's form data is enough to change state, so "nothing changed" means something."""
        app.config["WTF_CSRF_ENABLED"] = False
        login(client, world.eu_admin)
        urls = {endpoint: (url, data) for endpoint, url, data in self.post_urls(app, world, invitation_token, FORM)}
        for endpoint in ["notes.reply", "channels.compose", "notes.edit", "notes.decline", "admin.users",
                         "admin.organisations", "admin.update_user", "notes.delete", "admin.archive",
                         "sessions.end_others", "audit.export"]:
            url, data = urls[endpoint]
            before = db_state(app)
            client.post(url, data=data)
            assert changed_tables(before, db_state(app)), f"{endpoint} changed nothing"
        anonymous = app.test_client()
        url, data = urls["auth.invitation"]
        before = db_state(app)
        assert anonymous.post(url, data=data).status_code == 302
        assert changed_tables(before, db_state(app))


# -- 4. Headers, cookies, limits, ids, redirects -----------------------------------------------

def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        tokens = part.split()
        if tokens:
            directives.setdefault(tokens[0].lower(), [t.lower() for t in tokens[1:]])
    return directives


def header_problems(response) -> list[str]:
    problems = []
    csp = response.headers.get("Content-Security-Policy")
    if not csp:
        return ["no Content-Security-Policy"]
    directives = csp_directives(csp)
    script_src = directives.get("script-src", directives.get("default-src"))
    if script_src is None:
        problems.append("CSP restricts neither script-src nor default-src")
    else:
        for unsafe in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
            if unsafe in script_src:
                problems.append(f"script-src allows {unsafe}")
    if directives.get("object-src", directives.get("default-src")) != ["'none'"]:
        problems.append("object-src is not 'none'")
    if (response.headers.get("X-Frame-Options", "").upper() != "DENY"
            and directives.get("frame-ancestors") != ["'none'"]):
        problems.append("framing is not forbidden")
    if response.headers.get("X-Content-Type-Options", "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    return problems


def test_security_headers_on_a_sample_of_pages(app, client, world):
    archived = world.notes["archived"]
    anonymous = app.test_client()
    responses = {
        "login page": anonymous.get("/login"),
        "failed sign-in (401)": anonymous.post("/login", data={"email": world.eu_member.email, "password": "wrong"}),
        "redirect to sign-in": anonymous.get("/"),
        "404 signed out": anonymous.get("/no/such/page"),
        "static css": anonymous.get("/static/portal.css"),
    }
    login(client, world.eu_member)
    responses.update({
        "dashboard": client.get("/"),
        "note": client.get(f"/notes/{world.notes['joint'].id}"),
        "404": client.get("/notes/999999"),
        "404 invisible": client.get(f"/notes/{world.notes['jp'].id}"),
        "400": client.post(f"/notes/{world.notes['joint'].id}/replies", data={"body": "  "}),
        "403": client.get(f"/notes/{archived.id}/edit"),
        "405": client.get("/logout"),
        "413": client.post(f"/notes/{world.notes['joint'].id}/replies", data={"body": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)}),
        "atom feed": client.get(f"/channels/{world.joint.slug}/feed.atom"),
    })
    expected = {"400": 400, "403": 403, "404": 404, "404 signed out": 404, "404 invisible": 404, "405": 405,
                "413": 413, "failed sign-in (401)": 401, "redirect to sign-in": 302}
    failures = []
    for name, response in responses.items():
        if response.status_code != expected.get(name, 200):
            failures.append(f"{name}: status {response.status_code}")
        if problems := header_problems(response):
            failures.append(f"{name}: {problems}")
        if response.mimetype == "text/html":
            if problems := page_problems(response.get_data(as_text=True)):
                failures.append(f"{name}: {problems}")
        response.close()
    assert not failures, "\n".join(failures)


def test_every_get_route_has_headers_and_no_side_effects(app, client, db, world):
    """Walks the url map: GETs (which SameSite=Lax lets other sites trigger) change nothing."""
    pending = accounts.create_user(db, email="new@ec.example.eu", name="New",
                                   organisation=world.eu_member.organisation)
    token = accounts.invite(db, pending, actor=None).rsplit("/", 1)[1]
    db.commit()
    login(client, world.eu_admin)
    act_slug = content.acts(db)[0].slug
    values = {"note_id": world.notes["joint"].id, "reply_id": world.replies["joint"].id,
              "user_id": world.jp_member.id, "kind": "update", "token": token, "filename": "portal.css"}
    adapter = app.url_map.bind("localhost")
    failures, walked = [], 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods:
            continue
        args = dict(values, slug=act_slug if rule.endpoint.startswith("main.") else world.joint.slug)
        assert not rule.arguments - args.keys(), f"{rule.rule}: add a test value for its arguments"
        url = adapter.build(rule.endpoint, {a: args[a] for a in rule.arguments}, method="GET")
        before = db_state(app)
        response = client.get(url)
        walked += 1
        if response.status_code >= 500:
            failures.append(f"{url}: {response.status_code}")
        if changed := changed_tables(before, db_state(app)):
            failures.append(f"GET {url} changed {changed}")
        if problems := header_problems(response):
            failures.append(f"{url}: {problems}")
        if response.mimetype == "text/html" and (problems := page_problems(response.get_data(as_text=True))):
            failures.append(f"{url}: {problems}")
        response.close()
    assert walked >= 20
    assert not failures, "\n".join(failures)


def session_cookie(response, name="session") -> dict[str, str | bool]:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            attributes = {}
            for part in header.split(";")[1:]:
                key, _, value = part.strip().partition("=")
                attributes[key.lower()] = value or True
            return attributes
    raise AssertionError(f"no {name} cookie set: {response.headers.getlist('Set-Cookie')}")


def test_session_cookie_is_httponly_and_samesite_lax(client, world):
    response = login(client, world.eu_member)
    cookie = session_cookie(response)
    assert cookie.get("httponly") is True
    assert str(cookie.get("samesite")).lower() == "lax"


class TestHttpsCookies:
    @pytest.fixture
    def app(self, tmp_path, template):
        app = prepared_app(tmp_path, template, BASE_URL="https://portal.example.eu", WTF_CSRF_ENABLED=True)
        yield app
        dispose(app)

    def test_session_cookie_is_secure_httponly_and_lax_over_https(self, client, world):
        page = client.get("/login", base_url="https://portal.example.eu")
        for response in (page, client.post("/login", base_url="https://portal.example.eu", data={
                "email": world.eu_member.email, "password": PASSWORD,
                "csrf_token": csrf_token_from(page.get_data(as_text=True))},
                headers={"Referer": "https://portal.example.eu/login"})):
            cookie = session_cookie(response)
            assert cookie.get("secure") is True, response.status_code
            assert cookie.get("httponly") is True
            assert str(cookie.get("samesite")).lower() == "lax"
        assert response.status_code == 302, response.get_data(as_text=True)[:500]


def test_a_body_over_200_kb_is_refused_and_nothing_is_saved(app, client, world):
    login(client, world.eu_member)
    limit = app.config["MAX_BODY_BYTES"]
    assert limit == 200 * 1024
    note = world.notes["joint"]
    compose = f"/channels/{world.joint.slug}/new/update"
    before = db_state(app)
    for url, data in [(compose, {"title": "Too long", "body": "a" * (limit + 1), "lang": "en"}),
                      (f"/notes/{note.id}/replies", {"body": "a" * (limit + 1)}),
                      (f"/notes/{note.id}/edit", {"title": note.title, "body": "a" * (limit + 1), "lang": "en",
                                                  "answer_by": note.answer_by.isoformat()}),
                      (f"/replies/{world.replies['joint'].id}/edit", {"body": "a" * (limit + 1)}),
                      # 200 KB of UTF-8 is fewer characters in Japanese; the limit is on bytes.
                      (compose, {"title": "長文", "body": "規" * (limit // 3 + 1), "lang": "ja"})]:
        response = client.post(url, data=data)
        assert response.status_code == 400, url
        assert "over the 200 KB limit" in response.get_data(as_text=True), url
    assert changed_tables(before, db_state(app)) == []
    # Exactly at the limit is fine.
    note_id_from(client.post(compose, data={"title": "At the limit", "body": "a" * limit, "lang": "en"}))


def test_a_request_over_max_content_length_is_refused_with_a_message(app, client, world):
    login(client, world.eu_member)
    too_big = app.config["MAX_CONTENT_LENGTH"] + 1
    note = world.notes["joint"]
    before = db_state(app)
    for url, data in [(f"/channels/{world.joint.slug}/new/update", {"title": "Huge", "body": "a" * too_big}),
                      (f"/notes/{note.id}/replies", {"body": "a" * too_big})]:
        response = client.post(url, data=data)
        assert response.status_code == 413, url
        page = response.get_data(as_text=True)
        assert "That request is too large" in page and "200 KB" in page
        assert_safe_page(page, "413")
    # Multipart too (built by hand: the test client's own encoder spools it to a temporary file).
    boundary = "portal-test-boundary"
    multipart = (f'--{boundary}\r\nContent-Disposition: form-data; name="body"\r\n\r\n{"a" * too_big}'
                 f"\r\n--{boundary}--\r\n").encode()
    response = client.post(f"/notes/{note.id}/replies", data=multipart,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413
    assert changed_tables(before, db_state(app)) == []


def test_a_japanese_body_under_200_kb_is_accepted(client, world):
    login(client, world.eu_member)
    body = "規制対話" * 15_000  # 60,000 characters, 180 KB of UTF-8
    assert len(body.encode()) < 200_000
    response = client.post(f"/channels/{world.joint.slug}/new/update",
                           data={"title": "長文", "body": body, "lang": "ja"})
    note_id_from(response)


@pytest.mark.parametrize("method, url", [
    ("GET", "/notes/abc"),
    ("GET", "/notes/0"),
    ("GET", "/notes/-1"),
    ("GET", "/notes/01"),
    ("GET", "/notes/1.5"),
    ("GET", "/notes/1e3"),
    ("GET", "/notes/%20"),
    ("GET", "/notes/99999999999999999999999"),
    ("GET", "/notes/999999999999999999"),
    ("GET", "/notes/9223372036854775808"),
    ("GET", "/notes/18446744073709551616"),
    ("GET", "/notes/99999999999999999999999/history"),
    ("GET", "/notes/{note}/replies/99999999999999999999999"),
    ("GET", "/notes/{note}/replies/0"),
    ("GET", "/replies/-1"),
    ("GET", "/replies/0"),
    ("GET", "/replies/abc/edit"),
    ("GET", "/replies/99999999999999999999999/history"),
    ("GET", "/replies/999999999999999999"),
    ("POST", "/notes/abc/replies"),
    ("POST", "/notes/99999999999999999999999/replies"),
    ("POST", "/notes/999999999999999999/delete"),
    ("POST", "/replies/-1/delete"),
    ("POST", "/replies/999999999999999999/restore"),
    ("POST", "/admin/users/99999999999999999999999"),
    ("POST", "/admin/users/999999999999999999"),
    ("GET", "/channels/no-such-channel"),
    ("GET", "/channels/%00"),
    ("GET", "/channels/{slug}/new/nonsense"),
    ("GET", "/regulations/no-such-act"),
    ("GET", "/invitations/not-a-token"),
])
def test_unknown_malformed_and_huge_ids_are_404(client, world, method, url):
    login(client, world.eu_admin)
    url = url.format(note=world.notes["joint"].id, slug=world.joint.slug)
    response = client.open(url, method=method, data={"body": "x"} if method == "POST" else None)
    expected = 400 if url.startswith("/invitations/") else 404  # a bad link says why
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    assert not header_problems(response)


def location_is_same_site(location: str) -> bool:
    """Whether a browser following this Location stays on the portal (the test client's localhost)."""
    cleaned = location.strip("".join(chr(c) for c in range(0x21)))
    cleaned = re.sub(r"[\t\n\r]", "", cleaned).replace("\\", "/")
    scheme = url_scheme(cleaned)
    if scheme is not None:
        if scheme not in ("http", "https"):
            return False
        authority = cleaned[len(scheme) + 1:].lstrip("/").split("/", 1)[0].split("?", 1)[0]
        return authority.rsplit("@", 1)[-1].split(":", 1)[0].lower() == "localhost"
    return cleaned.startswith("/") and not cleaned.startswith("//")


NEXT_TARGETS = [
    "//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
    "\\/evil.example", "///evil.example", "/\t/evil.example", "/\n/evil.example", " //evil.example",
    "http:evil.example", "https:/evil.example", "https:\\\\evil.example", "//evil.example@localhost",
    "/%2F/evil.example", "/%5Cevil.example", "javascript:alert(1)", "data:text/html,x",
    "HTTPS://EVIL.EXAMPLE", "\x00//evil.example", "//evil.example/%2e%2e",
]


@pytest.mark.parametrize("target", NEXT_TARGETS)
def test_next_never_redirects_off_site(app, world, target):
    client = app.test_client()
    response = client.post(f"/login?next={quote(target, safe='')}",
                           data={"email": world.eu_member.email, "password": PASSWORD})
    assert response.status_code == 302
    assert location_is_same_site(response.headers["Location"]), response.headers["Location"]
    # Already signed in, /login?next= redirects straight away: the same rule applies.
    response = client.get(f"/login?next={quote(target, safe='')}")
    assert response.status_code == 302
    assert location_is_same_site(response.headers["Location"]), response.headers["Location"]


def test_next_keeps_a_same_site_path(app, world):
    client = app.test_client()
    path = f"/notes/{world.notes['joint'].id}?page=2"
    response = client.post(f"/login?next={quote(path, safe='')}",
                           data={"email": world.eu_member.email, "password": PASSWORD})
    assert response.headers["Location"] == path


def test_location_helper():
    assert location_is_same_site("/notes/1")
    assert location_is_same_site("http://localhost/notes/1")
    for bad in ["//evil.example", "/\\evil.example", "https:/evil.example", "/\t/evil.example",
                "http://localhost@evil.example/", "javascript:alert(1)"]:
        assert not location_is_same_site(bad), bad


# -- 5. Log hygiene ----------------------------------------------------------------------------

def test_sign_in_and_posting_never_log_the_password_or_the_text(app, world, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    wrong_password = "Wrong-Passphrase-7f3a91"
    body = "Confidential body text 5c1e07 about a pending DSA case"
    reply_body = "Confidential reply text 9b2d44"
    client = app.test_client()
    assert client.post("/login", data={"email": world.eu_member.email, "password": wrong_password}).status_code == 401
    login(client, world.eu_member)
    note_id = note_id_from(client.post(f"/channels/{world.joint.slug}/new/update", data={
        "title": "Logged title", "body": body, "lang": "en", "marking": "sensitive"}))
    reply_id_from(client.post(f"/notes/{note_id}/replies", data={"body": reply_body}))
    assert client.post(f"/notes/{note_id}/edit", data={
        "title": "Logged title", "body": body + " edited", "lang": "en", "marking": "sensitive"}).status_code == 302
    secrets_ = [PASSWORD, wrong_password, body, reply_body, "5c1e07", "9b2d44", "7f3a91"]
    logged = [caplog.text] + [
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''} {getattr(record, '__dict__', '')!r}"
        for record in caplog.records
    ]
    out, err = capfd.readouterr()
    for secret in secrets_:
        for text in logged + [out, err]:
            assert secret not in text
    # Neither password is stored anywhere in clear, audit trail included.
    state = repr(db_state(app))
    assert PASSWORD not in state and wrong_password not in state


def test_sql_logging_never_shows_note_text(client, world, caplog):
    """Even with SQLAlchemy's statement logging switched on, parameters (note text) stay out."""
    login(client, world.eu_member)
    secret = "Confidential draft finding 7f3a"
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        client.post(f"/channels/{world.joint.slug}/new/update",
                    data={"title": "Logged?", "body": secret, "lang": "en"})
    assert any("INSERT INTO notes" in record.getMessage() for record in caplog.records)
    assert secret not in caplog.text
