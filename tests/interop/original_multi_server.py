#!/usr/bin/env python3
"""Behaves like the original lesson's multi-client server: accept clients one
after another; for each, recv(1024) again and again, replying `ok` (no
newline) to each recv, until recv returns nothing; then close and accept the
next.

    python3 original_multi_server.py [--listen HOST:PORT]

Like the lessons' servers, its first line is `listening on HOST:PORT`.
"""
import socket
import sys

host, port = "127.0.0.1", 7890
if len(sys.argv) == 3 and sys.argv[1] == "--listen":
    host, _, port_text = sys.argv[2].rpartition(":")
    port = int(port_text)

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((host, port))
server.listen(128)
print("listening on %s:%d" % server.getsockname(), flush=True)
while True:
    client, address = server.accept()
    print("connected", address, flush=True)
    client.settimeout(10)
    while True:
        try:
            data = client.recv(1024)
        except OSError as err:
            print("error", err, flush=True)
            break
        if not data:
            break
        print("received", repr(data), flush=True)
        client.send(b"ok")
    client.close()
    print("closed", address, flush=True)
