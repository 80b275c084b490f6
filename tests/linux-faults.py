#!/usr/bin/env python3
"""Faults while a suspended Linux guest is being moved.

The guest of tests/linux-guest.py, suspended to S3, goes through:

  - migrate_cancel of a throttled migration (8 MiB/s) just after it
    starts, at half and at four fifths of the bytes a full migration
    sends; and once while the guest is stopped (paused, flag set);
  - the destination QEMU killed (SIGKILL) mid-stream;
  - the connection cut: source and destination run in two network
    namespaces joined by a veth pair, whose link is taken down mid-stream
    (tcp_retries2 lowered in the namespaces so that TCP gives up in
    seconds rather than minutes); root only;
  - a migration stream written with exec:, whose globalstate section is
    mutated (name without NUL, unknown name, flags 2 and 255, cut short)
    and fed to incoming QEMUs: each refuses it with exit status 1 and an
    error, and the guest never starts there; the unmutated stream loads
    suspended.  The source, in postmigrate, gets 'cont': the guest is
    suspended there again (not woken);
  - cprsave to a full filesystem (a 128 KiB tmpfs: refused after the
    VM was stopped, STOP, RESUME, SUSPEND) and to a read-only one (refused
    before anything stops); no file left behind; root only (the tmpfs
    are mounted in a private mount namespace);
  - cprload of a truncated cprsave file: refused, the new QEMU stays in
    prelaunch, then loads the intact file.
    (The cprsave rows are skipped on a QEMU without cprsave: the 10.2
    and 10.0 lines.)

After each fault the source (or the untouched QEMU) must be in the state
it had, hold the guest asleep, and wake it: the guest resumes, its RAM
blob is intact and its heartbeat counter goes on without gap or restart.
Prints TAP.
"""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from qemu_env import QEMU, globalstate_at, malformed_globalstate, \
    wait_for  # noqa: E402
from guest import Guest, GuestError, Host, Tap, describe, exit_on_sigterm, \
    guest_built, jump_summary, migration_status, start_migration, \
    wait_migration  # noqa: E402

INNER = '--in-mount-namespace'
BANDWIDTH = 8 << 20             # bytes/s of the throttled migrations
FAST = {'max-bandwidth': 1 << 30}


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


class NetPair:
    """Two network namespaces joined by a veth link, or (without root)
    the host's loopback for both sides and no link to cut."""

    ADDR = {'a': '192.0.2.1', 'b': '192.0.2.2'}

    def __init__(self, enabled):
        self.ns = None
        if not enabled:
            return
        tag = f'qsus{os.getpid()}'
        ns = {'a': tag + 'a', 'b': tag + 'b'}
        try:
            self.ns = ns            # close() deletes what was added
            for side in ns.values():
                sh('ip', 'netns', 'add', side)
            sh('ip', 'link', 'add', 'veth-a', 'netns', ns['a'], 'type',
               'veth', 'peer', 'name', 'veth-b', 'netns', ns['b'])
            for s, name in ns.items():
                sh('ip', '-n', name, 'addr', 'add', f'{self.ADDR[s]}/24',
                   'dev', f'veth-{s}')
                sh('ip', '-n', name, 'link', 'set', 'lo', 'up')
                sh('ip', '-n', name, 'link', 'set', f'veth-{s}', 'up')
                sh('ip', 'netns', 'exec', name, 'sh', '-c',
                   'echo 3 >/proc/sys/net/ipv4/tcp_retries2')
        except (OSError, subprocess.CalledProcessError) as e:
            err = getattr(e, 'stderr', b'') or b''
            print(f'# no network namespaces ({e} {err.decode().strip()}): '
                  'loopback only')
            self.close()

    def side_of(self, host):
        if not self.ns:
            return None
        return 'a' if host.netns == self.ns['a'] else 'b'

    def other(self, host):
        """(netns, address) for a destination across the link."""
        if not self.ns:
            return None, '127.0.0.1'
        side = 'b' if self.side_of(host) == 'a' else 'a'
        return self.ns[side], self.ADDR[side]

    def link(self, host, state):
        s = self.side_of(host)
        sh('ip', '-n', self.ns[s], 'link', 'set', f'veth-{s}', state)

    def close(self):
        if self.ns:
            for name in self.ns.values():
                subprocess.run(['ip', 'netns', 'del', name],
                               capture_output=True, check=False)
        self.ns = None


