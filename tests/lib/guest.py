"""A real Linux guest that lives across a chain of QEMU processes.

The guest is built by scripts/build-guest.sh (Debian's kernel and a
busybox initramfs running tests/guest/init): it prints a heartbeat with a
counter and its clocks on ttyS0 and suspends itself to S3 when "suspend"
arrives on ttyS1.  A Guest follows it from QEMU to QEMU (migration,
cprsave/cprload, savevm/loadvm): every QEMU that hosted it keeps its
serial log, and the heartbeat counter read across all of them, in order,
must go 1, 2, 3, ... with no gap and no restart.
"""

import os
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time

from qemu_env import QEMU, WORK, QEMUMachine, runstate, wait_event, \
    wait_for

GUEST_DIR = os.environ.get('GUEST_DIR') or os.path.join(WORK, 'guest')
KERNEL = os.path.join(GUEST_DIR, 'vmlinuz')
INITRD = os.path.join(GUEST_DIR, 'initrd.img')
MACHINE = 'pc-i440fx-7.2'

LINE = re.compile(r'^(READY|HB|SUSPENDING|RESUMED|BLOB|SUSPEND-FAILED)'
                  r'(?: (\S+))?(.*)$')
CLOCKS = re.compile(r'mono=(\d+) boot=([\d.]+) real=(\d+)')


def guest_built():
    return os.path.isfile(KERNEL) and os.path.isfile(INITRD)


def scratch_dir(prefix, need=1 << 30):
    """A temporary directory, in /dev/shm when it has @need bytes free
    (guest RAM files live there), else in the default temporary place."""
    base = None
    try:
        st = os.statvfs('/dev/shm')
        if st.f_bavail * st.f_frsize >= need:
            base = '/dev/shm'
    except OSError:
        pass
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def exit_on_sigterm():
    """Turn SIGTERM (the suite's timeout) into SystemExit, so that the
    finally blocks shut QEMU down and remove RAM files and namespaces."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def event_time(event):
    ts = event['timestamp']
    return ts['seconds'] + ts['microseconds'] / 1e6


class GuestError(Exception):
    pass


class Host:
    """One QEMU process that runs (or is about to receive) the guest."""

    def __init__(self, guest, name, binary=QEMU, extra=(), netns=None,
                 mem_path=None):
        self.guest = guest
        self.name = name
        self.netns = netns       # network namespace QEMU runs in
        self.dir = os.path.join(guest.tmp, name)
        os.mkdir(self.dir)
        self.log = os.path.join(self.dir, 'ttyS0.log')
        self.req_path = os.path.join(self.dir, 'ttyS1.sock')
        self.mem_path = mem_path or os.path.join(self.dir, 'ram')
        self.keep_ram = False    # another QEMU maps it next (cpr)
        self._req = None
        self._final = None       # lines of a QEMU that has ended
        self.binary = binary
        self.args = [
            '-accel', 'tcg', '-machine', f'{MACHINE},memory-backend=ram0',
            '-m', guest.mem, '-nic', 'none',
            '-global', 'PIIX4_PM.disable_s3=0',
            '-object', f'memory-backend-file,id=ram0,size={guest.mem},'
                       f'mem-path={self.mem_path},share=on',
            '-kernel', KERNEL, '-initrd', INITRD,
            '-append', f'console=ttyS0 quiet blob={guest.blob_mib}',
            '-chardev', f'file,id=s0,path={self.log}',
            '-serial', 'chardev:s0',
            '-chardev', f'socket,id=s1,path={self.req_path},server=on,'
                        'wait=off',
            '-serial', 'chardev:s1', *guest.extra, *extra]
        self.vm = QEMUMachine(binary, base_temp_dir=self.dir, name=name,
                              wrapper=(['ip', 'netns', 'exec', netns]
                                       if netns else []))
        self.vm.add_args(*self.args)

    def launch(self):
        self.vm.launch()
        return self

    def qmp(self, cmd, **args):
        return self.vm.qmp(cmd, **args)

    def cmd(self, cmd, **args):
        """A QMP command that must succeed; returns its 'return'."""
        r = self.vm.qmp(cmd, **args)
        if 'error' in r:
            raise GuestError(f'{self.name}: {cmd}: {r["error"]["desc"]}')
        return r['return']

    def hmp(self, line):
        return self.cmd('human-monitor-command', **{'command-line': line})

    def runstate(self):
        return runstate(self.vm)

    def event(self, name, timeout=60, match=None):
        try:
            return wait_event(self.vm, name, timeout, match)
        except TimeoutError as e:
            raise GuestError(f'{self.name}: {e}') from None

    def events(self):
        """Names of the QMP events received so far and not yet read."""
        return [e['event'] for e in self.vm.get_qmp_events(wait=False)]

    def request(self, text):
        """Send one request line to the guest's ttyS1."""
        if self._req is None:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.req_path)
            self._req = s
        self._req.sendall(text.encode() + b'\n')

    def lines(self):
        """Parsed guest lines of this host's log: (kind, arg, rest)."""
        if self._final is not None:
            return self._final
        try:
            with open(self.log, 'rb') as f:
                text = f.read().decode('ascii', 'replace')
        except FileNotFoundError:
            return []
        out = []
        for raw in text.split('\n')[:-1]:       # complete lines only
            m = LINE.match(raw.strip('\r'))
            if m:
                out.append((m.group(1), m.group(2), m.group(3)))
        return out

    def wait_line(self, kind, arg=None, timeout=60):
        def find():
            for line in self.lines():
                if line[0] == kind and (arg is None or line[1] == str(arg)):
                    return line
            return None
        try:
            return wait_for(find, timeout, f'{self.name}: guest line {kind}'
                            f'{"" if arg is None else " " + str(arg)}',
                            interval=0.1)
        except TimeoutError as e:
            raise GuestError(str(e)) from None

    def close(self):
        if self._req is not None:
            self._req.close()
            self._req = None

    def shutdown(self):
        self.close()
        try:
            self.vm.shutdown(timeout=30)
        except Exception:               # pylint: disable=broad-except
            self.vm.kill()
        self._ended()

    def kill(self):
        self.close()
        self.vm.kill()
        self._ended()

    def _ended(self):
        """The QEMU is gone: keep its guest lines, drop its RAM file."""
        self._final = None
        self._final = self.lines()
        if not self.keep_ram and os.path.exists(self.mem_path):
            os.unlink(self.mem_path)


