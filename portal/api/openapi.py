"""The OpenAPI 3.1 description of /api/v1, as data. Request bodies are validated against these
schemas (portal/api/http.py) and tests check every response against them, so it stays true.

A new resource adds its schemas to SCHEMAS and its paths to PATHS.
"""
from __future__ import annotations

from portal.models.channels import VISIBILITIES
from portal.models.digests import FREQUENCIES
from portal.models.notes import CASE_STATUSES, KINDS, LANGS, MARKINGS
from portal.models.notifications import NOTIFICATION_KINDS
from portal.models.tokens import SCOPES
from portal.views import MAX_ID


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def strict(properties: dict, required: list[str] | None = None) -> dict:
    """An object with exactly these properties (all of them required unless listed otherwise)."""
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": list(properties) if required is None else required}


ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TEXT = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
DAY = {"type": "string", "format": "date"}
CURSOR = {"type": "string", "description": "Opaque; pass it back unchanged to get the next page."}
SLUG_TEXT = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}
MILESTONE = strict({"due_on": DAY, "label": {"type": "string", "minLength": 1, "maxLength": 300}})

# What a client may send when posting or editing a note: the fields of the web form.
NOTE_FIELDS = {
    "title": {"type": "string", "maxLength": 300},
    "body": {"type": "string", "description": "Markdown, at most 200 KB of UTF-8."},
    "lang": {"enum": list(LANGS)},
    "marking": {"enum": list(MARKINGS)},
    "topics": {"type": "array", "items": TEXT, "description": "Topic slugs from the taxonomy."},
    "articles": {"type": "array", "items": TEXT, "description": 'Citations, e.g. "DSA Art. 34".'},
    "case_reference": {"type": "string", "maxLength": 100},
    "platforms": {"type": "string", "maxLength": 300},
    "legal_basis": {"type": "string", "maxLength": 300},
    "case_status": {"enum": list(CASE_STATUSES)},
    "milestones": {"type": "array", "items": MILESTONE},
    "answer_by": DAY,
}

AUTHOR = strict({"id": ID, "name": TEXT, "organisation": TEXT, "side": {"enum": ["eu", "jp"]}})

REPLY = strict({
    "id": ID, "note_id": ID, "parent_id": nullable(ID), "depth": {"type": "integer", "minimum": 0},
    "is_deleted": {"type": "boolean"},
    "author": nullable(AUTHOR),
    "body": nullable(TEXT), "body_html": nullable(TEXT),
    "revision": {"type": "integer", "minimum": 1}, "created_at": TIME, "updated_at": TIME,
})
REPLY["description"] = "A deleted reply keeps its place in the thread without its author or text."

