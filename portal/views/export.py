"""Export of a channel or a case file as a download (JSON, or a zip of Markdown files)."""
from __future__ import annotations

from flask import Blueprint, Response, request
from flask_login import current_user

from portal import auth
from portal.db import get_session
from portal.models import Channel
from portal.services import export
from portal.views import require_sign_in

bp = Blueprint("export", __name__)
bp.before_request(require_sign_in)


@bp.app_template_global()
def may_export(channel: Channel) -> bool:
    """Whether to show the export buttons; the routes check again through the service."""
    return current_user.is_authenticated and auth.moderates(get_session(), current_user, channel)


# POST, not GET: an export is audited, and GETs change nothing (tests/test_security.py).
@bp.post("/channels/<slug>/export")
def channel(slug: str):
    return _download(lambda db, fmt: export.export_channel(db, current_user, slug, fmt=fmt))


@bp.post("/notes/<id:note_id>/export")
def case(note_id: int):
    return _download(lambda db, fmt: export.export_case(db, current_user, note_id, fmt=fmt))


def _download(run) -> Response:
    """Run the export with the submitted format, commit its audit record, send the file."""
    db = get_session()
    result = run(db, request.form.get("format", ""))
    db.commit()
    return Response(result.data, mimetype=result.mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{result.filename}"'})
