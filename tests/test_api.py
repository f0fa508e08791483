"""The JSON API: a token holder gets what the web gives its owner; every response fits the OpenAPI document."""
from __future__ import annotations

import html
import json
import re
from datetime import date, timedelta

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select, text

from portal.api.openapi import DOCUMENT
from portal.db import engine, utcnow
from portal.i18n import today_for
from portal.models import AcknowledgementRequest, ApiToken, AuditEvent, Note, NoteRevision, Reply, SearchOutbox
from portal.services import notes, replies, tokens
from portal.services import search as search_service
from tests.conftest import PASSWORD, login, make_app, signed_in_client

REGISTRY = Registry().with_resource("urn:api", Resource(contents=DOCUMENT, specification=DRAFT202012))
RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def described_path(rule) -> str:
    """/api/v1/notes/<id:note_id> as the OpenAPI document writes it: /api/v1/notes/{note_id}."""
    return RULE_ARGUMENT.sub(r"{\1}", rule.rule)


def api_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")]


def check_against_document(app, method: str, path: str, response) -> None:
    """The response is one the document describes for this operation, and its body fits the schema."""
    adapter = app.url_map.bind("portal.test")
    try:
        rule, _ = adapter.match(path.split("?")[0], method=method, return_rule=True)
        responses = DOCUMENT["paths"][described_path(rule)][method.lower()]["responses"]
    except Exception:  # no such route or method: only a problem can answer
        responses = {}
    status = response.status_code
    if status < 400:
        assert str(status) in responses, f"{method} {path}: {status} is not described"
    entry = responses.get(str(status)) or {"content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}
    if status in (204, 304):
        assert response.get_data() == b""
        return
    assert response.mimetype in entry["content"], f"{method} {path}: {status} as {response.mimetype}"
    schema = entry["content"][response.mimetype]["schema"]
    validator = Draft202012Validator({"$ref": "urn:api" + schema["$ref"]} if "$ref" in schema else schema,
                                     registry=REGISTRY)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
              for e in validator.iter_errors(response.get_json())]
    assert not errors, f"{method} {path} {status}: {errors}"