SCHEMAS = {
    "Problem": {
        **strict({
            "type": TEXT, "title": TEXT, "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": TEXT,
            "errors": {"type": "object", "additionalProperties": TEXT,
                       "description": "What is wrong with each named field of the request."},
        }, required=["type", "title", "status", "detail"]),
        "description": "RFC 9457 problem details.",
    },
    "Me": strict({
        "id": ID, "email": TEXT, "name": TEXT, "role": {"enum": ["member", "moderator", "admin"]},
        "lang": {"enum": list(LANGS)}, "side": {"enum": ["eu", "jp"]},
        "organisation": strict({"slug": TEXT, "name": TEXT}),
        "token": strict({"id": ID, "prefix": TEXT, "scope": {"enum": list(SCOPES)}, "expires_at": TIME}),
    }),
    "Channel": strict({
        "id": ID, "slug": TEXT, "name_en": TEXT, "name_ja": TEXT, "description_en": TEXT,
        "description_ja": TEXT, "visibility": {"enum": list(VISIBILITIES)}, "is_archived": {"type": "boolean"},
    }),
    "ChannelList": strict({"items": {"type": "array", "items": ref("Channel")}}),
    "Note": strict({
        "id": ID, "external_id": nullable(TEXT), "channel": TEXT, "kind": {"enum": list(KINDS)},
        "title": TEXT, "body": TEXT, "body_html": TEXT,
        "lang": NOTE_FIELDS["lang"], "marking": NOTE_FIELDS["marking"],
        "topics": {"type": "array", "items": TEXT}, "articles": {"type": "array", "items": TEXT},
        "author": AUTHOR,
        "case_reference": TEXT, "platforms": TEXT, "legal_basis": TEXT,
        "case_status": nullable(NOTE_FIELDS["case_status"]),
        "milestones": {"type": "array", "items": MILESTONE},
        "addressed_side": nullable({"enum": ["eu", "jp"]}),
        "answer_by": nullable(DAY),
        "question_status": nullable({"enum": ["open", "answered", "declined", "overdue"]}),
        "accepted_reply_id": nullable(ID),
        "declined_grounds": TEXT,
        "revision": {"type": "integer", "minimum": 1}, "reply_count": {"type": "integer", "minimum": 0},
        "created_at": TIME, "updated_at": TIME, "last_activity_at": TIME, "url": TEXT,
    }),
    "NoteList": strict({"items": {"type": "array", "items": ref("Note")}, "next_cursor": nullable(CURSOR)}),
    "NoteCreate": strict({
        "kind": {"enum": list(KINDS)}, **NOTE_FIELDS,
        "request_acknowledgement": {
            "type": "boolean", "default": False,
            "description": "Ask the other side to acknowledge the note, as the web form's box does. When "
                           "nobody of that side may see the channel, the note is not posted either (422)."},
    }, required=["kind", "title", "body"]),
    "NoteChange": {**strict(NOTE_FIELDS, required=[]),
                   "description": "The fields to change; the others keep their values. The kind cannot change."},
    "Reply": REPLY,
    "ReplyList": {
        **strict({"items": {"type": "array", "items": ref("Reply")}}),
        "description": "The whole thread in tree order (depth first, as the web page shows it): each "
                       "reply follows its parent; parent_id and depth give the tree's shape.",
    },
    "ReplyCreate": strict({"body": TEXT, "parent_id": nullable(ID)}, required=["body"]),
    "ReplyChange": strict({"body": TEXT}),
    "SearchItem": strict({
        "kind": {"enum": [*KINDS, "reply", "article"]}, "id": ID, "note_id": nullable(ID),
        "external_id": nullable(TEXT), "title": TEXT, "snippet": {"type": "string", "description": "HTML"},
        "channel": nullable(TEXT), "created_at": nullable(TIME), "url": TEXT, "score": {"type": "number"},
    }),
    "SearchResults": strict({
        "items": {"type": "array", "items": ref("SearchItem")}, "total": {"type": "integer", "minimum": 0},
        "notices": {"type": "array", "items": TEXT}, "next_cursor": nullable(CURSOR),
    }),
    "Subscription": strict({
        "id": ID, "target": {"enum": ["all", "topic", "channel", "note"]},
        "topic": nullable(TEXT), "channel": nullable(TEXT), "note_id": nullable(ID),
        "frequency": {"enum": list(FREQUENCIES)}, "is_muted": {"type": "boolean"}, "created_at": TIME,
    }),
    "SubscriptionList": strict({"items": {"type": "array", "items": ref("Subscription")}}),
    "SubscriptionCreate": {
        **strict({"frequency": {"enum": list(FREQUENCIES)},
                  "topic": {**SLUG_TEXT, "description": "A topic slug."},
                  "channel": {**SLUG_TEXT, "description": "A channel slug."},
                  "note_id": ID}, required=["frequency"]),
        "description": "Follow one topic, channel or note; with none of them, everything the token's owner "
                       "may read. Subscribing again to the same thing changes its frequency and unmutes it.",
    },
    "Notification": strict({
        "id": ID, "kind": {"enum": list(NOTIFICATION_KINDS)}, "note_id": ID, "note_title": TEXT,
        "reply_id": nullable(ID), "actor": nullable(AUTHOR), "is_read": {"type": "boolean"},
        "read_at": nullable(TIME), "created_at": TIME, "url": TEXT,
    }),
    "NotificationList": strict({"items": {"type": "array", "items": ref("Notification")},
                                "next_cursor": nullable(CURSOR)}),
    "MarkedRead": strict({"marked": {"type": "integer", "minimum": 0}}),
}

PROBLEM_TEXT = {
    400: "Malformed request: bad JSON, a bad parameter or a tampered cursor.",
    401: "No valid token: missing, unknown, expired or revoked, or its owner is deactivated.",
    403: "Visible, but not allowed: a read-only token writing, someone else's note, an archived channel.",
    404: "No such thing, or the token's owner may not see it (the two look the same).",
    412: "If-Match does not match the current ETag: someone changed it since you read it.",
    413: "The request body is too large.",
    415: "The body must be application/json.",
    422: "The body does not fit the schema or the rules; `errors` names each field.",
    428: "Updates must carry If-Match with the ETag you read.",
    429: "Too many in a short time, counted per user and per address together with the web's (settings "
         "RATE_LIMIT_POST_* for posting and editing notes and replies, RATE_LIMIT_SEARCH_* for searches). "
         "Nothing was done; try again after Retry-After seconds.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds until the limit's window ends.", "required": True,
                               "schema": {"type": "integer", "minimum": 1}}}


