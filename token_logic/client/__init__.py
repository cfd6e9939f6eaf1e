"""What a script installs: a valid access token from the deployed token endpoint (remote.py,
reading the function's answers in answers.py and explaining Cloud Run's refusals in
refusals.py), the ``kakao-token`` command (cli.py), the caller's Google ID token
(google_id_token.py, with GitHub's workload identity federation in github_oidc.py) and the
GitHub Action's step (github_action.py).

Imports nothing of the server's: only the package's foundation and Kakao's API (for memos)."""
