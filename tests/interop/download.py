#!/usr/bin/env python3
"""Downloads one file from lesson 5's server with nothing but `socket`, and
checks it with `hashlib`: the protocol needs no Rust on the other end.

    python3 download.py HOST PORT PATH OUT

Sends `GET PATH`, reads the header line `OK <size>`, then exactly <size> bytes
into OUT.part, then the line `SHA256 <hex>` (after `HASHING <done> <size>`
lines while the server is still computing it), and renames OUT.part to OUT
only if the SHA-256 matches (a mismatch removes it), so OUT is never a cut or
wrong file. A refusal (`ERR <code> <message>`) is printed and ends with
status 1.
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
    size = int(header[len("OK "):])
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
    line = reader.readline(4097).decode("utf-8").rstrip("\r\n")
    while line.startswith("HASHING "):
        line = reader.readline(4097).decode("utf-8").rstrip("\r\n")
    if not line.startswith("SHA256 "):
        os.remove(part)
        print("no digest after the bytes: %s" % line)
        sys.exit(1)
    expected = line[len("SHA256 "):].lower()
    if digest.hexdigest() != expected:
        os.remove(part)
        print("sha256 mismatch")
        sys.exit(1)
    os.replace(part, out)
print("saved %d bytes, sha256 ok" % size)
