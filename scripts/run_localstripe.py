"""Starts localstripe on 127.0.0.1 only (its own CLI binds every interface). Usage: run_localstripe.py PORT"""
import sys

from aiohttp import web
import localstripe.server
import localstripe.webhooks


class _Snapshots(dict):
    """localstripe walks its registered webhooks while sending an event, with awaits inside the loop; a test that
    registers its own webhook meanwhile makes the walk fail ("dictionary changed size during iteration") and the
    event is lost for every endpoint. Walking a copy keeps each delivery whole."""

    def values(self):
        return list(super().values())


localstripe.webhooks._webhooks = _Snapshots(localstripe.webhooks._webhooks)

web.run_app(localstripe.server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
