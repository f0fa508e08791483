"""Exports of a channel or a case file: every revision of every note and reply, permissions, audit."""
from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from sqlalchemy import select

from portal.models import AuditEvent
from portal.services import notes, replies
from tests.conftest import login

CSRF_FORM = re.compile(r'action="(/[^"]+/export)"')


@pytest.fixture
def case(db, world):
    """A case in the private channel (moderated by jp_member), edited twice, with an edited, nested thread
    and a deleted reply."""
    note = notes.post_note(db, world.private, world.eu_member, "case", {
        "title": "App store steering", "body": "Version one of the case", "lang": "en",
        "case_reference": "MSCA-2026-3", "case_status": "open"})
    db.flush()
    for body in ("Version two of the case", "Version three of the case"):
        notes.edit_note(db, note, world.eu_member, {"title": "App store steering", "body": body, "lang": "en",
                                                    "case_reference": "MSCA-2026-3", "case_status": "open"})
    first = replies.post_reply(db, note, world.jp_member, "Reply draft")
    db.flush()
    replies.edit_reply(db, first, world.jp_member, "Reply final wording")
    nested = replies.post_reply(db, note, world.eu_member, "Nested answer", parent=first)
    gone = replies.post_reply(db, note, world.eu_member, "Withdrawn remark")
    db.flush()
    replies.delete_reply(db, gone, world.eu_member)
    db.commit()
    return {"note": note, "first": first, "nested": nested, "gone": gone}


def audit_events(db, action):
    db.rollback()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_case_file_json_has_every_revision_and_the_thread(client, db, world, case):
    login(client, world.jp_member)  # a moderator of the private channel, not the author
    page = client.get(f"/notes/{case['note'].id}").get_data(as_text=True)
    assert f'action="/notes/{case["note"].id}/export"' in page
    response = client.post(f"/notes/{case['note'].id}/export", data={"format": "json"})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith(f'attachment; filename="case-{case["note"].id}-')
    document = json.loads(response.get_data())
    assert document["case"] == case["note"].id and document["channel"]["slug"] == world.private.slug
    (note,) = document["notes"]
    assert [r["body"] for r in note["revisions"]] == ["Version one of the case", "Version two of the case",
                                                      "Version three of the case"]
    assert note["case"]["reference"] == "MSCA-2026-3"
    by_id = {reply["id"]: reply for reply in note["replies"]}
    assert [r["body"] for r in by_id[case["first"].id]["revisions"]] == ["Reply draft", "Reply final wording"]
    assert by_id[case["nested"].id]["parent_id"] == case["first"].id
    assert by_id[case["gone"].id]["deleted"] is True
    assert by_id[case["gone"].id]["revisions"] == []
    assert "Withdrawn remark" not in response.get_data(as_text=True)

    (event,) = audit_events(db, "export.note")
    assert event.actor_id == world.jp_member.id and event.target_id == case["note"].id
    assert event.details == {"format": "json", "notes": 1, "replies": 3}
    assert "Version" not in json.dumps(event.details)


def test_channel_markdown_archive_holds_every_note_and_revision(client, db, world, case):
    login(client, world.jp_member)
    page = client.get(f"/channels/{world.private.slug}").get_data(as_text=True)
    assert CSRF_FORM.search(page), "no export button on the channel page"
    response = client.post(f"/channels/{world.private.slug}/export", data={"format": "markdown"})
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    names = archive.namelist()
    (root,) = {name.split("/")[0] for name in names}
    index = archive.read(f"{root}/index.md").decode()
    assert "App store steering" in index and world.notes["private"].title in index
    text = archive.read(f"{root}/notes/{case['note'].id}.md").decode()
    for expected in ("## Revision 1", "Version one of the case", "## Revision 3", "Version three of the case",
                     "Reply draft", "Reply final wording", f"in reply to {case['first'].id}",
                     "*This reply was deleted.*"):
        assert expected in text
    assert "Withdrawn remark" not in text
    inner = json.loads(archive.read(f"{root}/export.json"))
    assert {note["id"] for note in inner["notes"]} == {world.notes["private"].id, case["note"].id}
    (event,) = audit_events(db, "export.channel")
    assert event.details["format"] == "markdown" and event.details["notes"] == 2


def test_deleted_notes_are_left_out_of_a_channel_export(client, db, world, case):
    notes.delete_note(db, world.notes["private"], world.jp_member)
    db.commit()
    login(client, world.jp_member)
    document = client.post(f"/channels/{world.private.slug}/export", data={"format": "json"}).get_json()
    assert [note["id"] for note in document["notes"]] == [case["note"].id]
    assert world.notes["private"].title not in json.dumps(document)


@pytest.mark.parametrize("who, status", [("outsider", 404), ("jp_admin", 404), ("eu_member", 403)])
def test_who_may_not_export_and_nothing_is_audited(client, db, world, case, who, status):
    """Outside the private channel it is a 404 (its existence is not confirmed); a plain member sees 403."""
    login(client, getattr(world, who))
    assert client.post(f"/notes/{case['note'].id}/export", data={"format": "json"}).status_code == status
    assert client.post(f"/channels/{world.private.slug}/export", data={"format": "json"}).status_code == status
    if status == 403:
        page = client.get(f"/notes/{case['note'].id}").get_data(as_text=True)
        assert "/export" not in page
    assert audit_events(db, "export.note") == [] and audit_events(db, "export.channel") == []


def test_a_question_is_not_a_case_file_and_a_bad_format_is_refused(client, db, world):
    login(client, world.eu_admin)
    assert client.post(f"/notes/{world.notes['joint'].id}/export", data={"format": "json"}).status_code == 404
    response = client.post(f"/channels/{world.joint.slug}/export", data={"format": "pdf"})
    assert response.status_code == 400
    assert "Choose one of: json, markdown" in response.get_data(as_text=True)
    assert audit_events(db, "export.channel") == []


def test_cli_exports_as_a_user_with_their_permissions(runner, db, world, case, tmp_path):
    out = tmp_path / "case.zip"
    result = runner.invoke(args=["export", "case", str(case["note"].id), "--as", world.jp_member.email,
                                 "--format", "markdown", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 notes, 3 replies" in result.output
    assert any(name.endswith(f"notes/{case['note'].id}.md") for name in zipfile.ZipFile(out).namelist())
    out = tmp_path / "channel.json"
    result = runner.invoke(args=["export", "channel", world.private.slug, "--as", world.jp_member.email,
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["notes"]) == 2
    assert len(audit_events(db, "export.note")) == 1 and len(audit_events(db, "export.channel")) == 1

    refused = tmp_path / "refused.json"
    result = runner.invoke(args=["export", "channel", world.private.slug, "--as", world.outsider.email,
                                 "--out", str(refused)])
    assert result.exit_code != 0 and not refused.exists()
    assert "channel" in result.output.lower()
