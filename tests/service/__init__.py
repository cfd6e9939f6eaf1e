"""Tests of token_logic/service/, one file per module or behaviour."""
