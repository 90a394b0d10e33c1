"""The HTTP service over a trained model: ``tmdb-genres serve`` (FastAPI on uvicorn).

``app.py`` builds the application (JSON API and the page at ``/``), ``schemas.py`` holds the
request and response models, ``command.py`` the command line, and ``static/`` the page's
HTML, JavaScript and CSS (served by the app itself: no CDN, no build step).
"""
