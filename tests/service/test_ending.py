"""Ending a login (service/ending.py) refuses a call that could end a live login over a token
that is not the stored one."""

from __future__ import annotations

import pytest

from tests.helpers import FakeClock, complete_login
from token_logic.budget import Deadline
from token_logic.service.ending import LoginEnder
from token_logic.service.refresh import Refresher
from token_logic.service.token_service import TokenService


def test_one_token_without_asking_kakao_is_refused_and_changes_nothing(
    file_service: TokenService, clock: FakeClock
) -> None:
    """token-revoked names one token: only Kakao can say it was the stored one, so ending the
    login for it without asking (unless_live off) is a programming error, and nothing is written."""
    document = complete_login(file_service)
    before = file_service.store.read("kakao_token.json")
    store, kakao = file_service.store, file_service.kakao
    ender = LoginEnder(file_service.settings, kakao, store, clock, Refresher(kakao, store, clock))

    with pytest.raises(ValueError, match="unless_live"):
        ender.end(
            document.user_id or 0, Deadline.after(3, clock), reason="token_revoked", one_token=True
        )

    after = file_service.store.read("kakao_token.json")
    assert before is not None and after is not None
    assert after.data == before.data
