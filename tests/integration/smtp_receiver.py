#!/usr/bin/python3
"""smtp_receiver.py: a real SMTP server for yjlink's tests (aiosmtpd).

Run by /usr/bin/python3: Debian's python3-aiosmtpd belongs to it.

As a module:

    rx = SmtpReceiver(port=0)      # 0: any free port, read rx.port after start()
    rx.start()
    rx.mode = "451"                # answer the end of DATA with 451
    ... rx.messages ...            # [{mail_from, rcpt_tos, data, time}], accepted ones only
    rx.max_message_bytes = 65536   # answer 552 to any larger message, whatever the mode; None: off
    ... rx.refused ...             # [{mail_from, rcpt_tos, data, time, reply}], refused at DATA
    rx.stop()

As a script (the C unit tests spawn it; it prints "READY <port>" once it
listens and runs until SIGTERM/SIGINT):

    smtp_receiver.py --port P --mode 250 --maildir DIR [--auth user:password] [--max-bytes N] [--delay S]

Each accepted message is written to DIR/NNNN.eml (the bytes as received,
dot-unstuffed, CRLF kept), then one JSON line is appended to DIR/index.jsonl,
so a reader that sees the index line finds the whole file.

Modes: "250" accept; "451" / "550" / "552" answer the end of DATA with that
code (the message is not kept); "rcpt451" / "rcpt550" answer every RCPT with
it; "down" does not listen at all (connections are refused).

Hostile relays (the end-of-DATA wait that blocked yjlinkd's loop, issue 11):
"slow" answers the end of DATA only after rx.delay seconds (constructor
delay=, --delay S; default 3), then accepts as "250" does; "hang" never
answers the end of DATA: the session waits until the client goes away or
the receiver stops (the message is not kept). In both, a message whose end
of DATA arrived and is not answered yet is counted in rx.waiting, appended
to rx.waited ({mail_from, rcpt_tos, data, time}) and, with a maildir, one JSON line
is appended to DIR/waiting.jsonl, so a test in another process can see that
a delivery is stuck at the end of DATA. Changing the mode does not release
sessions already waiting: a relay that hung on a connection stays hung on it.

Size limit: with max_message_bytes = N (constructor, attribute or
--max-bytes; default None, no limit), a message whose DATA (as received,
dot-unstuffed, CRLF kept) is longer than N bytes is answered "552 5.3.4
Message too big" at the end of DATA and not kept, as a relay with a size
limit does; smaller ones go by the mode. Every message refused at the end of
DATA (by the mode or by its size) is appended to rx.refused with the reply
it got (never to rx.messages, nor to the maildir).
"""

import argparse
import asyncio
import faulthandler
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# AUTH without TLS is what a test wants; aiosmtpd warns about it on every connection.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
logging.getLogger("mail.log").setLevel(logging.ERROR)

MODES = ("250", "451", "550", "552", "rcpt451", "rcpt550", "down", "slow", "hang")

_REPLIES = {
    "451": "451 4.3.0 Temporary failure (test receiver)",
    "550": "550 5.1.1 Mailbox unavailable (test receiver)",
    "552": "552 5.3.4 Message too big for system (test receiver)",
}
TOO_BIG = _REPLIES["552"]


class _Handler:
    """aiosmtpd hooks: answer by the receiver's current mode."""

    def __init__(self, receiver):
        self.rx = receiver

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mode = self.rx.mode
        if mode.startswith("rcpt"):
            return _REPLIES[mode[4:]]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        mode = self.rx.mode
        data = bytes(envelope.original_content)
        limit = self.rx.max_message_bytes
        if mode in _REPLIES:
            reply = _REPLIES[mode]
        elif limit is not None and len(data) > limit:
            reply = TOO_BIG
        elif mode in ("slow", "hang"):
            self.rx._wait_begin(envelope.mail_from, list(envelope.rcpt_tos), data)
            try:
                if mode == "hang":
                    await asyncio.Event().wait()   # never set: cancelled when the client goes
                await asyncio.sleep(self.rx.delay)
            finally:
                self.rx._wait_end()
            self.rx._store(envelope.mail_from, list(envelope.rcpt_tos), data)
            return "250 2.0.0 Message accepted"
        else:
            self.rx._store(envelope.mail_from, list(envelope.rcpt_tos), data)
            return "250 2.0.0 Message accepted"
        self.rx._refuse(envelope.mail_from, list(envelope.rcpt_tos), data, reply)
        return reply