class Api:
    """A script holding a token: every response it gets is checked against the OpenAPI document."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    def __call__(self, method: str, path: str, *, headers=None, **kwargs):
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.app.test_client().open(path, method=method, headers={**sent, **(headers or {})}, **kwargs)
        check_against_document(self.app, method, path, response)
        return response

    def get(self, path, **kwargs):
        return self("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self("DELETE", path, **kwargs)


@pytest.fixture
def api_for(app, db):
    def make(user, scope: str = "write") -> Api:
        _token, text = tokens.create_token(db, user, scope=scope, actor=None)
        db.commit()
        return Api(app, text)
    return make


@pytest.fixture
def app_with(tmp_path):
    """Another app on the same database, with other settings; its connections are closed afterwards."""
    made = []

    def make(**overrides):
        made.append(make_app(tmp_path, **overrides))
        return made[-1]
    yield make
    for other in made:
        other.extensions["db_engine"].dispose()


def content_state(db) -> dict:
    """Everything a request could half-write: notes, revisions, replies, citations, the search outbox."""
    db.rollback()
    with engine().connect() as connection:
        return {model.__tablename__: connection.execute(select(model.__table__).order_by(*model.__table__.primary_key))
                .all() for model in (Note, NoteRevision, Reply, SearchOutbox)}


def problem_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# The document and the routes -----------------------------------------------------------------------

def test_every_api_route_is_described_and_every_description_is_routed(app):
    routed = {(described_path(rule), method.lower()) for rule in api_rules(app)
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, method) for path, operations in DOCUMENT["paths"].items() for method in operations}
    assert routed == described
    assert len(routed) == 21


def test_the_document_is_openapi_31_with_strict_valid_schemas(app):
    assert DOCUMENT["openapi"].startswith("3.1")
    for name, schema in DOCUMENT["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        if schema.get("type") == "object":
            assert schema["additionalProperties"] is False, name
    response = app.test_client().get("/api/v1/openapi.json")  # readable without a token
    assert response.status_code == 200 and response.get_json() == json.loads(json.dumps(DOCUMENT))


# Done when: a script with a token does what its owner does on the web, with the same results ------

def test_a_script_lists_notes_posts_a_reply_and_searches_as_its_owner_does_on_the_web(app, db, world, api_for):
    owner = world.eu_member
    for n in range(3):
        notes.post_note(db, world.private, world.jp_member, "update",
                        {"title": f"Interoperability update {n}", "body": f"Text {n} on interoperability."})
    db.commit()
    script = api_for(owner)
    web = app.test_client()
    login(web, owner)
    slug = world.private.slug

    listed = script.get(f"/api/v1/channels/{slug}/notes").get_json()["items"]
    page = web.get(f"/channels/{slug}").get_data(as_text=True)
    web_titles = [html.unescape(t) for t in re.findall(r'<a href="/notes/\d+" lang="\w+">([^<]+)</a>', page)]
    assert [note["title"] for note in listed] == web_titles
    shown, _ = notes.channel_notes(db, world.private)
    assert [note["id"] for note in listed] == [note.id for note in shown]

    question = world.notes["private"]
    posted = script.post(f"/api/v1/notes/{question.id}/replies",
                         json={"body": "Our answer, **in Markdown**.", "parent_id": world.replies["private"].id})
    assert posted.status_code == 201
    reply = posted.get_json()
    assert posted.headers["Location"] == f"/api/v1/replies/{reply['id']}"
    assert reply["parent_id"] == world.replies["private"].id and reply["depth"] == 1
    assert reply["body_html"] == "<p>Our answer, <strong>in Markdown</strong>.</p>"
    note_page = web.get(f"/notes/{question.id}").get_data(as_text=True)
    assert f'id="reply-{reply["id"]}"' in note_page and reply["body_html"] in note_page
    thread = script.get(f"/api/v1/notes/{question.id}/replies").get_json()["items"]
    assert [item["id"] for item in thread] == [r.reply.id for r in replies.thread(db, question)]

    found = script.get("/api/v1/search?q=interoperability").get_json()
    with app.test_request_context():
        expected = search_service.search(db, owner, "interoperability", today=date.today(), per_page=30,
                                         facets=False)
    assert [(item["kind"], item["id"]) for item in found["items"]] == [(i.kind, i.id) for i in expected.items]
    assert found["total"] == expected.total
    assert sorted(item["title"] for item in found["items"] if item["kind"] == "update") == [
        f"Interoperability update {n}" for n in range(3)]
    web_search = web.get("/search?q=interoperability").get_data(as_text=True)
    for item in found["items"]:
        assert f'href="{item["url"].removeprefix("http://portal.test")}"' in web_search
    # Someone who may not see the channel finds none of it, and the note is 404 to them.
    outsider = api_for(world.outsider)
    assert [item["kind"] for item in outsider.get("/api/v1/search?q=interoperability").get_json()["items"]] == [
        "article"]
    problem_of(outsider.get(f"/api/v1/notes/{question.id}"), 404)
    problem_of(outsider.get(f"/api/v1/channels/{slug}/notes"), 404)


def test_a_question_is_overdue_by_the_token_owners_date_not_the_servers(db, world, api_for):
    """Kiritimati (UTC+14) and Pago Pago (UTC−11) are always on different dates, and the server's is one
    of them: a question due on Pago Pago's today is overdue in Kiritimati only, in the note and in search."""
    reader = world.eu_member
    script = api_for(reader)
    question = world.notes["joint"]
    reader.time_zone = "Pacific/Pago_Pago"
    due = today_for(reader)
    notes.edit_note(db, question, question.author, {**notes.form_values(question), "answer_by": due.isoformat()})
    db.commit()
    path = f"/api/v1/notes/{question.id}"
    for zone, status in (("Pacific/Pago_Pago", "open"), ("Pacific/Kiritimati", "overdue")):
        reader.time_zone = zone
        db.commit()
        assert script.get(path).get_json()["question_status"] == status, zone
        assert [item["question_status"] for item in script.get(
            f"/api/v1/channels/{world.joint.slug}/notes").get_json()["items"] if item["id"] == question.id] == [status]
        overdue = script.get("/api/v1/search?q=is:overdue").get_json()["items"]
        assert (question.id in [item["id"] for item in overdue]) == (status == "overdue"), zone


