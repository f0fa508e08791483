"""Schemathesis against the API's own OpenAPI document: generated requests, valid and invalid, with a
real token, get no 5xx and no response that breaks the document (status, content type, schema)."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.db import get_session
from portal.services import accounts, channels, notes, replies, tokens
from tests.conftest import PASSWORD

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Derandomized and modest: about a minute for every operation, valid and invalid input.
EXAMPLES = 20


def a_small_world(app) -> str:
    """One official with a channel, a note and a reply to find; their write token."""
    with app.app_context():
        db = get_session()
        org = accounts.create_organisation(db, slug="dg-cnect", name="DG CNECT", side="eu")
        user = accounts.create_user(db, email="eva@ec.example.eu", name="Eva", organisation=org,
                                    password=PASSWORD)
        channel = channels.create_channel(db, {"slug": "a", "name_en": "A", "visibility": "joint"}, actor=None)
        note = notes.post_note(db, channel, user, "update", {"title": "Platform audit", "body": "Audit text"})
        replies.post_reply(db, note, user, "A reply")
        _token, text = tokens.create_token(db, user, scope="write", actor=None)
        db.commit()
    return text


def test_schemathesis_finds_no_server_error_and_no_response_off_the_document(app):
    token = a_small_world(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every operation but GET /api/v1/openapi.json, which Schemathesis leaves out as the document itself.
    assert len(operations) == 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            def exercise(case):
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

            exercise()
