"""Organisations, accounts, invitations, sign-in and passwords."""
from __future__ import annotations

import gzip
import re
import secrets
from datetime import timedelta
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.errors import NotFound, SignInRefused, ValidationError
from portal.i18n import LANGUAGES, time_zones
from portal.models import Invitation, Organisation, SignInFailure, User, UserSession
from portal.models.accounts import ROLES, SIDES
from portal.security import token_hash
from portal.services import audit, subscriptions

MIN_PASSWORD_LENGTH = 12
SIDE_LANGUAGES = {"eu": "en", "jp": "ja"}  # a new official's language unless the inviting admin chooses
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")



@cache
def _hasher_for(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


def _hasher() -> PasswordHasher:
    config = current_app.config
    return _hasher_for(config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_KIB"])


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Verified against when the e-mail is unknown, so a sign-in takes as long either way."""
    return hasher.hash(secrets.token_hex(16))


@cache
def _common_passwords() -> frozenset[str]:
    data = resources.files("portal").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def password_problem(password: str) -> str | None:
    """Why this password is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _l("Use at least %(n)s characters.", n=MIN_PASSWORD_LENGTH)
    if password.lower() in _common_passwords() or len(set(password)) < 4:
        return _l("This password is too common. Choose another.")
    return None


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_organisation(
    session: Session, *, slug: str, name: str, side: str, actor: User | None = None
) -> Organisation:
    """Create an organisation on the EU or JP side."""
    slug, name, side = slug.strip().lower(), name.strip(), side.strip().lower()
    errors = {}
    if not SLUG.match(slug):
        errors["slug"] = _l("Use lowercase letters, digits and hyphens.")
    elif session.scalar(select(Organisation).where(Organisation.slug == slug)):
        errors["slug"] = _l("An organisation with this slug exists.")
    if not name:
        errors["name"] = _l("Give the organisation's name.")
    if side not in SIDES:
        errors["side"] = _l("The side is eu or jp.")
    if errors:
        raise ValidationError(errors)
    organisation = Organisation(slug=slug, name=name, side=side)
    session.add(organisation)
    session.flush()
    audit.record(session, actor, "organisation.create", "organisation", organisation.id, side=side)
    return organisation


def organisation_by_slug(session: Session, slug: str) -> Organisation:
    organisation = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if organisation is None:
        raise NotFound(f"No organisation {slug!r}.")
    return organisation


def user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(_l("No user '%(email)s'.", email=email))
    return user


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    organisation: Organisation | None,
    role: str = "member",
    password: str | None = None,
    lang: str | None = "en",
    actor: User | None = None,
) -> User:
    """Create an account; without a password it cannot sign in until an invitation is accepted.

    `lang` is the interface language and that of the invitation; None means the usual one of the
    organisation's side (Japanese for the Japanese side, English for the EU side)."""
    email, name = normalise_email(email), name.strip()
    errors = {}
    if not EMAIL.match(email):
        errors["email"] = _l("Enter a valid e-mail address.")
    elif session.scalar(select(User.id).where(User.email == email)):
        errors["email"] = _l("An account with this e-mail exists.")
    if not name:
        errors["name"] = _l("Give the person's name.")
    if organisation is None:
        errors["organisation"] = _l("Choose an organisation.")
    if role not in ROLES:
        errors["role"] = _l("The role is member, moderator or admin.")
    if lang is None and organisation is not None:
        lang = SIDE_LANGUAGES[organisation.side]
    if lang not in LANGUAGES:
        errors["lang"] = _l("Choose English or Japanese.")
    if password is not None and (problem := password_problem(password)):
        errors["password"] = problem
    if errors:
        raise ValidationError(errors)
    user = User(
        email=email,
        name=name,
        organisation=organisation,
        role=role,
        lang=lang,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", user.id, role=role)
    subscriptions.add_defaults(session, user)
    return user


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="invitation")


def invite(session: Session, user: User, *, actor: User | None) -> str:
    """Issue a signed, single-use invitation link for a pending account; earlier links stop working."""
    if user.password_hash is not None:
        raise ValidationError({"email": _l("This person has already set a password.")})
    for earlier in session.scalars(
        select(Invitation).where(Invitation.user_id == user.id, Invitation.accepted_at.is_(None))
    ):
        earlier.expires_at = utcnow()
    nonce = secrets.token_urlsafe(24)
    days = current_app.config["INVITATION_DAYS"]
    invitation = Invitation(
        user=user,
        invited_by=actor,
        nonce_hash=token_hash(nonce),
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(invitation)
    session.flush()
    audit.record(session, actor, "user.invite", "user", user.id)
    token = _serializer().dumps({"i": invitation.id, "n": nonce})
    return f"{current_app.config['BASE_URL'].rstrip('/')}/invitations/{token}"


def invitation_for(session: Session, token: str) -> Invitation:
    """The open invitation behind a link, or ValidationError saying why it cannot be used."""
    max_age = current_app.config["INVITATION_DAYS"] * 86400
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise ValidationError(_l("This invitation has expired. Ask an administrator for a new one.")) from None
    except BadSignature:
        raise ValidationError(_l("This invitation link is not valid. Check that it was copied whole.")) from None
    invitation = session.get(Invitation, payload.get("i")) if isinstance(payload, dict) else None
    if invitation is None or not secrets.compare_digest(
        invitation.nonce_hash, token_hash(str(payload.get("n", "")))
    ):
        raise ValidationError(_l("This invitation link is not valid. Check that it was copied whole."))
    if invitation.accepted_at is not None:
        raise ValidationError(_l("This invitation has already been used. Sign in instead."))
    if invitation.expires_at <= utcnow():
        raise ValidationError(_l("This invitation has expired. Ask an administrator for a new one."))
    return invitation


def accept_invitation(session: Session, token: str, password: str, confirm: str, *,
                      lang: str | None = None) -> User:
    """Set the invitee's password and use up the invitation; `lang`, when the invitee switched the
    language before accepting, replaces the one the invitation was written in."""
    invitation = invitation_for(session, token)
    _check_new_password(password, confirm)
    invitation.accepted_at = utcnow()
    invitation.user.password_hash = hash_password(password)
    if lang in LANGUAGES:
        invitation.user.lang = lang
    audit.record(session, invitation.user, "user.accept_invitation", "user", invitation.user_id)
    return invitation.user


def _check_new_password(password: str, confirm: str) -> None:
    if problem := password_problem(password):
        raise ValidationError({"password": problem})
    if password != confirm:
        raise ValidationError({"confirm": _l("The two passwords differ.")})


def check_not_locked(session: Session, email: str) -> None:
    """Refuse with SignInRefused while this account has too many recent failed sign-ins."""
    config = current_app.config
    window = timedelta(minutes=config["SIGN_IN_WINDOW_MINUTES"])
    recent = session.scalars(
        select(SignInFailure.created_at)
        .where(SignInFailure.email == normalise_email(email), SignInFailure.created_at > utcnow() - window)
        .order_by(SignInFailure.created_at.desc())
        .limit(config["SIGN_IN_MAX_FAILURES"])
    ).all()
    if len(recent) >= config["SIGN_IN_MAX_FAILURES"]:
        wait = recent[-1] + window - utcnow()
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        raise SignInRefused(
            _l("Too many failed sign-ins for this account. Try again in %(minutes)s minutes.", minutes=minutes)
        )


def record_sign_in_failure(session: Session, email: str, user: User | None, **details) -> None:
    """Count a failed password or code toward the account's lock-out, and audit it."""
    session.add(SignInFailure(email=normalise_email(email)))
    audit.record(session, user, "user.sign_in_failed", "user", user.id if user else None, **details)


def authenticate(session: Session, email: str, password: str) -> User:
    """The user with these credentials, or SignInRefused; repeated failures lock the account a while.

    A right password is only the first step: complete_sign_in clears the failures once any second
    factor is also given, so a known password cannot reset the count of wrong codes."""
    email = normalise_email(email)
    check_not_locked(session, email)
    user = session.scalar(select(User).where(User.email == email))
    if _password_matches(user, password) and user is not None and user.is_active:
        if _hasher().check_needs_rehash(user.password_hash or ""):
            user.password_hash = hash_password(password)
        return user
    record_sign_in_failure(session, email, user)
    raise SignInRefused(_l("The e-mail address or password is wrong."))


def complete_sign_in(session: Session, user: User, *, two_factor: bool) -> None:
    """Record a finished sign-in (password, and code where one is needed)."""
    session.execute(delete(SignInFailure).where(SignInFailure.email == user.email))
    user.last_sign_in_at = utcnow()
    audit.record(session, user, "user.sign_in", "user", user.id, two_factor=two_factor)


def _password_matches(user: User | None, password: str) -> bool:
    stored = user.password_hash if user is not None else None
    hasher = _hasher()
    try:
        return hasher.verify(stored or _dummy_hash(hasher), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def change_password(session: Session, user: User, *, current: str, new: str, confirm: str) -> None:
    """Change the password and end the user's other sessions (the caller re-signs this one in)."""
    if not _password_matches(user, current):
        raise ValidationError({"current": _l("The current password is wrong.")})
    _check_new_password(new, confirm)
    user.password_hash = hash_password(new)
    end_sessions(session, user)
    audit.record(session, user, "user.change_password", "user", user.id)


def set_preferences(session: Session, user: User, *, lang: str, time_zone: str) -> None:
    """Save the interface language and time zone ("" means the usual zone of the user's side)."""
    errors = {}
    if lang not in LANGUAGES:
        errors["lang"] = _l("Choose English or Japanese.")
    if time_zone and time_zone not in time_zones():
        errors["time_zone"] = _l("Choose a time zone from the list.")
    if errors:
        raise ValidationError(errors)
    user.lang, user.time_zone = lang, time_zone


def end_sessions(session: Session, user: User) -> None:
    """End every session of this user (password, role or activation changed; 2FA reset)."""
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def set_role(session: Session, user: User, role: str, *, actor: User) -> None:
    if role not in ROLES:
        raise ValidationError({"role": _l("The role is member, moderator or admin.")})
    if user.role != role:
        audit.record(session, actor, "user.set_role", "user", user.id, old=user.role, new=role)
        user.role = role
        end_sessions(session, user)


def set_active(session: Session, user: User, is_active: bool, *, actor: User) -> None:
    if user.id == actor.id and not is_active:
        raise ValidationError(_l("You cannot deactivate your own account."))
    if user.is_active != is_active:
        user.is_active = is_active
        end_sessions(session, user)
        audit.record(session, actor, "user.activate" if is_active else "user.deactivate", "user", user.id)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(func.lower(User.name))))


def list_organisations(session: Session) -> list[Organisation]:
    return list(session.scalars(select(Organisation).order_by(Organisation.side, Organisation.name)))


def pending_invitations(session: Session) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .where(Invitation.accepted_at.is_(None), Invitation.expires_at > utcnow())
            .order_by(Invitation.created_at.desc())
        )
    )
