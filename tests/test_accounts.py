"""Invitations, passwords, sign-in, lock-out and sessions, as an official or an attacker meets them."""
from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from portal.db import utcnow
from portal.models import AuditEvent, Invitation, User
from portal.services import accounts
from tests.conftest import PASSWORD, login


def _invite_path(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def test_sign_in_and_out(client, world):
    assert client.get("/").status_code == 302
    login(client, world.eu_member)
    assert "Question in joint" in client.get("/").get_data(as_text=True)
    client.post("/logout")
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_a_message(client, world):
    response = client.post("/login", data={"email": world.eu_member.email, "password": "not the password!"})
    assert response.status_code == 401
    assert "e-mail address or password is wrong" in response.get_data(as_text=True)
    assert world.eu_member.email in response.get_data(as_text=True)  # typed e-mail kept
    assert client.get("/").status_code == 302


def test_unknown_email_gets_the_same_answer(client, world):
    response = client.post("/login", data={"email": "nobody@example.eu", "password": "whatever at all"})
    assert response.status_code == 401
    assert "e-mail address or password is wrong" in response.get_data(as_text=True)


def test_five_failures_lock_the_account_even_for_the_right_password(client, world, db):
    for _ in range(5):
        client.post("/login", data={"email": world.jp_member.email, "password": "wrong wrong wrong"})
    response = client.post("/login", data={"email": world.jp_member.email, "password": PASSWORD})
    assert response.status_code == 401
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert "15 minutes" in response.get_data(as_text=True)
    # Another account is not affected.
    login(client, world.eu_member)


def test_lock_lifts_after_the_window(client, world, db, app):
    for _ in range(5):
        client.post("/login", data={"email": world.jp_member.email, "password": "wrong wrong wrong"})
    from portal.models import SignInFailure

    db.execute(update(SignInFailure).values(created_at=utcnow() - timedelta(minutes=16)))
    db.commit()
    login(client, world.jp_member)


def test_four_failures_then_success_resets_the_count(client, world):
    for _ in range(4):
        client.post("/login", data={"email": world.jp_member.email, "password": "wrong wrong wrong"})
    login(client, world.jp_member)
    client.post("/logout")
    for _ in range(4):
        client.post("/login", data={"email": world.jp_member.email, "password": "wrong wrong wrong"})
    login(client, world.jp_member)


def test_deactivated_user_cannot_sign_in_and_is_signed_out(client, world, db, app):
    login(client, world.eu_member)
    admin = app.test_client()
    login(admin, world.eu_admin)
    assert admin.post(f"/admin/users/{world.eu_member.id}", data={"is_active": "0"}).status_code == 302
    assert client.get("/").status_code == 302
    response = client.post("/login", data={"email": world.eu_member.email, "password": PASSWORD})
    assert response.status_code == 401


def test_passwords_are_hashed_with_argon2(db, world):
    user = db.get(User, world.eu_member.id)
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash


def test_password_rules():
    assert "12 characters" in accounts.password_problem("short pass")
    assert "too common" in accounts.password_problem("qwerty123456")
    assert "too common" in accounts.password_problem("aaaaaaaaaaaaaaaa")
    assert accounts.password_problem("lantern orchard velvet") is None


def test_admin_invites_and_invitee_sets_password_once(client, world, db, app):
    login(client, world.eu_admin)
    response = client.post("/admin/users", data={
        "email": "new.official@ec.example.eu", "name": "New Official",
        "organisation_id": str(world.eu_member.organisation_id), "role": "member"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    link = re.search(r"http://portal\.test(/invitations/[^<\s]+)", page).group(1)
    # The invitation was e-mailed (written to the instance mail folder in development).
    mails = list((Path(app.instance_path) / "mail").glob("*.eml"))
    assert len(mails) == 1
    message = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "new.official@ec.example.eu"
    assert link in message.get_body(("plain",)).get_content()
    assert link in message.get_body(("html",)).get_content()
    client.post("/logout")

    invitee = app.test_client()
    assert "Set your password" in invitee.get(link).get_data(as_text=True)
    # A bad password re-renders with a message and the invitation still works.
    bad = invitee.post(link, data={"password": "qwerty123456", "confirm": "qwerty123456"})
    assert bad.status_code == 400 and "too common" in bad.get_data(as_text=True)
    good = invitee.post(link, data={"password": "spruce harbour lantern", "confirm": "spruce harbour lantern"})
    assert good.status_code == 302
    assert invitee.get("/").status_code == 200

    again = app.test_client().post(link, data={"password": "another fine passphrase", "confirm": "another fine passphrase"})
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)
    login(app.test_client(), "new.official@ec.example.eu", "spruce harbour lantern")


def test_invitation_expires_after_seven_days(client, world, db, app):
    pending = accounts.create_user(db, email="late@jftc.example.jp", name="Late", organisation=world.jp_member.organisation)
    with app.test_request_context():
        link = _invite_path(accounts.invite(db, pending, actor=world.jp_admin))
    db.execute(update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    response = client.get(link)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_tampered_invitation_is_refused(client, world, db, app):
    pending = accounts.create_user(db, email="t@jftc.example.jp", name="T", organisation=world.jp_member.organisation)
    with app.test_request_context():
        link = _invite_path(accounts.invite(db, pending, actor=None))
    db.commit()
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    response = client.post(tampered, data={"password": "spruce harbour lantern", "confirm": "spruce harbour lantern"})
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
    assert db.get(User, pending.id).password_hash is None


def test_reinvitation_invalidates_the_earlier_link(client, world, db, app):
    pending = accounts.create_user(db, email="r@jftc.example.jp", name="R", organisation=world.jp_member.organisation)
    with app.test_request_context():
        first = _invite_path(accounts.invite(db, pending, actor=None))
        second = _invite_path(accounts.invite(db, pending, actor=None))
    db.commit()
    assert client.get(first).status_code == 400
    assert client.get(second).status_code == 200


def test_pending_account_cannot_sign_in(client, world, db):
    accounts.create_user(db, email="p@jftc.example.jp", name="P", organisation=world.jp_member.organisation)
    db.commit()
    assert client.post("/login", data={"email": "p@jftc.example.jp", "password": ""}).status_code == 401


def test_no_self_registration(client):
    assert client.get("/register").status_code == 404
    assert client.get("/signup").status_code == 404


def test_change_password_ends_other_sessions_but_keeps_this_one(app, world):
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, world.eu_member)
    login(phone, world.eu_member)
    response = laptop.post("/account/password", data={
        "current": PASSWORD, "password": "granite meadow compass", "confirm": "granite meadow compass"})
    assert response.status_code == 302
    assert laptop.get("/").status_code == 200
    assert phone.get("/").status_code == 302
    login(app.test_client(), world.eu_member, "granite meadow compass")


def test_change_password_errors_keep_the_form(app, world):
    client = app.test_client()
    login(client, world.eu_member)
    response = client.post("/account/password", data={"current": "wrong", "password": "x", "confirm": "y"})
    assert response.status_code == 400
    assert "current password is wrong" in response.get_data(as_text=True)
    login(app.test_client(), world.eu_member)  # unchanged


def test_role_change_takes_effect_and_is_audited(client, world, db):
    login(client, world.eu_admin)
    client.post(f"/admin/users/{world.eu_member.id}", data={"role": "moderator"})
    db.expire_all()
    assert db.get(User, world.eu_member.id).role == "moderator"
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.set_role")).all()
    assert events and events[-1].details == {"old": "member", "new": "moderator"}


def test_admin_creates_organisation_and_bad_input_is_kept(client, world):
    login(client, world.eu_admin)
    ok = client.post("/admin/organisations", data={"slug": "digital-agency", "name": "Digital Agency", "side": "jp"})
    assert ok.status_code == 200 and "Digital Agency" in ok.get_data(as_text=True)
    bad = client.post("/admin/organisations", data={"slug": "Bad Slug!", "name": "Kept Name", "side": "jp"})
    assert bad.status_code == 400
    assert "Kept Name" in bad.get_data(as_text=True) and "lowercase" in bad.get_data(as_text=True)


def test_invitation_tokens_are_redacted_from_the_access_log():
    import logging

    from portal.security import RedactSecretPaths

    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '%s - - [%s] "%s" %s -',
                               ("127.0.0.1", "now", "GET /invitations/eyJpIjo.abc.def HTTP/1.1", "200"), None)
    RedactSecretPaths().filter(record)
    assert "eyJpIjo" not in record.getMessage()
    assert "/invitations/[redacted]" in record.getMessage()


def test_relative_instance_path_is_accepted(tmp_path, monkeypatch):
    from portal import create_app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", "relative-instance")
    app = create_app()
    assert app.instance_path == str(tmp_path / "relative-instance")
    key_file = tmp_path / "relative-instance" / "secret_key"
    assert key_file.read_text() == app.config["SECRET_KEY"] and len(app.config["SECRET_KEY"]) == 64
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    # Generated once and kept: a restart keeps sessions valid.
    assert create_app().config["SECRET_KEY"] == app.config["SECRET_KEY"]


def _mail_to(app, address: str) -> list[email.message.EmailMessage]:
    """The invitations written to the instance mail folder for this address, oldest first."""
    found = [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
             for path in sorted((Path(app.instance_path) / "mail").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)]
    return [message for message in found if message["To"] == address]


def _invite(client, address: str, org, **form) -> str:
    response = client.post("/admin/users", data={"email": address, "name": address.split("@")[0].title(),
                                                  "organisation_id": str(org.id), "role": "member", **form})
    assert response.status_code == 200, response.get_data(as_text=True)
    return re.search(r"http://portal\.test(/invitations/[^<\s]+)", response.get_data(as_text=True)).group(1)


def test_the_invitation_is_in_the_invitees_language_not_the_admins(client, world, db, app):
    jp_org, eu_org = world.jp_member.organisation, world.eu_member.organisation
    login(client, world.eu_admin)  # reads English
    form = client.get("/admin/users").get_data(as_text=True)
    assert re.search(r'<option value="">By the organisation(&#39;|\')s side', form)
    to_japan = _invite(client, "hana@jftc.example.jp", jp_org)  # the side's language: Japanese
    to_japan_in_english = _invite(client, "sam@jftc.example.jp", jp_org, lang="en")
    bad = client.post("/admin/users", data={"email": "x@jftc.example.jp", "name": "X", "role": "member",
                                            "organisation_id": str(jp_org.id), "lang": "fr"})
    assert bad.status_code == 400 and "Choose English or Japanese." in bad.get_data(as_text=True)
    client.post("/logout")
    login(client, world.jp_admin)  # reads Japanese
    _invite(client, "lea@ec.example.eu", eu_org)  # the side's language: English
    assert client.post(f"/admin/users/{accounts.user_by_email(db, 'lea@ec.example.eu').id}/invite").status_code == 302

    [japanese] = _mail_to(app, "hana@jftc.example.jp")
    text = japanese.get_body(("plain",)).get_content()
    assert japanese["Subject"] == "日EUデジタル規制対話ポータルへのご招待"
    assert "Hana 様" in text and "Ada（DG CNECT）より" in text and "メンバー" in text and "7日間" in text
    assert "invited you" not in text and "Set your password" not in japanese.get_body(("html",)).get_content()
    for address in ("sam@jftc.example.jp", "lea@ec.example.eu"):
        for message in _mail_to(app, address):  # Lea's twice: the first link and the admin's new one
            text = message.get_body(("plain",)).get_content()
            assert message["Subject"] == "Your invitation to the EU–Japan digital regulation exchange portal"
            assert "has invited you" in text and "様" not in text and "招待" not in text
    assert len(_mail_to(app, "lea@ec.example.eu")) == 2
    assert "Aiko (Japan Fair Trade Commission) has invited you" in text  # Lea's, from the Japanese admin

    # The link opens in the invitation's language whatever the browser says, and so does the portal after.
    invitee = app.test_client()
    page = invitee.get(to_japan, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ja">' in page and "パスワード" in page
    assert invitee.post(to_japan, data={"password": "spruce harbour lantern", "confirm": "spruce harbour lantern"},
                        headers={"Accept-Language": "en"}).status_code == 302
    assert '<html lang="ja">' in invitee.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    # An invitee who switches language before accepting keeps that choice.
    other = app.test_client()
    assert '<html lang="en">' in other.get(to_japan_in_english).get_data(as_text=True)
    other.post("/language", data={"lang": "ja", "next": to_japan_in_english})
    assert '<html lang="ja">' in other.get(to_japan_in_english).get_data(as_text=True)
    other.post(to_japan_in_english, data={"password": "spruce harbour lantern", "confirm": "spruce harbour lantern"})
    db.expire_all()
    assert {accounts.user_by_email(db, address).lang for address in ("hana@jftc.example.jp", "sam@jftc.example.jp")} \
        == {"ja"}
    assert accounts.user_by_email(db, "lea@ec.example.eu").lang == "en"
