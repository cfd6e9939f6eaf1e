"""Kakao: its REST API (api.py, also used by the script client for memos), the login state
bound to the browser (state.py), the OpenID ID token of a login (id_token.py), Kakao's
signing keys for the account status webhook (jwks.py) and the events it sends (events.py).
Imports only the package's foundation."""