def problems(*codes: int) -> dict:
    problem = {"application/problem+json": {"schema": ref("Problem")}}
    responses = {str(code): {"description": PROBLEM_TEXT[code], "content": problem} for code in codes}
    if "429" in responses:
        responses["429"]["headers"] = RETRY_AFTER
    responses["default"] = {"description": "Any other error, as problem details.", "content": problem}
    return responses


ETAG = {"ETag": {"description": "Send it back in If-None-Match or If-Match.", "schema": TEXT}}


def ok(schema: str, status: int = 200, description: str = "OK", conditional: bool = True) -> dict:
    response = {str(status): {"description": description, "headers": ETAG,
                              "content": {"application/json": {"schema": ref(schema)}}}}
    if conditional:
        response["304"] = {"description": "Not modified: If-None-Match holds the current ETag.", "headers": ETAG}
    return response


def body(schema: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": ref(schema)}}}


def query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


SLUG = path("slug", SLUG_TEXT)
NOTE_ID = path("note_id", ID)
REPLY_ID = path("reply_id", ID)
IF_MATCH = {"name": "If-Match", "in": "header", "required": True, "schema": TEXT,
            "description": "The ETag of the note or reply as you read it (428 without it, 412 when stale)."}
PAGE = [query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 30}, "Items per page."),
        query("cursor", CURSOR, "next_cursor of the previous page.")]
KIND = query("kind", {"enum": list(KINDS)}, "Only notes of this kind.")

