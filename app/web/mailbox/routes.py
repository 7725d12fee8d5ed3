"""Settings > Mailbox (development): the local mail sink's messages (admin only)."""
from __future__ import annotations

import io

from flask import abort, current_app, send_file

from app.web.decorators import org_admin_required
from app.web.helpers import Page, render
from app.web.input import arg_page
from app.web.mailbox import bp
from app.web.mailbox.reader import message_path, message_paths, read_message, text_body

PER_PAGE = 50


def _folder() -> str:
    return current_app.config.get("MAILBOX_DIR") or ""


def _message_or_404(name: str):
    path = message_path(_folder(), name)
    if path is None:
        abort(404)
    return read_message(path)


@bp.get("")
@org_admin_required
def index():
    paths = message_paths(_folder())
    number = arg_page()
    chosen = paths[(number - 1) * PER_PAGE: number * PER_PAGE]
    listing = Page([read_message(p) for p in chosen], number, PER_PAGE, len(paths))
    return render("mailbox/index.html", listing=listing, folder=_folder())


@bp.get("/<name>")
@org_admin_required
def message(name: str):
    found = _message_or_404(name)
    body, kind = text_body(found)
    return render("mailbox/message.html", message=found, body=body, kind=kind)


@bp.get("/<name>/attachment/<int:index>")
@org_admin_required
def attachment(name: str, index: int):
    found = _message_or_404(name)
    if index >= len(found.attachments):
        abort(404)
    part = found.attachments[index]
    response = send_file(io.BytesIO(part.data), mimetype=part.mimetype, as_attachment=True,
                         download_name=part.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response
