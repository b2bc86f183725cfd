"""An SMTP sink for the tests: accepts every message on 127.0.0.1 and saves it as a .eml file.

Usage: smtp_sink.py PORT DIR
"""
import pathlib
import sys
import threading
import uuid

from aiosmtpd.controller import Controller


class Save:
    async def handle_DATA(self, server, session, envelope):
        target = pathlib.Path(sys.argv[2]) / f"{uuid.uuid4().hex}.eml"
        partial = target.with_suffix(".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(target)  # readers never see half a message
        return "250 Message accepted for delivery"


controller = Controller(Save(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
threading.Event().wait()
