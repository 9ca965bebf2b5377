"""Transitional: tests/test_storage_contract.py (helper P's file during issue 11) still
imports `SqlSyncStore` from here. Remove when the merge points it at
server.records.sql_store."""

from server.records.sql_store import SqlSyncStore

__all__ = ["SqlSyncStore"]
