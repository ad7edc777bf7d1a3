"""gunicorn settings read by bin/serve (`--config python:config.gunicorn`): start the real-time
background tasks (relay, sweeper, Redis listener) in the worker, never in CLI commands or tests; and answer
gunicorn's own errors (414, 431, 400) in the API's JSON format with the security headers."""

from config import server_errors

server_errors.install()


def post_worker_init(worker):
    from realtime import setup

    setup.start_background(worker.wsgi)


def worker_exit(server, worker):
    from realtime import setup

    setup.stop_background()
