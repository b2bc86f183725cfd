"""Starts localstripe on 127.0.0.1 only (its own CLI binds every interface). Usage: run_localstripe.py PORT"""
import sys

from aiohttp import web
import localstripe.server

web.run_app(localstripe.server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
