"""The floor for push ingest: a bare Flask + marshmallow + SQLite endpoint that reads the same
gzip push body, validates each visit and upserts the valid ones in one transaction. No auth,
no versions, no change-id memory, no typed tables, no flags: what any server must at least
do. Served by gunicorn with the settings of `zhuxun serve` (bench/common.py).

    BENCH_BARE_DB=/tmp/x.sqlite3 gunicorn 'bare_app:create_app()'
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import threading
from typing import Any

from flask import Flask, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate

SCHEMA = """
CREATE TABLE IF NOT EXISTS visits (
    id TEXT PRIMARY KEY, doctor TEXT NOT NULL, place TEXT NOT NULL, kind TEXT NOT NULL,
    check_in TEXT NOT NULL, check_out TEXT NOT NULL, patients INTEGER NOT NULL,
    data TEXT NOT NULL
)"""
UPSERT = """
INSERT INTO visits (id, doctor, place, kind, check_in, check_out, patients, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET doctor = excluded.doctor, place = excluded.place,
    kind = excluded.kind, check_in = excluded.check_in, check_out = excluded.check_out,
    patients = excluded.patients, data = excluded.data"""


class VisitSchema(Schema):
    doctor = fields.String(required=True)
    assignment = fields.String(allow_none=True)
    place = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["posting", "patrol", "sitin"]))
    check_in = fields.AwareDateTime(required=True)
    check_out = fields.AwareDateTime(required=True)
    patients = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    accuracy_m = fields.Float(allow_none=True)
    notes = fields.String(validate=validate.Length(max=500))
    device_id = fields.String()
    form_version = fields.Integer()
    recorded_at = fields.AwareDateTime()


def create_app() -> Flask:
    app = Flask(__name__)
    path = os.environ["BENCH_BARE_DB"]
    schema = VisitSchema()
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "db"):
            db = sqlite3.connect(path, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SCHEMA)
            local.db = db
        return local.db

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok"})

    @app.post("/push")
    def push() -> Any:
        raw = request.get_data(cache=False)
        if request.content_encoding == "gzip":
            raw = gzip.decompress(raw)
        body = json.loads(raw)
        rows, results = [], []
        for change in body["changes"]:
            try:
                data = schema.load(change["data"])
            except ValidationError as exc:
                results.append({"id": change["id"], "status": "rejected", "errors": exc.messages})
                continue
            if data["check_out"] <= data["check_in"]:
                results.append({"id": change["id"], "status": "rejected"})
                continue
            rows.append((change["id"], data["doctor"], data["place"], data["kind"],
                         change["data"]["check_in"], change["data"]["check_out"],
                         data["patients"], json.dumps(change["data"], ensure_ascii=False)))  # fmt: skip
            results.append({"id": change["id"], "status": "accepted"})
        db = connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(UPSERT, rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return jsonify({"results": results})

    return app
