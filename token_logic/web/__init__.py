"""The HTTP edge (flask), one module per function: the callback (callback.py, with its two
webhooks unlink.py and account_status.py), the scheduled refresh (refresh_endpoint.py, answering
with sweep_report.py) and the token endpoint (token_endpoint.py); the pages a person sees
(pages.py, done_cookie.py) and the headers every answer carries (responses.py). The work itself
is service/'s; the words for each error are problems.py's, which the command line shares."""
