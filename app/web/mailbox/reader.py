"""Reading the mail sink's folder: one .eml file per message (see app/mailsink.py).

Only plain file names matching NAME inside the folder are ever opened: a name with a path in it,
a hidden file or anything else is "not there".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.eml")


@dataclass
class Attachment:
    index: int
    filename: str
    mimetype: str
    size: int
    data: bytes = field(repr=False, default=b"")


@dataclass
class Message:
    name: str
    date: datetime
    sender: str
    to: str
    cc: str
    subject: str
    message_id: str
    attachments: list[Attachment]
    email: EmailMessage = field(repr=False)


def message_paths(directory: str | Path) -> list[Path]:
    """The folder's messages, newest first; none when the folder does not exist."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    paths = [p for p in folder.iterdir() if NAME.fullmatch(p.name) and p.is_file()]
    return sorted(paths, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def message_path(directory: str | Path, name: str) -> Path | None:
    """The file of message `name`, or None when the name is not a plain message name in the folder."""
    if not NAME.fullmatch(name or ""):
        return None
    folder = Path(directory)
    if not folder.is_dir():
        return None
    path = folder / name
    try:
        if path.resolve().parent != folder.resolve() or not path.is_file():
            return None
    except OSError:
        return None
    return path


def _header(email: EmailMessage, name: str) -> str:
    try:
        return str(email.get(name, "") or "")
    except Exception:  # noqa: BLE001 (a malformed header must not hide the message)
        return "(unreadable header)"


def _date(email: EmailMessage, path: Path) -> datetime:
    try:
        value = parsedate_to_datetime(_header(email, "Date"))
    except (TypeError, ValueError, IndexError):
        value = None
    if value is None:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def safe_filename(name: str, index: int) -> str:
    cleaned = re.sub(r"[\\/\x00-\x1f\x7f]", "_", (name or "").strip()).strip(". ")
    return cleaned or f"attachment-{index + 1}"


def _attachments(email: EmailMessage) -> list[Attachment]:
    found = []
    for index, part in enumerate(email.iter_attachments()):
        data = part.get_payload(decode=True) or b""
        found.append(Attachment(index, safe_filename(part.get_filename() or "", index), part.get_content_type(),
                                len(data), data))
    return found


def read_message(path: Path) -> Message:
    email = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    return Message(name=path.name, date=_date(email, path), sender=_header(email, "From"), to=_header(email, "To"),
                   cc=_header(email, "Cc"), subject=_header(email, "Subject"),
                   message_id=_header(email, "Message-ID"), attachments=_attachments(email), email=email)


def text_body(message: Message) -> tuple[str, str]:
    """The body to show as text and its kind: ("plain" | "html" | "none")."""
    email = message.email
    for kind in ("plain", "html"):
        part = email.get_body(preferencelist=(kind,))
        if part is None:
            continue
        try:
            text = part.get_content()
        except (LookupError, UnicodeDecodeError):
            text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
        return text.replace("\r\n", "\n"), kind
    return "", "none"