class SmtpReceiver:
    """An SMTP server on 127.0.0.1 in its own thread and asyncio loop."""

    def __init__(self, port=0, mode="250", maildir=None, auth=None, max_message_bytes=None, delay=3.0):
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % (MODES,))
        self.host = "127.0.0.1"
        self.port = port           # the real port once start() has bound
        self.messages = []         # accepted: {mail_from, rcpt_tos, data, time}
        self.refused = []          # refused at the end of DATA: {mail_from, rcpt_tos, data, time, reply}
        self.max_message_bytes = max_message_bytes  # larger messages get 552; None: no limit
        self.maildir = maildir     # also write NNNN.eml + index.jsonl there, if set
        self.auth = auth           # "user:password": require AUTH with exactly these
        self.delay = delay         # "slow": seconds before the end of DATA is answered
        self.waiting = 0           # "slow"/"hang": sessions whose end of DATA is not answered yet
        self.waited = []           # every end of DATA that had to wait: {mail_from, rcpt_tos, data, time}
        self._mode = mode
        self._lock = threading.Lock()
        self._loop = None
        self._thread = None
        self._server = None
        if maildir:
            os.makedirs(maildir, exist_ok=True)

    # --- mode: changing to or from "down" closes or reopens the listener
    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, value):
        if value not in MODES:
            raise ValueError("mode must be one of %s" % (MODES,))
        old, self._mode = self._mode, value
        if self._loop is None:
            return
        if value == "down" and old != "down":
            self._call(self._close())
        elif value != "down" and old == "down":
            self._call(self._listen())

    def start(self):
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run():
            asyncio.set_event_loop(self._loop)
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="smtp-receiver", daemon=True)
        self._thread.start()
        ready.wait()
        if self.port == 0:
            # Bind once even in "down" mode, so the port is known and stays ours to reuse.
            self._call(self._listen())
            if self._mode == "down":
                self._call(self._close())
        elif self._mode != "down":
            self._call(self._listen())
        return self

    def stop(self):
        if self._loop is None:
            return
        self._call(self._close())
        self._call(self._cancel_clients())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_for(self, n, timeout=10.0):
        """Wait until at least n messages were accepted; returns them."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.02)
        raise TimeoutError("%d messages after %.1fs, wanted %d" % (len(self.messages), timeout, n))

    def wait_for_refused(self, n, timeout=10.0):
        """Wait until at least n messages were refused at the end of DATA; returns them."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if len(self.refused) >= n:
                    return list(self.refused)
            time.sleep(0.02)
        raise TimeoutError("%d refused after %.1fs, wanted %d" % (len(self.refused), timeout, n))

    # --- inside the receiver's loop
    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _factory(self):
        kw = {}
        if self.auth:
            kw = dict(auth_required=True, auth_require_tls=False, authenticator=self._authenticate)
        # hostname given: the default looks up the FQDN, which can stall without DNS.
        return SMTP(_Handler(self), hostname="localhost", loop=self._loop, **kw)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, _, password = self.auth.partition(":")
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    async def _listen(self):
        if self._server is not None:
            return
        self._server = await self._loop.create_server(self._factory, self.host, self.port,
                                                      reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self):
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def _cancel_clients(self):
        # Sessions still open would be reported as "Task was destroyed but it is pending".
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wait_for_waiting(self, n, timeout=10.0):
        """Wait until at least n ends of DATA have been left waiting ("slow", "hang")."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if len(self.waited) >= n:
                    return list(self.waited)
            time.sleep(0.02)
        raise TimeoutError("%d waited after %.1fs, wanted %d" % (len(self.waited), timeout, n))

    def _wait_begin(self, mail_from, rcpt_tos, data):
        now = time.time()
        with self._lock:
            self.waiting += 1
            self.waited.append(dict(mail_from=mail_from, rcpt_tos=rcpt_tos, data=data, time=now))
            if self.maildir:
                line = dict(mail_from=mail_from, rcpt_tos=rcpt_tos, time=now)
                with open(os.path.join(self.maildir, "waiting.jsonl"), "a") as f:
                    f.write(json.dumps(line) + "\n")

    def _wait_end(self):
        with self._lock:
            self.waiting -= 1

    def _refuse(self, mail_from, rcpt_tos, data, reply):
        with self._lock:
            self.refused.append(dict(mail_from=mail_from, rcpt_tos=rcpt_tos, data=data, time=time.time(),
                                     reply=reply))

    def _store(self, mail_from, rcpt_tos, data):
        now = time.time()
        with self._lock:
            n = len(self.messages) + 1
            self.messages.append(dict(mail_from=mail_from, rcpt_tos=rcpt_tos, data=data, time=now))
            if self.maildir:
                name = "%04d.eml" % n
                path = os.path.join(self.maildir, name)
                with open(path + ".tmp", "wb") as f:
                    f.write(data)
                os.rename(path + ".tmp", path)
                line = dict(file=name, mail_from=mail_from, rcpt_tos=rcpt_tos, size=len(data), time=now)
                with open(os.path.join(self.maildir, "index.jsonl"), "a") as f:
                    f.write(json.dumps(line) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1, 0 = any free one")
    ap.add_argument("--mode", default="250", choices=MODES)
    ap.add_argument("--maildir", default=None, help="write NNNN.eml and index.jsonl here")
    ap.add_argument("--auth", default=None, help="require AUTH with user:password")
    ap.add_argument("--max-bytes", type=int, default=None, help="answer 552 to messages larger than this")
    ap.add_argument("--delay", type=float, default=3.0, help='"slow": seconds before answering the end of DATA')
    args = ap.parse_args(argv)

    rx = SmtpReceiver(port=args.port, mode=args.mode, maildir=args.maildir, auth=args.auth,
                      max_message_bytes=args.max_bytes, delay=args.delay)
    stop = threading.Event()
    # SIGUSR1: every thread's stack on stderr (test_out_email asks for it
    # when a receiver does not exit on SIGTERM)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    rx.start()
    print("READY %d" % rx.port, flush=True)
    while not stop.wait(0.5):
        pass
    rx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
