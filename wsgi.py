"""WSGI entry point: `gunicorn wsgi:app`."""
import gc

from portal import create_app

app = create_app()
# Objects made at start-up live as long as the process; freezing them keeps each full
# garbage collection from re-scanning them (about 55 ms on a 500-reply thread page).
gc.freeze()
