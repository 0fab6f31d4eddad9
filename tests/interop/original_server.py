#!/usr/bin/env python3
"""Behaves like the original lesson's one-shot server: socket, bind, listen,
accept one client, recv(1024) once, reply OK (no newline), close.

    python3 original_server.py [--listen HOST:PORT]

Like the lessons' servers, its first line is `listening on HOST:PORT`.
"""
import socket
import sys

host, port = "127.0.0.1", 7890
if len(sys.argv) == 3 and sys.argv[1] == "--listen":
    host, _, port_text = sys.argv[2].rpartition(":")
    port = int(port_text)

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind((host, port))
server.listen(128)
print("listening on %s:%d" % server.getsockname(), flush=True)
client, address = server.accept()
client.settimeout(10)
data = client.recv(1024)
print("received", repr(data), flush=True)
client.send(b"OK")
client.close()
server.close()
