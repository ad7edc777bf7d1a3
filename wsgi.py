"""Production entry: gunicorn wsgi:app, and flask --app wsgi ..."""

from config.app import create_app

app = create_app()
