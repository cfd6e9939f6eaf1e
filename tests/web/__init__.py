"""Tests of token_logic/web/, one file per module or behaviour."""
