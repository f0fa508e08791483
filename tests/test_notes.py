"""Notes of each kind, their history and states, and threaded replies, through the web."""
from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import func, select

from portal.i18n import today_for
from portal.models import Note, Reply
from portal.services import notes, replies
from tests.conftest import login

DAY = timedelta(days=1)


def _post(client, slug, kind, **fields):
    data = {"title": "A title", "body": "Some text", "lang": "en", "marking": "limited", **fields}
    return client.post(f"/channels/{slug}/new/{kind}", data=data)


def _note_id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(re.search(r"/notes/(\d+)", response.location).group(1))


def test_post_update_with_topics_and_citations(client, world):
    login(client, world.eu_member)
    note_id = _note_id(_post(client, "joint-channel", "update", title="DSA Art. 28 guidelines adopted",
                             body="The **guidelines** on minors.", topics=["dsa", "minors"],
                             articles="DSA Art. 28; DMA Art. 6(7)", marking="public"))
    page = client.get(f"/notes/{note_id}").get_data(as_text=True)
    assert "DSA Art. 28 guidelines adopted" in page
    assert "<strong>guidelines</strong>" in page
    assert "DSA Art. 28" in page and "DMA Art. 6(7)" in page
    assert "PUBLIC" in page
    assert "/regulations/dma#art-6" in page


def test_post_case_with_status_and_milestones(client, world, db):
    login(client, world.jp_member)
    soon = date.today() + 5 * DAY
    note_id = _note_id(_post(client, "jp-channel", "case", title="App store fee review",
                             case_reference="JFTC-2026-01", platforms="Example Store",
                             legal_basis="MSCA Art. 8", case_status="investigating",
                             milestones=f"{soon.isoformat()} Reply to the request for information"))
    page = client.get(f"/notes/{note_id}").get_data(as_text=True)
    assert "JFTC-2026-01" in page and "Example Store" in page and "investigating" in page
    dashboard = client.get("/").get_data(as_text=True)
    assert "Reply to the request for information" in dashboard
    # Status change is recorded as a revision.
    client.post(f"/notes/{note_id}/status", data={"case_status": "preliminary_findings"})
    assert db.get(Note, note_id).case_status == "preliminary_findings"
    assert 'id="revision-2"' in client.get(f"/notes/{note_id}/history").get_data(as_text=True)


def test_question_is_addressed_to_the_other_side_and_shows_days_left(client, world, app):
    login(client, world.eu_member)
    due = today_for(world.eu_member) + 12 * DAY
    note_id = _note_id(_post(client, "joint-channel", "question", title="How do you count 7 days?",
                             answer_by=due.isoformat()))
    page = client.get(f"/notes/{note_id}").get_data(as_text=True)
    assert "the JP side" in page and "12 days left" in page
    jp = app.test_client()
    login(jp, world.jp_member)
    assert "How do you count 7 days?" in jp.get("/").get_data(as_text=True)  # awaiting JP side
    assert "How do you count 7 days?" not in client.get("/").get_data(as_text=True).split("My channels")[0]


def test_question_answered_by_accepting_a_reply(client, world, app, db):
    note = world.notes["joint"]
    jp = app.test_client()
    login(jp, world.jp_member)
    jp.post(f"/notes/{note.id}/replies", data={"body": "Our answer: calendar days."})
    answer = db.scalar(select(Reply).where(Reply.note_id == note.id, Reply.body.like("Our answer%")))
    # Only the asker (or a moderator) may accept.
    assert jp.post(f"/notes/{note.id}/accept", data={"reply_id": answer.id}).status_code == 403
    login(client, world.eu_member)
    client.post(f"/notes/{note.id}/accept", data={"reply_id": answer.id})
    db.expire_all()
    assert db.get(Note, note.id).question_state == "answered"
    page = client.get(f"/notes/{note.id}").get_data(as_text=True)
    assert "Accepted answer" in page and "Our answer: calendar days." in page


