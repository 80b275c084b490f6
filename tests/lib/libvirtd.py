"""libvirtd instances of their own, and the Linux guest seen through them.

A Libvirtd runs Debian's libvirtd as root in a private mount namespace
where its configuration, run, state, log and cache directories
(/etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt,
/var/cache/libvirt) are directories of the test: two of them on one
machine are two hosts to libvirt (each has its own host_uuid and
sockets), and the machine's own libvirt, if any, is not touched.  Every
operation goes through virsh, as an operator types it; `virsh event
--all --loop` records the domain events of each daemon.

An LvGuest is the end-to-end tests' Linux guest (tests/guest/init):
heartbeat and event lines on ttyS0 (a file per daemon, appended to by
every QEMU that runs the guest there), requests on ttyS1 (a unix socket
per daemon).
"""

import os
import re
import signal
import socket
import subprocess
import time

from qemu_env import wait_for
from guest import INITRD, KERNEL, LINE

VIRSH = 'virsh'
LIBVIRTD = '/usr/sbin/libvirtd'
DIRS = ('etc', 'run', 'lib', 'log', 'cache')
MOUNTS = (('etc', '/etc/libvirt'), ('run', '/run/libvirt'),
          ('lib', '/var/lib/libvirt'), ('log', '/var/log/libvirt'),
          ('cache', '/var/cache/libvirt'))

QEMU_CONF = '''\
# what a root libvirtd needs in a container without systemd
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
seccomp_sandbox = 0
stdio_handler = "file"
'''

LIBVIRTD_CONF = '''\
auth_unix_rw = "none"
auth_unix_ro = "none"
unix_sock_group = "root"
host_uuid = "{uuid}"
log_outputs = "2:file:/var/log/libvirt/libvirtd.log"
'''

EVENT = re.compile(r"^\S+ \S+: event '([\w-]+)' for domain '([^']*)'"
                   r"(?:: (.*))?$")
# the events the tests follow; migration progress and job statistics
# are not part of a domain's state
FOLLOWED = ('lifecycle', 'pm-suspend', 'pm-wakeup', 'reboot')


class VirshError(Exception):
    pass


def ensure_qemu_user():
    """libvirt's QEMU driver does not load without a libvirt-qemu user
    and group (libvirt-daemon-system creates them; the tests install
    only the daemon and its QEMU driver)."""
    if subprocess.run(['getent', 'group', 'libvirt-qemu'],
                      capture_output=True, check=False).returncode:
        subprocess.run(['groupadd', '-r', 'libvirt-qemu'], check=True)
    if subprocess.run(['getent', 'passwd', 'libvirt-qemu'],
                      capture_output=True, check=False).returncode:
        subprocess.run(['useradd', '-r', '-g', 'libvirt-qemu', '-M',
                        '-d', '/var/lib/libvirt', '-s', '/usr/sbin/nologin',
                        'libvirt-qemu'], check=True)


