"""The use cases behind ``TokenService`` (token_service.py): finish a login (login.py; the
sender's, sender_login.py; the writes both share, login_writer.py) and who may own it
(claim.py), refresh one login safely (refresh.py, backoff.py), sweep many (sweep.py, shards.py,
sweep_memory.py), end a login (ending.py) and act on Kakao's account events
(account_events.py). No HTTP here: web/ calls in, storage/ and kakao/ below."""
