"""Full-text search: the index (search.index), its analysis (search.analysis) and query language
(search.query). This package knows nothing about models; services/search.py does."""
from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import event

from portal.search.index import SearchIndex


def init_app(app: Flask) -> None:
    """Open this host's index (PORTAL_SEARCH_DIR, default <instance>/search; "memory" for tests),
    hook the outbox onto the app's sessions, apply what is pending and warm the index's caches."""
    from portal.services import search

    directory = app.config.get("SEARCH_DIR") or str(Path(app.instance_path) / "search")
    app.extensions["search_index"] = SearchIndex(None if directory == "memory" else directory)
    sessions = app.extensions["db_sessionmaker"]
    event.listen(sessions, "after_flush", search.record_changes)
    event.listen(sessions, "after_commit", search.apply_after_commit)
    event.listen(sessions, "after_rollback", search.forget_after_rollback)
    with app.app_context():
        search.sync(app)
    app.extensions["search_index"].warm()
