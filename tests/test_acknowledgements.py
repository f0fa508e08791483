"""Acknowledgement: who may ask, who may acknowledge, what the note and the dashboard show."""
from __future__ import annotations

import re

from sqlalchemy import select

from portal.models import Acknowledgement, AcknowledgementRequest, Note
from portal.services import accounts, acknowledgements, channels
from tests.conftest import PASSWORD, signed_in_client, statements_to_get


def _ask(db, note, actor):
    acknowledgements.request_acknowledgement(db, note, actor)
    db.commit()


def _acks(db, note):
    db.expire_all()
    return db.scalars(select(Acknowledgement.user_id).where(Acknowledgement.note_id == note.id)).all()


def test_the_author_or_a_moderator_may_ask(app, db, world):
    note = world.notes["joint"]  # by eva (EU)
    assert signed_in_client(app, world.outsider).post(f"/notes/{note.id}/acknowledgement-request").status_code == 403
    assert signed_in_client(app, world.jp_member).post(f"/notes/{note.id}/acknowledgement-request").status_code == 403
    assert db.get(AcknowledgementRequest, note.id) is None
    assert signed_in_client(app, world.eu_moderator).post(f"/notes/{note.id}/acknowledgement-request").status_code == 302
    db.expire_all()
    request = db.get(AcknowledgementRequest, note.id)
    assert request.side == "jp" and request.requested_by_id == world.eu_moderator.id
    # Asking again changes nothing.
    assert signed_in_client(app, world.eu_member).post(f"/notes/{note.id}/acknowledgement-request").status_code == 302
    db.expire_all()
    assert db.get(AcknowledgementRequest, note.id).requested_by_id == world.eu_moderator.id


def test_nobody_to_ask_in_a_one_sided_channel(app, db, world):
    note = world.notes["eu"]
    client = signed_in_client(app, world.eu_member)
    response = client.post(f"/notes/{note.id}/acknowledgement-request", follow_redirects=True)
    assert "Nobody on the JP side can see this channel." in response.get_data(as_text=True)
    assert db.get(AcknowledgementRequest, note.id) is None


def test_asking_and_acknowledging_go_back_to_the_acknowledgement_section(app, db, world):
    note = world.notes["joint"]  # by eva (EU): the JP side is asked
    asked = signed_in_client(app, world.eu_member).post(f"/notes/{note.id}/acknowledgement-request")
    assert asked.location == f"/notes/{note.id}#acknowledgement"
    acknowledged = signed_in_client(app, world.jp_member).post(f"/notes/{note.id}/acknowledge")
    assert acknowledged.location == f"/notes/{note.id}#acknowledgement"
    # A refusal too, its message without the name of the compose form's field.
    one_sided = world.notes["eu"]
    eva = signed_in_client(app, world.eu_member)
    refused = eva.post(f"/notes/{one_sided.id}/acknowledgement-request")
    assert refused.location == f"/notes/{one_sided.id}#acknowledgement"
    page = eva.get(refused.location).get_data(as_text=True)
    assert "Nobody on the JP side" in page and "request_acknowledgement:" not in page