class Guest:
    """The guest and the QEMUs that hosted it, in order."""

    def __init__(self, prefix, mem='256M', blob_mib=16, extra=()):
        self.tmp = scratch_dir(prefix)
        self.mem = mem
        self.blob_mib = blob_mib
        self.extra = list(extra)
        self.hosts = []          # hosts that ran the guest, in order
        self.others = []         # every other QEMU started (shut down too)
        self.suspends = 0
        self.blob = None
        self.pending = None      # SUSPEND event/line of the current S3
        self.cycles = []         # clock figures of each S3 cycle

    @property
    def host(self):
        return self.hosts[-1]

    def new_host(self, name, **kw):
        h = Host(self, name, **kw)
        self.others.append(h)
        return h

    def boot(self, name='boot', timeout=180, **kw):
        h = self.new_host(name, **kw).launch()
        self.adopt(h)
        ready = h.wait_line('READY', timeout=timeout)
        self.blob = ready[1].split('=', 1)[1]
        h.wait_line('HB', 2, timeout=60)
        return h

    def adopt(self, host):
        """host now runs the guest."""
        if host in self.others:
            self.others.remove(host)
        self.hosts.append(host)

    def lines(self):
        out = []
        for h in self.hosts:
            out.extend(h.lines())
        return out

    def heartbeats(self):
        return [int(arg) for kind, arg, _ in self.lines() if kind == 'HB']

    def check_heartbeat(self):
        """The counter went 1, 2, 3 ... across every host: no restart, no
        gap; returns its last value."""
        hb = self.heartbeats()
        if not hb:
            raise GuestError('no heartbeat at all')
        for i, n in enumerate(hb, 1):
            if n != i:
                raise GuestError(f'heartbeat {i} reads {n} '
                                 f'(sequence {hb[max(0, i - 3):i + 2]})')
        return hb[-1]

    def suspend(self, timeout=60, alarm=None):
        """Ask the guest to enter S3 (with its RTC armed to wake it @alarm
        seconds later); wait for SUSPEND and 'suspended'."""
        h = self.host
        self.suspends += 1
        h.request(f'suspend-alarm {alarm}' if alarm else 'suspend')
        k = self.suspends
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = wait_event(h.vm, 'SUSPEND', 0.5)
                break
            except TimeoutError:
                pass
            if any(kind == 'SUSPEND-FAILED' and arg == str(k)
                   for kind, arg, _ in h.lines()):
                raise GuestError(f'{h.name}: the guest could not suspend')
            if not h.vm.is_running():
                raise GuestError(f'{h.name}: QEMU exited')
            if time.monotonic() > deadline:
                raise GuestError(f'{h.name}: no SUSPEND event in '
                                 f'{timeout} s')
        line = h.wait_line('SUSPENDING', self.suspends, timeout=10)
        wait_for(lambda: h.runstate() == 'suspended', 30, 'suspended')
        self.pending = (event_time(event), line, self.check_heartbeat())
        return event

    def assert_asleep(self, host, seconds=1.0):
        """The guest prints nothing on host for a while and the host
        reports it suspended (or stopped while suspended): it was not
        woken behind the operator's back."""
        before = len(host.lines())
        time.sleep(seconds)
        after = host.lines()
        if len(after) != before:
            raise GuestError(f'{host.name}: guest printed {after[before:]} '
                             'while it should sleep')
        names = host.events()
        if 'WAKEUP' in names:
            raise GuestError(f'{host.name}: WAKEUP event nobody asked for')
        return names

    def assert_back_asleep(self, host, seconds=1.0):
        """As assert_asleep, for a VM just returned to 'suspended' (cont,
        an incoming migration, loadvm, cprload): its runstate events end
        with RESUME then SUSPEND, so that a manager that follows events
        (libvirt) sees the guest asleep, not running."""
        names = [n for n in self.assert_asleep(host, seconds)
                 if n in ('STOP', 'RESUME', 'SUSPEND', 'WAKEUP')]
        if names[-2:] != ['RESUME', 'SUSPEND']:
            raise GuestError(f'{host.name}: runstate events {names}, '
                             'expected RESUME then SUSPEND at the end')
        return names

    def wake(self, what, heartbeats=2, trigger=None):
        """system_wakeup (or @trigger()) on the current host; the guest
        must resume, find its RAM blob intact and go on counting.  Records
        and returns the clock figures of the S3 cycle."""
        h = self.host
        if trigger:
            trigger()
        else:
            h.cmd('system_wakeup')
        wakeup = h.event('WAKEUP', timeout=30)
        k = self.suspends
        resumed = h.wait_line('RESUMED', k, timeout=60)
        blob = h.wait_line('BLOB', k, timeout=120)
        if blob[2].split() != ['ok', self.blob]:
            raise GuestError(f'RAM blob changed across S3 cycle {k}: '
                             f'{blob[2].strip()}, was {self.blob}')
        if h.runstate() != 'running':
            raise GuestError(f'{h.name}: {h.runstate()} after wakeup')
        t_susp, line, last_hb = self.pending
        wait_for(lambda: len(self.heartbeats()) >= last_hb + heartbeats, 30,
                 'the heartbeat to go on', interval=0.1)
        self.check_heartbeat()
        c0 = [float(x) for x in CLOCKS.search(line[2]).groups()]
        c1 = [float(x) for x in CLOCKS.search(resumed[2]).groups()]
        cycle = {
            'what': what,
            'host_s': event_time(wakeup) - t_susp,
            'guest_s3_s': (c1[1] - c0[1]) - (c1[0] - c0[0]) / 1e9,
            'wall_jump_s': c1[2] - c0[2],
            'mono_s': (c1[0] - c0[0]) / 1e9,
        }
        self.cycles.append(cycle)
        self.pending = None
        return cycle

    def shutdown(self):
        for h in self.others + self.hosts:
            h.keep_ram = False
            try:
                h.shutdown()
            except Exception:           # pylint: disable=broad-except
                pass
        if os.environ.get('KEEP_TMP') != '1':
            shutil.rmtree(self.tmp, ignore_errors=True)


