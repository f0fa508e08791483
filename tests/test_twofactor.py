"""Two-factor sign-in: enrolment, the code step, replays, recovery codes, lock-out and admin reset."""
from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from portal.db import utcnow
from portal.errors import SignInRefused
from portal.models import AuditEvent, RecoveryCode, SignInFailure, TwoFactorCredential
from portal.services import accounts, twofactor
from portal.views.twofactor import ENROLLING
from tests.conftest import PASSWORD, login, next_totp_code
from tests.test_markup import html_problems
from tests.test_security import signed_in_user_id

SECRET = re.compile(r'<code id="secret">([A-Z2-7]+)</code>')
CODE = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


def password_step(client, user, password=PASSWORD):
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response.location


def enrol(client, user) -> tuple[str, list[str]]:
    """Password, then the enrolment page with a real code; returns the secret and the recovery codes."""
    assert password_step(client, user) == "/account/two-factor"
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    response = client.post("/account/two-factor", data={"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200
    return secret, CODE.findall(response.get_data(as_text=True))


def events(db, action: str) -> list[AuditEvent]:
    db.rollback()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def failures(db, user) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(SignInFailure).where(SignInFailure.email == user.email))


def test_an_admin_must_enrol_and_can_reach_nothing_before(client, db, world):
    assert password_step(client, world.eu_admin) == "/account/two-factor"
    # Half-signed-in: the password was right, but nothing is open yet.
    assert signed_in_user_id(client) is None
    for path in ("/", "/channels", f"/notes/{world.notes['joint'].id}", "/admin/users", "/admin/audit",
                 "/account/sessions", "/account/password", "/search?q=question"):
        response = client.get(path)
        assert response.status_code == 302 and response.location.startswith("/login"), path
    assert client.post(f"/notes/{world.notes['joint'].id}/replies", data={"body": "x"}).status_code == 302
    assert client.get("/login/code").location == "/login"  # the code step is not this stage

    page = client.get("/account/two-factor")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    secret = SECRET.search(text).group(1)
    assert '<img class="qr" src="/account/two-factor/qr.svg"' in text
    assert html_problems(text) == []  # no inline style or script, no data: URL: the strict CSP holds
    image = client.get("/account/two-factor/qr.svg")
    assert image.status_code == 200 and image.mimetype == "image/svg+xml"
    assert image.get_data(as_text=True).startswith("<svg") and "style=" not in image.get_data(as_text=True)
    assert "Content-Security-Policy" in image.headers
    assert client.get("/account/two-factor").get_data(as_text=True).count(secret) == 1  # same secret on reload

    wrong = client.post("/account/two-factor", data={"code": "000000", "next": "/"})
    assert wrong.status_code == 400 and "does not match" in wrong.get_data(as_text=True)
    assert signed_in_user_id(client) is None and db.get(TwoFactorCredential, world.eu_admin.id) is None

    done = client.post("/account/two-factor", data={"code": pyotp.TOTP(secret).now()})
    codes = CODE.findall(done.get_data(as_text=True))
    assert done.status_code == 200 and len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/admin/users").status_code == 200
    db.rollback()
    assert db.get(TwoFactorCredential, world.eu_admin.id).secret == secret
    stored = " ".join(db.scalars(select(RecoveryCode.code_hash)))
    assert not any(code.replace("-", "") in stored or code in stored for code in codes)  # hashed
    assert [e.details for e in events(db, "user.sign_in")] == [{"two_factor": True}]
    assert len(events(db, "user.enrol_two_factor")) == 1
    assert "code" not in str(events(db, "user.enrol_two_factor")[0].details)


def test_the_qr_code_and_the_secret_are_only_of_ones_own_enrolment(client, world):
    assert password_step(client, world.eu_admin) == "/account/two-factor"
    assert client.get("/account/two-factor/qr.svg").status_code == 404  # no enrolment begun yet
    # A secret in the cookie that is another official's is neither drawn nor offered.
    with client.session_transaction() as cookie:
        cookie[ENROLLING] = {"user_id": world.eu_member.id, "secret": "JBSWY3DPEHPK3PXP"}
    assert client.get("/account/two-factor/qr.svg").status_code == 404
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "JBSWY3DPEHPK3PXP" not in page
    assert client.get("/account/two-factor/qr.svg").status_code == 200
    assert SECRET.search(client.get("/account/two-factor").get_data(as_text=True)).group(1) == \
        SECRET.search(page).group(1)  # the new one is kept


def test_an_enrolled_official_signs_in_in_two_steps(app, client, db, world):
    enrol(client, world.eu_moderator)
    other = app.test_client()
    assert password_step(other, world.eu_moderator) == "/login/code"
    assert signed_in_user_id(other) is None and other.get("/").status_code == 302
    assert other.get("/login/code").status_code == 200
    response = other.post("/login/code", data={"code": next_totp_code(app, world.eu_moderator.email)})
    assert response.status_code == 302 and response.location == "/"
    assert other.get("/").status_code == 200


def test_a_member_signs_in_with_the_password_alone_unless_the_site_requires_2fa(app, client, world):
    assert password_step(client, world.eu_member) == "/"
    app.config["REQUIRE_2FA"] = True
    strict = app.test_client()
    assert password_step(strict, world.jp_member) == "/account/two-factor"
    assert strict.get("/").status_code == 302


def test_a_session_without_a_second_factor_ends_when_2fa_becomes_required(app, client, world):
    login(client, world.eu_member)
    assert client.get("/").status_code == 200
    app.config["REQUIRE_2FA"] = True
    response = client.get("/")
    assert response.status_code == 302 and response.location.startswith("/login")
    assert password_step(client, world.eu_member) == "/account/two-factor"


def test_a_code_cannot_be_replayed_but_the_next_step_works(app, db, world):
    secret, _ = enrol(app.test_client(), world.eu_admin)
    totp = pyotp.TOTP(secret)
    db.rollback()
    used = db.get(TwoFactorCredential, world.eu_admin.id).last_step
    first = app.test_client()
    password_step(first, world.eu_admin)
    code = totp.generate_otp(used + 1)
    assert first.post("/login/code", data={"code": code}).status_code == 302
    second = app.test_client()
    password_step(second, world.eu_admin)
    replay = second.post("/login/code", data={"code": code})
    assert replay.status_code == 401 and "already used" in replay.get_data(as_text=True)
    assert signed_in_user_id(second) is None
    assert second.post("/login/code", data={"code": totp.generate_otp(used)}).status_code == 401  # older still


def test_codes_one_step_either_side_are_accepted_and_two_are_not(app, db, world):
    secret = twofactor.new_secret()
    now = utcnow()
    totp = pyotp.TOTP(secret)
    with app.test_request_context():
        twofactor.enrol(db, world.eu_member, secret, totp.now(), now=now)
        step = db.get(TwoFactorCredential, world.eu_member.id).last_step
        later = now + timedelta(seconds=120)  # step + 4: fresh steps on both sides
        # After step+5 is used, step+4 is behind the last accepted one: a replay, refused.
        for offset, accepted in ((-2, False), (2, False), (-1, True), (1, True), (0, False)):
            code = totp.generate_otp(step + 4 + offset)
            if accepted:
                assert twofactor.verify(db, world.eu_member, code, now=later) == "totp", offset
            else:
                with pytest.raises(SignInRefused):
                    twofactor.verify(db, world.eu_member, code, now=later)


def test_wrong_codes_count_toward_the_lock_out_and_a_right_password_does_not_reset_them(app, client, db, world):
    enrol(app.test_client(), world.eu_admin)
    password_step(client, world.eu_admin)
    for _ in range(3):
        assert client.post("/login/code", data={"code": "000000"}).status_code == 401
    assert failures(db, world.eu_admin) == 3
    password_step(client, world.eu_admin)  # the right password again: the count stands
    assert failures(db, world.eu_admin) == 3
    for _ in range(2):
        client.post("/login/code", data={"code": "999999"})
    locked = client.post("/login/code", data={"code": next_totp_code(app, world.eu_admin.email)})
    assert locked.status_code == 401 and "Too many failed sign-ins" in locked.get_data(as_text=True)
    assert signed_in_user_id(client) is None
    assert client.post("/login", data={"email": world.eu_admin.email, "password": PASSWORD}).status_code == 401
    assert [e.details for e in events(db, "user.sign_in_failed")].count({"step": "code"}) == 5


def test_a_recovery_code_works_once(app, client, db, world):
    _, codes = enrol(app.test_client(), world.eu_admin)
    password_step(client, world.eu_admin)
    response = client.post("/login/code", data={"code": codes[3].upper().replace("-", " ")})
    assert response.status_code == 302
    assert "9 are left" in client.get("/").get_data(as_text=True)
    again = app.test_client()
    password_step(again, world.eu_admin)
    assert again.post("/login/code", data={"code": codes[3]}).status_code == 401
    assert again.post("/login/code", data={"code": codes[4]}).status_code == 302
    assert twofactor.recovery_codes_left(db, world.eu_admin) == 8


def test_an_admin_reset_ends_sessions_and_asks_for_a_new_enrolment(app, client, db, world):
    moderator = app.test_client()
    login(moderator, world.eu_moderator)
    assert moderator.get("/").status_code == 200
    login(client, world.eu_admin)
    page = client.get("/admin/users").get_data(as_text=True)
    assert f'/admin/users/{world.eu_moderator.id}/two-factor/reset' in page
    assert client.post(f"/admin/users/{world.eu_moderator.id}/two-factor/reset").status_code == 302
    assert moderator.get("/").status_code == 302  # signed out everywhere
    db.rollback()
    assert db.get(TwoFactorCredential, world.eu_moderator.id) is None
    assert twofactor.recovery_codes_left(db, world.eu_moderator) == 0
    [event] = events(db, "user.reset_two_factor")
    assert (event.actor_id, event.target_id) == (world.eu_admin.id, world.eu_moderator.id)
    assert password_step(app.test_client(), world.eu_moderator) == "/account/two-factor"
    # Nothing left to reset: a message, no audit event.
    client.post(f"/admin/users/{world.eu_moderator.id}/two-factor/reset")
    assert "has no two-factor sign-in to reset" in client.get("/admin/users").get_data(as_text=True)
    assert len(events(db, "user.reset_two_factor")) == 1


def test_reset_from_the_command_line(app, runner, db, world):
    enrol(app.test_client(), world.jp_admin)
    result = runner.invoke(args=["users", "reset-2fa", world.jp_admin.email])
    assert result.exit_code == 0, result.output
    assert "reset for aiko@jftc.example.jp" in result.output
    db.rollback()
    assert db.get(TwoFactorCredential, world.jp_admin.id) is None
    [event] = events(db, "user.reset_two_factor")
    assert event.actor_id is None and event.target_id == world.jp_admin.id
    refused = runner.invoke(args=["users", "reset-2fa", world.jp_admin.email])
    assert refused.exit_code != 0 and "has no two-factor sign-in to reset" in refused.output
    missing = runner.invoke(args=["users", "reset-2fa", "nobody@example.org"])
    assert missing.exit_code != 0 and "No user" in missing.output


def test_a_member_may_enrol_from_their_account_and_then_needs_codes(app, client, db, world):
    login(client, world.eu_member)
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    old_session = signed_in_user_id(client)
    assert client.post("/account/two-factor", data={"code": pyotp.TOTP(secret).now()}).status_code == 200
    assert signed_in_user_id(client) not in (None, old_session)  # a new, two-factor session
    assert "Set up on" in client.get("/account/two-factor").get_data(as_text=True)
    assert password_step(app.test_client(), world.eu_member) == "/login/code"


def test_an_invited_moderator_enrols_before_the_first_page(app, db, world):
    pending = accounts.create_user(db, email="new.mod@ec.example.eu", name="New Mod",
                                   organisation=world.eu_member.organisation, role="moderator")
    link = accounts.invite(db, pending, actor=None)
    db.commit()
    client = app.test_client()
    path = link.split("portal.test", 1)[1]
    response = client.post(path, data={"password": "a new long passphrase 9", "confirm": "a new long passphrase 9"})
    assert response.status_code == 302 and response.location == "/account/two-factor"
    assert client.get("/").status_code == 302
    assert "Welcome" in client.get("/account/two-factor").get_data(as_text=True)


def test_the_code_step_expires(app, client, world):
    enrol(app.test_client(), world.eu_admin)
    password_step(client, world.eu_admin)
    with client.session_transaction() as cookie:
        held = cookie["pending_sign_in"]
        held["at"] -= app.config["SIGN_IN_CODE_MINUTES"] * 60 + 1
        cookie["pending_sign_in"] = held
    assert client.get("/login/code").location == "/login"
    response = client.post("/login/code", data={"code": next_totp_code(app, world.eu_admin.email)})
    assert response.location == "/login"
    assert signed_in_user_id(client) is None
