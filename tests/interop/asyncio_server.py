#!/usr/bin/env python3
"""Lesson 3's protocol on one thread with `asyncio` streams, the standard
library's event loop (lesson 6's idea): each line gets `ok`, a last line
without a newline too; when the client closes its side, the server closes.
A line longer than 65,536 bytes gets lesson 3's error line, and the
connection is closed (plainly, not gently). Logs like lesson 3: one line per event. The benchmarks
of lessons 3 and 6 measure it beside the lessons.

    python3 asyncio_server.py [--listen HOST:PORT]
"""
import asyncio

from peer import address, announce, text

LINE_LIMIT = 64 * 1024


async def converse(reader, writer):
    client = "%s:%d" % writer.get_extra_info("peername")[:2]
    print("[%s] connected" % client, flush=True)
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                # readline's limit (the stream's, LINE_LIMIT) was passed.
                writer.write(
                    b"error: line longer than %d bytes, closing the connection\n" % LINE_LIMIT
                )
                await writer.drain()
                print("[%s] line longer than %d bytes, closing" % (client, LINE_LIMIT), flush=True)
                return
            if not line:
                break
            print("[%s] %s" % (client, text(line)), flush=True)
            writer.write(b"ok\n")
            await writer.drain()
        print("[%s] finished" % client, flush=True)
    except OSError as err:
        print("[%s] connection error: %s" % (client, err), flush=True)
    finally:
        writer.close()


async def main():
    host, port = address()
    server = await asyncio.start_server(converse, host, port, limit=LINE_LIMIT, backlog=128)
    announce(server.sockets[0].getsockname())
    async with server:
        await server.serve_forever()


asyncio.run(main())