class Libvirtd:
    """One libvirtd (a "host"), its directories under @tmp/@name."""

    def __init__(self, tmp, name, uuid):
        self.name = name
        self.dir = os.path.join(tmp, name)
        self.uuid = uuid
        self.uri = f'qemu+unix:///system?socket={self.dir}/run/libvirt-sock'
        self.proc = None
        self.watch = None
        self._events_at = 0
        self.events_log = os.path.join(self.dir, 'events.log')
        for d in DIRS:
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        with open(os.path.join(self.dir, 'etc', 'qemu.conf'), 'w',
                  encoding='ascii') as f:
            f.write(QEMU_CONF)
        with open(os.path.join(self.dir, 'etc', 'libvirtd.conf'), 'w',
                  encoding='ascii') as f:
            f.write(LIBVIRTD_CONF.format(uuid=uuid))

    def start(self):
        binds = ' && '.join(
            f'mkdir -p {target} && mount --bind {self.dir}/{d} {target}'
            for d, target in MOUNTS)
        script = f'{binds} && exec {LIBVIRTD} -p /run/libvirt/libvirtd.pid'
        with open(os.path.join(self.dir, 'libvirtd.out'), 'ab') as out:
            self.proc = subprocess.Popen(   # pylint: disable=R1732
                ['unshare', '--mount', '--propagation', 'private',
                 'sh', '-c', script], stdout=out, stderr=out,
                stdin=subprocess.DEVNULL, start_new_session=True)
        def up():
            if self.proc.poll() is not None:
                raise VirshError(f'{self.name}: libvirtd exited with status '
                                 f'{self.proc.returncode}, see '
                                 f'{self.dir}/libvirtd.out')
            return self.try_virsh('version')[0] == 0
        wait_for(up, 60, f'{self.name}: libvirtd to answer', interval=0.2)
        with open(self.events_log, 'ab') as out:
            self.watch = subprocess.Popen(  # pylint: disable=R1732
                [VIRSH, '-c', self.uri, 'event', '--all', '--loop',
                 '--timestamp'], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        # give the watcher a moment to register, then take the log as read
        time.sleep(0.5)
        self.events()
        return self

    def stop(self):
        """Stop libvirtd (its QEMUs go on running, as on a real host)."""
        if self.watch is not None:
            self.watch.terminate()
            self.watch.wait(timeout=10)
            self.watch = None
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def try_virsh(self, *args, timeout=300):
        """(exit status, stdout, stderr) of virsh -c URI ARGS."""
        r = subprocess.run([VIRSH, '-c', self.uri, *args],
                           capture_output=True, text=True, timeout=timeout,
                           check=False)
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def virsh(self, *args, timeout=300):
        rc, out, err = self.try_virsh(*args, timeout=timeout)
        if rc:
            raise VirshError(f'{self.name}: virsh {" ".join(args)}: '
                             f'{err or out}')
        return out

    def refused(self, *args):
        """virsh ARGS must fail: returns its error message (the text
        after the last 'error: ' line prefix)."""
        rc, out, err = self.try_virsh(*args)
        if rc == 0:
            raise VirshError(f'{self.name}: virsh {" ".join(args)} was '
                             f'accepted: {out}')
        lines = [ln[len('error: '):] for ln in err.split('\n')
                 if ln.startswith('error: ')]
        return lines[-1] if lines else err

    def state(self, dom):
        """libvirt's state and reason, as `virsh domstate --reason`."""
        return self.virsh('domstate', '--reason', dom)

    def wait_state(self, dom, want, timeout=60):
        try:
            wait_for(lambda: self.state(dom) == want, timeout,
                     f'{self.name}: domain {want}', interval=0.1)
        except TimeoutError:
            raise VirshError(f'{self.name}: domain is '
                             f'"{self.state(dom)}", expected "{want}" '
                             f'within {timeout} s') from None

    def qemu_status(self, dom):
        """QEMU's own runstate, by query-status through libvirt."""
        out = self.virsh('qemu-monitor-command', dom,
                         '{"execute": "query-status"}')
        m = re.search(r'"status":\s*"([\w-]+)"', out)
        if not m:
            raise VirshError(f'{self.name}: query-status: {out}')
        return m.group(1)

    def events(self):
        """The followed domain events recorded since the last call, e.g.
        'lifecycle: Resumed Unpaused', 'pm-suspend'."""
        try:
            with open(self.events_log, 'rb') as f:
                f.seek(self._events_at)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b'\n') + 1
        self._events_at += end
        out = []
        for raw in data[:end].decode('utf-8', 'replace').split('\n'):
            m = EVENT.match(raw)
            if m and m.group(1) in FOLLOWED:
                out.append(f'{m.group(1)}: {m.group(3)}' if m.group(3)
                           else m.group(1))
        return out

    def wait_events(self, want, timeout=15):
        """The events that arrive are exactly @want (in order)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            got += self.events()
            if len(got) >= len(want) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(0.3)
        got += self.events()
        if got != want:
            raise VirshError(f'{self.name}: events {got}, expected {want}')
        return got

    def qemu_pids(self):
        """The QEMU processes of this daemon that are alive (by their pid
        files; a file may outlive its process)."""
        d = os.path.join(self.dir, 'run', 'qemu')
        pids = []
        for n in os.listdir(d) if os.path.isdir(d) else []:
            if not n.endswith('.pid'):
                continue
            try:
                with open(os.path.join(d, n), encoding='ascii') as f:
                    pid = int(f.read().strip())
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    if b'qemu-system' in f.read():
                        pids.append(pid)
            except (OSError, ValueError):
                pass
        return pids

    def cleanup(self):
        """Destroy and undefine every domain, stop libvirtd, kill any
        QEMU it left; for the end of a run, also a failed one."""
        if self.proc is not None and self.proc.poll() is None:
            rc, out, _ = self.try_virsh('list', '--all', '--name',
                                        timeout=30)
            for dom in out.split() if rc == 0 else []:
                self.try_virsh('destroy', dom, timeout=60)
                self.try_virsh('undefine', '--managed-save', dom,
                               timeout=60)
        pids = self.qemu_pids()
        try:
            self.stop()
        except Exception:               # pylint: disable=broad-except
            pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


DOMAIN_XML = '''\
<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet blob={blob}</cmdline>
  </os>
  <features><acpi/></features>
  <pm>
    <suspend-to-mem enabled='yes'/>
    <suspend-to-disk enabled='no'/>
  </pm>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
{emulator}    <serial type='file'>
      <source path='{log}' append='on'/>
      <target port='0'/>
    </serial>
    <serial type='unix'>
      <source mode='bind' path='{sock}'/>
      <target port='1'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
'''


class LvGuest:
    """The Linux guest as libvirt domain @name; its ttyS0 log and ttyS1
    socket have one path per daemon (@tag), under @tmp."""

    def __init__(self, tmp, name, uuid, blob_mib=16):
        self.tmp = tmp
        self.name = name
        self.uuid = uuid
        self.blob_mib = blob_mib
        self.blob = None
        self.suspends = 0
        self.logs = []
        self.boots = 1          # boots seen so far (a reset reboots it)
        self.skip = {}          # log -> lines printed before the reset

    def log(self, tag):
        return os.path.join(self.tmp, f'{self.name}-{tag}-ttyS0.log')

    def sock(self, tag):
        return os.path.join(self.tmp, f'{self.name}-{tag}-ttyS1.sock')

    def xml(self, tag, emulator=None):
        if self.log(tag) not in self.logs:
            self.logs.append(self.log(tag))
        emu = f'    <emulator>{emulator}</emulator>\n' if emulator else ''
        return DOMAIN_XML.format(name=self.name, uuid=self.uuid,
                                 kernel=KERNEL, initrd=INITRD,
                                 blob=self.blob_mib, emulator=emu,
                                 log=self.log(tag), sock=self.sock(tag))

    def migratable_xml(self, daemon, from_tag, to_tag):
        """The running domain's migratable XML with the serial paths of
        the destination (the source's cleanup deletes its own socket)."""
        if self.log(to_tag) not in self.logs:
            self.logs.append(self.log(to_tag))
        xml = daemon.virsh('dumpxml', '--migratable', self.name)
        xml = xml.replace(self.log(from_tag), self.log(to_tag))
        xml = xml.replace(self.sock(from_tag), self.sock(to_tag))
        path = os.path.join(self.tmp, f'{self.name}-to-{to_tag}.xml')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(xml)
        return path

    def request(self, tag, text):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.sock(tag))
            s.sendall(text.encode() + b'\n')
        finally:
            s.close()

    @staticmethod
    def _parse(path):
        """(kind, arg, rest) of the complete guest lines of log @path, and
        whether it ends in a line cut short (a running guest migrated in
        the middle of a line)."""
        try:
            with open(path, 'rb') as f:
                text = f.read().decode('ascii', 'replace')
        except FileNotFoundError:
            return [], False
        out = []
        for raw in text.split('\n')[:-1]:
            m = LINE.match(raw.strip('\r'))
            if m:
                out.append((m.group(1), m.group(2), m.group(3)))
        return out, bool(text) and not text.endswith('\n')

    def lines(self, everything=False):
        """The guest lines of every log (only those printed since the last
        begin_reset(), unless @everything), and the number of logs that
        end in a line cut short."""
        out, cut = [], 0
        for path in self.logs:
            parsed, partial = self._parse(path)
            cut += partial
            out += parsed if everything else parsed[self.skip.get(path, 0):]
        return out, cut

    def all_boots(self):
        """How many times the guest printed READY, in every log."""
        return sum(1 for ln in self.lines(True)[0] if ln[0] == 'READY')

    def begin_reset(self):
        """The guest (asleep, printing nothing) is about to be reset: from
        now on only the lines printed after this count."""
        self.skip = {path: len(self._parse(path)[0]) for path in self.logs}

    def find(self, kind, arg=None):
        for line in self.lines()[0]:
            if line[0] == kind and (arg is None or line[1] == str(arg)):
                return line
        return None

    def wait_line(self, kind, arg=None, timeout=60):
        what = f'guest line {kind}' + ('' if arg is None else f' {arg}')
        return wait_for(lambda: self.find(kind, arg), timeout, what,
                        interval=0.1)

    def heartbeat(self):
        """The last heartbeat, after checking that the guest never
        rebooted (one READY) and never counted twice or skipped (a gap
        only where a log ends in a cut line)."""
        # the lines of the current boot (since the reset, if rebooted)
        lines, cut = self.lines(everything=self.boots == 1)
        ready = self.all_boots()
        if ready != self.boots:
            raise VirshError(f'guest printed READY {ready} times, '
                             f'expected {self.boots}: it rebooted')
        if self.boots > 1 and sum(1 for ln in lines if ln[0] == 'READY') != 1:
            raise VirshError('no READY since the reset')
        hb = [int(ln[1]) for ln in lines if ln[0] == 'HB']
        if not hb:
            raise VirshError('no heartbeat')
        if len(set(hb)) != len(hb):
            raise VirshError('heartbeat counted twice: the guest ran from '
                             'an older state')
        missing = set(range(1, max(hb) + 1)) - set(hb)
        if len(missing) > cut:
            raise VirshError(f'heartbeats missing: {sorted(missing)[:5]}')
        return max(hb)

    def boot(self):
        ready = self.wait_line('READY', timeout=180)
        self.blob = ready[1].split('=', 1)[1]
        self.wait_line('HB', 1, timeout=60)
        self.assert_moving()

    def rebooted(self, timeout=240):
        """The guest boots again (after begin_reset() and a reset): a new
        READY, a new RAM blob, its heartbeat from 1; no resume from S3 in
        between."""
        def resumes():
            return sum(1 for ln in self.lines()[0] if ln[0] == 'RESUMED')

        def booted():
            if resumes() != resumed:
                raise VirshError('the guest resumed from S3 instead of '
                                 'booting')
            return self.all_boots() == self.boots + 1

        resumed = resumes()
        wait_for(booted, timeout, 'the guest to boot again', interval=0.2)
        self.boots += 1
        self.suspends = 0
        old = self.blob
        self.boot()
        if self.blob == old:
            raise VirshError('the same RAM blob after the reboot')

    def assert_moving(self, timeout=30):
        first = self.heartbeat()
        wait_for(lambda: self.heartbeat() >= first + 2, timeout,
                 'the heartbeat to move', interval=0.2)
        return self.heartbeat()

    def assert_still(self, seconds=2.0):
        first = self.heartbeat()
        time.sleep(seconds)
        last = self.heartbeat()
        if last != first:
            raise VirshError(f'heartbeat moved {first} -> {last} while the '
                             'guest should sleep or be stopped')
        return last

    def suspend(self, tag, timeout=60):
        """Ask the guest (on daemon @tag) to enter S3; wait until it says
        it goes."""
        self.suspends += 1
        self.request(tag, 'suspend')
        self.wait_line('SUSPENDING', self.suspends, timeout=timeout)

    def assert_resumed(self, timeout=120):
        """After a wake-up: the guest came back from S3 with its RAM
        blob intact and counts on."""
        k = self.suspends
        self.wait_line('RESUMED', k, timeout=60)
        blob = self.wait_line('BLOB', k, timeout=timeout)
        if blob[2].split() != ['ok', self.blob]:
            raise VirshError(f'RAM blob changed across S3 cycle {k}: '
                             f'{blob[2].strip()}, was {self.blob}')
        return self.assert_moving()
