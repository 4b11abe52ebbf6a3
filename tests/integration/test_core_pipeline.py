"""Pipelined requests to a client that reads late: the next request is
taken up only when the answers before it have (nearly) left, so queued
answers hold neither a descriptor each nor memory up to WriteQueueLimit,
and every answer still arrives, whole and in order."""

import hashlib
import os
import re
import socket
import threading

from plugin_util import wait_for
from tremolo_harness import HOST, build_request

BIG = 4 * 1024 * 1024
# four distinct large files, so that the order of the answers shows
BIGS = [hashlib.sha256(b"%d" % i).digest() * (BIG // 32) for i in range(4)]
SMALL = b"small file\n" * 93                                   # 1023 bytes
FILES = {"htdocs/index.html": b"index\n", "htdocs/small.txt": SMALL}
FILES.update({"htdocs/big%d.bin" % i: b for i, b in enumerate(BIGS)})


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Reader:
    """Reads Content-Length responses off a socket one at a time and
    checks each body against what it must be, without keeping them (into
    one reused buffer: 1.2 GB pass through it)."""

    def __init__(self, sock):
        self.sock = sock
        self.mem = bytearray(1 << 20)
        self.view = memoryview(self.mem)
        self.start = self.end = 0

    def _more(self):
        if self.end == len(self.mem):
            kept = self.end - self.start
            self.mem[:kept] = self.mem[self.start:self.end]
            self.start, self.end = 0, kept
        n = self.sock.recv_into(self.view[self.end:])
        assert n, "connection closed early"
        self.end += n

    def expect(self, body):
        while True:
            end = self.mem.find(b"\r\n\r\n", self.start, self.end)
            if end >= 0:
                break
            self._more()
        head = bytes(self.mem[self.start:end])
        self.start = end + 4
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
        assert length == len(body)
        off = 0
        while off < length:
            if self.start == self.end:
                self.start = self.end = 0
                self._more()
            n = min(self.end - self.start, length - off)
            assert self.mem[self.start:self.start + n] == body[off:off + n], \
                "body differs at %d" % off
            self.start += n
            off += n
        return head


def test_pipelined_big_files_hold_no_descriptor_each(tremolo):
    srv = tremolo(files=FILES)
    n = 300
    before = open_fds(srv.pid)
    s = socket.create_connection((HOST, srv.port), timeout=30)
    try:
        s.sendall(b"".join(build_request("GET", "/big%d.bin" % (i % 4))
                           for i in range(n)))
        # one worker, and 18 KB of requests arrive at once: when another
        # connection is answered, the worker has been through them all
        assert srv.get("/index.html")[0] == 200
        # this connection, the file being sent, the barrier's connection
        # if not yet reaped, and one to spare
        grown = open_fds(srv.pid) - before
        assert grown <= 4, "%d descriptors held for %d queued answers" % (
            grown, n)
        reader = Reader(s)
        for i in range(n):
            reader.expect(BIGS[i % 4])
    finally:
        s.close()


def test_half_closed_client_gets_every_pipelined_answer(tremolo):
    # the FIN is read while the requests wait behind the first file
    srv = tremolo(files=FILES)
    n = 10
    s = socket.create_connection((HOST, srv.port), timeout=30)
    try:
        s.sendall(b"".join(build_request("GET", "/big%d.bin" % (i % 4))
                           for i in range(n)))
        s.shutdown(socket.SHUT_WR)
        reader = Reader(s)
        heads = [reader.expect(BIGS[i % 4]) for i in range(n)]
        assert b"\r\nConnection: close" in heads[-1]
        assert s.recv(1) == b""
    finally:
        s.close()


def test_many_small_answers_to_a_late_reader_all_arrive(tremolo):
    # 50,000 answers of 1 KiB are 64 MB, far past the 8 MiB WriteQueueLimit
    # a server reaches if it answers everything it can read. One that waits
    # stops reading instead, so the requests go from a thread. The client
    # reads late: once they are all sent (or the sender is stuck, 5 s) and
    # 2 s more have passed (less if the server gave up on it).
    srv = tremolo(files=FILES, server="KeepAliveMaxRequests 0")
    n = 50000
    s = socket.create_connection((HOST, srv.port), timeout=30)

    def send():
        try:
            s.sendall(build_request("GET", "/small.txt") * n)
        except OSError:
            pass                            # closed by the server

    sender = threading.Thread(target=send)
    try:
        sender.start()
        sender.join(5)
        wait_for(lambda: "WriteQueueLimit" in srv.error_log(), timeout=2)
        reader = Reader(s)
        for _ in range(n):
            reader.expect(SMALL)
    finally:
        sender.join(30)
        s.close()
    assert "WriteQueueLimit" not in srv.error_log()


def test_pipelined_small_answers_in_order(tremolo):
    srv = tremolo(files=FILES)
    n = 500
    s = socket.create_connection((HOST, srv.port), timeout=30)
    try:
        s.sendall(b"".join(build_request("GET", "/small.txt" if i % 2
                                         else "/index.html")
                           for i in range(n)))
        reader = Reader(s)
        for i in range(n):
            reader.expect(SMALL if i % 2 else b"index\n")
    finally:
        s.close()
