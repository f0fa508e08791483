"""The interface language and time zone: chosen per user, Accept-Language before sign-in, a switch
on every page; times in the reader's zone; deadlines on both sides' clocks."""
from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest
from babel.support import Translations

from portal import i18n
from portal.models import Note, User

from .conftest import login

CATALOGUES = Path(__file__).parent.parent / "portal" / "translations"


@pytest.fixture(scope="module")
def ja():
    """The compiled Japanese catalogue (`make install` compiles it), as the app will use it."""
    if not (CATALOGUES / "ja" / "LC_MESSAGES" / "messages.mo").exists():
        pytest.fail("portal/translations/ja/LC_MESSAGES/messages.mo is missing: run `make install`")
    return Translations.load(str(CATALOGUES), ["ja"])


def japanese(ja, english: str) -> str:
    text = ja.gettext(english)
    assert text != english, f"{english!r} has no Japanese translation"
    return text


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True)).group(1)


def test_before_sign_in_the_browser_language_decides(client, ja):
    in_japanese = client.get("/login", headers={"Accept-Language": "ja,en;q=0.5"})
    assert html_lang(in_japanese) == "ja"
    assert japanese(ja, "Password") in in_japanese.get_data(as_text=True)
    in_english = client.get("/login", headers={"Accept-Language": "de-DE,en;q=0.8"})
    assert html_lang(in_english) == "en"
    assert ">Password<" in in_english.get_data(as_text=True)


def test_the_switch_works_before_sign_in_and_returns_to_the_page(client, ja):
    response = client.post("/language", data={"lang": "ja", "next": "/login?next=/search"},
                           headers={"Accept-Language": "en"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/search"
    page = client.get("/login", headers={"Accept-Language": "en"})
    assert html_lang(page) == "ja"


def test_the_switch_never_redirects_off_site(client):
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = client.post("/language", data={"lang": "ja", "next": target})
        assert response.headers["Location"] == "/", target


def test_a_signed_in_choice_is_kept_on_the_account(app, client, db, world, ja):
    login(client, world.eu_member)
    assert html_lang(client.get("/")) == "en"
    client.post("/language", data={"lang": "ja", "next": "/"})
    db.expire_all()
    assert db.get(User, world.eu_member.id).lang == "ja"
    page = client.get("/", headers={"Accept-Language": "en"})
    assert html_lang(page) == "ja"
    assert japanese(ja, "Dashboard") in page.get_data(as_text=True)
    # A language that is not offered changes nothing.
    client.post("/language", data={"lang": "fr", "next": "/"})
    db.expire_all()
    assert db.get(User, world.eu_member.id).lang == "ja"


def test_validation_messages_come_in_the_readers_language(client, world, ja):
    login(client, world.jp_member)  # prefers Japanese
    response = client.post(f"/channels/{world.joint.slug}/new/update",
                           data={"title": "", "body": "本文だけ書きました。", "lang": "ja", "marking": "limited"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert japanese(ja, "Give the note a title.") in body
    assert "本文だけ書きました。" in body  # nothing typed is lost


def test_times_are_shown_in_the_readers_zone(client, db, world):
    note = db.get(Note, world.notes["joint"].id)
    note.last_activity_at = datetime(2026, 1, 15, 12, 0)  # UTC, as stored
    db.commit()
    login(client, world.eu_member)
    assert "2026-01-15 13:00 CET" in client.get("/").get_data(as_text=True)
    client.post("/account", data={"lang": "en", "time_zone": "Asia/Tokyo"})
    assert "2026-01-15 21:00 JST" in client.get("/").get_data(as_text=True)
    # Japanese officials see Tokyo time by default, in their own date format.
    client.post("/logout")
    login(client, world.jp_member)
    assert "2026年1月15日 21:00 JST" in client.get("/").get_data(as_text=True)


def test_a_bad_time_zone_is_refused_and_the_form_keeps_the_choice(client, db, world):
    login(client, world.eu_member)
    response = client.post("/account", data={"lang": "ja", "time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Choose a time zone from the list." in body
    assert '<option value="ja" lang="ja" selected>' in body
    db.expire_all()
    user = db.get(User, world.eu_member.id)
    assert (user.lang, user.time_zone) == ("en", "")


def test_a_deadline_ends_on_the_asking_sides_clock():
    eu_end, jp_end = i18n.deadline(date(2026, 12, 1), "eu")
    assert eu_end[0] == "eu" and eu_end[1].strftime("%Y-%m-%d %H:%M %Z") == "2026-12-01 23:59 CET"
    assert jp_end[0] == "jp" and jp_end[1].strftime("%Y-%m-%d %H:%M %Z") == "2026-12-02 07:59 JST"
    jp_first = i18n.deadline(date(2026, 7, 1), "jp")
    assert [side for side, _ in jp_first] == ["jp", "eu"]
    assert jp_first[1][1].strftime("%Y-%m-%d %H:%M %Z") == "2026-07-01 16:59 CEST"


def test_the_command_line_stays_in_english(runner, world):
    result = runner.invoke(args=["orgs", "create", "dg-cnect", "--name", "Again", "--side", "eu"])
    assert result.exit_code != 0
    assert "An organisation with this slug exists." in result.stderr


def test_a_forced_language_inside_a_request_formats_times_in_that_language(app, client, world):
    """An e-mail composed while a page renders (force_locale) takes neither format from the other."""
    from flask_login import login_user

    moment = datetime(2026, 1, 15, 12, 0)
    with app.test_request_context("/"):
        login_user(world.jp_member)
        assert i18n.moment(moment) == "2026年1月15日 21:00 JST"
        with i18n.as_reader(world.eu_member):
            assert i18n.moment(moment) == "2026-01-15 13:00 CET"
            assert ">2026-01-15 13:00 CET</time>" in i18n.when(moment)
            assert i18n.day(moment) == "2026-01-15"
        assert ">2026年1月15日 21:00 JST</time>" in i18n.when(moment)
        with i18n.as_reader(world.eu_member):
            assert i18n.moment(moment) == "2026-01-15 13:00 CET"
    with app.app_context():  # the CLI: no request, UTC unless a reader is given
        assert i18n.moment(moment) == "2026-01-15 12:00 UTC"
        with i18n.as_reader(world.jp_member):
            assert i18n.moment(moment) == "2026年1月15日 21:00 JST"
        assert i18n.moment(moment) == "2026-01-15 12:00 UTC"


def test_every_interface_message_has_a_japanese_translation():
    """What `make messages` extracts (same configuration and keywords) is all in the Japanese
    catalogue, translated and not fuzzy: a new string without Japanese fails here, not in a page."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.pofile import read_po

    root = CATALOGUES.parent.parent
    with open(CATALOGUES / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = dict(DEFAULT_KEYWORDS)
    keywords.update({name: None for name in re.findall(r" -k (\S+)", (root / "Makefile").read_text())})
    extracted = {(context, message if isinstance(message, str) else message[0])
                 for _file, _line, message, _comments, context in
                 extract_from_dir(str(root), method_map, options_map, keywords=keywords)}
    assert ("channel pager", "Newer") in extracted and ("audit pager", "Older") in extracted
    with open(CATALOGUES / "ja" / "LC_MESSAGES" / "messages.po", "rb") as po:
        catalogue = read_po(po)
    translated = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalogue
                  if m.id and not m.fuzzy and all(m.string if isinstance(m.string, tuple) else [m.string])}
    assert not sorted(extracted - translated, key=str), "run `make messages` and translate these"
