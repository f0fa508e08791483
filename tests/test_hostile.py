"""Hostile input: property-based tests (hypothesis) of the sanitiser, the query parser and the importer,
security headers on every response, CSRF on every form, and malformed requests refused without a 500.

Example counts are modest and derandomized (the "portal" profile in tests/conftest.py) so the suite
stays fast and the same on every run; HYPOTHESIS_PROFILE=thorough searches harder.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import date

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.markup import render_markdown
from portal.models import Note, Reply
from portal.search import query as query_language
from portal.services import importer
from portal.services import search as search_service
from tests.conftest import login
from tests.test_markup import XSS_CASES, html_problems
from tests.test_security import header_problems

# Fixtures are set up once per test, not per example: every example here only reads, or writes
# rows it names uniquely, so sharing them between examples is sound.
def with_fixtures(max_examples: int):
    """Fewer examples for properties that go through the database or the web."""
    return settings(max_examples=max_examples,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

DANGEROUS = [text for _, text in XSS_CASES] + [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))", "[x](java\tscript:alert(1))", "[x](data:text/html,<script>)",
    "<a href='vbscript:x'>v</a>", "![i](javascript:alert(1))", "<svg onload=alert(1)>", "`<b>`",
    "\n```\n<script>\n```\n", "<<script>script>", "&lt;script&gt;", "[a](<javascript:x>)", "<!-- x -->",
    "| a | b |\n|---|---|\n| <i onclick=x> | [y](javascript:z) |", "> <iframe src=//x>", "\x00", "\u202e",
]
markdown_text = st.lists(st.one_of(st.sampled_from(DANGEROUS), st.text(max_size=40)), max_size=8).map("".join)


# -- The Markdown sanitiser ----------------------------------------------------------------------

@given(markdown_text)
def test_no_script_event_handler_or_dangerous_url_survives_rendering(text):
    html = render_markdown(text)
    assert html_problems(html) == []
    assert not re.search(r"<\s*script", html, re.I)


@given(markdown_text)
def test_rendering_is_stable(text):
    """The same text always renders the same way (pages store the rendering once, on save)."""
    assert render_markdown(text) == render_markdown(text)


# -- The search query parser -------------------------------------------------------------------

query_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(max_codepoint=0x3000), min_size=0, max_size=60).map(lambda t: t * 200),
    st.lists(st.sampled_from(['"', "-", "OR", "AND", "NOT", "(", ")", "*", "?", ":", "kind:", "before:",
                              "after:2026-13-45", "article:", "channel:\"", "is:", "\\", "\x00", "\x1b",
                              "第二十七条", "の", "DMA Art 6(7)", " ", "~2", "^3", "[a TO b]", "{", "}"]),
             max_size=30).map("".join),
)


@given(query_text)
def test_the_parser_never_raises_and_bounds_the_query(text):
    parsed = query_language.split(text)
    assert len(parsed.text) <= query_language.MAX_QUERY_CHARS
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", parsed.text)


@with_fixtures(25)
@given(text=query_text)
def test_search_answers_any_query(app, db, world, text):
    with app.test_request_context():
        page = search_service.search(db, world.eu_member, text, today=date.today())
    assert page.total >= 0


@with_fixtures(15)
@given(text=query_text, page=st.one_of(st.integers(), st.text(max_size=5)))
def test_the_search_page_never_fails(signed_in, text, page):
    response = signed_in.get("/search", query_string={"q": text, "page": page, "sort": text[:10]})
    assert response.status_code == 200


# -- The importer -------------------------------------------------------------------------------

no_nul = st.characters(blacklist_characters="\x00")
good_record = st.fixed_dictionaries({
    "title": st.text(no_nul, min_size=1, max_size=40).map(lambda t: "T " + t),
    "body": st.text(no_nul, min_size=1, max_size=200).map(lambda t: "B " + t),
    "lang": st.sampled_from(["en", "ja"]),
}, optional={"topics": st.just(["dsa"]), "marking": st.sampled_from(["public", "limited", "sensitive"])})
bad_line = st.one_of(
    st.text(max_size=50).filter(lambda t: t.strip() and not _is_json_object(t)),
    st.builds(json.dumps, st.one_of(st.integers(), st.lists(st.integers()), st.none(), st.text())),
    st.just('{"id": "x", "title": "no body"}'),
    st.just('{"id": "", "title": "t", "body": "b", "lang": "en"}'),
    st.just('{"id": "y", "title": "t", "body": "b", "lang": "fr"}'),
    st.just('{"id": "z", "title": "   ", "body": "b", "lang": "en"}'),
    st.just('{"id": "w", "title": "t", "body": "b", "lang": "en", "kind": "memo"}'),
    st.just('{"id": "v", "title": "t", "body": "b", "lang": "en", "marking": 7}'),
    st.just('{"id": ["list"], "title": "t", "body": "b", "lang": "en"}'),
    st.just('{"id": "u", "title": "t", "body": "nul \\u0000 inside", "lang": "en"}'),
    st.just('{"id": "s", "title": "t", "body": "b", "lang": "en", "platforms": "A\\u0000B"}'),
)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


@with_fixtures(20)
@example(lines=[("good", {"title": "T", "body": "B", "lang": "en"}),
                ("bad", '{"id": "u", "title": "t", "body": "nul \\u0000 inside", "lang": "en"}'),
                ("bad", "not json"), ("good", {"title": "T2", "body": "B2", "lang": "ja"})],
         run=uuid.UUID(int=1))
@given(lines=st.lists(st.one_of(good_record.map(lambda r: ("good", r)), bad_line.map(lambda b: ("bad", b))),
                      max_size=12),
       run=st.uuids())
def test_the_importer_keeps_good_lines_and_reports_bad_ones(db, world, lines, run):
    text_lines, good, bad = [], set(), set()
    for number, (kind, value) in enumerate(lines, start=1):
        if kind == "good":
            value = {**value, "id": f"{run}-{number}"}
            good.add(number)
            value = json.dumps(value)
        else:
            bad.add(number)
        text_lines.append(value.replace("\n", " ") + "\n")
    before = db.scalar(select(func.count(Note.id)))
    result = importer.import_notes(db, text_lines, channel=world.joint, author=world.eu_member)
    db.commit()
    assert {number for number, _ in result.errors} == bad
    assert all(message for _, message in result.errors)
    assert result.created == len(good) and result.updated == 0
    assert db.scalar(select(func.count(Note.id))) == before + len(good)
    assert {note.external_id for note in result.written} == {f"{run}-{n}" for n in good}


# -- Every response carries the security headers ---------------------------------------------

@pytest.fixture
def signed_in(app, world):
    client = app.test_client()
    login(client, world.eu_member)
    return client


def test_every_rule_and_method_answers_with_the_security_headers(app, world, signed_in):
    """Every rule, every method it has (and one it has not), signed in and out: headers on all of it,
    errors included, and never a 500."""
    anonymous = app.test_client()
    values = {"note_id": world.notes["joint"].id, "reply_id": world.replies["joint"].id,
              "user_id": world.jp_member.id, "slug": world.joint.slug, "kind": "update", "token": "bogus",
              "filename": "portal.css", "token_id": 1, "subscription_id": 1, "session_id": 1, "notification_id": 1}
    adapter = app.url_map.bind("localhost")
    failures, seen = [], 0
    for rule in app.url_map.iter_rules():
        url = adapter.build(rule.endpoint, {a: values[a] for a in rule.arguments})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}) + ["PUT"]:
            for who, client in (("anonymous", anonymous), ("member", signed_in)):
                response = client.open(url, method=method, data={"format": "json"} if method == "POST" else None)
                seen += 1
                if response.status_code >= 500:
                    failures.append(f"{who} {method} {url}: {response.status_code}")
                if problems := header_problems(response):
                    failures.append(f"{who} {method} {url} ({response.status_code}): {problems}")
                response.close()
    assert seen > 100
    assert not failures, "\n".join(failures)


# -- Forms: every POST form on every page carries a CSRF token and is walked by test_security -----

def test_every_form_on_every_page_carries_a_csrf_token(app, world):
    """Reads the forms that pages really show (as an admin and as a channel moderator); each must hold a
    csrf_token field and post to a rule that TestCSRF walks, so a new form is covered automatically."""
    adapter = app.url_map.bind("localhost")
    posting_rules = {rule.endpoint for rule in app.url_map.iter_rules() if "POST" in rule.methods}
    pages = ["/login", "/", "/channels", f"/channels/{world.joint.slug}", f"/channels/{world.private.slug}",
             f"/notes/{world.notes['joint'].id}", f"/notes/{world.notes['private'].id}",
             f"/notes/{world.notes['joint'].id}/edit", f"/replies/{world.replies['joint'].id}/edit",
             "/password", "/admin/users", "/admin/organisations", "/admin/channels",
             f"/admin/channels/{world.joint.slug}", "/admin/deleted", "/search?q=body"]
    forms_seen, failures = 0, []
    for user in (world.eu_admin, world.jp_member):
        client = app.test_client()
        if user is not None:
            login(client, user)
        for page in pages:
            body = client.get(page).get_data(as_text=True)
            for form in re.findall(r"<form\b[^>]*>.*?</form>", body, re.S | re.I):
                if not re.search(r'method="post"', form, re.I):
                    continue
                forms_seen += 1
                action = re.search(r'action="([^"]*)"', form)
                path = action.group(1) if action else page.split("?")[0]
                endpoint, _ = adapter.match(path, method="POST")
                if endpoint not in posting_rules:
                    failures.append(f"{page}: form posts to {path}, not a POST rule")
                if not re.search(r'name="csrf_token" value="[^"]+"', form):
                    failures.append(f"{page}: form to {path} has no csrf_token")
    assert forms_seen >= 15
    assert not failures, "\n".join(failures)


# -- Malformed and absurd requests ---------------------------------------------------------------

ABSURD_QUERIES = [
    "page=-1", "page=0", "page=10000000000000000000000", "page=abc", "page=1e9", "per_page=1000000000",
    "per_page=-5", "kind=%ZZ", "kind=%FF%FE", "page=%00", "q=%", "q=%E3%81", "q=%ZZ%%", "sort=%C0%AF",
    "page=1&page=99999999999999999999", "q=" + "x" * 10_000,
]
LISTING_PAGES = ["/", "/channels", "/channels/{slug}", "/search", "/admin/users", "/admin/deleted",
                 "/channels/{slug}/feed.atom", "/notes/{note}/history", "/regulations"]


def test_absurd_query_parameters_never_fail(app, world):
    client = app.test_client()
    login(client, world.eu_admin)
    failures = []
    for path in LISTING_PAGES:
        for query in ABSURD_QUERIES:
            url = path.format(slug=world.joint.slug, note=world.notes["joint"].id) + "?" + query
            response = client.get(url)
            if response.status_code not in (200, 400):
                failures.append(f"{url[:120]}: {response.status_code}")
            elif problems := header_problems(response):
                failures.append(f"{url[:120]}: {problems}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", b"&&&===&body"),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nunterminated"),
    ("multipart/form-data", b"no boundary at all"),
    ("multipart/form-data; boundary=" + "b" * 5000, b"--"),
    ("application/json", b'{"body": "json is not a form"}'),
    ("text/plain", b"\x00\x01\x02"),
])
def test_malformed_form_data_is_refused_cleanly_and_saves_nothing(app, db, world, content_type, body):
    client = app.test_client()
    login(client, world.eu_member)
    note = world.notes["joint"]
    before = note.reply_count
    response = client.post(f"/notes/{note.id}/replies", data=body, content_type=content_type)
    assert response.status_code in (400, 413), response.status_code
    assert not header_problems(response)
    db.expire_all()
    assert db.get(Note, note.id).reply_count == before


@pytest.mark.parametrize("body", [b"body=%FF%FE%FD", b"body=\xff\xfe", b"body=%ZZ%25%", b"body=%C3%28ok",
                                  b"body=ok%ED%A0%80surrogate"])
def test_invalid_utf8_and_percent_encoding_never_reach_the_database_as_broken_text(app, db, world, body):
    """Undecodable input is refused or kept as readable text: never a 500, never a lone surrogate that
    PostgreSQL (or a later page) would choke on."""
    client = app.test_client()
    login(client, world.eu_member)
    response = client.post(f"/notes/{world.notes['joint'].id}/replies", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        reply_id = int(response.location.rsplit("reply-", 1)[1])
        db.expire_all()
        stored = db.get(Reply, reply_id).body
        assert stored.encode("utf-8") and stored.strip()
        assert client.get(response.location).status_code == 200


def test_an_oversized_body_without_content_length_is_refused(app, world):
    client = app.test_client()
    login(client, world.eu_member)
    huge = b"body=" + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    response = client.post(f"/notes/{world.notes['joint'].id}/replies", input_stream=__import__("io").BytesIO(huge),
                           content_type="application/x-www-form-urlencoded",
                           environ_base={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert not header_problems(response)


def test_a_nul_character_is_refused_with_a_message_and_nothing_is_saved(app, db, world):
    """PostgreSQL cannot store NUL in text (a 500 there before this check); no database gets it now."""
    client = app.test_client()
    login(client, world.eu_member)
    notes_before = db.scalar(select(func.count(Note.id)))
    for url, data in [(f"/channels/{world.joint.slug}/new/update", {"title": "Nul\x00title", "body": "B", "lang": "en"}),
                      (f"/notes/{world.notes['joint'].id}/replies", {"body": "Reply\x00nul"}),
                      (f"/notes/{world.notes['joint'].id}/edit", {"title": "T", "body": "B", "lang": "en",
                                                                  "marking": "limited", "x\x00": "in a name"})]:
        response = client.post(url, data=data)
        assert response.status_code == 400, url
        assert "NUL character" in response.get_data(as_text=True)
    for url in ["/channels/a%00b", "/regulations/dsa%00", "/channels/a%00b/feed.atom"]:
        assert client.get(url).status_code == 404, url
    assert client.get("/search?q=a%00b").status_code == 200  # the query parser drops control characters
    db.expire_all()
    assert db.scalar(select(func.count(Note.id))) == notes_before
    assert db.get(Note, world.notes["joint"].id).reply_count == 1
    control = client.post(f"/notes/{world.notes['joint'].id}/replies", data={"body": "Bell\x07 and escape\x1b[31m"})
    assert control.status_code == 302  # other control characters are harmless text


def test_ids_beyond_the_id_columns_are_refused_not_sent_to_the_database(app, db, world):
    """PostgreSQL's INTEGER ids stop at 2**31 - 1: a larger id in a URL or a form names nothing."""
    client = app.test_client()
    login(client, world.eu_admin)
    note = world.notes["joint"]
    for url in ["/notes/2147483648", "/notes/9999999999", "/replies/2147483648/history",
                f"/notes/{note.id}/replies/2147483648"]:
        assert client.get(url).status_code == 404, url
    assert client.get("/notes/2147483647").status_code == 404  # the largest id: simply missing
    huge = str(10**20)
    response = client.post(f"/notes/{note.id}/replies", data={"body": "Deep", "parent_id": "2147483648"})
    assert response.status_code == 400
    assert "not part of this note" in response.get_data(as_text=True)
    assert client.post(f"/notes/{note.id}/accept", data={"reply_id": huge}).status_code in (302, 400)
    response = client.post("/admin/users", data={"email": "x@ec.example.eu", "name": "X", "role": "member",
                                                 "organisation_id": "2147483648"})
    assert response.status_code == 400
    db.expire_all()
    assert db.get(Note, note.id).reply_count == 1