PATHS = {
    "/api/v1/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This document.", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }},
    "/api/v1/me": {"get": {
        "operationId": "me", "summary": "The token's owner and the token.",
        "responses": {**ok("Me"), **problems(401)},
    }},
    "/api/v1/channels": {"get": {
        "operationId": "channels", "summary": "Channels the token's owner may see.",
        "responses": {**ok("ChannelList"), **problems(401)},
    }},
    "/api/v1/channels/{slug}": {"get": {
        "operationId": "channel", "summary": "One channel.", "parameters": [SLUG],
        "responses": {**ok("Channel"), **problems(401, 404)},
    }},
    "/api/v1/channels/{slug}/notes": {
        "get": {
            "operationId": "channel_notes", "parameters": [SLUG, KIND, *PAGE],
            "summary": "The channel's notes, most recently active first (as on its web page).",
            "responses": {**ok("NoteList"), **problems(400, 401, 404)},
        },
        "post": {
            "operationId": "post_note", "summary": "Post a note in the channel (write scope).",
            "parameters": [SLUG], "requestBody": body("NoteCreate"),
            "responses": {**ok("Note", 201, "Created; Location names the note.", conditional=False),
                          **problems(400, 401, 403, 404, 413, 415, 422, 429)},
        },
    },
    "/api/v1/notes": {"get": {
        "operationId": "notes",
        "summary": "Notes the token's owner may see. Without q, most recently active first; with q, "
                   "a search in the query language of /search/help (words, \"phrases\", OR, -word, "
                   "channel:, kind:, topic:, article:, author:, org:, side:, lang:, status:, is:, "
                   "before:, after:) over notes only.",
        "parameters": [query("q", {"type": "string", "maxLength": 500}, "A search query."), KIND,
                       query("sort", {"enum": ["relevance", "newest"], "default": "relevance"},
                             "With q: the order of results."), *PAGE],
        "responses": {**ok("NoteList"), **problems(400, 401, 429)},
    }},
    "/api/v1/notes/{note_id}": {
        "get": {"operationId": "note", "summary": "One note.", "parameters": [NOTE_ID],
                "responses": {**ok("Note"), **problems(401, 404)}},
        "patch": {
            "operationId": "edit_note", "summary": "Edit a note: a new revision (author or moderator).",
            "parameters": [NOTE_ID, IF_MATCH], "requestBody": body("NoteChange"),
            "responses": {**ok("Note", conditional=False), **problems(400, 401, 403, 404, 412, 413, 415, 422, 428, 429)},
        },
        "delete": {
            "operationId": "delete_note", "summary": "Delete a note (soft: admins can restore it).",
            "parameters": [NOTE_ID, IF_MATCH],
            "responses": {"204": {"description": "Deleted."}, **problems(401, 403, 404, 412, 428)},
        },
    },
    "/api/v1/notes/{note_id}/replies": {
        "get": {"operationId": "replies", "summary": "The note's thread.", "parameters": [NOTE_ID],
                "responses": {**ok("ReplyList"), **problems(401, 404)}},
        "post": {
            "operationId": "post_reply", "summary": "Reply to the note, or to one of its replies.",
            "parameters": [NOTE_ID], "requestBody": body("ReplyCreate"),
            "responses": {**ok("Reply", 201, "Created; Location names the reply.", conditional=False),
                          **problems(400, 401, 403, 404, 413, 415, 422, 429)},
        },
    },
    "/api/v1/replies/{reply_id}": {
        "get": {"operationId": "reply", "summary": "One live reply.", "parameters": [REPLY_ID],
                "responses": {**ok("Reply"), **problems(401, 404)}},
        "patch": {
            "operationId": "edit_reply", "summary": "Edit a reply: a new revision (author or moderator).",
            "parameters": [REPLY_ID, IF_MATCH], "requestBody": body("ReplyChange"),
            "responses": {**ok("Reply", conditional=False), **problems(400, 401, 403, 404, 412, 413, 415, 422, 428, 429)},
        },
    },
    "/api/v1/search": {"get": {
        "operationId": "search", "summary": "Search notes, replies and the regulation index, as on /search.",
        "parameters": [{**query("q", {"type": "string", "minLength": 1, "maxLength": 500}, "The query."),
                        "required": True},
                       query("sort", {"enum": ["relevance", "newest"], "default": "relevance"}, "Order."),
                       *PAGE],
        "responses": {**ok("SearchResults"), **problems(400, 401, 429)},
    }},
    "/api/v1/subscriptions": {
        "get": {"operationId": "subscriptions", "summary": "The token owner's subscriptions.",
                "responses": {**ok("SubscriptionList"), **problems(401)}},
        "post": {
            "operationId": "subscribe", "summary": "Subscribe, as on the subscriptions page (write scope).",
            "requestBody": body("SubscriptionCreate"),
            "responses": {**ok("Subscription", 201, "Subscribed.", conditional=False),
                          **problems(400, 401, 403, 413, 415, 422)},
        },
    },
    "/api/v1/subscriptions/{subscription_id}": {"delete": {
        "operationId": "unsubscribe", "summary": "Delete one of the token owner's subscriptions (write scope).",
        "parameters": [path("subscription_id", ID)],
        "responses": {"204": {"description": "Deleted."}, **problems(401, 403, 404)},
    }},
    "/api/v1/notifications": {"get": {
        "operationId": "notifications",
        "summary": "The token owner's notifications about notes they may still see, newest first.",
        "parameters": PAGE,
        "responses": {**ok("NotificationList"), **problems(400, 401)},
    }},
    "/api/v1/notifications/{notification_id}/read": {"post": {
        "operationId": "read_notification", "summary": "Mark one notification read (write scope).",
        "parameters": [path("notification_id", ID)],
        "responses": {**ok("Notification", conditional=False), **problems(401, 403, 404)},
    }},
    "/api/v1/notifications/read-all": {"post": {
        "operationId": "read_all_notifications", "summary": "Mark every notification read (write scope).",
        "responses": {**ok("MarkedRead", conditional=False), **problems(401, 403)},
    }},
}

DOCUMENT = {
    "openapi": "3.1.0",
    "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
    "info": {
        "title": "EU–Japan digital regulation exchange portal API",
        "version": "1",
        "description": "Read and post notes and replies, manage subscriptions and read notifications "
                       "with a personal token (Authorization: Bearer …), under the same permissions as "
                       "the web: what the token's owner may not see is 404. Read tokens may only GET. GET "
                       "responses carry an ETag (If-None-Match gives 304); changing or deleting a note or "
                       "reply requires If-Match. Lists page with opaque cursors. Errors are RFC 9457 "
                       "problem details, in English. Posting, editing and searching count against the "
                       "same rate limits as on the web (429 with Retry-After).",
    },
    "servers": [{"url": "/"}],
    "security": [{"token": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                      "description": "A personal token from Settings → API tokens."}},
    },
}
