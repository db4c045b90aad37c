#!/usr/bin/python3
"""yjl1_feed.py: a reference YJL1 feed client (interfaces.md §1, "Feed
ingest: protocol YJL1 over ZeroMQ") for integrators.

Python 3 and pyzmq only (Debian: python3-zmq). As a command, it sends the
JSON events of FILE (one a line; `-` or nothing: standard input) and prints
each reply as one line, `STATUS<TAB>SOURCE_ID<TAB>DETAIL`:

    yjl1_feed.py [--endpoint tcp://127.0.0.1:7401] [--feed FEED] [--window N] [FILE]

and exits 0 when every event was answered OK or DUP, 1 otherwise (2 on a
usage error). As a library:

    c = YJL1Client("tcp://127.0.0.1:7401")
    status, source_id, detail = c.request("custody", json.dumps(event))

What it does for you:

- Pipelining: up to --window requests are in flight at once on the one
  DEALER; the daemon answers each exactly once, in the order sent, so
  replies are matched to requests by their order.
- The feed of each line is read from the event (its `custody`, `arrest`,
  `interview` or `outcome` object) unless --feed names one for every line.
- RETRY (disk full, shutting down, overloaded) and a daemon that does not
  answer within --timeout are retried, with backoff, up to --retries times:
  resending is always safe, since an event already stored is answered DUP
  by its source_id. Only the last reply of each event is printed.
- CURVE (anything but loopback or ipc://): --server-key is the daemon's
  public key, --key-file this client's secret key as `yjlinkctl keygen`
  writes it (NAME.key; the public key, NAME.pub, is what the daemon's
  ingest.clients lists).
"""
import argparse
import collections
import json
import sys
import time

import zmq

FEEDS = ("custody", "arrest", "voluntary_interview", "outcome")
# The feed-specific object of an event (interfaces.md §2) and its feed.
FEED_OF_OBJECT = {"custody": "custody", "arrest": "arrest", "interview": "voluntary_interview", "outcome": "outcome"}


class YJL1Client:
    """One DEALER to one yjlinkd. send() and recv() may be interleaved freely
    (pipelining); every send() gets exactly one reply, in order."""

    def __init__(self, endpoint, server_key=None, secret_key=None, context=None):
        self.endpoint = endpoint
        self.server_key = server_key
        self.secret_key = secret_key
        self.ctx = context or zmq.Context.instance()
        self.sock = None
        self.connect()

    def connect(self):
        """A fresh connection: what was in flight on the old one is forgotten."""
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if self.server_key:
            self.sock.curve_serverkey = self.server_key.encode()
            self.sock.curve_secretkey = self.secret_key.encode()
            self.sock.curve_publickey = zmq.curve_public(self.secret_key.encode())
        self.sock.connect(self.endpoint)

    def send(self, feed, payload, content_type="application/json"):
        if isinstance(payload, str):
            payload = payload.encode("utf-8", "surrogateescape")
        self.sock.send_multipart([b"YJL1", feed.encode(), content_type.encode(), payload])

    def recv(self, timeout_ms):
        """(status, source_id, detail) of the next reply, or None after timeout_ms."""
        if not self.sock.poll(timeout_ms):
            return None
        frames = self.sock.recv_multipart()
        if len(frames) != 4 or frames[0] != b"YJL1":
            raise ValueError("not a YJL1 reply: %r" % frames[:4])
        return frames[1].decode(), frames[2].decode("utf-8", "replace"), frames[3].decode("utf-8", "replace")

    def request(self, feed, payload, content_type="application/json", timeout_ms=30000):
        self.send(feed, payload, content_type)
        return self.recv(timeout_ms)

    def close(self):
        self.sock.close(linger=0)


def feed_of(line, forced):
    """The feed to send line (bytes) as: forced, or read from the event's own object."""
    if forced:
        return forced
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    if not isinstance(ev, dict):
        return None
    found = [FEED_OF_OBJECT[k] for k in FEED_OF_OBJECT if k in ev]
    return found[0] if len(found) == 1 else None


