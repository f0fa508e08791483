"""A real SMTP server on localhost (aiosmtpd) that keeps what it receives and can be told to refuse."""
from __future__ import annotations

import asyncio
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """The handler: records accepted messages; refuses chosen recipients, or the Nth DATA, or stalls on it."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.refuse_rcpt: set[str] = set()
        self.fail_data_at: int | None = None
        self.stall_data_at: int | None = None
        self.stalled = threading.Event()
        self.data_count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_rcpt:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_count += 1
        if self.data_count == self.fail_data_at:
            return "451 4.3.0 Temporary failure, try again later"
        if self.data_count == self.stall_data_at:
            self.stalled.set()
            await asyncio.sleep(3600)  # until the test kills the client and stops the server
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class SMTPServer:
    """aiosmtpd in a thread; keyword arguments go to aiosmtpd (tls_context, ssl_context, authenticator…)."""

    def __init__(self, **smtp_parameters):
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **smtp_parameters)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
