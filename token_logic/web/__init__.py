"""The HTTP edge (flask): the callback function (callback.py, with the unlink and account
status webhooks), the scheduled refresh's answer (sweep_report.py), the token endpoint, the
pages a person sees and the one mapping of errors to statuses and words (problems.py)."""
