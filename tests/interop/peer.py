"""What the Python stand-ins share: the `--listen HOST:PORT` argument that
the test kit passes to every server, and announcing the bound address as the
first line, as the lessons' servers do."""
import socket
import sys


def address(default_port=7890):
    """The (host, port) given by `--listen HOST:PORT` at the end of the
    command line; 127.0.0.1:default_port without it."""
    host, port = "127.0.0.1", default_port
    if len(sys.argv) >= 3 and sys.argv[-2] == "--listen":
        host, _, port_text = sys.argv[-1].rpartition(":")
        port = int(port_text)
    return host, port


def announce(sockname):
    """Prints `listening on HOST:PORT` for a bound socket's address: the
    first line every server prints, from which tests learn the port."""
    print("listening on %s:%d" % sockname[:2], flush=True)


def listen(default_port=7890):
    """socket, bind and listen(128) on `address(default_port)`; prints
    `listening on HOST:PORT` and returns the listening socket."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(address(default_port))
    server.listen(128)
    announce(server.getsockname())
    return server


def text(line):
    """A received line as the lessons log it: without its `\\n` (and a `\\r`
    before it), bytes that are not UTF-8 escaped."""
    return line.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", "backslashreplace")
