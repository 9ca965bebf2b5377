"""The JSON API under /api/v1: one module a resource (sync, auth, review, summaries,
admin, openapi; and monitoring's /metrics and /health/*), the shared request parsing (parsing.py), the app's rule settings (context.py) and
the one translator of errors into the envelope (errors.py). HTTP modules decode and answer;
the domain is elsewhere in server/."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """JWT callbacks, the error translator and the API blueprints."""
    from server.api import (
        admin,
        auth,
        duty,
        errors,
        forms,
        monitoring,
        openapi,
        review,
        summaries,
        sync,
    )

    auth.init_jwt()
    errors.register(app)
    auth.register_rate_limit_answer(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(auth.me_bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(sync.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(summaries.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(monitoring.bp)
    app.register_blueprint(forms.bp)  # the form definitions the doctor's app checks with
    app.register_blueprint(duty.bp)  # the week plans the doctor's app counts against
