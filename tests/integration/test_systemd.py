"""yjlinkd under systemd (interfaces.md §7; quality.md "Security").

- The shipped unit passes `systemd-analyze security --offline=true` at an
  exposure of 2.0 or lower.
- The sd_notify protocol, without systemd: the test is the service manager.
  It binds the NOTIFY_SOCKET datagram socket itself, starts the real daemon
  and checks READY=1 + STATUS=, WATCHDOG=1 at WATCHDOG_USEC/2, RELOADING=1 +
  MONOTONIC_USEC= then READY=1 on SIGHUP (also when the new config is
  refused: STATUS= then starts "RELOAD REFUSED"), STOPPING=1 and exit 0 on
  SIGTERM.
- Opt-in (YJ_TEST_REAL_SYSTEMD=1, root): boots a real systemd as PID 1 of
  private namespaces with throwaway overlays on /etc, /var and /usr/local,
  and runs the shipped unit in it with every sandbox option in force.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import yjtest

UNIT = os.path.join(yjtest.SOURCE, "systemd", "yjlinkd.service")
SYSUSERS = os.path.join(yjtest.SOURCE, "systemd", "yjlinkd.sysusers")
CONF = os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")
MAX_EXPOSURE = 2.0


class UnitSecurityTest(unittest.TestCase):

    def test_exposure_at_most_2(self):
        p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", UNIT],
                           capture_output=True, text=True, timeout=120)
        out = p.stdout + p.stderr
        m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out)
        self.assertIsNotNone(m, "no 'Overall exposure level' line:\n" + out)
        exposure = float(m.group(1))
        self.assertLessEqual(exposure, MAX_EXPOSURE,
                             "exposure %.1f > %.1f; failing checks:\n%s" %
                             (exposure, MAX_EXPOSURE, "\n".join(l for l in out.splitlines() if "\u2717" in l)))

    def test_unit_has_the_required_settings(self):
        with open(UNIT) as f:
            lines = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
        for want in ("Type=notify", "ExecStart=/usr/local/bin/yjlinkd --config /etc/yjlink/yjlinkd.conf",
                     "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=30s", "Restart=on-failure",
                     "TimeoutStopSec=30s", "StateDirectory=yjlink", "StateDirectoryMode=0700",
                     "RuntimeDirectory=yjlink", "RuntimeDirectoryMode=0750", "ConfigurationDirectory=yjlink",
                     "UMask=0077", "User=yjlink", "MemoryDenyWriteExecute=yes"):
            self.assertIn(want, lines)
        # The settings the daemon points at are the directories the unit creates.
        with open(CONF) as f:
            conf = f.read()
        self.assertIn('"/var/lib/yjlink/store"', conf)
        self.assertIn('"ipc:///run/yjlink/control.sock"', conf)
        # The user the unit names is the one sysusers.d creates.
        with open(SYSUSERS) as f:
            self.assertTrue(any(l.split()[:2] == ["u", "yjlink"] for l in f if not l.startswith("#")))


class Notify:
    """The service manager's end of NOTIFY_SOCKET: one AF_UNIX datagram socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.seen = []          # (monotonic time received, {KEY: VALUE}) in order

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        msg = {}
        for line in data.decode("utf-8", "replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                msg[k] = v
        self.seen.append((time.monotonic(), msg))
        return msg

    def wait_for(self, pred, timeout, what, proc=None):
        """The next message pred() accepts; skips the others (they stay in self.seen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(min(0.5, deadline - time.monotonic()))
            if msg is not None and pred(msg):
                return msg
            if proc is not None and proc.poll() is not None and msg is None:
                break
        raise AssertionError("no %s within %ss; got %s" % (what, timeout, [m for _, m in self.seen[-20:]]))

    def drain(self, seconds):
        """Everything sent in the next `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.recv(deadline - time.monotonic())
            if msg is not None:
                got.append(msg)
        return got

    def close(self):
        self.sock.close()


class NotifyProtocolTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjsd-")
        self.conf = os.path.join(self.dir, "yjlinkd.conf")
        shutil.copy(CONF, self.conf)
        self.notify = Notify(os.path.join(self.dir, "notify.sock"))
        self.daemon = yjtest.Daemon(workdir=self.dir, config=self.conf)

    def tearDown(self):
        self.daemon.kill()
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, **env_over):
        env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
            env.pop(k, None)
        env["NOTIFY_SOCKET"] = self.notify.path
        env.update(env_over)
        env = {k: v for k, v in env.items() if v is not None}
        d = self.daemon
        d.log = open(d.log_path, "ab")
        d.proc = subprocess.Popen(d.argv(), stdout=d.log, stderr=d.log, env=env)
        return d.proc

    def fail_with_log(self, e):
        raise AssertionError("%s\n--- yjlinkd log:\n%s" % (e, self.daemon.read_log())) from None

    def sighup(self):
        self.daemon.proc.send_signal(signal.SIGHUP)
        t0 = time.monotonic()
        reloading = self.notify.wait_for(lambda m: m.get("RELOADING") == "1", 10, "RELOADING=1")
        # MONOTONIC_USEC is CLOCK_MONOTONIC at the reload, the clock time.monotonic() reads.
        self.assertIn("MONOTONIC_USEC", reloading)
        usec = int(reloading["MONOTONIC_USEC"])
        self.assertLess(abs(usec / 1e6 - t0), 5.0, reloading)
        ready = self.notify.wait_for(lambda m: m.get("READY") == "1", 10, "READY=1 after RELOADING=1")
        self.assertIn("STATUS", ready)
        return ready

    def test_ready_watchdog_reload_refused_reload_and_stop(self):
        proc = self.start(WATCHDOG_USEC="2000000")
        try:
            ready = self.notify.wait_for(lambda m: m.get("READY") == "1", 20, "READY=1", proc)
        except AssertionError as e:
            self.fail_with_log(e)
        self.assertIn("STATUS", ready, "READY=1 comes with a STATUS= line")
        self.assertTrue(ready["STATUS"].strip())
        for part in ("events today ", "outbox ", "dead letters ", "unroutable ", "last digest "):
            self.assertIn(part, ready["STATUS"], "the one-line status names " + part.strip())
        self.assertFalse(ready["STATUS"].startswith("RELOAD REFUSED"), ready)
        # Listening means answering: the control socket works once READY=1 is out.
        code, _ = self.daemon.ctl_request("status")
        self.assertEqual(code, 0)

        # WATCHDOG_USEC=2 s: a ping every second from the main loop.
        msgs = self.notify.drain(3.0)
        pings = [m for m in msgs if m.get("WATCHDOG") == "1"]
        self.assertGreaterEqual(len(pings), 2, msgs)
        self.assertLessEqual(len(pings), 6, "far more pings than WATCHDOG_USEC/2 asks for: %s" % msgs)

        # SIGHUP with the same good file: RELOADING=1 (+MONOTONIC_USEC) then READY=1.
        ready = self.sighup()
        self.assertFalse(ready["STATUS"].startswith("RELOAD REFUSED"), ready)

        # A broken file: refused, old config kept, still READY=1, still serving.
        with open(self.conf, "a") as f:
            f.write("\nno_such_section = { x = 1; };\n")
        ready = self.sighup()
        self.assertTrue(ready["STATUS"].startswith("RELOAD REFUSED"), ready)
        self.assertIsNone(proc.poll(), "yjlinkd exited after a refused reload")
        code, st = self.daemon.ctl_request("status")
        self.assertEqual(code, 0, st)
        # The main loop still runs: the watchdog keeps coming.
        self.notify.wait_for(lambda m: m.get("WATCHDOG") == "1", 3, "WATCHDOG=1 after the refused reload")
        # The periodic STATUS= keeps saying so until a good reload.
        status = self.notify.wait_for(lambda m: "STATUS" in m and "READY" not in m, 8, "periodic STATUS=")
        self.assertTrue(status["STATUS"].startswith("RELOAD REFUSED"), status)

        # The file mended: the next reload is accepted and the mark goes away.
        shutil.copy(CONF, self.conf)
        ready = self.sighup()
        self.assertFalse(ready["STATUS"].startswith("RELOAD REFUSED"), ready)

        # SIGTERM: STOPPING=1, then exit 0.
        proc.send_signal(signal.SIGTERM)
        self.notify.wait_for(lambda m: m.get("STOPPING") == "1", 10, "STOPPING=1")
        self.assertEqual(proc.wait(timeout=30), 0, self.daemon.read_log())

    def test_no_watchdog_unless_asked_or_for_another_pid(self):
        for env in ({}, {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}):
            with self.subTest(env=env):
                proc = self.start(**env)
                try:
                    self.notify.wait_for(lambda m: m.get("READY") == "1", 20, "READY=1", proc)
                except AssertionError as e:
                    self.fail_with_log(e)
                msgs = self.notify.drain(2.5)
                self.assertFalse([m for m in msgs if "WATCHDOG" in m], msgs)
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=30), 0)
                self.daemon.log.close()

    def test_no_notify_socket_is_fine(self):
        proc = self.start(NOTIFY_SOCKET=None)
        try:
            self.daemon.wait_ready()
        finally:
            proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=30), 0)
        self.assertEqual(self.notify.drain(0.2), [])


# --- opt-in: the unit under a real systemd ------------------------------------------------

# Run as PID 1 of fresh pid/mount/net/uts/ipc/cgroup namespaces. Everything it
# writes lands in tmpfs-backed overlays or tmpfs mounts that vanish with the
# namespace; units that would touch host-global kernel state are masked and
# /proc/sys is read-only.
BOOT_SCRIPT = r"""
set -eu
exec >"$T/boot.log" 2>&1
mount --make-rprivate /
mkdir -p "$T/ov" && mount -t tmpfs tmpfs "$T/ov"
for d in etc var usr/local; do
  mkdir -p "$T/ov/up/$d" "$T/ov/work/$d"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/ov/up/$d,workdir=$T/ov/work/$d" "/$d"
done
mkdir -p /usr/local/bin /usr/local/lib/systemd/system /usr/local/lib/sysusers.d /etc/yjlink
cp "$YJLINKD" "$YJLINKCTL" "$YJLINK_SIM" /usr/local/bin/
cp "$UNIT" /usr/local/lib/systemd/system/yjlinkd.service
cp "$SYSUSERS" /usr/local/lib/sysusers.d/yjlink.conf
cp "$CONF" /etc/yjlink/yjlinkd.conf
chmod 0644 /etc/yjlink/yjlinkd.conf
for u in systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
  systemd-modules-load.service kmod-static-nodes.service systemd-timesyncd.service systemd-pstore.service \
  systemd-firstboot.service systemd-repart.service systemd-pcrphase.service systemd-pcrphase-sysinit.service \
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
  dev-hugepages.mount systemd-udevd.service systemd-udev-trigger.service systemd-hwdb-update.service \
  systemd-random-seed.service systemd-machine-id-commit.service systemd-tmpfiles-setup-dev.service \
  systemd-tmpfiles-setup.service systemd-journal-flush.service; do
  rm -f "/etc/systemd/system/sysinit.target.wants/$u"
  ln -sf /dev/null "/etc/systemd/system/$u"
done
printf '[Unit]\nDescription=yjlink test\nRequires=basic.target\nAfter=basic.target\nWants=yjlinkd.service\n' \
  > /etc/systemd/system/yjtest.target
: > /etc/machine-id
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
umount -R /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
exec env -i container=yjtest PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  "$SYSTEMD" --unit=yjtest.target --log-target=console --log-level=info
"""

SYSTEMD = "/lib/systemd/systemd"


def _cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return mnt
    return None


@unittest.skipUnless(os.environ.get("YJ_TEST_REAL_SYSTEMD") == "1", "set YJ_TEST_REAL_SYSTEMD=1 (root) to boot systemd")
class RealSystemdTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not os.path.exists(SYSTEMD) or not shutil.which("unshare") \
                or not shutil.which("nsenter") or not _cgroup2_mount():
            raise unittest.SkipTest("needs root, %s, unshare, nsenter and a cgroup2 mount" % SYSTEMD)
        cls.tmp = tempfile.mkdtemp(prefix="yjsd-boot-")
        # A cgroup of our own, so the namespace's systemd sees it as its root and
        # everything it creates is removed with it.
        cls.cgroup = os.path.join(_cgroup2_mount(), "yjtest-%d" % os.getpid())
        os.mkdir(cls.cgroup)
        script = os.path.join(cls.tmp, "boot.sh")
        with open(script, "w") as f:
            f.write(BOOT_SCRIPT)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "T": cls.tmp, "UNIT": UNIT, "SYSUSERS": SYSUSERS,
               "CONF": CONF, "YJLINKD": os.path.abspath(yjtest.YJLINKD),
               "YJLINKCTL": os.path.abspath(yjtest.YJLINKCTL), "YJLINK_SIM": os.path.abspath(yjtest.YJLINK_SIM),
               "SYSTEMD": SYSTEMD}
        procs = os.path.join(cls.cgroup, "cgroup.procs")

        def join_cgroup():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        cls.unshare = subprocess.Popen(
            ["unshare", "--pid", "--mount", "--net", "--uts", "--ipc", "--cgroup", "--fork", "--mount-proc",
             "/bin/sh", script], env=env, preexec_fn=join_cgroup, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.init = None
        deadline = time.time() + 30
        while time.time() < deadline and cls.init is None:
            try:
                with open("/proc/%d/task/%d/children" % (cls.unshare.pid, cls.unshare.pid)) as f:
                    kids = f.read().split()
                if kids and os.readlink("/proc/%s/exe" % kids[0]).endswith("/systemd"):
                    cls.init = int(kids[0])
            except OSError:
                pass
            time.sleep(0.1)
        if cls.init is None:
            cls.tearDownClass()
            raise AssertionError("systemd did not start in the namespace")
        deadline = time.time() + 60
        while time.time() < deadline:
            state = cls.sh("systemctl is-system-running 2>/dev/null || true").strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.3)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "init", None):
            subprocess.run(["nsenter", "-t", str(cls.init), "-a", "systemctl", "poweroff"],
                           capture_output=True, timeout=30)
        if getattr(cls, "unshare", None):
            try:
                cls.unshare.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.unshare.kill()
                cls.unshare.wait()
        if getattr(cls, "cgroup", None):
            for root, dirs, _ in sorted(os.walk(cls.cgroup), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(root)
                except OSError:
                    pass
        shutil.rmtree(getattr(cls, "tmp", "/nonexistent"), ignore_errors=True)

    @classmethod
    def sh(cls, cmd, check=False):
        p = subprocess.run(["nsenter", "-t", str(cls.init), "-a", "/bin/sh", "-c", cmd], capture_output=True,
                           text=True, timeout=120)
        if check and p.returncode:
            raise AssertionError("%s: exit %d\n%s%s" % (cmd, p.returncode, p.stdout, p.stderr))
        return p.stdout

    def show(self, *props):
        out = self.sh("systemctl show yjlinkd " + " ".join("-p " + p for p in props))
        return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)

    def wait_status(self, pred, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.show("ActiveState", "SubState", "StatusText", "NRestarts", "Result")
            if pred(s):
                return s
            time.sleep(0.2)
        raise AssertionError("unit state %s\n%s" % (s, self.sh("journalctl -u yjlinkd --no-pager -n 30")))

    def test_unit_runs_reloads_and_stops(self):
        s = self.wait_status(lambda s: s["ActiveState"] == "active" and s["StatusText"], 30)
        self.assertEqual(s["NRestarts"], "0", self.sh("journalctl -u yjlinkd --no-pager -n 30"))
        self.assertEqual(self.show("WatchdogUSec")["WatchdogUSec"], "30s")
        # Directories and files as the unit and quality.md ask.
        ls = self.sh("stat -c '%a %U:%G %n' /var/lib/yjlink /var/lib/yjlink/store /var/lib/yjlink/store/data.mdb "
                     "/run/yjlink /run/yjlink/control.sock", check=True)
        self.assertIn("700 yjlink:yjlink /var/lib/yjlink\n", ls)
        self.assertIn("700 yjlink:yjlink /var/lib/yjlink/store\n", ls)
        self.assertIn("600 yjlink:yjlink /var/lib/yjlink/store/data.mdb\n", ls)
        self.assertIn("750 yjlink:yjlink /run/yjlink\n", ls)
        self.assertIn("660 yjlink:yjlink /run/yjlink/control.sock\n", ls)
        # An operator in group yjlink uses yjlinkctl.
        self.sh("useradd -M -G yjlink yjop", check=True)
        out = self.sh("runuser -u yjop -- yjlinkctl --config /etc/yjlink/yjlinkd.conf status", check=True)
        self.assertIn("version:", out)
        # Events go in over loopback TCP and go out through libcurl, by webhook and
        # SMTP, to the receivers the default config names (127.0.0.1:8088, :2525).
        here = os.path.dirname(os.path.abspath(__file__))
        http_log, maildir = os.path.join(self.tmp, "http.jsonl"), os.path.join(self.tmp, "mail")
        rxs = [subprocess.Popen(["nsenter", "-t", str(self.init), "-n", "/usr/bin/python3", os.path.join(here, script)]
                                + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
               for script, args in (("http_receiver.py", ["--port", "8088", "--log", http_log]),
                                    ("smtp_receiver.py", ["--port", "2525", "--maildir", maildir]))]
        try:
            for rx in rxs:
                self.assertTrue(rx.stdout.readline().startswith("READY"))
            out = self.sh("yjlink-sim --days 2", check=True)
            self.assertRegex(out, r"ok=[1-9]\d* dup=0 reject=0 retry=0")
            deadline = time.time() + 30
            while time.time() < deadline:
                posts = os.path.exists(http_log) and os.path.getsize(http_log) > 0
                mails = os.path.isdir(maildir) and any(n.endswith(".eml") for n in os.listdir(maildir))
                if posts and mails:
                    break
                time.sleep(0.2)
            self.assertTrue(posts and mails, "webhook %s, email %s\n%s" % (
                posts, mails, self.sh("journalctl -u yjlinkd --no-pager -n 30 -o cat")))
        finally:
            for rx in rxs:
                rx.terminate()
                rx.wait(timeout=30)
                rx.stdout.close()
        # The audit names the operator's real uid.
        uid = self.sh("id -u yjop", check=True).strip()
        self.sh("runuser -u yjop -- yjlinkctl --config /etc/yjlink/yjlinkd.conf show 1 --reason test", check=True)
        self.assertIn("by uid %s " % uid, self.sh("journalctl -u yjlinkd --no-pager -o cat"))
        # The libmicrohttpd thread serves metrics inside the sandbox.
        out = self.sh("curl -s -w ' %{http_code}' http://127.0.0.1:9402/healthz")
        self.assertTrue(out.endswith(" 200"), out)
        self.assertIn("yjlink_", self.sh("curl -s http://127.0.0.1:9402/metrics"))
        # A user outside the group gets nowhere.
        self.sh("useradd -M yjother", check=True)
        self.assertEqual(self.sh("runuser -u yjother -- yjlinkctl --config /etc/yjlink/yjlinkd.conf status "
                                 ">/dev/null 2>&1; echo $?").strip(), "1")
        # Reload: good, then refused, then good again; the main PID never changes.
        pid = self.show("MainPID")["MainPID"]
        self.sh("systemctl reload yjlinkd", check=True)
        self.wait_status(lambda s: s["SubState"] == "running" and not s["StatusText"].startswith("RELOAD REFUSED"))
        self.sh("echo 'no_such_section = { x = 1; };' >> /etc/yjlink/yjlinkd.conf; systemctl reload yjlinkd",
                check=True)
        self.wait_status(lambda s: s["SubState"] == "running" and s["StatusText"].startswith("RELOAD REFUSED"))
        self.sh("sed -i '/no_such_section/d' /etc/yjlink/yjlinkd.conf; systemctl reload yjlinkd", check=True)
        self.wait_status(lambda s: s["SubState"] == "running" and not s["StatusText"].startswith("RELOAD REFUSED"))
        self.assertEqual(self.show("MainPID")["MainPID"], pid)
        # A config holding secrets is root:yjlink 0640; the service still reads it.
        self.sh("chown root:yjlink /etc/yjlink/yjlinkd.conf && chmod 0640 /etc/yjlink/yjlinkd.conf && "
                "systemctl restart yjlinkd", check=True)
        self.wait_status(lambda s: s["ActiveState"] == "active" and s["StatusText"], 30)
        self.assertNotEqual(self.show("MainPID")["MainPID"], pid)
        # Stop: clean exit 0 within TimeoutStopSec, runtime directory gone.
        self.sh("systemctl stop yjlinkd", check=True)
        s = self.show("Result", "ExecMainStatus", "ActiveState")
        self.assertEqual((s["ActiveState"], s["Result"], s["ExecMainStatus"]), ("inactive", "success", "0"))
        self.assertIn("stopped cleanly", self.sh("journalctl -u yjlinkd --no-pager -o cat"))
        self.assertEqual(self.sh("test -e /run/yjlink && echo present || echo gone").strip(), "gone")


if __name__ == "__main__":
    unittest.main(verbosity=2)
