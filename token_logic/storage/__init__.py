"""Where token documents live: the compare-and-swap protocol (protocol.py), Cloud Storage
(gcs.py, and gcs_reader.py for a cold read without the storage client), local files (files.py),
and the facts kept beside each document for the sweep (facts.py)."""
