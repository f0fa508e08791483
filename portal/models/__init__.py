"""Typed SQLAlchemy models, one module per feature; importing this package registers them all."""
from portal.models.accounts import Invitation, Organisation, SignInFailure, User
from portal.models.audit import AuditEvent
from portal.models.channels import Channel, ChannelMembership
from portal.models.content import Act, Article, Topic
from portal.models.digests import DigestDelivery, DigestEvent, DigestRead, FeedToken, Subscription
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
from portal.models.tokens import ApiToken
from portal.models.ratelimits import RateLimitCounter
from portal.models.sessions import UserSession
from portal.models.twofactor import RecoveryCode, TwoFactorCredential
from portal.models.translations import NoteTranslation, TranslationRevision
from portal.models.acknowledgements import Acknowledgement, AcknowledgementRequest
from portal.models.notifications import Notification

__all__ = [
    "Act",
    "ApiToken",
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
    "RateLimitCounter",
    "RecoveryCode",
    "ReplyRevision",
    "SearchOutbox",
    "SignInFailure",
    "Topic",
    "TwoFactorCredential",
    "User",
    "UserSession",
    "note_topics",
    "DigestDelivery",
    "DigestEvent",
    "DigestRead",
    "FeedToken",
    "Subscription",
    "NoteTranslation",
    "TranslationRevision",
    "Acknowledgement",
    "AcknowledgementRequest",
    "Notification",
]
