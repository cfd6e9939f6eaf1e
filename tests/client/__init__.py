"""Tests of token_logic/client/, one file per module or behaviour."""
