#!/usr/bin/env python3
"""Downloads one file from lesson 5's server with nothing but `socket`, and
checks it with `hashlib`: the protocol needs no Rust on the other end.

    python3 download.py HOST PORT PATH OUT

Sends `GET PATH`, reads the header line `OK <size> <sha256>`, then exactly
<size> bytes into OUT.part, and renames OUT.part to OUT only if their SHA-256
matches (a mismatch removes it), so OUT is never a cut or wrong file. A refusal
(`ERR <code> <message>`) is printed and ends with status 1.
"""
import hashlib
import os
import socket
import sys

host, port, path, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

with socket.create_connection((host, port), timeout=5) as sock:
    sock.sendall(("GET %s\n" % path).encode("utf-8"))
    reader = sock.makefile("rb")
    header = reader.readline(4097).decode("utf-8").rstrip("\r\n")
    if not header.startswith("OK "):
        print(header)
        sys.exit(1)
    _, size_text, expected = header.split(" ")
    size = int(size_text)
    digest = hashlib.sha256()
    part = out + ".part"
    with open(part, "wb") as file:
        left = size
        while left > 0:
            chunk = reader.read(min(left, 65536))
            if not chunk:
                print("cut short: %d of %d bytes" % (size - left, size))
                sys.exit(1)
            digest.update(chunk)
            file.write(chunk)
            left -= len(chunk)
    if digest.hexdigest() != expected:
        os.remove(part)
        print("sha256 mismatch")
        sys.exit(1)
    os.replace(part, out)
print("saved %d bytes, sha256 ok" % size)
