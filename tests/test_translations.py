"""Bilingual notes: who may add a translation, its revisions, the side-by-side page, and search."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select

from portal.db import get_session
from portal.models import AuditEvent, SearchOutbox
from portal.services import accounts, notes
from portal.services import search as search_service
from portal.services import translations
from tests.conftest import PASSWORD, login

JA = {"title": "プラットフォームの透明性に関する報告", "body": "違法コンテンツの削除について説明する。", "status": "courtesy"}


def _user(db, email, org, role="member"):
    return accounts.create_user(db, email=email, name=email.split("@")[0].title(), organisation=org, role=role,
                                password=PASSWORD)


def _translate(app, user, note_id, data=JA):
    client = app.test_client()
    login(client, user)
    return client.post(f"/notes/{note_id}/translation", data=data)


def test_who_may_add_a_translation(app, db, world):
    other_eu_org = accounts.create_organisation(db, slug="edps", name="EDPS", side="eu")
    stranger = _user(db, "sam@edps.example.eu", other_eu_org)
    colleague = world.outsider  # same organisation as eva, the author of the joint note
    db.commit()
    joint, private = world.notes["joint"].id, world.notes["private"].id
    # Another organisation of the author's own side, or the other side: refused, nothing saved.
    assert _translate(app, stranger, joint).status_code == 403
    assert _translate(app, world.jp_member, joint).status_code == 403
    assert db.scalar(select(func.count()).select_from(select(AuditEvent).where(
        AuditEvent.action.like("translation.%")).subquery())) == 0
    # A colleague of the author's organisation may.
    assert _translate(app, colleague, joint).status_code == 302
    # The private note is by kenji (JP); eva is a member but of the other side and not a moderator.
    assert _translate(app, world.eu_member, private).status_code == 403
    # The outsider cannot see the private channel at all.
    assert _translate(app, world.outsider, private).status_code == 404
    # A site moderator (here an admin) of the other side, who sees the channel, may.
    assert _translate(app, world.jp_admin, joint, {**JA, "title": "By a moderator"}).status_code == 302
    # Archived channels are read-only, even for the author.
    assert _translate(app, world.eu_member, world.notes["archived"].id).status_code == 403


def test_a_channel_moderator_may_translate(app, db, world):
    note = notes.post_note(db, world.private, world.eu_member, "update", {"title": "EU note", "body": "Text"})
    db.commit()
    # kenji moderates the private channel (but is of the other side and organisation).
    assert _translate(app, world.jp_member, note.id).status_code == 302
    db.expire_all()
    assert note.translation.lang == "ja" and note.translation.revisions[0].editor_id == world.jp_member.id


def test_revisions_and_history_like_the_original(app, db, world):
    note = world.notes["joint"]
    assert _translate(app, world.eu_member, note.id).status_code == 302
    assert _translate(app, world.eu_member, note.id).status_code == 302  # unchanged: no new revision
    changed = {**JA, "body": "違法コンテンツの削除と異議申立てについて説明する。", "status": "authoritative"}
    assert _translate(app, world.outsider, note.id, changed).status_code == 302
    db.expire_all()
    translation = note.translation
    assert translation.revision == 2 and [r.number for r in translation.revisions] == [1, 2]
    assert translation.is_authoritative and translation.revisions[1].editor_id == world.outsider.id
    client = app.test_client()
    login(client, world.jp_member)
    page = client.get(f"/notes/{note.id}/translation/history").get_data(as_text=True)
    assert 'id="revision-2"' in page and 'id="revision-1"' in page
    assert re.search(r'<p class="meta">[^<]*status</p>', page)
    assert '<span class="diff-add">+ 違法コンテンツの削除と異議申立てについて説明する。</span>' in page
    # The original's own history is untouched.
    assert note.revision == 1


def test_bad_input_re_renders_with_what_was_typed(app, db, world):
    response = _translate(app, world.eu_member, world.notes["joint"].id,
                          {"title": "", "body": "入力した本文", "status": "bogus"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "入力した本文" in page and "Give the translation a title." in page
    assert "Mark the translation authoritative or a courtesy translation." in page
    assert world.notes["joint"].translation is None


def test_note_page_shows_both_versions_side_by_side(app, db, world):
    note = world.notes["joint"]
    _translate(app, world.eu_member, note.id)
    client = app.test_client()
    login(client, world.jp_member)
    page = client.get(f"/notes/{note.id}").get_data(as_text=True)
    versions = page[page.index('<div class="versions">'):]
    # Each column carries its language; its label is in the interface's.
    assert re.search(
        r'<section class="version" lang="en"[^>]*>\s*<p class="version-label" id="version-original" lang="ja">', versions)
    assert '<section class="version" lang="ja"' in versions
    assert re.search(r'<div class="body" lang="en"><p>Body of the joint question</p>', versions)
    assert re.search(r'<h2 class="version-title" lang="ja">プラットフォームの透明性に関する報告</h2>', versions)
    assert f'<div class="body" lang="ja"><p>{JA["body"]}</p>' in versions
    assert 'class="badge courtesy"' in versions and 'class="badge authoritative"' not in versions
    assert "style=" not in page  # the layout is in portal.css: the CSP forbids inline styles
    # Only those allowed see the link to add or edit it.
    assert f'href="/notes/{note.id}/translation"' not in page
    author = app.test_client()
    login(author, world.eu_member)
    assert "Edit the translation" in author.get(f"/notes/{note.id}").get_data(as_text=True)


def test_the_stylesheet_stacks_the_versions_on_narrow_screens(client):
    with client.get("/static/portal.css") as response:
        css = response.get_data(as_text=True)
    assert ".versions { display: grid; grid-template-columns: 1fr 1fr;" in css
    assert re.search(r"@media \(max-width: [0-9.]+rem\) \{ \.versions \{ grid-template-columns: 1fr; \} \}", css)


def _titles(app, user, query):
    with app.test_request_context():
        page = search_service.search(get_session(), user, query, today=date.today())
        return [item.title for item in page.items]


def test_search_finds_the_translation_in_either_language(app, db, world):
    english = notes.post_note(db, world.joint, world.eu_member, "update",
                              {"title": "Transparency reports of marketplaces", "body": "Notice and action."})
    japanese = notes.post_note(db, world.joint, world.jp_member, "update",
                               {"title": "苦情処理の体制", "body": "苦情処理の手続を整備する。", "lang": "ja"})
    db.commit()
    _translate(app, world.eu_member, english.id, {"title": "マーケットプレイスの透明性報告書",
                                                  "body": "通知と措置の仕組み。", "status": "courtesy"})
    _translate(app, world.jp_member, japanese.id, {"title": "Complaint handling system",
                                                   "body": "Procedures for grievances are set up.",
                                                   "status": "authoritative"})
    for user in (world.eu_member, world.jp_member):
        assert "Transparency reports of marketplaces" in _titles(app, user, "透明性報告書")
        assert "Transparency reports of marketplaces" in _titles(app, user, "marketplaces")
        assert "苦情処理の体制" in _titles(app, user, "grievances")
        assert "苦情処理の体制" in _titles(app, user, "苦情処理")
    # A revised translation replaces the old text in the index.
    _translate(app, world.jp_member, japanese.id, {"title": "Complaint handling system",
                                                   "body": "Redress mechanisms are set up.",
                                                   "status": "authoritative"})
    assert "苦情処理の体制" in _titles(app, world.eu_member, "redress")
    assert "苦情処理の体制" not in _titles(app, world.eu_member, "grievances")


def test_search_does_not_find_a_translation_in_a_channel_one_cannot_see(app, db, world):
    note = notes.post_note(db, world.eu, world.eu_member, "update", {"title": "Internal", "body": "Internal."})
    db.commit()
    _translate(app, world.eu_member, note.id, {"title": "内部の覚書", "body": "鳩時計の翻訳。", "status": "courtesy"})
    assert _titles(app, world.eu_moderator, "鳩時計") == ["Internal"]
    assert _titles(app, world.jp_member, "鳩時計") == []


def test_a_translation_change_goes_through_the_search_outbox(app, db, world):
    note = world.notes["joint"]
    before = db.scalar(select(func.max(SearchOutbox.id)))
    translations.save_translation(db, note, world.eu_member, JA)
    db.rollback()
    assert db.scalar(select(func.max(SearchOutbox.id))) == before  # one transaction with the change
    translations.save_translation(db, note, world.eu_member, JA)
    db.commit()
    rows = db.execute(select(SearchOutbox.entity, SearchOutbox.entity_id).where(SearchOutbox.id > before)).all()
    assert ("note", note.id) in rows
    # verify sees no drift: the index holds the note with its translation.
    assert search_service.verify(db, search_service.index_for(app)).ok


def test_the_translation_follows_a_change_of_the_originals_language(app, db, world):
    note = world.notes["joint"]
    translations.save_translation(db, note, world.eu_member, JA)
    notes.edit_note(db, note, world.eu_member, {**notes.form_values(note), "lang": "ja"})
    translations.save_translation(db, note, world.eu_member, {**JA, "title": "In English now", "body": "Text"})
    db.commit()
    assert note.translation.lang == "en"


@pytest.mark.parametrize("status", ["authoritative", "courtesy"])
def test_the_mark_is_shown(app, db, world, status):
    note = world.notes["joint"]
    _translate(app, world.eu_member, note.id, {**JA, "status": status})
    client = app.test_client()
    login(client, world.jp_member)
    page = client.get(f"/notes/{note.id}").get_data(as_text=True)
    other = "courtesy" if status == "authoritative" else "authoritative"
    assert re.search(rf'<span class="badge {status}">[^<]+</span>', page) and f'class="badge {other}"' not in page
