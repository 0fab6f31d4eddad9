#!/usr/bin/env python3
"""Behaves like the original lesson's client: connect, send the message once
(no newline), close without reading any reply.

    python3 original_client.py HOST PORT MESSAGE
"""
import socket
import sys

host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.settimeout(5)
    sock.connect((host, port))
    sock.send(message.encode("utf-8"))
print("sent", repr(message))
