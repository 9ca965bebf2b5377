"""Flask extensions, created unbound here and bound in `create_app` (no global app)."""

from __future__ import annotations

from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from server.models import Base

# The models are declared on a plain SQLAlchemy base (server/models.py loads no Flask);
# Flask-SQLAlchemy shares its metadata, so db.create_all and Alembic see the same tables.
db = SQLAlchemy(metadata=Base.metadata)
jwt = JWTManager()
# No default limits: only the views that say so are limited (login). The storage comes from
# RATELIMIT_STORAGE_URI, set in `create_app` from ZHUXUN_RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
# CSRF tokens for the cookie-authenticated pages (server/web/ checks them).
csrf = CSRFProtect()