def test_question_declined_with_grounds_by_the_addressed_side(client, world, app, db):
    note = world.notes["joint"]
    login(client, world.eu_member)  # the asker's side may not decline
    assert client.post(f"/notes/{note.id}/decline", data={"grounds": "No"}).status_code == 403
    jp = app.test_client()
    login(jp, world.jp_member)
    refused = jp.post(f"/notes/{note.id}/decline", data={"grounds": ""}, follow_redirects=True).get_data(as_text=True)
    assert db.get(Note, note.id).question_state == "open"  # grounds are required
    # Said as a sentence, in the reader's language, not prefixed with the form field's name "grounds".
    assert re.findall(r'<p class="flash error"[^>]*>(.*?)</p>', refused) == ["辞退の理由を入力してください。"]
    jp.post(f"/notes/{note.id}/decline", data={"grounds": "Covered by confidentiality rules."})
    db.expire_all()
    assert db.get(Note, note.id).question_state == "declined"
    assert "Covered by confidentiality rules." in jp.get(f"/notes/{note.id}").get_data(as_text=True)


def test_question_past_its_date_is_overdue(client, world, db):
    note = db.get(Note, world.notes["joint"].id)
    note.answer_by = today_for(world.eu_member) - 3 * DAY
    db.commit()
    login(client, world.eu_member)
    page = client.get("/channels/joint-channel").get_data(as_text=True)
    assert "overdue" in page and "3 days overdue" in page


def test_edit_keeps_every_revision_with_a_diff(client, world):
    login(client, world.eu_member)
    note_id = _note_id(_post(client, "joint-channel", "update", title="Original title", body="line one\nline two"))
    form = {"title": "Revised title", "body": "line one\nline 2", "lang": "en", "marking": "sensitive"}
    assert client.post(f"/notes/{note_id}/edit", data=form).status_code == 302
    history = client.get(f"/notes/{note_id}/history").get_data(as_text=True)
    assert "Revision 1" in history and "Revision 2" in history
    assert "Original title" in history and "Revised title" in history
    assert 'class="diff-del">- line two' in history and 'class="diff-add">+ line 2' in history
    assert "marking" in history
    assert "SENSITIVE" in client.get(f"/notes/{note_id}").get_data(as_text=True)
    # Saving unchanged adds no revision.
    client.post(f"/notes/{note_id}/edit", data=form)
    assert "Revision 3" not in client.get(f"/notes/{note_id}/history").get_data(as_text=True)


def test_only_author_or_moderator_edits(client, world, app):
    note = world.notes["joint"]  # by eu_member
    other = app.test_client()
    login(other, world.outsider)
    assert other.get(f"/notes/{note.id}/edit").status_code == 403
    moderator = app.test_client()
    login(moderator, world.eu_moderator)
    assert moderator.get(f"/notes/{note.id}/edit").status_code == 200


def test_channel_moderator_moderates_their_channel(client, world, db):
    note = world.notes["private"]
    reply = replies.post_reply(db, note, world.eu_member, "Member's reply")
    db.commit()
    login(client, world.jp_member)  # channel moderator of the private channel
    assert client.post(f"/replies/{reply.id}/delete").status_code == 302
    db.expire_all()
    assert db.get(Reply, reply.id).is_deleted


def test_soft_delete_hides_note_and_admin_restores(client, world, app, db):
    note = world.notes["joint"]
    login(client, world.eu_member)
    client.post(f"/notes/{note.id}/delete")
    assert client.get(f"/notes/{note.id}").status_code == 404
    assert "Question in joint" not in client.get("/channels/joint-channel").get_data(as_text=True)
    assert db.get(Note, note.id) is not None  # kept for audit
    admin = app.test_client()
    login(admin, world.eu_admin)
    assert "Question in joint" in admin.get("/admin/deleted").get_data(as_text=True)
    assert "Only administrators see it" in admin.get(f"/notes/{note.id}").get_data(as_text=True)
    admin.post(f"/notes/{note.id}/restore")
    assert client.get(f"/notes/{note.id}").status_code == 200


