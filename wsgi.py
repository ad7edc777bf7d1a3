"""Production entry: gunicorn wsgi:app, and flask --app wsgi ..."""

from config.app import create_app, freeze_heap

app = create_app()
# The app is built: what is alive now lives as long as the process (see freeze_heap).
freeze_heap()
