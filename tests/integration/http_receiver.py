#!/usr/bin/python3
"""A real HTTP receiver for the webhook tests (stdlib only).

As a module:

    rx = HttpReceiver()          # port 0: the kernel picks a free one
    rx.start()
    ... POST to rx.url ...
    rx.received                  # [{"method", "path", "headers", "body", "time", "status"}, ...]
    rx.verify_signature(secret)  # every request's X-Yjlink-Signature checks out
    rx.snapshot()                # a copy of rx.received, taken under the lock
    HttpReceiver.header(entry, "x-yjlink-digest-id")   # a header of one request, any case; None if absent
    rx.stop()

rx.mode says how to answer the next requests: an HTTP status (200, 500,
400, 408, 429, ...), "hang" (read the request, never answer until stop()),
"slow" (read the request, answer 200 after rx.delay seconds, a slow
receiver; a stop() meanwhile ends the wait unanswered), or "close" (read
the request, close the connection without a word). rx.in_flight counts
requests read and not answered yet ("hang", "slow"); each entry's
"answered" says whether its answer went out whole.
rx.script, when set, is a list of modes used one per request in order
before falling back to rx.mode (e.g. [503, 503, 200]).

As a script, for tests written in C:

    /usr/bin/python3 http_receiver.py --port P --mode 200 --log FILE

writes one JSON line per request to FILE (method, path, headers, body as
UTF-8 text and base64, time, status; with --secret S also signature_ok),
flushed before the answer goes out, and prints "READY <port>" on stdout
once it listens (--port 0: the kernel picks one). SIGTERM stops it.
"""

import argparse
import base64
import hashlib
import hmac
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_MAX_S = 600  # a hung request gives up by itself eventually


class _Server(ThreadingHTTPServer):
    # A burst of concurrent deliveries must not overflow the accept queue
    # (the default of 5 makes the kernel drop SYNs, i.e. 1 s stalls).
    request_queue_size = 256
    daemon_threads = True
    # Do not join handler threads at close: one blocked on a connection its
    # client abandoned half-way must not keep the receiver from stopping.
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that drops a connection it was waiting on ("hang",
        # "slow": a daemon stopping) is no error of the receiver's.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients may keep connections open, as real receivers do.
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def _answer(self):
        rx = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        mode = rx._next_mode()
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "body": body,
            "time": time.time(),
            "status": mode,
            "answered": False,
        }
        rx._record(entry)
        if mode in ("hang", "slow"):
            with rx._lock:
                rx.in_flight += 1
            try:
                stopped = rx._stopping.wait(HANG_MAX_S if mode == "hang" else rx.delay)
            finally:
                with rx._lock:
                    rx.in_flight -= 1
            if mode == "hang" or stopped:
                self.close_connection = True
                return
            mode = 200
        if mode == "close":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status = int(mode)
        reply = json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        try:
            self.wfile.write(reply)
            self.wfile.flush()
        except OSError:
            return      # the client went away first: not answered
        with rx._lock:
            entry["answered"] = True

    do_POST = _answer
    do_PUT = _answer
    do_GET = _answer


class HttpReceiver:
    """An HTTP server on 127.0.0.1 recording every request it gets."""

    def __init__(self, port=0, mode=200, log=None, secret=None, delay=1.0):
        self.port = port
        self.delay = delay          # "slow": seconds before a request is answered
        self.in_flight = 0          # "hang"/"slow": requests read, not answered yet
        self.secret = secret
        self.mode = mode
        self.script = []
        self.received = []
        self._log = log
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def start(self):
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.receiver = self
        self.port = self._server.server_address[1]
        # A short poll interval makes stop() quick (tests start many receivers).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _next_mode(self):
        with self._lock:
            if self.script:
                return self.script.pop(0)
            return self.mode

    def _record(self, entry):
        with self._lock:
            self.received.append(entry)
            if self._log:
                line = dict(entry)
                line["body_b64"] = base64.b64encode(entry["body"]).decode()
                line["body"] = entry["body"].decode("utf-8", "replace")
                if self.secret is not None:
                    line["signature_ok"] = self._check(self.secret, entry)
                self._log.write(json.dumps(line) + "\n")
                self._log.flush()

    def wait_for(self, n, timeout=10.0):
        """Wait until n requests arrived; returns whether they did."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                if len(self.received) >= n:
                    return True
            time.sleep(0.01)
        return False

    def snapshot(self):
        """A copy of the requests received so far (the list grows from other threads)."""
        with self._lock:
            return list(self.received)

    @staticmethod
    def header(entry, name, default=None):
        """Header `name` of one received request, matched without regard to case."""
        name = name.lower()
        for k, v in entry["headers"].items():
            if k.lower() == name:
                return v
        return default

    def verify_signature(self, secret, entry=None):
        """True when the request (default: every request so far) carries
        X-Yjlink-Signature: sha256=<hex HMAC-SHA256 of its body with secret>."""
        with self._lock:
            entries = [entry] if entry is not None else list(self.received)
        return bool(entries) and all(self._check(secret, e) for e in entries)

    @staticmethod
    def _check(secret, entry):
        if isinstance(secret, str):
            secret = secret.encode()
        want = "sha256=" + hmac.new(secret, entry["body"], hashlib.sha256).hexdigest()
        got = {k.lower(): v for k, v in entry["headers"].items()}.get("x-yjlink-signature", "")
        return hmac.compare_digest(want, got)


def _mode(text):
    return text if text in ("hang", "slow", "close") else int(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", type=_mode, default=200)
    ap.add_argument("--script", default="", help="comma-separated modes for the first requests")
    ap.add_argument("--log", help="append one JSON line per request here")
    ap.add_argument("--secret", help="also log whether each signature checks out with this secret")
    ap.add_argument("--delay", type=float, default=1.0, help='"slow": seconds before each answer')
    args = ap.parse_args()

    log = open(args.log, "a", encoding="utf-8") if args.log else None
    rx = HttpReceiver(port=args.port, mode=args.mode, log=log, secret=args.secret, delay=args.delay)
    if args.script:
        rx.script = [_mode(m) for m in args.script.split(",")]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    rx.start()
    print("READY %d" % rx.port, flush=True)
    while not done.wait(0.05):
        pass
    rx.stop()
    if log:
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