# Tokens: who may call ---------------------------------------------------------------------------

def test_requests_without_a_valid_token_get_401(app, db, world, api_for):
    good = api_for(world.eu_member)
    expired = api_for(world.eu_member)
    revoked = api_for(world.eu_member)
    of_deactivated = api_for(world.outsider)
    tokens_by_prefix = {t.prefix: t for t in db.scalars(select(ApiToken))}
    tokens_by_prefix[expired.token.split("_")[1]].expires_at = utcnow() - timedelta(seconds=1)
    tokens.revoke_token(db, tokens_by_prefix[revoked.token.split("_")[1]], actor=None)
    world.outsider.is_active = False
    db.commit()
    assert good.get("/api/v1/me").status_code == 200
    for headers in ({}, {"Authorization": "Basic ZXZhOnB3"}, {"Authorization": "Bearer"},
                    {"Authorization": f"Bearer {good.token[:-2]}xx"}, {"Authorization": "Bearer ptk_00000000_x"},
                    {"Authorization": f"Bearer {expired.token}"}, {"Authorization": f"Bearer {revoked.token}"},
                    {"Authorization": f"Bearer {of_deactivated.token}"}):
        response = Api(app, None).get(f"/api/v1/notes/{world.notes['joint'].id}", headers=headers)
        problem_of(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Question in joint" not in response.get_data(as_text=True)
    refused = db.scalars(select(AuditEvent).where(AuditEvent.action == "token.refused")).all()
    assert len(refused) == 3  # the expired, the revoked and the deactivated owner's token


def test_with_csrf_on_tokens_post_and_cookies_alone_do_not(app_with, db, world, api_for):
    """CSRF protection stays on for the web; the API needs none, because a cookie opens nothing there."""
    guarded = app_with(WTF_CSRF_ENABLED=True)
    script = Api(guarded, api_for(world.eu_member).token)
    note = world.notes["joint"]
    assert script.post(f"/api/v1/notes/{note.id}/replies", json={"body": "Sent by a script"}).status_code == 201
    browser = guarded.test_client()
    page = browser.get("/login").get_data(as_text=True)
    csrf_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    browser.post("/login", data={"email": world.eu_member.email, "password": PASSWORD, "csrf_token": csrf_token})
    assert browser.get("/").status_code == 200
    before = content_state(db)
    assert browser.post(f"/notes/{note.id}/replies", data={"body": "No token"}).status_code == 400
    problem_of(browser.post(f"/api/v1/notes/{note.id}/replies", json={"body": "Forged"}), 401)
    assert content_state(db) == before


def test_the_api_is_not_reachable_with_a_signed_in_browser(app, db, world):
    """A page on another site could make the browser send its cookie: the API must ignore it."""
    browser = app.test_client()
    login(browser, world.eu_member)
    assert browser.get("/").status_code == 200
    problem_of(browser.get("/api/v1/me"), 401)
    before = content_state(db)
    problem_of(browser.post(f"/api/v1/notes/{world.notes['joint'].id}/replies", json={"body": "Forged"}), 401)
    assert content_state(db) == before


def test_a_read_token_may_read_but_not_write(db, world, api_for):
    reader = api_for(world.eu_member, scope="read")
    note = world.notes["joint"]
    assert reader.get(f"/api/v1/notes/{note.id}").status_code == 200
    before = content_state(db)
    problem_of(reader.post(f"/api/v1/notes/{note.id}/replies", json={"body": "Not allowed"}), 403)
    etag = reader.get(f"/api/v1/notes/{note.id}").headers["ETag"]
    problem_of(reader.delete(f"/api/v1/notes/{note.id}", headers={"If-Match": etag}), 403)
    assert content_state(db) == before


def test_every_use_is_audited_without_the_token(db, world, api_for):
    script = api_for(world.eu_member)
    script.get("/api/v1/me")
    script.get(f"/api/v1/notes/{world.notes['jp'].id}")  # 404: audited too
    script.post(f"/api/v1/notes/{world.notes['joint'].id}/replies", json={"body": "Audited"})
    db.rollback()
    uses = db.scalars(select(AuditEvent).where(AuditEvent.action == "token.use").order_by(AuditEvent.id)).all()
    assert [(u.details["method"], u.details["endpoint"], u.details["status"]) for u in uses] == [
        ("GET", "api.account.me", 200), ("GET", "api.notes.show", 404), ("POST", "api.notes.reply", 201)]
    assert {u.actor_id for u in uses} == {world.eu_member.id}
    token = db.scalar(select(ApiToken))
    assert token.last_used_at is not None and {u.target_id for u in uses} == {token.id}
    secret = script.token.split("_", 2)[2]
    assert all(secret not in json.dumps(u.details) for u in db.scalars(select(AuditEvent)))
    assert secret not in token.token_hash


# HTTP conventions ---------------------------------------------------------------------------------

def test_etags_and_preconditions_prevent_lost_updates(db, world, api_for):
    author, moderator = api_for(world.eu_member), api_for(world.eu_moderator)
    path = f"/api/v1/notes/{world.notes['joint'].id}"
    first = author.get(path)
    etag = first.headers["ETag"]
    assert author.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert author.get(path, headers={"If-None-Match": '"other"'}).status_code == 200

    before = content_state(db)
    problem_of(author.patch(path, json={"title": "No precondition"}), 428)
    assert content_state(db) == before
    changed = moderator.patch(path, json={"title": "The moderator's title"}, headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["revision"] == 2
    assert changed.headers["ETag"] != etag
    stale = content_state(db)
    problem_of(author.patch(path, json={"title": "The author's lost update"}, headers={"If-Match": etag}), 412)
    problem_of(author.delete(path, headers={"If-Match": etag}), 412)
    assert content_state(db) == stale
    fresh = author.get(path).headers["ETag"]
    assert author.patch(path, json={"body": "Merged"}, headers={"If-Match": fresh}).get_json()["title"] == \
        "The moderator's title"
    reply_path = f"/api/v1/replies/{world.replies['joint'].id}"
    reply_etag = author.get(reply_path).headers["ETag"]
    problem_of(author.patch(reply_path, json={"body": "x"}, headers={"If-Match": '"stale"'}), 412)
    edited = author.patch(reply_path, json={"body": "Edited reply"}, headers={"If-Match": reply_etag})
    assert edited.get_json()["body"] == "Edited reply" and edited.get_json()["revision"] == 2


def test_delete_is_soft_and_the_note_is_then_404(db, world, api_for):
    author = api_for(world.eu_member)
    path = f"/api/v1/notes/{world.notes['joint'].id}"
    response = author.delete(path, headers={"If-Match": author.get(path).headers["ETag"]})
    assert response.status_code == 204
    problem_of(author.get(path), 404)
    db.rollback()
    assert db.get(Note, world.notes["joint"].id).deleted_at is not None


def test_cursors_page_through_everything_once_and_refuse_tampering(db, world, api_for):
    for n in range(7):
        notes.post_note(db, world.joint, world.eu_member, "update", {"title": f"Paged {n}", "body": "Paging"})
    db.commit()
    script = api_for(world.jp_member)
    seen, cursor, pages = [], None, 0
    while True:
        response = script.get("/api/v1/notes", query_string={"limit": 3, **({"cursor": cursor} if cursor else {})})
        body = response.get_json()
        seen += [note["id"] for note in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected, _ = notes.notes_after(db, world.jp_member, limit=100)
    assert seen == [note.id for note in expected] and pages == 4
    first = script.get("/api/v1/notes?limit=3").get_json()["next_cursor"]
    tampered = first[:-3] + ("AAA" if not first.endswith("AAA") else "BBB")
    assert problem_of(script.get(f"/api/v1/notes?cursor={tampered}"), 400)["errors"] == {"cursor": "Not a valid cursor."}
    problem_of(script.get(f"/api/v1/channels/{world.joint.slug}/notes?cursor={first}"), 400)
    searched = script.get("/api/v1/search?q=paging&limit=5").get_json()
    assert searched["total"] == 7 and len(searched["items"]) == 5
    rest = script.get(f"/api/v1/search?q=paging&limit=5&cursor={searched['next_cursor']}").get_json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert {i["id"] for i in searched["items"]} | {i["id"] for i in rest["items"]} == set(seen[:7])
    problem_of(script.get(f"/api/v1/search?q=other&cursor={searched['next_cursor']}"), 400)
    problem_of(script.get("/api/v1/notes?limit=0"), 400)
    problem_of(script.get("/api/v1/notes?kind=memo"), 400)


def test_notes_listing_with_q_uses_the_search_language_over_notes_only(db, world, api_for):
    notes.post_note(db, world.joint, world.jp_member, "case",
                    {"title": "App store case", "body": "Steering provisions", "case_status": "investigating"})
    db.commit()
    script = api_for(world.eu_member)
    found = script.get("/api/v1/notes", query_string={"q": "steering kind:case"}).get_json()["items"]
    assert [note["title"] for note in found] == ["App store case"]
    assert script.get("/api/v1/notes", query_string={"q": "steering kind:update"}).get_json()["items"] == []
    # "reply" is in replies' text only: the note listing never returns replies or the regulation index.
    assert script.get("/api/v1/notes", query_string={"q": "first reply"}).get_json()["items"] == []
    assert script.get("/api/v1/search", query_string={"q": "first reply"}).get_json()["total"] > 0


def test_replies_come_as_a_tree_in_the_order_the_web_shows(db, world, api_for):
    note, top = world.notes["joint"], world.replies["joint"]
    child = replies.post_reply(db, note, world.jp_member, "Child", parent=top)
    grandchild = replies.post_reply(db, note, world.eu_member, "Grandchild", parent=child)
    second = replies.post_reply(db, note, world.jp_member, "Second top-level reply")
    replies.delete_reply(db, child, world.jp_member)
    db.commit()
    items = api_for(world.eu_member).get(f"/api/v1/notes/{note.id}/replies").get_json()["items"]
    assert [(i["id"], i["parent_id"], i["depth"]) for i in items] == [
        (top.id, None, 0), (child.id, top.id, 1), (grandchild.id, child.id, 2), (second.id, None, 0)]
    assert items[1]["is_deleted"] and items[1]["body"] is None and items[1]["author"] is None


# Bad input: a clear problem naming the field, and nothing half-written ------------------------------

GOOD_NOTE = {"kind": "case", "title": "A case", "body": "Text", "topics": ["dsa"], "articles": ["DSA Art. 16"],
             "milestones": [{"due_on": "2031-01-01", "label": "Hearing"}]}


@pytest.mark.parametrize(("send", "status", "fields"), [
    ({"data": "{not json", "content_type": "application/json"}, 400, None),
    ({"data": "title=x", "content_type": "application/x-www-form-urlencoded"}, 415, None),
    ({"json": ["a", "list"]}, 422, {"body"}),
    ({"json": {**GOOD_NOTE, "title": 7}}, 422, {"title"}),
    ({"json": {**GOOD_NOTE, "surprise": True}}, 422, {"surprise"}),
    ({"json": {key: v for key, v in GOOD_NOTE.items() if key != "title"}}, 422, {"title"}),
    ({"json": {**GOOD_NOTE, "kind": "memo"}}, 422, {"kind"}),
    ({"json": {**GOOD_NOTE, "milestones": [{"due_on": "soon", "label": "x"}]}}, 422, {"milestones"}),
    ({"json": {**GOOD_NOTE, "milestones": [{"due_on": "2031-01-01", "label": "x", "extra": 1}]}}, 422,
     {"milestones.0.extra"}),
    ({"json": {**GOOD_NOTE, "articles": ["DSA Art. 9999"]}}, 422, {"articles"}),
    ({"json": {**GOOD_NOTE, "topics": ["no-such-topic"]}}, 422, {"topics"}),
    ({"json": {**GOOD_NOTE, "title": "  "}}, 422, {"title"}),
    ({"json": {**GOOD_NOTE, "body": "x" * (200 * 1024 + 1)}}, 422, {"body"}),
    ({"json": {**GOOD_NOTE, "body": "x" * (1024 * 1024)}}, 413, None),
])
def test_bad_note_bodies_are_refused_and_change_nothing(db, world, api_for, send, status, fields):
    script = api_for(world.eu_member)
    before = content_state(db)
    response = script.post(f"/api/v1/channels/{world.joint.slug}/notes", **send)
    problem = problem_of(response, status)
    if fields:
        assert fields <= set(problem["errors"]), problem
    assert "x" * 300 not in response.get_data(as_text=True)  # the text sent is not echoed back
    assert content_state(db) == before
    assert script.post(f"/api/v1/channels/{world.joint.slug}/notes", json=GOOD_NOTE).status_code == 201


def test_a_note_posted_through_the_api_may_ask_for_acknowledgement_as_the_web_form_does(db, world, api_for):
    script = api_for(world.jp_member)
    asked = script.post(f"/api/v1/channels/{world.joint.slug}/notes",
                        json={**GOOD_NOTE, "title": "Please confirm receipt", "request_acknowledgement": True})
    assert asked.status_code == 201
    db.rollback()
    assert db.get(AcknowledgementRequest, asked.get_json()["id"]).side == "eu"
    plain = script.post(f"/api/v1/channels/{world.joint.slug}/notes",
                        json={**GOOD_NOTE, "request_acknowledgement": False})
    assert db.get(AcknowledgementRequest, plain.get_json()["id"]) is None
    # Nobody of the EU side sees the JP channel: the note is refused whole, in English for a Japanese official.
    before = content_state(db)
    refused = problem_of(script.post(f"/api/v1/channels/{world.jp.slug}/notes",
                                     json={**GOOD_NOTE, "request_acknowledgement": True}), 422)
    assert refused["errors"] == {"request_acknowledgement": "Nobody on the EU side can see this channel."}
    assert content_state(db) == before


def test_bad_replies_name_the_field_and_change_nothing(db, world, api_for):
    script = api_for(world.eu_member)
    note = world.notes["joint"]
    before = content_state(db)
    path = f"/api/v1/notes/{note.id}/replies"
    assert set(problem_of(script.post(path, json={"body": ""}), 422)["errors"]) == {"body"}
    assert set(problem_of(script.post(path, json={"body": "x", "parent_id": "1"}), 422)["errors"]) == {"parent_id"}
    other = world.replies["eu"].id  # a reply of another note
    assert set(problem_of(script.post(path, json={"body": "x", "parent_id": other}), 422)["errors"]) == {"parent_id"}
    problem_of(script.post(f"/api/v1/notes/{world.notes['archived'].id}/replies", json={"body": "x"}), 403)
    assert content_state(db) == before


def test_unknown_routes_and_methods_answer_problems(db, world, api_for):
    script = api_for(world.eu_member)
    assert problem_of(script.get("/api/v1/nothing-here"), 404)["detail"] == \
        problem_of(script.get("/api/v1/notes/987654321"), 404)["detail"]
    # Past the 32-bit id columns of PostgreSQL: not found, never an overflow.
    problem_of(script.get("/api/v1/notes/2147483648"), 404)
    problem_of(script.post(f"/api/v1/notes/{world.notes['joint'].id}/replies",
                           json={"body": "x", "parent_id": 2147483648}), 422)
    response = script("PUT", f"/api/v1/notes/{world.notes['joint'].id}")
    problem_of(response, 405)
    assert "PATCH" in response.headers["Allow"]


def test_a_server_error_is_a_problem_too(app_with, db, world, api_for):
    """A real failure (a table gone) answers 500 as problem details, without the cause, and is audited."""
    fragile = app_with(PROPAGATE_EXCEPTIONS=False)
    script = Api(fragile, api_for(world.eu_member).token)
    db.close()
    with engine().begin() as connection:
        connection.execute(text("DROP TABLE channel_memberships"))
    response = script.get("/api/v1/channels")
    assert problem_of(response, 500)["detail"] == "Internal Server Error"
    assert "channel_memberships" not in response.get_data(as_text=True)
    last = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (last.action, last.details["status"]) == ("token.use", 500)


# Rate limits: the web's, counted together with it ---------------------------------------------------

def limited_problem(response, what: str) -> dict:
    """A 429 in the API's problem format, in English, saying when to try again."""
    body = problem_of(response, 429)
    assert body["detail"].startswith(f"Too many {what} in a short time. Try again in"), body
    assert 0 < int(response.headers["Retry-After"]) <= 86400
    return body


def test_posting_and_editing_beyond_the_limit_is_429_and_changes_nothing(app, db, world, api_for):
    app.config["RATE_LIMIT_POST_USER"] = "2/86400"
    script = api_for(world.eu_member)
    notes_path = f"/api/v1/channels/{world.joint.slug}/notes"
    for _ in range(2):
        assert script.post(notes_path, json=GOOD_NOTE).status_code == 201
    before = content_state(db)
    # Even a client asking for Japanese gets the problem in English, as every other problem.
    limited_problem(script.post(notes_path, json=GOOD_NOTE, headers={"Accept-Language": "ja"}), "posts")
    note, reply = world.notes["joint"], world.replies["joint"]
    limited_problem(script.post(f"/api/v1/notes/{note.id}/replies", json={"body": "One more"}), "posts")
    note_path, reply_path = f"/api/v1/notes/{note.id}", f"/api/v1/replies/{reply.id}"
    limited_problem(script.patch(note_path, json={"title": "Retitled"},
                                 headers={"If-Match": script.get(note_path).headers["ETag"]}), "posts")
    limited_problem(script.patch(reply_path, json={"body": "Reworded"},
                                 headers={"If-Match": script.get(reply_path).headers["ETag"]}), "posts")
    assert content_state(db) == before
    # Another official is not held up.
    assert api_for(world.jp_member).post(f"/api/v1/notes/{note.id}/replies", json={"body": "Mine"}).status_code == 201


def test_a_refused_post_through_the_api_does_not_count(app, db, world, api_for):
    app.config["RATE_LIMIT_POST_USER"] = "1/86400"
    script = api_for(world.eu_member)
    notes_path = f"/api/v1/channels/{world.joint.slug}/notes"
    for _ in range(3):
        problem_of(script.post(notes_path, json={**GOOD_NOTE, "topics": ["no-such-topic"]}), 422)
        problem_of(script.post(f"/api/v1/notes/{world.notes['archived'].id}/replies", json={"body": "x"}), 403)
    assert script.post(notes_path, json=GOOD_NOTE).status_code == 201
    limited_problem(script.post(notes_path, json=GOOD_NOTE), "posts")


def test_the_web_and_the_api_share_one_count(app, db, world, api_for):
    """Switching between the web and a token does not double the allowance, for posts or searches."""
    app.config["RATE_LIMIT_POST_USER"] = "2/86400"
    app.config["RATE_LIMIT_SEARCH_USER"] = "2/86400"
    script = api_for(world.eu_member)
    web = signed_in_client(app, world.eu_member)
    form = {"title": "A note", "body": "Typed on the web", "lang": "en", "marking": "limited"}
    assert web.post(f"/channels/{world.joint.slug}/new/update", data=form).status_code == 302
    assert script.post(f"/api/v1/channels/{world.joint.slug}/notes", json=GOOD_NOTE).status_code == 201
    limited_problem(script.post(f"/api/v1/notes/{world.notes['joint'].id}/replies", json={"body": "x"}), "posts")
    assert web.post(f"/channels/{world.joint.slug}/new/update", data=form).status_code == 429

    assert web.get("/search?q=question").status_code == 200
    assert script.get("/api/v1/search?q=question").status_code == 200
    limited_problem(script.get("/api/v1/notes?q=question"), "searches")  # a listing with q is a search
    limited_problem(script.get("/api/v1/search?q=question"), "searches")
    assert web.get("/search?q=question").status_code == 429
    # Reading without a query is not a search.
    assert script.get("/api/v1/notes").status_code == 200


def test_the_per_address_limit_counts_every_token_from_one_address(app, db, world, api_for):
    app.config["RATE_LIMIT_POST_ADDRESS"] = "2/86400"
    eva, kenji = api_for(world.eu_member), api_for(world.jp_member)
    path = f"/api/v1/notes/{world.notes['joint'].id}/replies"
    assert eva.post(path, json={"body": "From Eva"}).status_code == 201
    assert kenji.post(path, json={"body": "From Kenji"}).status_code == 201
    limited_problem(eva.post(path, json={"body": "Eva again"}), "posts")
    limited_problem(kenji.post(path, json={"body": "Kenji again"}), "posts")
    elsewhere = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    assert kenji.post(path, json={"body": "From another office"}, **elsewhere).status_code == 201
