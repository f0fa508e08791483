from __future__ import annotations

from sqlalchemy.orm import Session

from portal.models import AuditEvent, User


def record(
    session: Session, actor: User | None, action: str, target_type: str, target_id: int | None, **details
) -> None:
    """Append an audit event in the caller's transaction; details must never hold secrets or note text."""
    session.add(
        AuditEvent(
            actor_id=actor.id if actor else None,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
    )