class Faults:
    def __init__(self, g, net):
        self.g = g
        self.net = net
        self.ref_bytes = None
        self.port = 4700

    def dest(self, name, src, extra=()):
        netns, addr = self.net.other(src)
        self.port += 1
        port = self.port if netns else 0
        dst = self.g.new_host(name, netns=netns,
                              extra=['-incoming', 'defer', *extra]).launch()
        return dst, f'tcp:{addr}:{port}'

    def boot(self):
        ns = self.net.ns['a'] if self.net.ns else None
        self.g.boot(netns=ns)
        return (f'booted in {"network namespace " + ns if ns else "the host"}'
                f', heartbeat at {self.g.check_heartbeat()}')

    def reference(self):
        """One unthrottled migration: the byte count the faults are
        placed against, and proof that the path works."""
        g = self.g
        g.suspend()
        src = g.host
        dst, uri = self.dest('reference', src)
        uri = start_migration(src, dst, uri, params=FAST)
        info = wait_migration(src, dst=dst)
        self.ref_bytes = info['ram']['transferred']
        g.adopt(dst)
        src.shutdown()
        expect(dst, 'suspended')
        g.assert_asleep(dst)
        cycle = g.wake('reference')
        return (f'{self.ref_bytes / 2 ** 20:.1f} MiB over {uri}; '
                f'{describe(cycle)}')

    def fault(self, name, at, action, want, stopped=False):
        """Migrate the suspended guest at BANDWIDTH; once @at of the
        reference bytes went, do @action(src, dst); the migration must
        end @want and the source as it was."""
        g = self.g
        g.suspend()
        src = g.host
        if stopped:
            src.cmd('stop')
            src.event('STOP', timeout=10)
        before = src.runstate()
        dst, uri = self.dest(name, src)
        start_migration(src, dst, uri, params={'max-bandwidth': BANDWIDTH})
        goal = at * self.ref_bytes

        def reached():
            info = src.cmd('query-migrate')
            if info.get('status') in ('completed', 'failed', 'cancelled'):
                raise GuestError(f'migration {info["status"]} before the '
                                 'fault')
            sent = info.get('ram', {}).get('transferred', 0)
            return (sent if sent >= goal else None) if goal else -1
        sent = max(wait_for(reached, 120, 'migration progress',
                            interval=0.05), 0)
        what = action(src, dst)
        wait_migration(src, want=(want,), timeout=180)
        err = src.cmd('query-migrate').get('error-desc', '')
        expect(src, before)
        g.assert_asleep(src)
        dst_end = self.finish_dest(dst)
        if stopped:
            src.cmd('cont')
            src.event('RESUME', timeout=10)
            src.event('SUSPEND', timeout=10)
            expect(src, 'suspended')
        cycle = g.wake(name)
        return (f'{what} after {sent / 2 ** 20:.1f} MiB: migration {want}'
                f'{" (" + err + ")" if err else ""}, source {before}'
                f'{", cont -> suspended" if stopped else ""}; '
                f'destination {dst_end}; woken: {describe(cycle)}')

    def finish_dest(self, dst):
        """What became of a destination whose source gave up."""
        if dst.vm.is_running():
            try:
                wait_for(lambda: not dst.vm.is_running(), 30,
                         'the destination to exit')
            except TimeoutError:
                state = dst.runstate()
                dst.kill()
                if state != 'inmigrate':
                    raise GuestError(f'destination is {state}') from None
                return 'still waiting in inmigrate (killed)'
        rc = dst.vm.exitcode()
        dst.kill()
        if dst.lines():
            raise GuestError('the guest ran on the destination')
        return f'exited {rc}'

    # actions

    @staticmethod
    def cancel(src, _dst):
        src.cmd('migrate_cancel')
        return 'migrate_cancel'

    @staticmethod
    def kill_dest(_src, dst):
        os.kill(dst.vm.get_pid(), signal.SIGKILL)
        return 'destination killed'

    def cut(self, src, dst):
        self.net.link(dst, 'down')
        try:
            wait_for(lambda: migration_status(src) == 'failed', 120,
                     'the migration to fail')
        finally:
            self.net.link(dst, 'up')
        return "destination's end of the link down"

    def stream(self):
        """exec: migration to a file; cont on the source afterwards."""
        g = self.g
        g.suspend()
        src = g.host
        path = os.path.join(g.tmp, 'stream')
        src.cmd('migrate-set-parameters', **FAST)
        src.cmd('migrate', uri=f'exec:cat > {path}')
        wait_migration(src)
        expect(src, 'postmigrate')
        src.cmd('cont')
        expect(src, 'suspended')
        g.assert_asleep(src)
        with open(path, 'rb') as f:
            self.data = f.read()
        self.at = globalstate_at(self.data)
        # the unmutated stream loads, suspended (a copy: not adopted)
        copy = g.new_host('stream-copy', extra=['-incoming',
                                                f'exec:cat {path}']).launch()
        wait_for(lambda: copy.runstate() == 'suspended', 60,
                 'the stream to load')
        g.assert_asleep(copy, 0.5)
        copy.shutdown()
        return (f'{len(self.data) / 2 ** 20:.1f} MiB stream; source '
                'postmigrate, cont -> suspended; the stream loads suspended')

    def refused(self, i, desc, stream, text):
        path = os.path.join(self.g.tmp, f'bad{i}.stream')
        with open(path, 'wb') as f:
            f.write(stream)
        h = Host(self.g, f'bad{i}', extra=['-incoming', f'exec:cat {path}'])
        try:
            r = subprocess.run([QEMU, *h.args, '-display', 'none', '-vga',
                                'none'], capture_output=True, text=True,
                               timeout=60, check=False)
        except subprocess.TimeoutExpired:
            raise GuestError(f'{desc}: accepted, QEMU still running after '
                             '60 s') from None
        finally:
            os.unlink(path)
            if os.path.exists(h.mem_path):
                os.unlink(h.mem_path)
        err = ' / '.join(r.stderr.strip().split('\n')[:2])
        if r.returncode != 1 or text not in r.stderr:
            raise GuestError(f'{desc}: exit {r.returncode}, "{err}"')
        if h.lines():
            raise GuestError(f'{desc}: the guest ran')
        return f'exit 1, "{err}"'

    def wake_after_stream(self):
        return describe(self.g.wake('exec: stream, cont'))

    def cprsave_refused(self, d, text, want_events):
        """cprsave into directory @d (a small or read-only tmpfs) must
        fail with @text, emit @want_events, leave no file there and the
        guest suspended."""
        g = self.g
        g.suspend()
        h = g.host
        h.vm.get_qmp_events(wait=False)
        r = h.qmp('cprsave', file=os.path.join(d, 'state.cpr'),
                  mode='reboot')
        if 'error' not in r:
            raise GuestError(f'cprsave into {d} succeeded')
        err = r['error']['desc']
        events = [e['event'] for e in h.vm.get_qmp_events(wait=False)
                  if e['event'] in ('STOP', 'RESUME', 'SUSPEND',
                                    'SHUTDOWN')]
        left = os.listdir(d)
        if text not in err or events != want_events or left:
            raise GuestError(f'"{err}", events {events}, files {left}')
        expect(h, 'suspended')
        g.assert_asleep(h)
        cycle = g.wake('cprsave refused')
        return (f'"{err}", events {" ".join(events) or "none"}, no file '
                f'left; {describe(cycle)}')

    def cprload_truncated(self):
        g = self.g
        g.suspend()
        old = g.host
        state = os.path.join(g.tmp, 'state.cpr')
        old.keep_ram = True
        old.cmd('cprsave', file=state, mode='reboot')
        old.vm.wait(timeout=60)
        if old.vm.exitcode() != 0:
            raise GuestError(f'exit {old.vm.exitcode()} after cprsave')
        with open(state, 'rb') as f:
            data = f.read()
        cut = state + '.cut'
        with open(cut, 'wb') as f:
            f.write(data[:len(data) // 2])
        new = g.new_host('cprload', extra=['-S'], mem_path=old.mem_path,
                         netns=old.netns).launch()
        r = new.qmp('cprload', file=cut)
        if 'error' not in r:
            raise GuestError('cprload of a truncated file succeeded')
        err = r['error']['desc']
        expect(new, 'prelaunch')
        if new.lines():
            raise GuestError('the guest ran after the failed cprload')
        new.cmd('cprload', file=state)
        g.adopt(new)
        expect(new, 'suspended')
        g.assert_asleep(new)
        cycle = g.wake('cprload after a truncated file')
        return (f'truncated ({len(data) // 2} of {len(data)} bytes): '
                f'"{err}", QEMU in prelaunch; intact file loaded, suspended;'
                f' {describe(cycle)}')


def expect(host, want):
    got = host.runstate()
    if got != want:
        raise GuestError(f'{host.name}: runstate {got}, expected {want}')


def main():
    exit_on_sigterm()
    root = os.geteuid() == 0 and INNER in sys.argv
    if os.geteuid() == 0 and INNER not in sys.argv:
        # root: go on in a private mount namespace for the tmpfs mounts,
        # if this machine allows one
        if subprocess.run(['unshare', '--mount', 'true'], check=False,
                          capture_output=True).returncode == 0:
            r = subprocess.run(['unshare', '--mount', sys.executable,
                                os.path.abspath(__file__), INNER],
                               check=False)
            return r.returncode
        print('# unshare --mount not allowed: no filesystem cases')
    mutations = len(malformed_globalstate(bytes(64), 0))
    tap = Tap(14 + mutations)
    if not guest_built():
        print('Bail out! no guest: run scripts/build-guest.sh '
              '(make check does)')
        return 1
    net = g = None
    fs = {}
    try:
        net = NetPair(root)
        g = Guest('linux-faults-')
        f = Faults(g, net)
        if root:
            # mounted before any QEMU starts, so that each QEMU (ip netns
            # exec gives it a mount namespace of its own) sees them
            sh('mount', '--make-rprivate', '/')
            for name, opts in (('full', 'size=128k'), ('ro', 'ro,size=4m')):
                fs[name] = os.path.join(g.tmp, name)
                os.mkdir(fs[name])
                sh('mount', '-t', 'tmpfs', '-o', opts, 'tmpfs', fs[name])
        tap.step('Linux guest boots', f.boot)
        tap.step('reference migration, suspended, wakes', f.reference)
        for label, at in (('just after the start', 0),
                          ('at half the bytes', 0.5),
                          ('at four fifths of the bytes', 0.8)):
            tap.step(f'migrate_cancel {label}: source suspended, wakes',
                     f.fault, f'cancel{int(at * 100)}', at, f.cancel,
                     'cancelled')
        tap.step('migrate_cancel of a stopped suspended guest: paused, '
                 'cont -> suspended, wakes', f.fault, 'cancel-stopped', 0.3,
                 f.cancel, 'cancelled', True)
        tap.step('destination killed mid-stream: source suspended, wakes',
                 f.fault, 'dest-killed', 0.3, f.kill_dest, 'failed')
        if net.ns:
            tap.step('connection cut (veth down): migration fails, source '
                     'suspended, wakes', f.fault, 'cut', 0.3, f.cut,
                     'failed')
        else:
            tap.skip('connection cut', 'needs root for network namespaces')
        tap.step('exec: stream of a suspended guest; cont on the source',
                 f.stream)
        if tap.broken:
            cases = [(f'mutation {i}', b'', '') for i in range(mutations)]
        else:
            cases = malformed_globalstate(f.data, f.at)
        for i, (desc, stream, text) in enumerate(cases):
            tap.step(f'malformed globalstate, {desc}: refused', f.refused, i,
                     desc, stream, text)
        tap.step('source wakes after the stream was taken',
                 f.wake_after_stream)
        # cprsave/cprload are the 7.2 line's; the newer lines live-update
        # with upstream's migrate mode=cpr-reboot instead
        cpr = bool(g.hosts) and any(c['name'] == 'cprsave' for c in
                                    g.host.cmd('query-commands'))
        no_cpr = 'no cprsave in this QEMU (migrate mode=cpr-reboot instead)'
        for name, text, events, label in (
                ('full', 'No space left on device',
                 ['STOP', 'RESUME', 'SUSPEND'],
                 'full filesystem: refused after the stop'),
                ('ro', 'Read-only file system', [],
                 'read-only filesystem: refused, nothing stopped')):
            if not cpr:
                tap.skip(f'cprsave to a {label}', no_cpr)
            elif root:
                tap.step(f'cprsave to a {label}, source suspended, wakes',
                         f.cprsave_refused, fs[name], text, events)
            else:
                tap.skip(f'cprsave to a {label}',
                         'needs root and a mount namespace for tmpfs')
        if cpr:
            tap.step('cprload of a truncated file refused, intact file '
                     'loads, wakes', f.cprload_truncated)
        else:
            tap.skip('cprload of a truncated file', no_cpr)
        tap.step('heartbeat 1..N across every QEMU, RAM blob intact',
                 lambda: (f'{len(g.hosts)} QEMUs, heartbeat 1..'
                          f'{g.check_heartbeat()}, {g.suspends} S3 cycles\n'
                          f'{jump_summary(g.cycles)}'))
    finally:
        for d in fs.values():
            subprocess.run(['umount', d], capture_output=True, check=False)
        if g:
            g.shutdown()
        if net:
            net.close()
    return tap.done()


if __name__ == '__main__':
    sys.exit(main())
