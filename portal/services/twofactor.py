"""Two-factor sign-in with TOTP (RFC 6238): enrolment, codes, recovery codes and admin reset."""
from __future__ import annotations

import io
import secrets
from datetime import UTC, datetime

import pyotp
import segno
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.errors import SignInRefused, ValidationError
from portal.models import RecoveryCode, TwoFactorCredential, User
from portal.security import token_hash
from portal.services import accounts, audit

ISSUER = "EU-Japan Regulatory Exchange"
RECOVERY_CODES = 10
# 16 characters from 31 unambiguous ones: about 80 random bits, so a plain SHA-256 hash is enough.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 16


def required_for(user: User) -> bool:
    """Moderators and admins always need a second factor; everyone does when REQUIRE_2FA is set."""
    return user.is_moderator or bool(current_app.config["REQUIRE_2FA"])


def credential_for(session: Session, user: User) -> TwoFactorCredential | None:
    """The user's confirmed TOTP enrolment, or None."""
    return session.get(TwoFactorCredential, user.id)


def new_secret() -> str:
    """A fresh TOTP secret (base32), shown to the user until they confirm it with a first code."""
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_code(uri: str) -> str:
    """The enrolment QR code as an SVG document."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, dark="#1a1a1a", xmldecl=False)
    return out.getvalue().decode()


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code this is, allowing one step of clock drift either way."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    # Timestamps here are naive UTC (portal.db.utcnow); pyotp reads naive ones as local time.
    step = totp.timecode(now.replace(tzinfo=UTC))
    for offset in (0, -1, 1):
        if secrets.compare_digest(totp.generate_otp(step + offset), code):
            return step + offset
    return None


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        session.add(RecoveryCode(user_id=user.id, code_hash=token_hash(_normalise_recovery(raw))))
        codes.append("-".join(raw[i:i + 4] for i in range(0, RECOVERY_LENGTH, 4)))
    return codes


def enrol(session: Session, user: User, secret: str, code: str, *, now: datetime) -> list[str]:
    """Confirm an enrolment with a first code from the app; returns the recovery codes, shown once."""
    if credential_for(session, user) is not None:
        raise ValidationError({"code": _l("Two-factor sign-in is already set up for this account.")})
    step = _matching_step(secret, code, now)
    if step is None:
        raise ValidationError({"code": _l("That code does not match. Check the time on your phone and try "
                                          "the newest code.")})
    session.add(TwoFactorCredential(user_id=user.id, secret=secret, last_step=step))
    codes = _new_recovery_codes(session, user)
    audit.record(session, user, "user.enrol_two_factor", "user", user.id)
    return codes


def verify(session: Session, user: User, code: str, *, now: datetime) -> str:
    """Check the second step of a sign-in: a TOTP code (not one already used) or an unused recovery
    code. Returns "totp" or "recovery"; a wrong code counts toward the lock-out (SignInRefused)."""
    accounts.check_not_locked(session, user.email)
    credential = credential_for(session, user)
    if credential is not None:
        step = _matching_step(credential.secret, code, now)
        if step is not None and step > credential.last_step:
            credential.last_step = step
            return "totp"
        recovery = session.scalar(select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.code_hash == token_hash(_normalise_recovery(code)),
            RecoveryCode.used_at.is_(None)))
        if recovery is not None:
            recovery.used_at = utcnow()
            audit.record(session, user, "user.use_recovery_code", "user", user.id)
            return "recovery"
    accounts.record_sign_in_failure(session, user.email, user, step="code")
    raise SignInRefused(_l("That code is wrong or was already used. Enter the newest code from your app, "
                            "or a recovery code."))


def enrolled_user_ids(session: Session) -> set[int]:
    """Ids of every user with a second factor, for the admin's list."""
    return set(session.scalars(select(TwoFactorCredential.user_id)))


def recovery_codes_left(session: Session, user: User) -> int:
    """How many of the user's recovery codes are unused."""
    return session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def reset(session: Session, user: User, *, actor: User | None) -> None:
    """Remove a user's second factor (lost phone): they enrol again at their next sign-in. Ends their
    sessions."""
    credential = credential_for(session, user)
    if credential is None:
        raise ValidationError(_l("%(email)s has no two-factor sign-in to reset.", email=user.email))
    session.delete(credential)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    accounts.end_sessions(session, user)
    audit.record(session, actor, "user.reset_two_factor", "user", user.id)