def set_caps(host, **caps):
    host.cmd('migrate-set-capabilities', capabilities=[
        {'capability': k.replace('_', '-'), 'state': v}
        for k, v in caps.items()])


def migration_status(host):
    return host.cmd('query-migrate').get('status')


def wait_migration(host, want=('completed',), timeout=300, dst=None):
    """Wait until the source's migration ends; it must end in @want.
    With @dst, a completed migration also waits for the destination to
    leave 'inmigrate' (it may still be loading when the source is done)."""
    done = ('completed', 'failed', 'cancelled')
    try:
        st = wait_for(lambda: (s if (s := migration_status(host)) in done
                               else None), timeout,
                      f'{host.name}: end of migration', interval=0.1)
    except TimeoutError as e:
        raise GuestError(str(e)) from None
    if st not in want:
        info = host.cmd('query-migrate')
        raise GuestError(f'{host.name}: migration {st}, expected '
                         f'{"/".join(want)}: {info.get("error-desc", "")}')
    if st == 'completed':
        # QEMU sets 'completed' in the migration thread; the source leaves
        # finish-migrate for postmigrate only when the main loop's
        # migration_iteration_finish() runs after it
        try:
            wait_for(lambda: host.runstate() != 'finish-migrate', 60,
                     f'{host.name}: the end of finish-migrate')
        except TimeoutError as e:
            raise GuestError(str(e)) from None
    if dst is not None and st == 'completed':
        try:
            wait_for(lambda: dst.runstate() != 'inmigrate', 120,
                     f'{dst.name}: end of the incoming migration')
        except TimeoutError as e:
            raise GuestError(str(e)) from None
    return host.cmd('query-migrate')


