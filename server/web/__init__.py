"""Server-rendered pages for township reviewers and county admins, on a phone over a slow
link, by audience: sign-in and what every page shares (session.py), the review pages
(review.py), the county pages (county.py), running a county (admin.py: users and
devices, sync health, the spreadsheet import, one's own password), the error pages (errors.py), and their words in
zh-CN and English (text.py). No JavaScript: every decision is a form that posts and
redirects back. Templates and styles are server/templates and server/static, where the app
(server/app.py) finds them."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """CSRF, the session cookie and the pages' blueprint, its routes registered first."""
    from server.web import admin, app_shell, county, errors, review, session

    del admin, county, errors, review  # imported for the routes they add to the blueprint
    session.init_app(app)
    app.register_blueprint(app_shell.bp)  # the doctor's offline app at /app/ (issue 12)