def test_member_cannot_restore(client, world):
    note = world.notes["joint"]
    login(client, world.eu_member)
    client.post(f"/notes/{note.id}/delete")
    assert client.post(f"/notes/{note.id}/restore").status_code == 404


def test_threaded_replies_to_any_depth_with_permalinks(client, world, app, db):
    note = world.notes["joint"]
    login(client, world.eu_member)
    parent = world.replies["joint"]
    ids = [parent.id]
    for depth in range(1, 10):
        response = client.post(f"/notes/{note.id}/replies", data={"body": f"depth {depth}", "parent_id": ids[-1]})
        assert response.status_code == 302
        ids.append(int(response.location.rsplit("reply-", 1)[1]))
    page = client.get(f"/notes/{note.id}").get_data(as_text=True)
    for reply_id in ids[:7]:
        assert f'id="reply-{reply_id}"' in page
    # Indentation is capped: deeper replies continue on their own page.
    assert f'id="reply-{ids[8]}"' not in page
    assert "Continue this thread" in page
    continued = re.search(r'href="(/notes/\d+/replies/(\d+))">Continue this thread', page)
    sub = client.get(continued.group(1)).get_data(as_text=True)
    assert f'id="reply-{ids[9]}"' in sub and "depth 9" in sub
    # A reply permalink leads to its anchor in the thread.
    assert client.get(f"/replies/{ids[3]}").location.endswith(f"/notes/{note.id}#reply-{ids[3]}")
    tree = replies.thread(db, db.get(Note, note.id))
    assert [item.reply.id for item in tree][:7] == ids[:7]


def test_reply_edit_history_and_soft_delete_keeps_shape(client, world, db):
    note = world.notes["joint"]
    top = world.replies["joint"]
    login(client, world.eu_member)
    child = client.post(f"/notes/{note.id}/replies", data={"body": "child reply", "parent_id": top.id})
    child_id = int(child.location.rsplit("reply-", 1)[1])
    client.post(f"/replies/{top.id}/edit", data={"body": "First reply, corrected"})
    history = client.get(f"/replies/{top.id}/history").get_data(as_text=True)
    assert "First reply in joint" in history and "First reply, corrected" in history
    client.post(f"/replies/{top.id}/delete")
    page = client.get(f"/notes/{note.id}").get_data(as_text=True)
    assert "This reply was deleted." in page
    assert "First reply, corrected" not in page
    assert f'id="reply-{child_id}"' in page and "child reply" in page
    assert client.get(f"/replies/{top.id}").status_code == 404
    assert db.get(Note, note.id).reply_count == 1


def test_archived_channel_is_read_only(client, world):
    login(client, world.eu_member)
    note = world.notes["archived"]
    assert client.get("/channels/archived-channel").status_code == 200
    assert "archived and read-only" in client.get("/channels/archived-channel").get_data(as_text=True)
    assert _post(client, "archived-channel", "update").status_code == 403
    assert client.post(f"/notes/{note.id}/replies", data={"body": "late"}).status_code == 403
    assert client.get(f"/notes/{note.id}/edit").status_code == 403


def test_bad_note_keeps_everything_typed(client, world):
    login(client, world.eu_member)
    response = _post(client, "joint-channel", "question", title="", body="My careful text ✓",
                     topics=["dsa", "not-a-topic"], articles="DSA Art. 9999; DMA Art. 6(7)",
                     answer_by="31/12/2026")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "My careful text ✓" in page and "DSA Art. 9999; DMA Art. 6(7)" in page and "31/12/2026" in page
    assert "Give the note a title" in page
    assert "Unknown topic: not-a-topic" in page
    assert "no Art. 9999" in page
    assert "not a date" in page
    assert 'value="dsa" checked' in page


def test_bad_reply_keeps_the_text(client, world):
    login(client, world.eu_member)
    note = world.notes["joint"]
    response = client.post(f"/notes/{note.id}/replies", data={"body": "   "})
    assert response.status_code == 400 and "Write the reply" in response.get_data(as_text=True)
    response = client.post(f"/notes/{note.id}/replies", data={"body": "kept words", "parent_id": "999999"})
    assert response.status_code == 400 and "kept words" in response.get_data(as_text=True)


