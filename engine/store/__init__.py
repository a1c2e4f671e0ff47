"""Everything the engine keeps on disk: one SQLite database per data folder, behind small APIs.

Each kind of data has exactly one module here that reads and writes it. All SQLite work runs on
the database's own thread, never on the event loop.
"""
