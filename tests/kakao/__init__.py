"""Tests of token_logic/kakao/, one file per module or behaviour."""
