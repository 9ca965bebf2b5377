"""The review workflow: deciding a doctor's week, visits, flags and leave (workflow.py), and
the reviewer's overview of weeks and the audit log (overview.py). No Flask."""