class Run:
    """Send lines with a window, retrying RETRY and silence; print the final reply of each."""

    def __init__(self, client, args, out):
        self.client = client
        self.args = args
        self.out = out
        self.inflight = collections.deque()   # (line number, feed, payload, attempts), in the order sent
        self.later = []                       # (due time, line number, feed, payload, attempts): RETRY, to resend
        self.failed = 0
        self.answered = 0

    def emit(self, no, status, source_id, detail):
        if status not in ("OK", "DUP"):
            self.failed += 1
        self.answered += 1
        if self.args.json:
            self.out.write(json.dumps({"line": no, "status": status, "source_id": source_id, "detail": detail}) + "\n")
        else:
            self.out.write("%s\t%s\t%s\n" % (status, source_id, detail.replace("\t", " ").replace("\n", " ")))
        self.out.flush()

    def backoff(self, attempts):
        return min(30.0, 0.5 * 2 ** (attempts - 1))

    def send(self, no, feed, payload, attempts):
        self.client.send(feed, payload, self.args.content_type)
        self.inflight.append((no, feed, payload, attempts))

    def resend_due(self):
        now = time.monotonic()
        due = [x for x in self.later if x[0] <= now]
        self.later = [x for x in self.later if x[0] > now]
        for _, no, feed, payload, attempts in sorted(due, key=lambda x: x[1]):
            self.send(no, feed, payload, attempts)

    def take_reply(self, timeout_ms):
        """Wait for one reply; on silence, reconnect and send everything in flight again."""
        got = self.client.recv(timeout_ms)
        if got is None:
            lost = list(self.inflight)
            self.inflight.clear()
            self.client.connect()
            for no, feed, payload, attempts in lost:
                if attempts > self.args.retries:
                    self.emit(no, "TIMEOUT", "", "no reply within %gs" % self.args.timeout)
                else:
                    sys.stderr.write("line %d: no reply, sending again\n" % no)
                    self.send(no, feed, payload, attempts + 1)
            return
        no, feed, payload, attempts = self.inflight.popleft()
        status, source_id, detail = got
        if status == "RETRY" and attempts <= self.args.retries:
            sys.stderr.write("line %d: RETRY (%s), sending again later\n" % (no, detail))
            self.later.append((time.monotonic() + self.backoff(attempts), no, feed, payload, attempts + 1))
            return
        self.emit(no, status, source_id, detail)

    def run(self, lines):
        timeout_ms = int(self.args.timeout * 1000)
        for no, raw in enumerate(lines, 1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            feed = feed_of(line, self.args.feed)
            if feed is None:
                self.emit(no, "ERROR", "", "line %d: cannot tell its feed (not one JSON event with one feed object); "
                          "give --feed" % no)
                continue
            self.resend_due()
            while len(self.inflight) >= self.args.window:
                self.take_reply(timeout_ms)
            self.send(no, feed, line, 1)
        while self.inflight or self.later:
            self.resend_due()
            if self.inflight:
                self.take_reply(timeout_ms)
            elif self.later:
                time.sleep(max(0.0, min(x[0] for x in self.later) - time.monotonic()))
        return 0 if self.failed == 0 else 1


def main(argv=None):
    p = argparse.ArgumentParser(description="Send JSON events (one a line) to yjlinkd over YJL1; print each reply "
                                "as STATUS<TAB>SOURCE_ID<TAB>DETAIL. Exit 0 when every reply is OK or DUP, else 1.")
    p.add_argument("file", nargs="?", default="-", help="events, one JSON object a line ('-': standard input)")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:7401", help="the daemon's ingest.endpoint")
    p.add_argument("--feed", choices=FEEDS, help="the feed of every line (default: read from each event)")
    p.add_argument("--content-type", default="application/json",
                   choices=("application/json", "application/x-protobuf"), help=argparse.SUPPRESS)
    p.add_argument("--window", type=int, default=1000, help="requests in flight at most (default 1000)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply before resending")
    p.add_argument("--retries", type=int, default=5, help="resends of an event answered RETRY or not answered")
    p.add_argument("--server-key", help="CURVE: the daemon's public key (Z85)")
    p.add_argument("--key-file", help="CURVE: this client's secret key file (NAME.key of yjlinkctl keygen)")
    p.add_argument("--json", action="store_true", help="print each reply as a JSON object with its line number")
    args = p.parse_args(argv)
    if args.window < 1 or args.retries < 0 or args.timeout <= 0:
        p.error("--window must be at least 1, --retries at least 0, --timeout above 0")
    if bool(args.server_key) != bool(args.key_file):
        p.error("CURVE needs both --server-key and --key-file")
    secret = None
    if args.key_file:
        with open(args.key_file) as f:
            secret = f.readline().strip()
    client = YJL1Client(args.endpoint, args.server_key, secret)
    try:
        # Bytes as they are: the daemon, not this client, judges the encoding (REJECT encoding).
        if args.file == "-":
            return Run(client, args, sys.stdout).run(sys.stdin.buffer)
        with open(args.file, "rb") as f:
            return Run(client, args, sys.stdout).run(f)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
