#!/usr/bin/python3
"""yjn1_subscriber.py: a reference YJN1 subscriber (interfaces.md §3,
"Durable subscription: protocol YJN1 over ZeroMQ") for integrators.

Python 3 and pyzmq only (Debian: python3-zmq). As a library:

    sub = YJN1Subscriber("tcp://127.0.0.1:7402", "children_services:E06000042", "/var/lib/mosaic/yjn1.cursor")
    sub.connect()
    while True:
        got = sub.recv_note(timeout_ms=1000)
        if got is None:
            continue
        number, note = got
        handle(note)            # make it durable on your side first ...
        sub.ack(number)         # ... then acknowledge: the cursor file, then ACK

As a command, it prints each note as one JSON line on stdout and
acknowledges it once printed:

    yjn1_subscriber.py ENDPOINT RECIPIENT CURSOR_FILE [--max-notes N] [--idle-exit S]

What it does for you:

- The cursor (the last number acknowledged) is kept in CURSOR_FILE, written
  atomically before each ACK, and sent with every HELLO, so a restart of
  either side resumes exactly: the daemon sends everything after it again,
  also what it sent before and never saw acknowledged.
- HELLO goes on every (re)connection (the socket monitor's handshake event):
  the daemon needs it after its own restart, when libzmq reconnects by itself.
  An ACK goes only on a connection that has had its HELLO (the daemon answers
  an ACK before HELLO with ERROR): ZMQ_IMMEDIATE keeps one from waiting in a
  dead connection's queue, and the monitor's disconnect event, read just
  before each ACK, stops one from reaching the next connection first. An ACK
  not sent is no loss: the cursor file has it and the next HELLO says it.
- Repeats are dropped: a note whose number is at or below what this object
  has already handed out (or acknowledged) is not handed out again, so a
  reconnect never shows the caller a note twice. Every note also carries a
  stable `notification_id` (or `digest_id`) for receivers that must dedupe
  across their own crashes between handling a note and acknowledging it.
- An ERROR from the daemon ends the connection (interfaces.md: "then nothing
  more on that connection"): YJN1Error is raised with the reason.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import zmq
import zmq.utils.monitor


class YJN1Error(Exception):
    """The daemon said ERROR; `reason` is its text."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class YJN1Subscriber:
    """One subscription: one recipient, one cursor file, one connection at a time."""

    def __init__(self, endpoint, recipient, cursor_file, context=None, heartbeat_ms=5000):
        self.endpoint = endpoint
        self.recipient = recipient
        self.cursor_file = cursor_file
        self.ctx = context or zmq.Context.instance()
        self.heartbeat_ms = heartbeat_ms
        self.sock = None
        self.monitor = None
        self.cursor = self.load_cursor()      # last number acknowledged
        self.delivered = self.cursor          # last number handed to the caller
        self.hellos = 0                       # HELLOs sent (one per connection made)
        self.hello_pending = False            # a HELLO could not go yet: retried while waiting
        self.greeted = False                  # this connection has had its HELLO: ACKs may go

    # --- the cursor file

    def load_cursor(self):
        try:
            with open(self.cursor_file) as f:
                text = f.read().strip()
        except FileNotFoundError:
            return 0
        return int(text) if text else 0

    def save_cursor(self, n):
        """Write n to the cursor file atomically (a crash leaves the old or the new value)."""
        d = os.path.dirname(os.path.abspath(self.cursor_file))
        fd, tmp = tempfile.mkstemp(prefix=".cursor-", dir=d)
        try:
            with os.fdopen(fd, "w") as f:
                f.write("%d\n" % n)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.cursor_file)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    # --- the connection

    def connect(self):
        """Connect; HELLO goes with the saved cursor as soon as the connection is up."""
        self.close()
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IMMEDIATE, 1)
        s.setsockopt(zmq.HEARTBEAT_IVL, self.heartbeat_ms)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * self.heartbeat_ms)
        s.setsockopt(zmq.HEARTBEAT_TTL, 3 * self.heartbeat_ms)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        # A HELLO waits at most this long for the new connection's pipe.
        s.setsockopt(zmq.SNDTIMEO, 1000)
        self.monitor = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        s.connect(self.endpoint)
        self.sock = s
        self.greeted = False

    def hello(self):
        """Say HELLO now, with the saved cursor (also done on every handshake)."""
        self.cursor = max(self.cursor, self.load_cursor())
        try:
            self.sock.send_multipart([b"YJN1", b"HELLO", self.recipient.encode(), b"%d" % self.cursor])
        except zmq.Again:
            self.hello_pending = True  # the connection went again: retried, and the next handshake says it
            return
        self.hello_pending = False
        self.greeted = True
        self.hellos += 1

    def reconnect(self):
        """Drop the connection and make a new one: HELLO with the saved cursor; the
        daemon sends again everything after it."""
        self.connect()

    def close(self, linger_ms=0):
        """Drop the connection; linger_ms lets a last ACK leave first (a clean stop)."""
        if self.sock is not None:
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.sock.close(linger_ms)
            self.sock = None
        if self.monitor is not None:
            self.monitor.close(0)
            self.monitor = None

    def _on_monitor(self):
        while True:
            try:
                ev = zmq.utils.monitor.recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.hello()
            elif ev["event"] == zmq.EVENT_DISCONNECTED:
                self.greeted = False
                self.hello_pending = False

    # --- notes

    def recv_note(self, timeout_ms=None):
        """The next new note as (number, dict), or None when none came within
        timeout_ms (None: wait for ever). Raises YJN1Error on ERROR."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        while True:
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if self.hello_pending:
                self.hello()
                left = 200 if left is None else min(left, 200)
            ready = dict(poller.poll(left))
            if self.monitor in ready:
                self._on_monitor()
            if self.sock in ready:
                frames = self.sock.recv_multipart()
                got = self._on_message(frames)
                if got is not None:
                    return got
            elif not ready and deadline is not None and time.monotonic() >= deadline:
                return None

    def _on_message(self, frames):
        if len(frames) >= 3 and frames[0] == b"YJN1" and frames[1] == b"ERROR":
            self.close()
            raise YJN1Error(frames[2].decode("utf-8", "replace"))
        if len(frames) != 4 or frames[0] != b"YJN1" or frames[1] != b"NOTE":
            return None  # not for us to guess at: ignored
        number = int(frames[2])
        if number <= self.delivered:
            return None  # a repeat after a reconnect: the caller has it already
        note = json.loads(frames[3])
        self.delivered = number
        return number, note

    def ack(self, number):
        """Everything up to number is handled: the cursor file first, then ACK
        (a crash between the two is healed by the next HELLO)."""
        if number > self.cursor:
            self.save_cursor(number)
            self.cursor = number
        self._on_monitor()
        if not self.greeted:
            return  # the HELLO to come carries the cursor
        try:
            self.sock.send_multipart([b"YJN1", b"ACK", b"%d" % number], zmq.NOBLOCK)
        except zmq.Again:
            pass  # no connection right now: the next HELLO carries the cursor


def main(argv=None):
    ap = argparse.ArgumentParser(description="Subscribe to a yjlinkd's YJN1 notes; print each as a JSON line.")
    ap.add_argument("endpoint", help="the daemon's notify.endpoint, e.g. tcp://127.0.0.1:7402")
    ap.add_argument("recipient", help="the recipient id, e.g. children_services:E06000042")
    ap.add_argument("cursor_file", help="where the last acknowledged number is kept")
    ap.add_argument("--max-notes", type=int, default=0, help="exit after this many notes (0: never)")
    ap.add_argument("--idle-exit", type=float, default=0, help="exit after this many seconds without a note (0: never)")
    a = ap.parse_args(argv)
    sub = YJN1Subscriber(a.endpoint, a.recipient, a.cursor_file)
    sub.connect()
    n = 0
    linger = 0
    try:
        while not a.max_notes or n < a.max_notes:
            got = sub.recv_note(timeout_ms=int(a.idle_exit * 1000) if a.idle_exit else None)
            if got is None:
                break
            number, note = got
            sys.stdout.write(json.dumps(note, separators=(",", ":")) + "\n")
            sys.stdout.flush()
            sub.ack(number)
            n += 1
        linger = 1000  # a clean stop: the last ACK may leave
    except YJN1Error as e:
        print("yjn1_subscriber: the daemon said ERROR: %s" % e.reason, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        sub.close(linger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