def start_migration(src, dst, uri, postcopy=False, params=None):
    """Point dst (started with -incoming defer) at uri and start
    migrating src there; returns the URI used.  A TCP URI with port 0
    takes the port the destination was given."""
    set_caps(src, events=True, postcopy_ram=postcopy)
    set_caps(dst, events=True, postcopy_ram=postcopy)
    if params:
        src.cmd('migrate-set-parameters', **params)
    dst.cmd('migrate-incoming', uri=uri)
    if uri.startswith('tcp:') and uri.endswith(':0'):
        addr = dst.cmd('query-migrate')['socket-address'][0]
        uri = f"tcp:{addr['host']}:{addr['port']}"
    src.cmd('migrate', uri=uri)
    return uri


def describe(cycle):
    return (f"host {cycle['host_s']:.2f} s between SUSPEND and WAKEUP; "
            f"guest wall clock +{cycle['wall_jump_s']:.0f} s, "
            f"counted {cycle['guest_s3_s']:.2f} s in S3, "
            f"monotonic +{cycle['mono_s']:.2f} s")


def jump_summary(cycles):
    """Distribution of (guest wall-clock jump - host elapsed) over cycles."""
    err = sorted(c['wall_jump_s'] - c['host_s'] for c in cycles)
    if not err:
        return 'no cycle'
    return (f'wall-clock jump minus host time over {len(err)} cycles: '
            f'min {err[0]:+.2f} s, median {statistics.median(err):+.2f} s, '
            f'max {err[-1]:+.2f} s')


class Tap:
    """TAP output for a chain of dependent steps: once one fails, the rest
    are reported failed too (they never ran)."""

    def __init__(self, plan):
        self.plan = plan
        self.n = 0
        self.broken = None
        self.failed = False      # a step of any chain failed
        print(f'1..{plan}', flush=True)

    def new_chain(self):
        """The next steps do not depend on the earlier ones: they run
        even if one of those failed (the run still fails)."""
        self.broken = None

    def step(self, name, fn, *args):
        self.n += 1
        if self.broken:
            print(f'not ok {self.n} - {name} (not run: {self.broken})',
                  flush=True)
            return None
        t0 = time.monotonic()
        try:
            detail = fn(*args)
        except Exception as e:          # pylint: disable=broad-except
            self.broken = f'step {self.n} failed'
            self.failed = True
            err = str(e).replace('\n', ' / ')
            print(f'not ok {self.n} - {name}: {type(e).__name__}: {err}',
                  flush=True)
            return None
        took = time.monotonic() - t0
        print(f'ok {self.n} - {name} ({took:.1f} s)', flush=True)
        if detail:
            for line in str(detail).split('\n'):
                print(f'# {line}', flush=True)
        return detail

    def skip(self, name, why):
        self.n += 1
        print(f'ok {self.n} - {name} # SKIP {why}', flush=True)

    def done(self):
        missing = self.plan - self.n
        while self.n < self.plan:
            self.n += 1
            print(f'not ok {self.n} - step never reached', flush=True)
        return 1 if self.failed or missing else 0
