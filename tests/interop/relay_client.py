#!/usr/bin/env python3
"""Joins lesson 4's relay with nothing but `socket` and `threading`: the
protocol needs no Rust on the other end.

    python3 relay_client.py HOST PORT NAME

Sends `HELLO NAME` and expects `WELCOME NAME <address>`; any other answer
is printed and ends with status 1. Then each line of standard input goes
to the server as it is (`LIST`, `SEND bob hi`, `ALL hi`, `WHERE bob`,
`BYE`), and each line from the server is printed the moment it arrives, so
`FROM`, `JOINED` and `LEFT` show up whenever they come. When standard input
ends without a `BYE`, one is sent. Exits 0 when the server closes the
connection after its `BYE`, and 1 when it closes without one.
"""
import os
import socket
import sys
import threading

LINE_LIMIT = 4096

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def receive(lines):
    """The next line from the server without its newline, or None once the
    server has closed the connection."""
    line = lines.readline(LINE_LIMIT + 2)
    if not line:
        return None
    if not line.endswith(b"\n") and len(line) > LINE_LIMIT:
        print("the server sent a line longer than %d bytes" % LINE_LIMIT, file=sys.stderr)
        sys.exit(1)
    return line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")


def typed_lines():
    """The lines of standard input, without their newlines. It reads with
    os.read, not through sys.stdin: the program ends while this is still
    waiting for input, and Python aborts at exit when a thread is left
    inside sys.stdin's buffered reader."""
    pending = b""
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        yield from lines
    if pending:
        yield pending


def send_typed(sock):
    """Runs on a thread of its own, so that typing never holds up what the
    server sends: each line of standard input becomes one protocol line."""
    said_bye = False
    for typed in typed_lines():
        line = typed.rstrip(b"\r")
        said_bye = line == b"BYE"
        try:
            sock.sendall(line + b"\n")
        except OSError:
            return  # the server is gone; the main thread says so
    if not said_bye:
        try:
            sock.sendall(b"BYE\n")
        except OSError:
            pass


sock = socket.create_connection((host, port), timeout=5)
sock.sendall(("HELLO %s\n" % name).encode("utf-8"))
lines = sock.makefile("rb")
welcome = receive(lines)
if welcome is None or welcome.split(" ")[:2] != ["WELCOME", name]:
    print(welcome if welcome is not None else "closed before answering HELLO", flush=True)
    sys.exit(1)
print(welcome, flush=True)

# Registered: the server may now stay quiet for as long as nobody talks.
sock.settimeout(None)
threading.Thread(target=send_typed, args=(sock,), daemon=True).start()

last = None
while True:
    try:
        line = receive(lines)
    except OSError as err:
        print("lost the connection: %s" % err, file=sys.stderr)
        sys.exit(1)
    if line is None:
        break
    print(line, flush=True)
    last = line
if last != "BYE":
    print("the server closed the connection without saying BYE", file=sys.stderr)
    sys.exit(1)
