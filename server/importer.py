"""Transitional: `server/demo.py` (helper P's file during issue 11) still imports
`import_scenario` from here. Remove when the merge points it at server.records.importer."""

from server.records.importer import import_scenario

__all__ = ["import_scenario"]
