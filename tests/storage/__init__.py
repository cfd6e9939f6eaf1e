"""Tests of token_logic/storage/, one file per module or behaviour."""
