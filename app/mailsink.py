"""A local SMTP server that keeps every message it receives as a .eml file.

`make run` starts one so that nothing leaves the machine in development; the tests use it as
their real SMTP server. Run it alone with `python -m app.mailsink --port 8025 --dir instance/mailbox`.
"""
from __future__ import annotations

import argparse
import signal
import threading
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller

from app.delivery.mail import DEVELOPMENT_SINK_MARK

# The sink says what it is in its greeting; production refuses to send through it (app/delivery/mail.py).
IDENT = f"{DEVELOPMENT_SINK_MARK.decode()} (keeps every message locally, delivers nothing)"


class MaildirHandler:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        name = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}.eml"
        path = self.directory / name
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(path)
        return "250 Message accepted for delivery"


def start_sink(directory: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    controller = Controller(MaildirHandler(directory), hostname=host, port=port, ident=IDENT)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP mail sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", default="instance/mailbox")
    args = parser.parse_args()
    controller = start_sink(Path(args.dir), args.host, args.port)
    print(f"mail sink listening on {args.host}:{args.port}, keeping mail in {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
