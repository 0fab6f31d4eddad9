"""What the Python stand-ins share: the `--listen HOST:PORT` argument that
the test kit passes to every server, and announcing the bound address as the
first line, as the lessons' servers do."""
import socket
import sys


def listen(default_port=7890):
    """socket, bind and listen(128) on the address given by `--listen
    HOST:PORT` (127.0.0.1:default_port without it); prints
    `listening on HOST:PORT` and returns the listening socket."""
    host, port = "127.0.0.1", default_port
    if len(sys.argv) >= 3 and sys.argv[-2] == "--listen":
        host, _, port_text = sys.argv[-1].rpartition(":")
        port = int(port_text)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((host, port))
    server.listen(128)
    print("listening on %s:%d" % server.getsockname(), flush=True)
    return server
