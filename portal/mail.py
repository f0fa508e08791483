"""Outgoing e-mail: one send_email, with SMTP when configured and .eml files otherwise."""
from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import current_app, render_template

from portal.models import User


def send_email(to: str, subject: str, template: str, **context) -> EmailMessage:
    """Render templates/email/<template>.txt and .html into one multipart message and send it."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config.get("MAIL_FROM", "portal@localhost")
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="portal")
    message.set_content(render_template(f"email/{template}.txt", **context))
    message.add_alternative(render_template(f"email/{template}.html", **context), subtype="html")
    if config.get("SMTP_HOST"):
        _send_smtp(message, config)
    else:
        folder = Path(current_app.instance_path) / "mail"
        folder.mkdir(exist_ok=True)
        (folder / f"{uuid.uuid4().hex}.eml").write_bytes(bytes(message))
    return message


def _send_smtp(message: EmailMessage, config) -> None:
    security = config.get("SMTP_SECURITY", "starttls")
    port = int(config.get("SMTP_PORT") or (465 if security == "tls" else 587))
    context = ssl.create_default_context()
    if security == "tls":
        client = smtplib.SMTP_SSL(config["SMTP_HOST"], port, context=context, timeout=30)
    else:
        client = smtplib.SMTP(config["SMTP_HOST"], port, timeout=30)
    with client:
        if security == "starttls":
            client.starttls(context=context)
        if config.get("SMTP_USER"):
            client.login(config["SMTP_USER"], config.get("SMTP_PASSWORD", ""))
        client.send_message(message)


def send_invitation(user: User, link: str, *, inviter: User | None) -> EmailMessage:
    return send_email(
        user.email, "Your invitation to the EU–Japan regulatory exchange portal", "invitation",
        user=user, link=link, inviter=inviter, days=current_app.config["INVITATION_DAYS"],
    )
