"""The sync protocol core: change records, clocks, merge and conflicts, batch encoding.

Pure Python. Neither Flask nor any database driver is imported here (a test asserts it);
the server and the offline client both build on these pieces.
"""