def test_a_bad_reply_to_a_reply_still_answers_that_reply(client, world):
    """Shown again after a mistake, the form keeps the reply it answers, so the next try is not posted
    at the top of the thread."""
    login(client, world.jp_member)
    note, first = world.notes["joint"], world.replies["joint"]
    response = client.post(f"/notes/{note.id}/replies", data={"body": "   ", "parent_id": str(first.id)})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    form = page[page.index('id="respond"'):]
    assert f'name="parent_id" value="{first.id}"' in form
    assert f"{first.author.name}への返信（Markdown）" in form


def test_oversized_body_is_refused_and_nothing_saved(client, world, db):
    login(client, world.eu_member)
    before = db.scalar(select(Note.id).order_by(Note.id.desc()))
    response = _post(client, "joint-channel", "update", body="x" * (200 * 1024 + 1))
    assert response.status_code in (400, 413)
    assert "200 KB" in response.get_data(as_text=True)
    assert db.scalar(select(Note.id).order_by(Note.id.desc())) == before


def test_channel_page_filters_by_kind_and_paginates(client, world, db, app):
    for i in range(35):
        notes.post_note(db, world.joint, world.eu_member, "update", {"title": f"Update number {i}", "body": "b"})
    db.commit()
    login(client, world.eu_member)
    first = client.get("/channels/joint-channel?kind=update").get_data(as_text=True)
    assert "Update number 34" in first and "Question in joint" not in first and "Older" in first
    second = client.get("/channels/joint-channel?kind=update&page=2").get_data(as_text=True)
    assert "Update number 0" in second and "Update number 34" not in second


def test_markdown_is_stored_rendered(db, world):
    note = db.get(Note, world.notes["joint"].id)
    assert note.body_html == "<p>Body of the joint question</p>"


def test_preview_shows_the_sanitised_text_and_saves_nothing(client, db, world):
    login(client, world.eu_member)
    before = db.scalar(select(func.count()).select_from(Note))
    typed = {"title": "", "body": "**Bold** <script>alert(1)</script>", "lang": "en", "marking": "limited"}
    response = client.post(f"/channels/{world.joint.slug}/new/update", data={**typed, "preview": "1"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<strong>Bold</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert "**Bold** &lt;script&gt;alert(1)&lt;/script&gt;" in page  # still in the textarea to go on editing
    assert db.scalar(select(func.count()).select_from(Note)) == before


def test_previewing_an_edit_shows_the_new_text_and_saves_nothing(client, db, world):
    login(client, world.eu_member)
    note = world.notes["joint"]
    title = note.title
    typed = {"title": "Retitled", "body": "**Bold** <script>alert(1)</script>", "lang": "en", "marking": "limited"}
    response = client.post(f"/notes/{note.id}/edit", data={**typed, "preview": "1"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<strong>Bold</strong>" in page and "<script>alert(1)</script>" not in page
    assert 'value="Retitled"' in page  # the form keeps what was typed
    db.expire_all()
    assert (db.get(Note, note.id).title, db.get(Note, note.id).revision) == (title, 1)


def test_a_refused_edit_shows_the_form_again_and_changes_nothing(client, db, world):
    login(client, world.eu_member)
    note = world.notes["joint"]
    body = note.body
    response = client.post(f"/notes/{note.id}/edit", data={"title": "", "body": "New text", "lang": "en",
                                                           "marking": "limited"})
    assert response.status_code == 400
    assert "New text" in response.get_data(as_text=True)
    db.expire_all()
    assert (db.get(Note, note.id).body, db.get(Note, note.id).revision) == (body, 1)


def test_live_preview_renders_like_a_saved_note(client, world):
    login(client, world.eu_member)
    response = client.post("/preview", data={"body": "A [link](javascript:alert(1)) and *emphasis*"})
    assert response.status_code == 200
    html = response.get_json()["html"]
    assert "<em>emphasis</em>" in html
    assert "javascript:" not in html
