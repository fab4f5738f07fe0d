"""Tell people what the chain decided: a webhook (JSON POST) or e-mail (SMTP) per notice.

A :class:`Notice` is one thing a person should know: their vote is needed, a verdict was
reached, an outcome was recorded, a verification failed, an emergency change went
unratified. :class:`WebhookNotifier` posts it as JSON (``generic``: the notice itself;
``slack``: ``{"text": ...}``, which Slack and Mattermost incoming webhooks take; ``teams``:
a MessageCard, which Teams incoming webhooks take); :class:`EmailNotifier` mails it.
A notifier that cannot deliver logs a warning and never stops the caller.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

__all__ = [
    "EmailNotifier",
    "Notice",
    "NoticeKind",
    "Notifier",
    "WebhookFormat",
    "WebhookNotifier",
    "deliver",
]

log = logging.getLogger(__name__)

NoticeKind = Literal[
    "vote-needed", "verdict", "recorded", "verification-failed", "unratified-emergency"
]
WebhookFormat = Literal["generic", "slack", "teams"]

_TIMEOUT = 10.0


class Notice(BaseModel):
    """One thing a person should know about a proposal."""

    model_config = ConfigDict(frozen=True)

    kind: NoticeKind
    proposal_id: int
    contract: str
    operator: str
    """The member the watcher runs as (whose people are told)."""
    text: str
    """One sentence for people."""
    details: dict[str, Any] = {}

    @property
    def subject(self) -> str:
        """A short title: ``[coopchain] vote-needed: #3``."""
        return f"[coopchain] {self.kind}: #{self.proposal_id}"


class Notifier(Protocol):
    """Something that tells people; never raises for a delivery problem."""

    def send(self, notice: Notice) -> bool:
        """Deliver one notice; False (and a logged warning) if it could not be."""


def _payload(notice: Notice, style: WebhookFormat) -> dict[str, Any]:
    if style == "slack":
        return {"text": f"*{notice.subject}*\n{notice.text}"}
    if style == "teams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": notice.subject,
            "title": notice.subject,
            "text": notice.text,
        }
    return notice.model_dump(mode="json")


class WebhookNotifier:
    """POST each notice as JSON to ``url``.

    Arguments:
        url: the webhook's URL (http or https).
        style: ``generic``, ``slack`` or ``teams`` payloads.
    """

    def __init__(self, url: str, style: WebhookFormat = "generic"):
        self.url = url
        self.style = style

    def send(self, notice: Notice) -> bool:
        """POST the notice; False on any error or a non-2xx answer."""
        body = json.dumps(_payload(notice, self.style)).encode()
        request = urllib.request.Request(
            self.url, body, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                status = int(response.status)
        except (OSError, ValueError) as exc:
            log.warning("webhook %s: %s not delivered: %s", self.url, notice.subject, exc)
            return False
        if not 200 <= status < 300:
            log.warning("webhook %s answered %s to %s", self.url, status, notice.subject)
            return False
        return True


class EmailNotifier:
    """Mail each notice through an SMTP server.

    Arguments:
        host: the SMTP server.
        port: its port.
        sender: the From address.
        to: the recipients.
        starttls: upgrade the connection with STARTTLS first.
        username, password: log in (after STARTTLS) when given.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        to: Sequence[str],
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ):
        self.host, self.port = host, port
        self.sender, self.to = sender, list(to)
        self.starttls = starttls
        self.username, self.password = username, password

    def send(self, notice: Notice) -> bool:
        """Mail the notice; False on any SMTP or network error."""
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        details = "\n".join(f"{key}: {value}" for key, value in notice.details.items())
        message.set_content(f"{notice.text}\n\ncontract: {notice.contract}\n{details}\n")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=_TIMEOUT) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning(
                "SMTP %s:%s: %s not delivered: %s", self.host, self.port, notice.subject, exc
            )
            return False
        return True


def deliver(notifiers: Sequence[Notifier], notice: Notice) -> int:
    """Send a notice through every notifier; how many delivered it."""
    return sum(notifier.send(notice) for notifier in notifiers)
