"""Personal API tokens: issued once, stored as a SHA-256, scoped read or write, expiring, revocable."""
from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import auth
from portal.db import utcnow
from portal.errors import NotFound, SignInRefused, ValidationError
from portal.models import ApiToken, User
from portal.models.tokens import SCOPES
from portal.security import token_hash
from portal.services import audit

# "ptk_<prefix>_<secret>": the prefix names the token in lists, audit records and `tokens revoke`;
# the secret carries 256 bits, so a plain SHA-256 (no salt, no slow hash) is enough to store it.
TOKEN_MARK = "ptk"
PREFIX_LENGTH = 8
DEFAULT_DAYS = 90
MAX_DAYS = 366
NAME_MAX = 100


def create_token(
    session: Session, user: User, *, scope: str, days: int = DEFAULT_DAYS, name: str = "", actor: User | None
) -> tuple[ApiToken, str]:
    """Issue a token for this user; returns the row and the token text, which is never stored or shown again."""
    errors = {}
    if scope not in SCOPES:
        errors["scope"] = _l("The scope is read or write.")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        errors["expires"] = _l("A token lasts between 1 and %(days)s days.", days=MAX_DAYS)
    name = " ".join(str(name or "").split())
    if len(name) > NAME_MAX:
        errors["name"] = _l("Keep the name under %(n)s characters.", n=NAME_MAX)
    if not user.is_active:
        errors["email"] = _l("%(email)s is deactivated.", email=user.email)
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    text = f"{TOKEN_MARK}_{prefix}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    token = ApiToken(user=user, name=name, prefix=prefix, token_hash=token_hash(text), scope=scope,
                     created_at=now, expires_at=now + timedelta(days=days))
    session.add(token)
    session.flush()
    audit.record(session, actor, "token.create", "api_token", token.id, user_id=user.id, scope=scope,
                 prefix=prefix, days=days)
    return token, text


def revoke_token(session: Session, token: ApiToken, *, actor: User | None) -> None:
    """Revoke a token at once; revoking it again changes nothing."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor, "token.revoke", "api_token", token.id, user_id=token.user_id,
                     prefix=token.prefix)


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """The user's tokens, newest first, revoked and expired ones included (they show when they ended)."""
    return list(session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    ))


def own_token(session: Session, user: User, token_id: int) -> ApiToken:
    """One of this user's tokens, or NotFound (another user's token looks the same as none)."""
    return auth.own(session, user, ApiToken, token_id, "token")


def token_by_id_or_prefix(session: Session, key: str) -> ApiToken:
    """A token by its id or its prefix, for the command line."""
    key = key.strip()
    if key.startswith(f"{TOKEN_MARK}_"):
        key = key.split("_")[1]
    # Prefixes are 8 hex digits; an id is a shorter number.
    if key.isdigit() and len(key) < PREFIX_LENGTH:
        token = session.get(ApiToken, int(key))
    else:
        token = session.scalar(select(ApiToken).where(ApiToken.prefix == key.lower()))
    if token is None:
        raise NotFound(f"No token {key!r}.")
    return token


def authenticate(session: Session, text: str, *, now: datetime | None = None) -> ApiToken:
    """The live token this text stands for, or SignInRefused (unknown, revoked, expired, deactivated user)."""
    mark, _, rest = text.partition("_")
    prefix, _, secret = rest.partition("_")
    token = session.scalar(select(ApiToken).where(ApiToken.prefix == prefix)) if (
        mark == TOKEN_MARK and prefix and secret) else None
    if token is None or not hmac.compare_digest(token.token_hash, token_hash(text)):
        raise SignInRefused(_l("The token is not valid."))
    if not token.is_usable(now or utcnow()):
        audit.record(session, token.user, "token.refused", "api_token", token.id, prefix=token.prefix)
        raise SignInRefused(_l("The token has expired or been revoked, or its owner's account is deactivated."))
    return token


def record_use(session: Session, token: ApiToken, *, method: str, endpoint: str | None, status: int) -> None:
    """Audit one request made with the token and note when it was last used (the caller commits)."""
    now = utcnow()
    session.execute(
        update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(session, token.user, "token.use", "api_token", token.id, method=method, endpoint=endpoint,
                 status=status)
