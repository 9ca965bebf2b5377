"""Transitional: `server/demo.py` (helper P's file during issue 11) still imports
`create_user` from here. Remove when the merge points demo.py at `server.database.add_user`."""

from server.database import add_user as create_user

__all__ = ["create_user"]
