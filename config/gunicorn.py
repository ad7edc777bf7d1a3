"""gunicorn settings read by bin/serve (`--config python:config.gunicorn`): start the real-time
background tasks (relay, sweeper, Redis listener) in the worker, never in CLI commands or tests; and answer
gunicorn's own errors (414, 431, 400) in the API's JSON format with the security headers."""

import os

from config import server_errors

server_errors.install()

# Keep idle client connections 75 s (gunicorn's default is 2 s): a field device's follow-up request over
# 2G reuses its connection instead of paying a new TCP handshake (a 500 ms round trip) each time (issue 16).
# Above the usual 60 s of clients and proxies, so the client, not the server, closes an idle connection.
keepalive = int(os.environ.get("KEEPALIVE_SECONDS", "75"))


def post_worker_init(worker):
    from realtime import setup

    setup.start_background(worker.wsgi)


def worker_exit(server, worker):
    from realtime import setup

    setup.stop_background()
