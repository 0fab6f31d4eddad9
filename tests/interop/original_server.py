#!/usr/bin/env python3
"""Behaves like the original lesson's one-shot server: socket, bind, listen,
accept one client, recv(1024) once, reply OK (no newline), close.

    python3 original_server.py [--listen HOST:PORT]
"""
from peer import listen

server = listen()
client, address = server.accept()
client.settimeout(10)
data = client.recv(1024)
print("received", repr(data), flush=True)
client.send(b"OK")
client.close()
server.close()
