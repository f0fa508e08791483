"""Personal API tokens: created and revoked on the settings page and by the CLI, shown once, stored hashed."""
from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from portal.models import ApiToken, AuditEvent
from portal.services import tokens
from tests.conftest import login

TOKEN = re.compile(r"ptk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def me(app, token: str):
    return app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_the_page_creates_a_token_shown_once_that_works_until_revoked(app, db, world):
    browser = app.test_client()
    login(browser, world.eu_member)
    assert 'href="/account/tokens"' in browser.get("/account").get_data(as_text=True)
    page = browser.post("/account/tokens", data={"name": "Case system", "scope": "write", "days": "30"})
    assert page.status_code == 200
    text = TOKEN.search(page.get_data(as_text=True)).group(0)
    assert me(app, text).get_json()["email"] == world.eu_member.email
    listing = browser.get("/account/tokens").get_data(as_text=True)
    assert text not in listing and text.split("_")[1] in listing and "Case system" in listing
    db.rollback()
    stored = db.scalar(select(ApiToken))
    assert stored.token_hash == hashlib.sha256(text.encode()).hexdigest() and text not in stored.token_hash
    assert (stored.expires_at - stored.created_at).days == 30 and stored.scope == "write"

    revoked = browser.post(f"/account/tokens/{stored.id}/revoke")
    assert revoked.status_code == 302
    assert me(app, text).status_code == 401
    assert "revoked" in browser.get("/account/tokens").get_data(as_text=True)
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "api_token")).all()
    assert actions[:2] == ["token.create", "token.use"] and "token.revoke" in actions


def test_the_page_refuses_bad_input_and_keeps_what_was_typed(app, db, world):
    browser = app.test_client()
    login(browser, world.eu_member)
    page = browser.post("/account/tokens", data={"name": "Nightly sync", "scope": "admin", "days": "900"})
    body = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "The scope is read or write." in body and "between 1 and 366 days" in body
    assert 'value="Nightly sync"' in body and 'value="900"' in body
    assert not TOKEN.search(body)
    db.rollback()
    assert db.scalars(select(ApiToken)).all() == []


def test_nobody_revokes_another_users_token(app, db, world):
    token, text = tokens.create_token(db, world.eu_member, scope="read", actor=None)
    db.commit()
    other = app.test_client()
    login(other, world.eu_admin)
    assert other.post(f"/account/tokens/{token.id}/revoke").status_code == 404
    assert world.eu_member.email not in other.get("/account/tokens").get_data(as_text=True)
    assert me(app, text).status_code == 200


def test_cli_create_prints_the_token_last_then_list_and_revoke(app, runner, db, world):
    result = runner.invoke(args=["tokens", "create", world.jp_member.email, "--scope", "read", "--expires", "7"])
    assert result.exit_code == 0, result.output
    text = result.output.split()[-1]
    assert TOKEN.fullmatch(text)
    assert me(app, text).get_json()["token"]["scope"] == "read"
    prefix = text.split("_")[1]

    listed = runner.invoke(args=["tokens", "list", world.jp_member.email])
    assert listed.exit_code == 0 and prefix in listed.output and "active" in listed.output
    assert text not in listed.output

    revoked = runner.invoke(args=["tokens", "revoke", prefix])
    assert revoked.exit_code == 0, revoked.output
    assert me(app, text).status_code == 401
    assert "revoked" in runner.invoke(args=["tokens", "list", world.jp_member.email]).output

    second = runner.invoke(args=["tokens", "create", world.jp_member.email, "--scope", "write"]).output.split()[-1]
    db.rollback()
    second_id = db.scalar(select(ApiToken.id).where(ApiToken.prefix == second.split("_")[1]))
    assert runner.invoke(args=["tokens", "revoke", str(second_id)]).exit_code == 0
    assert me(app, second).status_code == 401


def test_cli_refuses_bad_input_with_a_message(runner, db, world):
    for args, message in [
        (["tokens", "create", "nobody@example.org", "--scope", "read"], "nobody@example.org"),
        (["tokens", "create", world.eu_member.email, "--scope", "read", "--expires", "0"], "between 1 and 366"),
        (["tokens", "create", world.eu_member.email, "--scope", "admin"], "admin"),
        (["tokens", "revoke", "deadbeef"], "No token"),
    ]:
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, result.output
    db.rollback()
    assert db.scalars(select(ApiToken)).all() == []