def test_asked_when_posting(app, db, world):
    client = signed_in_client(app, world.jp_member)
    form = {"title": "Please confirm receipt", "body": "Our guidelines.", "lang": "en", "marking": "limited",
            "request_acknowledgement": "1"}
    response = client.post(f"/channels/{world.joint.slug}/new/update", data=form)
    assert response.status_code == 302
    note_id = int(response.location.rsplit("/", 1)[1])
    assert db.get(AcknowledgementRequest, note_id).side == "eu"
    # In a channel the other side cannot see, the note is not posted and the form keeps what was typed.
    response = client.post(f"/channels/{world.jp.slug}/new/update", data={**form, "title": "Kept title"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "EU側には、このチャンネルを閲覧できる職員がいません。" in page  # a Japanese official
    assert 'value="Kept title"' in page and 'name="request_acknowledgement" value="1" checked' in page
    assert db.scalar(select(Note).where(Note.title == "Kept title")) is None


def test_who_may_acknowledge(app, db, world):
    note = world.notes["joint"]  # by eva (EU): the JP side is asked
    _ask(db, note, world.eu_member)
    url = f"/notes/{note.id}/acknowledge"
    # The author's side cannot acknowledge for the other side: not the author, not a moderator.
    assert signed_in_client(app, world.eu_member).post(url).status_code == 403
    assert signed_in_client(app, world.eu_admin).post(url).status_code == 403
    assert _acks(db, note) == []
    # One click by a reader of the side asked; a second click changes nothing.
    kenji = signed_in_client(app, world.jp_member)
    assert kenji.post(url).status_code == 302
    first = db.get(Acknowledgement, (note.id, world.jp_member.id)).created_at
    assert kenji.post(url).status_code == 302
    assert _acks(db, note) == [world.jp_member.id]
    assert db.get(Acknowledgement, (note.id, world.jp_member.id)).created_at == first


def test_a_reader_who_cannot_see_the_note_gets_404(app, db, world):
    note = world.notes["private"]  # by kenji (JP); eva (EU) is a member, so the EU side is asked
    _ask(db, note, world.jp_member)
    assert signed_in_client(app, world.outsider).post(f"/notes/{note.id}/acknowledge").status_code == 404
    assert signed_in_client(app, world.jp_admin).post(f"/notes/{note.id}/acknowledge").status_code == 404
    assert signed_in_client(app, world.eu_member).post(f"/notes/{note.id}/acknowledge").status_code == 302
    assert _acks(db, note) == [world.eu_member.id]


def test_nothing_to_acknowledge_without_a_request(app, db, world):
    note = world.notes["joint"]
    response = signed_in_client(app, world.jp_member).post(f"/notes/{note.id}/acknowledge", follow_redirects=True)
    assert "この投稿は確認を求めていません。" in response.get_data(as_text=True)  # in the reader's language
    assert _acks(db, note) == []


def test_the_note_shows_who_acknowledged_and_which_organisations_have_not(app, db, world):
    mic = accounts.create_organisation(db, slug="mic", name="Ministry of Internal Affairs", side="jp")
    accounts.create_user(db, email="yui@mic.example.jp", name="Yui", organisation=mic, password=PASSWORD)
    empty = accounts.create_organisation(db, slug="ppc", name="Personal Information Commission", side="jp")
    gone = accounts.create_organisation(db, slug="meti", name="Ministry of Economy", side="jp")
    leaver = accounts.create_user(db, email="ren@meti.example.jp", name="Ren", organisation=gone, password=PASSWORD)
    leaver.is_active = False
    note = world.notes["joint"]
    _ask(db, note, world.eu_member)
    assert empty and signed_in_client(app, world.jp_member).post(f"/notes/{note.id}/acknowledge").status_code == 302
    page = signed_in_client(app, world.eu_member).get(f"/notes/{note.id}").get_data(as_text=True)
    section = page[page.index('id="acknowledgement"'):page.index('aria-label="Replies"')]
    assert "Acknowledgement requested from the JP side" in section
    assert re.search(r"<li>Kenji \(Japan Fair Trade Commission\) · <time datetime=\"[0-9T:.-]+Z\">", section)
    # Organisations without an active official who can see the channel are not awaited.
    assert "Not yet acknowledged by: Ministry of Internal Affairs</p>" in section
    # The author's side sees no button; the side asked does, until it has acknowledged.
    assert "<button type=\"submit\">Acknowledge</button>" not in section
    yui = signed_in_client(app, "yui@mic.example.jp")
    assert "<button type=\"submit\">Acknowledge</button>" in yui.get(f"/notes/{note.id}").get_data(as_text=True)
    page = signed_in_client(app, world.jp_member).get(f"/notes/{note.id}").get_data(as_text=True)
    section = page[page.index('id="acknowledgement"'):page.index('<section class="thread"')]
    assert f'action="/notes/{note.id}/acknowledge"' not in section and '<p class="meta">' in section


def test_in_a_private_channel_only_organisations_with_members_are_awaited(app, db, world):
    mic = accounts.create_organisation(db, slug="mic", name="Ministry of Internal Affairs", side="eu")
    accounts.create_user(db, email="lea@mic.example.eu", name="Lea", organisation=mic, password=PASSWORD)
    note = world.notes["private"]  # by kenji: the EU side is asked; only eva (DG CNECT) is a member
    _ask(db, note, world.jp_member)
    status = acknowledgements.status(db, note)
    assert [org.slug for org in status.awaited] == ["dg-cnect"]


def test_the_note_page_loads_acknowledgements_in_a_fixed_number_of_queries(app, db, world):
    note = world.notes["joint"]
    _ask(db, note, world.eu_member)
    viewer = signed_in_client(app, world.eu_member)


    acknowledgements.acknowledge(db, note, world.jp_member)
    db.commit()
    one = statements_to_get(viewer, f"/notes/{note.id}")
    for n in range(5):
        org = accounts.create_organisation(db, slug=f"jp-org-{n}", name=f"JP organisation {n}", side="jp")
        reader = accounts.create_user(db, email=f"r{n}@org{n}.example.jp", name=f"Reader {n}", organisation=org,
                                      password=PASSWORD)
        acknowledgements.acknowledge(db, note, reader)
    db.commit()
    assert statements_to_get(viewer, f"/notes/{note.id}") == one


def test_dashboard_lists_what_awaits_my_organisation(app, db, world):
    note = world.notes["joint"]
    hidden = world.notes["private"]  # asks the EU side, but jp_admin/outsider cannot see it
    _ask(db, note, world.eu_member)
    _ask(db, hidden, world.jp_member)
    kenji = signed_in_client(app, world.jp_member)

    def awaiting(client) -> str:
        page = client.get("/").get_data(as_text=True)
        return page[page.index('id="to-acknowledge"'):page.index('id="milestones"')]

    assert note.title in awaiting(kenji)
    assert note.title not in awaiting(signed_in_client(app, world.eu_member))  # the asking side
    outsider = awaiting(signed_in_client(app, world.outsider))
    assert hidden.title not in outsider and note.title not in outsider
    assert hidden.title in awaiting(signed_in_client(app, world.eu_member))
    kenji.post(f"/notes/{note.id}/acknowledge")
    assert note.title not in awaiting(kenji)
    # A colleague of the same organisation: done for the organisation.
    assert note.title not in awaiting(signed_in_client(app, world.jp_admin))


def test_removed_member_cannot_acknowledge(app, db, world):
    note = world.notes["private"]
    _ask(db, note, world.jp_member)
    channels.remove_member(db, world.private, world.eu_member, actor=world.eu_admin)
    db.commit()
    assert signed_in_client(app, world.eu_member).post(f"/notes/{note.id}/acknowledge").status_code == 404
    assert acknowledgements.status(db, note).awaited == []
