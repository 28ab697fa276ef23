"""`python -I -S launcher.py SOCKET SCRIPT ARGS...`: SCRIPT run by support/forkserver.py.

Stdlib only and no `site`, so it starts in milliseconds. It hands its stdin, stdout and
stderr to the fork server with the request, passes SIGTERM, SIGINT and SIGHUP on to the
child, and ends as the child ended: with its exit code, or killed by the same signal.
If the launcher is killed (SIGKILL), the server kills the child.
"""

import json
import os
import signal
import socket
import sys

ZYGOTE_ENV = "TESTS_FORKSERVER"  # not passed on: the child's environment is the caller's


def _open_std_fds() -> None:
    """A closed stdin, stdout or stderr (a process started without one) is /dev/null."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)


def main() -> None:
    path, *argv = sys.argv[1:]
    _open_std_fds()
    env = {k: v for k, v in os.environ.items() if k != ZYGOTE_ENV}
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    request = json.dumps({"argv": argv, "env": env, "cwd": os.getcwd()}).encode() + b"\n"
    socket.send_fds(conn, [request], [0, 1, 2])

    def forward(signum: int, _frame: object) -> None:
        conn.sendall(json.dumps({"signal": signum}).encode() + b"\n")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    buffer = b""
    while True:
        try:
            chunk = conn.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            os._exit(1)  # the server went away
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "exit" in message:
                code = message["exit"]
                if code < 0:
                    if -code != signal.SIGKILL:
                        signal.signal(-code, signal.SIG_DFL)
                    os.kill(os.getpid(), -code)
                os._exit(code & 0xFF)


main()
