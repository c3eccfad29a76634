"""backrub's web app (`backrub serve`): pages, static files and the JSON API under /api/v1.

`create_app(settings)` builds it; importing this package builds nothing.
"""

from backrub.web.app import create_app

__all__ = ["create_app"]
