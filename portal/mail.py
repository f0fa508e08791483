"""Outgoing e-mail: one send_email, with SMTP when configured and .eml files otherwise."""
from __future__ import annotations

import contextlib
import smtplib
import ssl
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import current_app, render_template
from flask_babel import gettext as _

from portal import i18n
from portal.errors import DomainError
from portal.models import User


class MailError(DomainError):
    """The message could not be handed over; the text says to whom and why (never the message)."""

    status = 502


class Transport:
    """Hands messages over: one SMTP connection for a whole run, or a folder of .eml files."""

    def __init__(self, config, instance_path: str):
        self.config, self.folder = config, Path(instance_path) / "mail"
        self.client: smtplib.SMTP | None = None

    @property
    def uses_smtp(self) -> bool:
        return bool(self.config.get("SMTP_HOST"))

    def send(self, message: EmailMessage) -> None:
        if not self.uses_smtp:
            self.folder.mkdir(exist_ok=True)
            (self.folder / f"{uuid.uuid4().hex}.eml").write_bytes(bytes(message))
            return
        if self.client is None:
            self.client = self._connect()
        try:
            self.client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = "; ".join(f"{code} {text.decode(errors='replace')}" for code, text in error.recipients.values())
            raise MailError(f"The SMTP server refused {message['To']}: {codes}") from None
        except smtplib.SMTPResponseException as error:
            raise MailError(f"The SMTP server did not accept the message to {message['To']}: "
                            f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}") from None
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise MailError(f"Sending to {message['To']} failed: {error}") from None

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        host, security = config["SMTP_HOST"], config.get("SMTP_SECURITY", "starttls")
        if security not in ("none", "starttls", "tls"):
            # A typo must not quietly mean sending passwords and notes in clear text.
            raise MailError(f"PORTAL_SMTP_SECURITY is {security!r}; use none, starttls or tls.")
        port = int(config.get("SMTP_PORT") or (465 if security == "tls" else 587))
        context = ssl.create_default_context()
        client = None
        try:
            if security == "tls":
                client = smtplib.SMTP_SSL(host, port, context=context, timeout=30)
            else:
                client = smtplib.SMTP(host, port, timeout=30)
            if security == "starttls":
                client.starttls(context=context)
            if config.get("SMTP_USER"):
                client.login(config["SMTP_USER"], config.get("SMTP_PASSWORD", ""))
        except (smtplib.SMTPException, OSError) as error:
            if client is not None:
                client.close()
            # The password is never part of the message: smtplib's errors carry codes and server text.
            raise MailError(f"Could not connect to the SMTP server {host}:{port} ({security}): {error}") from None
        return client

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.client.quit()
            self.client = None


@contextlib.contextmanager
def transport() -> Iterator[Transport]:
    """A transport for several messages (a digest run), closed afterwards."""
    handle = Transport(current_app.config, current_app.instance_path)
    try:
        yield handle
    finally:
        handle.close()


def build_email(to: str, subject: str, template: str, *, headers: dict | None = None, **context) -> EmailMessage:
    """Render templates/email/<template>.txt and .html into one multipart message."""
    message = EmailMessage()
    message["From"] = current_app.config.get("MAIL_FROM", "portal@localhost")
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="portal")
    for name, value in (headers or {}).items():
        message[name] = value
    # Links in e-mail are absolute, built from PORTAL_BASE_URL also when no request is running (CLI).
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        message.set_content(render_template(f"email/{template}.txt", **context))
        message.add_alternative(render_template(f"email/{template}.html", **context), subtype="html")
    return message


def send_email(to: str, subject: str, template: str, *, headers: dict | None = None,
               via: Transport | None = None, **context) -> EmailMessage:
    """Build the message and send it, through `via` or a connection opened for this one message."""
    message = build_email(to, subject, template, headers=headers, **context)
    if via is not None:
        via.send(message)
    else:
        with transport() as handle:
            handle.send(message)
    return message


def send_invitation(user: User, link: str, *, inviter: User | None) -> EmailMessage:
    """The invitation, in the invitee's language (chosen when the account was made), not the admin's."""
    with i18n.as_reader(user):
        return send_email(
            user.email, _("Your invitation to the EU–Japan digital regulation exchange portal"), "invitation",
            user=user, link=link, inviter=inviter, days=current_app.config["INVITATION_DAYS"],
        )
