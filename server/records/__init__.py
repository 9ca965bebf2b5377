"""The records a device syncs, server side: the SQL sync store (sql_store.py), the push and
pull service (service.py), the typed tables projected from records (projections.py) and
the scenario importer (importer.py). No Flask."""
