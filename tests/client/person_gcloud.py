"""A `gcloud` for the client's tests: prints one token for `auth print-identity-token`, or
fails as gcloud does (logged out; a person's account refusing --audiences), and logs each call."""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAKE_GCLOUD = """#!{python}
import json, os, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if {fail_audiences!r} and any(a.startswith("--audiences") for a in sys.argv):
    sys.stderr.write("ERROR: (gcloud.auth.print-identity-token) Invalid account type for "
                     "`--audiences`. Requires valid service account.\\n")
    sys.exit(1)
token = {token!r}
if not token:
    sys.stderr.write("ERROR: (gcloud.auth.print-identity-token) You do not currently have an "
                     "active account selected.\\n")
    sys.exit(1)
print(token)
"""


def fake_gcloud(directory: Path, token: str, *, fail_audiences: bool = False) -> Path:
    """A `gcloud` on a PATH of its own; returns the log of its calls."""
    directory.mkdir(exist_ok=True)
    log = directory / "calls.log"
    script = directory / "gcloud"
    script.write_text(
        FAKE_GCLOUD.format(
            python=sys.executable, log=str(log), fail_audiences=fail_audiences, token=token
        )
    )
    script.chmod(0o755)
    return log


def gcloud_calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
