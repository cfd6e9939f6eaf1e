"""The two logins a deployment may hold: the owner's, and the sender's beside it.

The owner is whoever TOKEN_OBJECT's document holds. With ``KAKAO_SENDER=1`` a second Kakao
account, the sender, may log in too: its messages to the owner arrive as an ordinary KakaoTalk
chat, which rings, where a memo to oneself lands silently in 나와의 채팅 (../shared/KAKAO_API.md
§10). The sender's document and its claim live beside the owner's, under names no TOKEN_OBJECT
template can produce for a user. Standard library only: deploy.sh runs claim.py with
``python3 -P -S``, and claim.py names the sender's objects through this module.
"""

from __future__ import annotations

import posixpath

OWNER = "owner"
SENDER = "sender"
LOGINS = (OWNER, SENDER)
# The consent items a sender deployment asks of both logins: the sender sends (talk_message)
# to a friend it finds in its friends list (friends); the owner must consent to friends to be
# found there.
SENDER_SCOPES = ("friends", "talk_message")


def sender_document_name(token_object: str) -> str:
    """The sender's document: TOKEN_OBJECT with ``.sender`` before its extension
    (``kakao_token.json`` -> ``kakao_token.sender.json``)."""
    folder, base = posixpath.split(token_object)
    stem, dot, extension = base.rpartition(".")
    sender = f"{stem}.{SENDER}.{extension}" if dot and stem else f"{base}.{SENDER}"
    return posixpath.join(folder, sender) if folder else sender


def missing_consents(asked: str, granted: str) -> list[str]:
    """The consent items the deployment asks for (KAKAO_SCOPE, comma-separated) that a stored
    login lacks (its scope, as Kakao wrote it: space-separated). A login from before
    KAKAO_SENDER=1 lacks ``friends``: logging in again asks Kakao for the added consent."""
    have = set(granted.replace(",", " ").split())
    return [item for item in asked.split(",") if item and item not in have]
