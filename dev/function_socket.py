"""functions-framework serving one target on a Unix socket: how ``make run`` starts its functions.

``python -m dev.function_socket TARGET SOURCE SOCKET`` is functions-framework's own command
(``functions_framework._cli``: the same app, the same gunicorn, workers and timeouts) with one
change: it binds SOCKET, not a TCP port. A port on 127.0.0.1 is open to every local user and,
through DNS rebinding, to web pages; a socket in a directory only this user may enter is open
to make run's guard (dev/invoker_check.py) alone. Nothing here is deployed.
"""

from __future__ import annotations

import contextlib
import os
import sys

from functions_framework import create_app
from functions_framework._http import create_server


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m dev.function_socket TARGET SOURCE SOCKET", file=sys.stderr)
        return 2
    target, source, socket = argv
    app = create_app(target, source)  # type: ignore[no-untyped-call]
    try:
        # The framework's server options, but for "bind", which replaces its host:port.
        server = create_server(app, False, bind=f"unix:{socket}")  # type: ignore[no-untyped-call]
        server.run("127.0.0.1", 0)
    finally:
        # gunicorn has removed its socket by now; the last function out removes the directory,
        # also when make run was killed (SIGKILL) and could not.
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(socket))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
