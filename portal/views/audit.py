from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from portal.db import get_session
from portal.errors import ValidationError
from portal.services import audit
from portal.services.audit import AuditFilter
from portal.views.admin import admins_only

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")
bp.before_request(admins_only)

PER_PAGE = 50


def _filters(args) -> tuple[AuditFilter, dict[str, str]]:
    try:
        return audit.parse_filter(args), {}
    except ValidationError as error:
        return AuditFilter(), error.errors


@bp.get("")
def index():
    filters, errors = _filters(request.args)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    rows, total = audit.events(get_session(), filters, page=page, per_page=PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    return render_template("audit/index.html", rows=rows, total=total, page=page, pages=pages, filters=filters,
                           values=request.args, errors=errors), 400 if errors else 200


@bp.post("/export.csv")
def export():
    """The filtered events as CSV. A POST with a CSRF token: the download is audited, and no other site
    may make an admin's browser add to the log."""
    filters, errors = _filters(request.form)
    if errors:
        raise ValidationError(errors)
    db = get_session()
    body = audit.export_csv(db, filters, actor=current_user)
    db.commit()
    return body, 200, {"Content-Type": "text/csv; charset=utf-8",
                       "Content-Disposition": 'attachment; filename="audit.csv"'}
