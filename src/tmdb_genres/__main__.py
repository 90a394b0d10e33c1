"""``python -m tmdb_genres`` is the same as the ``tmdb-genres`` command."""

import sys

from .cli import main

sys.exit(main())
