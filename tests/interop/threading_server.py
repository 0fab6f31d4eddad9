#!/usr/bin/env python3
"""Lesson 3's protocol with the standard library's thread per client
(`socketserver.ThreadingTCPServer`), the original lesson's idea: each line
gets `ok`, a last line without a newline too; when the client closes its
side, the server closes. A line longer than 65,536 bytes gets
lesson 3's error line, and the connection is closed (plainly, not gently). Logs like lesson 3: one line per event.
The benchmarks of lessons 3 and 6 measure it beside the lessons.

    python3 threading_server.py [--listen HOST:PORT]
"""
import socketserver

from peer import address, announce, text

LINE_LIMIT = 64 * 1024


class Conversation(socketserver.StreamRequestHandler):
    def handle(self):
        client = "%s:%d" % self.client_address[:2]
        print("[%s] connected" % client, flush=True)
        while True:
            line = self.rfile.readline(LINE_LIMIT + 1)
            if not line:
                break
            if len(line) > LINE_LIMIT and not line.endswith(b"\n"):
                self.wfile.write(
                    b"error: line longer than %d bytes, closing the connection\n" % LINE_LIMIT
                )
                print("[%s] line longer than %d bytes, closing" % (client, LINE_LIMIT), flush=True)
                return
            print("[%s] %s" % (client, text(line)), flush=True)
            self.wfile.write(b"ok\n")
        print("[%s] finished" % client, flush=True)


class Server(socketserver.ThreadingTCPServer):
    # The default backlog is 5; the lessons' servers use 128.
    request_queue_size = 128
    daemon_threads = True


with Server(address(), Conversation) as server:
    announce(server.server_address)
    server.serve_forever()
