#!/usr/bin/env python3
"""Behaves like the original lesson's multi-client server: accept clients one
after another; for each, recv(1024) again and again, replying `ok` (no
newline) to each recv, until recv returns nothing; then close and accept the
next.

    python3 original_multi_server.py [--listen HOST:PORT]
"""
from peer import listen

server = listen()
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
