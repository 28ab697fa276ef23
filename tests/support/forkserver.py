"""The tests' fork server: starter.py and worker.py subprocesses without re-importing.

`python starter.py` (and `python worker.py`) spends about 6 s of CPU importing the SDK,
AutoGen and LlamaIndex before it parses its arguments; the suite starts them dozens of
times. This server imports them once (no threads, no Temporal runtime, no event loop),
then forks a child per request that runs the script as `__main__`, exactly as
`python <script> <args>` would, in its own environment, with the caller's stdin, stdout
and stderr. bench/chaos_zygote.py does the same for the chaos harness's workers.

The caller is support/launcher.py, a process of its own (the test sees its PID, exit code
and pipes). It connects to the socket given as argv[1] and sends, with its fds 0, 1 and 2,
one JSON line: `{"argv": [script, ...], "env": {...}, "cwd": dir}`. The server answers
`{"pid": pid}` and later `{"exit": code}` (negative: the signal). A line `{"signal": n}`
from the launcher is passed on to the child; a launcher that goes away (SIGKILL) takes its
child with it. The server exits when its stdin closes (the test session ended), killing
the children it still has.

Run it with the project root as the working directory and first on sys.path, as
`python -c "import runpy; runpy.run_path('tests/support/forkserver.py', run_name='__main__')"`:
`sys.path` is then what `python <root>/<script>` gives (support.processes does this).
"""

from __future__ import annotations

import io
import json
import os
import random
import runpy
import select
import signal
import socket
import sys
import traceback
import warnings

PRELOAD = ("worker", "starter")
"""Imported once here; their own module bodies run again in each child, as `__main__`."""


def _preload() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a child's warnings are its own, shown as usual
        for name in PRELOAD:
            __import__(name)
            # the child runs the script as __main__: a fresh module body (its Console,
            # its Typer app), built in the child's environment
            del sys.modules[name]


def _streams(env: dict[str, str]) -> None:
    """sys.stdin/stdout/stderr over the fds the caller sent, buffered as a fresh
    interpreter would buffer them (PYTHONUNBUFFERED included)."""
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))

    def writer(fd: int, line_buffering: bool, errors: str) -> io.TextIOWrapper:
        raw = io.FileIO(fd, "w", closefd=False)
        binary: io.RawIOBase | io.BufferedWriter = raw if unbuffered else io.BufferedWriter(raw)
        return io.TextIOWrapper(
            binary,  # type: ignore[arg-type]
            encoding="utf-8",
            errors=errors,
            line_buffering=line_buffering and not unbuffered,
            write_through=unbuffered,
        )

    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8"
    )
    sys.stdout = sys.__stdout__ = writer(1, False, "strict")
    sys.stderr = sys.__stderr__ = writer(2, True, "backslashreplace")


def _child(request: dict, fds: list[int], inherited: list[int]) -> None:
    """In the forked child: become `python <argv>`. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for fd in inherited:  # the server's: its socket, its wake-up pipe, other launchers
            os.close(fd)
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):  # SIGPIPE stays ignored
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        random.seed()  # not the server's sequence
        _streams(request["env"])
        sys.argv = list(request["argv"])
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as done:
            if done.code is None or isinstance(done.code, int):
                code = done.code or 0
            else:
                print(done.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 (a closed pipe: nothing more to say)
                pass
        os._exit(code)


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the launcher is gone; its child was killed with it


def serve(path: str) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}  # child pid -> its launcher's connection
    by_conn: dict[socket.socket, int] = {}
    buffers: dict[socket.socket, bytes] = {}
    print("ready", flush=True)
    stdin = sys.stdin.fileno()
    try:
        while True:
            readable, _, _ = select.select([listener, wake_r, stdin, *by_conn], [], [])
            if stdin in readable and not os.read(stdin, 1024):
                return  # the test session is over
            if wake_r in readable:
                os.read(wake_r, 4096)
            _reap(children, by_conn)
            if listener in readable:
                conn, _ = listener.accept()
                try:
                    request, fds = _receive(conn)
                except (OSError, ValueError):  # a launcher killed before it asked
                    traceback.print_exc()
                    conn.close()
                else:
                    pid = os.fork()
                    if pid == 0:
                        own = [listener, conn, *by_conn]
                        _child(request, fds, [wake_r, wake_w, *(c.fileno() for c in own)])
                    for fd in fds:
                        os.close(fd)
                    children[pid] = conn
                    by_conn[conn] = pid
                    buffers[conn] = b""
                    _send(conn, {"pid": pid})
            for conn in [c for c in readable if c in by_conn]:
                pid = by_conn[conn]
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    chunk = b""
                if not chunk:  # the launcher died (SIGKILL): so does its child
                    _kill(pid, signal.SIGKILL)
                    del by_conn[conn]
                    continue
                buffers[conn] += chunk
                *lines, buffers[conn] = buffers[conn].split(b"\n")
                for line in lines:
                    try:
                        _kill(pid, int(json.loads(line)["signal"]))
                    except (ValueError, KeyError):
                        traceback.print_exc()
    finally:
        for pid in children:
            _kill(pid, signal.SIGKILL)


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    """The launcher's request and its three fds."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 20)
        if not more:
            break
        data += more
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError(f"expected stdin, stdout and stderr, got {len(fds)} fds")
    return json.loads(data), fds


def _reap(children: dict[int, socket.socket], by_conn: dict[socket.socket, int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _send(conn, {"exit": code})
        by_conn.pop(conn, None)
        conn.close()


def _kill(pid: int, sig: int) -> None:
    """Signal one of our own unreaped children (its PID cannot have been reused)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    _preload()
    serve(sys.argv[1])
