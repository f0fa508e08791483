"""Server-side sessions: one row per signed-in browser, ended by timeouts, sign-out or account changes."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from portal import auth
from portal.models import User, UserSession
from portal.security import token_hash
from portal.services import audit, twofactor


def start(session: Session, user: User, *, address: str, browser: str, two_factor: bool) -> str:
    """Open a new session for this user; returns its id, for the cookie only."""
    key = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, id_hash=token_hash(key), address=address[:45], browser=browser[:255],
                            is_two_factor=two_factor))
    user.session_key = key
    return key


# Built once: every request of a signed-in user runs it.
_BY_HASH = select(UserSession).where(UserSession.id_hash == bindparam("id_hash"))


def resume(session: Session, key: str, *, now: datetime) -> User | None:
    """The user of a live session, or None. Ends a timed-out session; refreshes last-seen at most once a
    SESSION_TOUCH_SECONDS. The caller commits (nothing else is pending when a request loads its user)."""
    row = session.scalar(_BY_HASH, {"id_hash": token_hash(key)})
    if row is None:
        return None
    config = current_app.config
    user = row.user
    if (
        now - row.last_seen_at > timedelta(minutes=config["SESSION_IDLE_MINUTES"])
        or now - row.created_at > timedelta(hours=config["SESSION_ABSOLUTE_HOURS"])
        or not user.is_active
        or (twofactor.required_for(user) and not row.is_two_factor)
    ):
        session.delete(row)
        return None
    if now - row.last_seen_at >= timedelta(seconds=config["SESSION_TOUCH_SECONDS"]):
        row.last_seen_at = now
    user.session_key = key
    return user


def list_for(session: Session, user: User) -> list[UserSession]:
    """This user's sessions, most recently seen first."""
    return list(session.scalars(
        select(UserSession).where(UserSession.user_id == user.id)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    ))


def is_current(row: UserSession, key: str | None) -> bool:
    """Whether this row is the session with this id (the browser asking)."""
    return key is not None and secrets.compare_digest(row.id_hash, token_hash(key))


def end(session: Session, user: User, key: str) -> None:
    """Sign out: end the session with this id."""
    session.execute(delete(UserSession).where(UserSession.id_hash == token_hash(key)))
    audit.record(session, user, "user.sign_out", "user", user.id)


def end_one(session: Session, user: User, session_id: int) -> None:
    """End one of this user's own sessions; another user's is NotFound."""
    session.delete(auth.own(session, user, UserSession, session_id, "session"))
    audit.record(session, user, "session.end", "user", user.id)


def end_others(session: Session, user: User, *, keep_key: str) -> int:
    """End every session of this user but the current one; returns how many were ended."""
    ended = session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.id_hash != token_hash(keep_key))
    ).rowcount
    audit.record(session, user, "session.end_others", "user", user.id, count=ended)
    return ended
