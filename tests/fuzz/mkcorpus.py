#!/usr/bin/python3
"""Seed-corpus pieces for tests/fuzz/ that Python writes best (run by
tests/fuzz/mkcorpus.sh; the output is checked in, so this runs only when the
seeds are to be regenerated).

  mkcorpus.py select N < sim lines       the N most varied FEED<TAB>JSON lines
  mkcorpus.py catalogue CORPUS_DIR       tests/integration/test_ingest.py's
                                         catalogue of malformed requests,
                                         at the fuzz clock

File layouts (see the targets): json/ and protobuf/ files are one feed byte
(feed number - 1) and the payload; framing/ files are a control byte (frame
count, flags) then frames 0..n-2 each with a 2-byte big-endian length, and
the last frame as the rest.
"""
import json
import os
import re
import sys
import time
import types

FUZZ_NOW = 1795348800  # 2026-11-22T12:00:00Z, FZ_NOW_US in fuzz_common.h
FEEDS = ["custody", "arrest", "voluntary_interview", "outcome"]
MAX_FILE = 70000       # the 1 MiB catalogue case stays out: too_large is reached at 64 KiB


def features(ev, prefix=""):
    out = set()
    if isinstance(ev, dict):
        for k, v in ev.items():
            p = prefix + k
            out.add(p)
            if k in ("status", "disposal", "gender", "code", "ethnicity", "summons", "looked_after") and not isinstance(v, (dict, list)):
                out.add("%s=%s" % (p, v))
            if isinstance(v, str) and re.search(r"[+-]\d\d:\d\d$", v):
                out.add(p + "~offset")
            out |= features(v, p + ".")
    elif isinstance(ev, list):
        out.add(prefix + "[%d]" % min(len(ev), 3))
        for it in ev:
            out |= features(it, prefix)
    return out


def select(n):
    lines = [l.rstrip("\n") for l in sys.stdin if "\t" in l]
    seen, chosen = set(), []
    per_feed = {f: 0 for f in FEEDS}
    # first the lines that bring something new, then fill every feed to 3
    for l in lines:
        feed, js = l.split("\t", 1)
        f = features(json.loads(js)) | {"feed=" + feed}
        if f - seen and len(chosen) < n:
            chosen.append(l)
            seen |= f
            per_feed[feed] += 1
    for l in lines:
        feed = l.split("\t", 1)[0]
        if l not in chosen and per_feed[feed] < 3:
            chosen.append(l)
            per_feed[feed] += 1
    for l in chosen:
        print(l)


def framing(frames, ctl_flags=0):
    out = bytearray([len(frames) | ctl_flags])
    for f in frames[:-1]:
        assert len(f) <= 0xFFFF
        out += len(f).to_bytes(2, "big") + f
    if frames:
        out += frames[-1]
    return bytes(out)


def safe(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def catalogue(outdir):
    # Every time the catalogue reads is the fuzz clock, so what it builds is
    # what the targets (fixed clock) judge the same way.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "integration"))
    time.time = lambda: float(FUZZ_NOW)
    os.getpid = lambda: 4242  # source ids "t-4242-N": the same files every run
    import datetime as real_dt

    class _Date(real_dt.date):
        @classmethod
        def today(cls):
            return real_dt.date(2026, 11, 22)

    shim = types.ModuleType("datetime")
    shim.__dict__.update(real_dt.__dict__)
    shim.date = _Date
    sys.modules["datetime"] = shim
    import test_ingest  # noqa: E402

    n_json = n_pb = n_fr = 0
    for name, frames, code, field in test_ingest.catalogue():
        base = "cat-%s-%s" % (code, safe(name))
        raw = framing(frames)
        if len(raw) <= MAX_FILE:
            with open(os.path.join(outdir, "framing", base), "wb") as f:
                f.write(raw)
            n_fr += 1
        if len(frames) != 4 or frames[0] != b"YJL1" or frames[1].decode("utf-8", "replace") not in FEEDS:
            continue
        if len(frames[3]) + 1 > MAX_FILE:
            continue
        fb = bytes([FEEDS.index(frames[1].decode())])
        if frames[2] == b"application/json":
            with open(os.path.join(outdir, "json", base), "wb") as f:
                f.write(fb + frames[3])
            n_json += 1
        elif frames[2] == b"application/x-protobuf":
            with open(os.path.join(outdir, "protobuf", base), "wb") as f:
                f.write(fb + frames[3])
            n_pb += 1

    # framing shapes the catalogue does not have: no frame, six frames, an
    # authenticated sender, a request sent twice (OK then DUP in one batch),
    # twice with a flush between, a force outside ingest.forces (forbidden)
    ev = json.dumps(test_ingest.custody_event()).encode()
    other = json.dumps(test_ingest.custody_event(force="E23000001")).encode()
    req = [b"YJL1", b"custody", b"application/json", ev]
    extra = {
        "shape-zero-frames": framing([]),
        "shape-six-frames": framing(req + [b"x", b"y"]),
        "shape-sender": framing(req, 8),
        "shape-twice": framing(req, 16),
        "shape-twice-flushed": framing([b"YJL1", b"custody", b"application/json",
                                        json.dumps(test_ingest.custody_event()).encode()], 16 | 32),
        "shape-forbidden-force": framing([b"YJL1", b"custody", b"application/json", other]),
        "shape-empty-frames": framing([b"", b"", b"", b""]),
    }
    for k, v in extra.items():
        with open(os.path.join(outdir, "framing", k), "wb") as f:
            f.write(v)
        n_fr += 1
    print("mkcorpus.py: catalogue: %d json, %d protobuf, %d framing" % (n_json, n_pb, n_fr), file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "select":
        select(int(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "catalogue":
        catalogue(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
