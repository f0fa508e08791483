"""Typed SQLAlchemy models, one module per feature; importing this package registers them all."""
from portal.models.accounts import Invitation, Organisation, SignInFailure, User
from portal.models.audit import AuditEvent
from portal.models.channels import Channel, ChannelMembership
from portal.models.content import Act, Article, Topic
from portal.models.notes import (
    CaseMilestone,
    Note,
    NoteArticle,
    NoteRevision,
    Reply,
    ReplyRevision,
    note_topics,
)
from portal.models.search import SearchOutbox
from portal.models.translations import NoteTranslation, TranslationRevision
from portal.models.acknowledgements import Acknowledgement, AcknowledgementRequest
from portal.models.notifications import Notification

__all__ = [
    "Act",
    "Article",
    "AuditEvent",
    "CaseMilestone",
    "Channel",
    "ChannelMembership",
    "Invitation",
    "Note",
    "NoteArticle",
    "NoteRevision",
    "Organisation",
    "Reply",
    "ReplyRevision",
    "SearchOutbox",
    "SignInFailure",
    "Topic",
    "User",
    "note_topics",
    "NoteTranslation",
    "TranslationRevision",
    "Acknowledgement",
    "AcknowledgementRequest",
    "Notification",
]
