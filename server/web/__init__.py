"""Server-rendered pages for reviewers and county admins: the pages (pages.py) and their
words in zh-CN and English (text.py). Templates and styles are server/templates and
server/static, where the app (server/app.py) finds them."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """CSRF, the session cookie and the pages' blueprint."""
    from server.web import pages

    pages.init_app(app)
