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
    me, parent = os.getpid(), os.getppid()
    app = create_app(target, source)  # type: ignore[no-untyped-call]
    try:
        # The framework's server options, but for "bind", which replaces its host:port, and no
        # control socket: gunicorn's (its ``gunicornc`` interface) would lie outside the
        # private directory, one path shared by all three functions.
        server = create_server(  # type: ignore[no-untyped-call]
            app, False, bind=f"unix:{socket}", control_socket_disable=True
        )
        server.run("127.0.0.1", 0)
    finally:
        # gunicorn has removed its socket by now (its workers, forked in run(), end here too).
        # The directory is make run's to remove once its checks stop relaying; only if make
        # run was killed (SIGKILL: Linux sent us SIGTERM and gave us another parent) does the
        # last function out remove it.
        if os.getpid() == me and os.getppid() != parent:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(socket))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
