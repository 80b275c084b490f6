#!/usr/bin/env python3
"""Debian 12's libvirt 9.0 drives a suspended Linux guest.

Two libvirtd of the test's own (tests/lib/libvirtd.py: private mount
namespaces, own host_uuid, sockets and directories) are two hosts, A and
B.  The end-to-end tests' Linux guest, defined with S3 enabled, runs on
the patched QEMU (<emulator> of the build), is put to sleep by itself
(echo mem > /sys/power/state) and goes through what an operator does
with virsh: suspend/resume/snapshot (refused by libvirt), save and
restore (plain, --running, save --running), managedsave and start,
migrate --live A -> B and --p2p --suspend back, libvirtd restarts,
migrations of paused and running guests both ways, and virsh reset of
the sleeping guest (it reboots, libvirt follows it out of pmsuspended).

Each step checks libvirt's state and reason (virsh domstate --reason),
QEMU's own runstate (query-status through virsh qemu-monitor-command),
the domain events libvirt sent (virsh event --all --loop), the guest's
heartbeat standing still or moving with no reboot, and after virsh
dompmwakeup the guest's RAM check.

The same table then runs on Debian 13's QEMU 10.0 as a
characterisation: it asserts what 10.0 does under libvirt 9.0 (a
sleeping guest that libvirt reports running wherever libvirt sends
cont), so that the difference is proven on every run.  Needs root;
prints TAP.

LINE=10.2 or LINE=10.0 (make check's per-line pass): the table runs once,
on that line's patched QEMU (work/LINE/build); the characterisation of
Debian's 10.0 stays with the 7.2 line's pass.

INSTALLED=1 (make deb-check, inside its clean chroot of the line's
Debian release): the core rows only, on the installed
/usr/bin/qemu-system-x86_64 of the Debian packages: the domain names no
<emulator>, libvirt picks its default, and the boot row checks that it
is the installed QEMU.  LIBVIRT_VERSION names the libvirt release the
rows expect (default 9.0, Debian 12's; Debian 13's is 11.3).  The same
expectations hold for Debian's own packages after the rollback
(INSTALLED_KIND=debian): the rows then record where Debian's QEMU fails.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from qemu_env import LINE, QEMU, upstream_qemu  # noqa: E402
from guest import Tap, exit_on_sigterm, guest_built  # noqa: E402
from libvirtd import Libvirtd, LvGuest, VirshError, \
    ensure_qemu_user  # noqa: E402

DOM = 's3guest'
DOM_UUID = '0b7c1a52-6f7e-4d1e-9a51-5a0f3e0c0001'
HOST_UUID = '4f1e8a52-6c1d-4a0e-9d1b-00000000000'      # + a or b

# the events libvirt sends for the steps below
PMSUSPEND = ['pm-suspend', 'lifecycle: PMSuspended Memory']
PMWAKEUP = ['pm-wakeup', 'lifecycle: Started Event wakeup']
RESUMED = ['lifecycle: Resumed Unpaused']

# Where libvirt sends cont to a QEMU that returns the guest to
# "suspended", the series sends RESUME then SUSPEND and libvirt ends
# pmsuspended; QEMU 10.0 sends RESUME only and libvirt takes the sleeping
# guest for running.
SAYS_SUSPEND = {'patched': True, 'qemu-10.0': False, 'installed': True,
                'debian': True}
# the libvirt release the rows expect (deb-check: the chroot's)
LIBVIRT_VERSION = os.environ.get('LIBVIRT_VERSION', '9.0')
# Debian 13's libvirt 11.3 ends the QEMU of a saved or migrated domain
# with a QMP quit, and passes QEMU's SHUTDOWN on before it says how the
# domain stopped; 9.0 says only that (measured on both)
STOP_EVENTS = ([] if LIBVIRT_VERSION == '9.0'
               else ['lifecycle: Shutdown Finished after host request'])

# INSTALLED=1: the rows run on the installed Debian packages
CORE_ROWS = ('boot on A (define, start)', 'the guest enters S3: pmsuspended',
             'save, restore, resume', 'managedsave, start, resume',
             'migrate --live A -> B, suspended',
             'migrate --live --p2p --suspend B -> A, resume',
             'virsh reset of a pmsuspended domain: reboots, running',
             'destroy: nothing left')
INSTALLED_QEMU = '/usr/bin/qemu-system-x86_64'
# ROWS_APART=1: the rows a row needs before it (besides boot and S3)
APART_NEEDS = {'migrate --live --p2p --suspend B -> A, resume':
               ('migrate --live A -> B, suspended',)}


class Run:
    """One pass of the table with one emulator."""

    def __init__(self, tmp, kind, emulator):
        self.kind = kind
        self.emulator = emulator
        self.tmp = os.path.join(tmp, kind)
        os.mkdir(self.tmp)
        # two hosts to libvirt: each its own host_uuid
        self.a = Libvirtd(self.tmp, 'A', HOST_UUID + 'a')
        self.b = Libvirtd(self.tmp, 'B', HOST_UUID + 'b')
        self.g = LvGuest(self.tmp, DOM, DOM_UUID)
        self.host = self.a          # the daemon that runs the guest
        self.tag = 'A'
        self.asleep = False         # libvirt knows the guest sleeps

    def other(self):
        return (self.b, 'B') if self.host is self.a else (self.a, 'A')

    def check(self, state, qemu, heartbeat, events, daemon=None):
        """libvirt's state, QEMU's runstate, the heartbeat ('still' or
        'moving') and the events; returns a line for the TAP log."""
        d = daemon or self.host
        got = d.state(DOM)
        if got != state:
            raise VirshError(f'{d.name}: libvirt says "{got}", expected '
                             f'"{state}"')
        q = d.qemu_status(DOM)
        if q != qemu:
            raise VirshError(f'{d.name}: QEMU is {q}, expected {qemu}')
        ev = d.wait_events(events)
        hb = (self.g.assert_still() if heartbeat == 'still'
              else self.g.assert_moving())
        return (f'{d.name}: libvirt {state}, QEMU {qemu}, heartbeat '
                f'{heartbeat} at {hb}; events: {", ".join(ev) or "none"}')

    def back_asleep(self, reason, resumed, before=()):
        """The guest is back in "suspended" after libvirt's cont (restore,
        resume, migration): libvirt's RESUME handler sets running
        (@reason) and sends @resumed (after the events @before); what
        follows depends on QEMU."""
        events = list(before) + [f'lifecycle: Resumed {resumed}']
        if SAYS_SUSPEND[self.kind]:
            state = 'pmsuspended (unknown)'
            events += PMSUSPEND
        else:
            state = f'running ({reason})'
        out = self.check(state, 'suspended', 'still', events)
        self.asleep = SAYS_SUSPEND[self.kind]
        return out

    def wake(self):
        """virsh dompmwakeup: the guest runs on, its RAM intact."""
        self.host.virsh('dompmwakeup', DOM)
        self.g.assert_resumed()
        ev = PMWAKEUP if self.asleep else ['pm-wakeup']
        state = 'running (event wakeup)' if self.asleep else None
        if state is None:
            # libvirt never knew the guest slept: it keeps its reason
            state = self.host.state(DOM)
            if not state.startswith('running'):
                raise VirshError(f'libvirt says "{state}" after wakeup')
        self.asleep = False
        return 'dompmwakeup: ' + self.check(state, 'running', 'moving', ev)

    def sleep(self):
        """The guest enters S3 by itself: libvirt sees it (SUSPEND)."""
        self.g.suspend(self.tag)
        self.host.wait_state(DOM, 'pmsuspended (unknown)')
        self.asleep = True
        return self.check('pmsuspended (unknown)', 'suspended', 'still',
                          PMSUSPEND)

    # --- the rows -------------------------------------------------------

    def boot(self):
        for d in (self.a, self.b):
            d.start()
        path = os.path.join(self.tmp, 'domain.xml')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(self.g.xml('A', self.emulator))
        self.a.virsh('define', path)
        self.a.wait_events(['lifecycle: Defined Added'])
        self.a.virsh('start', DOM)
        self.g.boot()
        version = ', '.join(
            ln.split(': ', 1)[1] for ln in self.a.virsh('version').split('\n')
            if ln.startswith(('Using library', 'Running hypervisor')))
        if not version.startswith(f'libvirt {LIBVIRT_VERSION}.'):
            raise VirshError(f'not libvirt {LIBVIRT_VERSION}: {version}')
        if self.emulator is None:
            version += '; ' + self.default_emulator()
        return f'{version}; ' + self.check('running (booted)', 'running',
                                           'moving',
                                           ['lifecycle: Resumed Unpaused',
                                            'lifecycle: Started Booted'])

    def default_emulator(self):
        """No <emulator> in the domain: libvirt chose the installed QEMU,
        the one that runs the guest."""
        xml = self.a.virsh('dumpxml', DOM)
        want = f'<emulator>{INSTALLED_QEMU}</emulator>'
        if want not in xml:
            raise VirshError(f'libvirt did not choose {INSTALLED_QEMU}')
        out = self.a.virsh('qemu-monitor-command', DOM,
                           '{"execute": "query-version"}')
        package = json.loads(out)['return']['package'].strip()
        installed = subprocess.run([INSTALLED_QEMU, '--version'], check=True,
                                   capture_output=True,
                                   text=True).stdout.split('\n')[0]
        if not package or f'({package})' not in installed:
            raise VirshError(f'the guest runs QEMU "{package}", '
                             f'{INSTALLED_QEMU} is "{installed}"')
        return f'emulator {INSTALLED_QEMU} (libvirt\'s default), {package}'

    def enter_s3(self):
        return self.sleep()

    def refused(self):
        errors = [f'virsh {cmd}: {self.host.refused(*args)}'
                  for cmd, args in (
                      ('suspend', ('suspend', DOM)),
                      ('resume', ('resume', DOM)),
                      ('snapshot-create-as', ('snapshot-create-as', DOM,
                                              'snap1')))]
        want = ['virsh suspend: Requested operation is not valid: domain '
                'is pmsuspended',
                'virsh resume: Requested operation is not valid: domain '
                'is pmsuspended',
                "virsh snapshot-create-as: Operation not supported: qemu "
                "doesn't support taking snapshots of PMSUSPENDED guests"]
        if errors != want:
            raise VirshError(f'errors {errors}, expected {want}')
        return '\n'.join(errors + [self.check('pmsuspended (unknown)',
                                              'suspended', 'still', [])])

    def save(self, *flags):
        path = os.path.join(self.tmp, 'save.img')
        self.host.virsh('save', DOM, path, *flags)
        self.host.wait_events(STOP_EVENTS + ['lifecycle: Stopped Saved'])
        if self.host.state(DOM) != 'shut off (saved)':
            raise VirshError(f'after save: {self.host.state(DOM)}')
        return path

    def save_restore(self):
        path = self.save()
        self.host.virsh('restore', path)
        out = [self.check('paused (migrating)', 'paused', 'still',
                          ['lifecycle: Started Restored',
                           'lifecycle: Suspended Restored'])]
        out.append('virsh dompmwakeup: ' +
                   self.host.refused('dompmwakeup', DOM))
        self.host.virsh('resume', DOM)
        out.append('resume: ' + self.back_asleep('unpaused', 'Unpaused'))
        out.append(self.wake())
        return '\n'.join(out)

    def restore_running(self):
        out = [self.sleep()]
        path = self.save()
        self.host.virsh('restore', '--running', path)
        out.append('restore --running: ' + self.back_asleep(
            'restored', 'Snapshot', ['lifecycle: Started Restored']))
        out.append(self.wake())
        return '\n'.join(out)

    def save_running(self):
        out = [self.sleep()]
        path = self.save('--running')
        self.host.virsh('restore', path)
        out.append('save --running, restore: ' + self.back_asleep(
            'restored', 'Snapshot', ['lifecycle: Started Restored']))
        out.append(self.wake())
        return '\n'.join(out)

    def managedsave(self):
        out = [self.sleep()]
        self.host.virsh('managedsave', DOM)
        self.host.wait_events(STOP_EVENTS + ['lifecycle: Stopped Saved'])
        self.host.virsh('start', DOM)
        out.append('start: ' + self.check(
            'paused (migrating)', 'paused', 'still',
            ['lifecycle: Started Restored', 'lifecycle: Suspended Restored']))
        self.host.virsh('resume', DOM)
        out.append('resume: ' + self.back_asleep('unpaused', 'Unpaused'))
        out.append(self.wake())
        return '\n'.join(out)

    def migrate(self, *flags):
        """virsh migrate --live FLAGS to the other daemon (client-driven,
        or --p2p: the source daemon reaches the destination's socket)."""
        dst, tag = self.other()
        xml = self.g.migratable_xml(self.host, self.tag, tag)
        # libvirt pauses a source it believes running at the switch-over
        paused = ([] if not self.host.state(DOM).startswith('running')
                  else ['lifecycle: Suspended Migrated'])
        self.host.virsh('migrate', '--live', *flags, DOM, dst.uri,
                        '--xml', xml)
        self.host.wait_events(paused + STOP_EVENTS +
                              ['lifecycle: Stopped Migrated'])
        if self.host is self.a:
            # defined on A, transient on B
            state = self.a.state(DOM)
            if state != 'shut off (migrated)':
                raise VirshError(f'A: source says "{state}"')
        self.host, self.tag = dst, tag

    def migrate_suspended(self):
        out = [self.sleep()]
        self.migrate()
        out.append('A -> B: ' + self.back_asleep(
            'migrated', 'Migrated', ['lifecycle: Started Migrated']))
        return '\n'.join(out)

    def migrate_suspend_back(self):
        self.migrate('--p2p', '--suspend')
        out = ['B -> A --p2p --suspend: ' + self.check(
            'paused (user)', 'paused', 'still',
            ['lifecycle: Started Migrated', 'lifecycle: Suspended Paused'])]
        self.host.virsh('resume', DOM)
        out.append('resume: ' + self.back_asleep('unpaused', 'Unpaused'))
        out.append(self.wake())
        return '\n'.join(out)

    def restart_pmsuspended(self):
        out = [self.sleep()]
        self.host.stop()
        self.host.start()
        out.append('libvirtd restarted: ' + self.check(
            'pmsuspended (unknown)', 'suspended', 'still', []))
        out.append(self.wake())
        return '\n'.join(out)

    def restart_missed_s3(self):
        """The guest enters S3 while libvirtd is down: the SUSPEND event
        is lost, libvirt 9.0 has no state for it (libvirt cannot)."""
        self.host.stop()
        self.g.suspend(self.tag)
        self.host.start()
        out = ['S3 while libvirtd was down, restarted: ' + self.check(
            'paused (unknown)', 'suspended', 'still', [])]
        self.host.virsh('resume', DOM)
        out.append('virsh resume (rc 0): ' + self.check(
            'paused (unknown)', 'suspended', 'still', []))
        self.host.virsh('dompmwakeup', DOM)
        self.g.assert_resumed()
        out.append('dompmwakeup: ' + self.check(
            'paused (unknown)', 'running', 'moving', ['pm-wakeup']))
        self.host.virsh('resume', DOM)
        out.append('virsh resume (rc 0): ' + self.check(
            'paused (unknown)', 'running', 'moving', []))
        # what puts libvirt right: another restart, now that QEMU runs
        self.host.stop()
        self.host.start()
        out.append('libvirtd restarted: ' + self.check(
            'running (unpaused)', 'running', 'moving', []))
        return '\n'.join(out)

    def migrate_paused(self):
        self.host.virsh('suspend', DOM)
        out = ['virsh suspend: ' + self.check(
            'paused (user)', 'paused', 'still',
            ['lifecycle: Suspended Paused'])]
        self.migrate()
        out.append('A -> B: ' + self.check(
            'paused (user)', 'paused', 'still',
            ['lifecycle: Started Migrated', 'lifecycle: Suspended Paused']))
        self.migrate('--p2p')
        out.append('B -> A --p2p: ' + self.check(
            'paused (user)', 'paused', 'still',
            ['lifecycle: Started Migrated', 'lifecycle: Suspended Paused']))
        self.host.virsh('resume', DOM)
        out.append('resume: ' + self.check('running (unpaused)', 'running',
                                           'moving', RESUMED))
        return '\n'.join(out)

    def migrate_running(self):
        self.migrate()
        out = ['A -> B: ' + self.check(
            'running (migrated)', 'running', 'moving',
            ['lifecycle: Started Migrated', 'lifecycle: Resumed Migrated'])]
        self.migrate('--p2p')
        out.append('B -> A --p2p: ' + self.check(
            'running (migrated)', 'running', 'moving',
            ['lifecycle: Started Migrated', 'lifecycle: Resumed Migrated']))
        return '\n'.join(out)

    def reset_pmsuspended(self):
        """virsh reset of a pmsuspended domain reboots the guest; with the
        series QEMU sends RESET then WAKEUP and libvirt follows the guest
        out of pmsuspended (a 'reboot' event, then the wake-up ones; the
        'reboot' events after them are SeaBIOS resetting the machine
        again as it finds itself rebooted).  QEMU 10.0 leaves the VM in prelaunch,
        the guest stopped, and libvirt says pmsuspended."""
        out = [self.sleep()]
        self.g.begin_reset()
        self.host.virsh('reset', DOM)
        if not SAYS_SUSPEND[self.kind]:
            out.append('virsh reset: ' + self.check(
                'pmsuspended (unknown)', 'prelaunch', 'still', ['reboot']))
            return '\n'.join(out)
        self.g.rebooted()
        self.asleep = False
        # the guest has booted: every event is in; SeaBIOS's own resets
        # (one or more) follow the host's
        ev = self.host.events()
        want = ['reboot'] + PMWAKEUP
        if ev[:3] != want or not ev[3:] or set(ev[3:]) != {'reboot'}:
            raise VirshError(f'events {ev}, expected {want} then the '
                             "firmware's 'reboot'")
        out.append(f'virsh reset: rebooted (boot {self.g.boots}), events '
                   f'{", ".join(ev)}; ' +
                   self.check('running (event wakeup)', 'running', 'moving',
                              []))
        out.append('the guest suspends again: ' + self.sleep())
        out.append(self.wake())
        return '\n'.join(out)

    def end(self):
        self.host.virsh('destroy', DOM)
        self.host.wait_events(['lifecycle: Shutdown Finished after host '
                               'request', 'lifecycle: Stopped Destroyed'])
        pids = self.a.qemu_pids() + self.b.qemu_pids()
        if pids:
            raise VirshError(f'QEMU still running: {pids}')
        return f'destroyed; no QEMU left; guest heartbeat {self.g.heartbeat()}'

    def cleanup(self):
        for d in (self.a, self.b):
            d.cleanup()

    ROWS = (
        ('boot on A (define, start)', boot),
        ('the guest enters S3: pmsuspended', enter_s3),
        ('suspend, resume, snapshot of a pmsuspended domain: refused',
         refused),
        ('save, restore, resume', save_restore),
        ('save, restore --running', restore_running),
        ('save --running, restore', save_running),
        ('managedsave, start, resume', managedsave),
        ('migrate --live A -> B, suspended', migrate_suspended),
        ('migrate --live --p2p --suspend B -> A, resume',
         migrate_suspend_back),
        ('libvirtd restarted while pmsuspended', restart_pmsuspended),
        ('guest enters S3 while libvirtd is down (libvirt cannot)',
         restart_missed_s3),
        ('migrate --live A -> B -> A, paused', migrate_paused),
        ('migrate --live A -> B -> A, running', migrate_running),
        ('virsh reset of a pmsuspended domain: reboots, running',
         reset_pmsuspended),
        ('destroy: nothing left', end),
    )


def main():
    exit_on_sigterm()
    runs = [('patched', QEMU), ('qemu-10.0', upstream_qemu())]
    if LINE != '7.2':
        runs = runs[:1]
    rows = Run.ROWS
    if os.environ.get('RUNS'):
        # developers: RUNS=patched or RUNS=qemu-10.0 runs one table
        runs = [r for r in runs if r[0] in os.environ['RUNS'].split(',')]
    if os.environ.get('INSTALLED') == '1':
        runs = [(os.environ.get('INSTALLED_KIND', 'installed'), None)]
        rows = [r for r in Run.ROWS if r[0] in CORE_ROWS]
    # ROWS_APART=1 (deb-check on Debian's own packages): each row after
    # the S3 one in a chain of its own (boot, what it needs, the row,
    # destroy), so that a failing row does not hide the ones after it.
    # A row starts from a guest that the row before woke up and puts it to
    # sleep itself, but for the first one after the S3 row.
    chains = [rows]
    if os.environ.get('ROWS_APART') == '1':
        chains = [rows[:2 if t is rows[2] else 1] +
                  [r for r in rows if r[0] in APART_NEEDS.get(t[0], ())] +
                  [t, rows[-1]] for t in rows[2:-1]]
    tap = Tap(sum(len(c) for c in chains) * len(runs))
    if os.geteuid() != 0:
        print('Bail out! needs root (libvirtd, mount namespaces)')
        return 1
    if not guest_built():
        print('Bail out! no guest: run scripts/build-guest.sh '
              '(make check does)')
        return 1
    if not shutil.which('virsh') or not os.path.exists('/usr/sbin/libvirtd'):
        print('Bail out! libvirt is not installed (make deps-test does)')
        return 1
    if any(emulator is None and kind not in ('installed', 'debian')
           for kind, emulator in runs):
        print("Bail out! no QEMU 10.0 in /usr/bin (make deps-test installs "
              "Debian 13's)")
        return 1
    ensure_qemu_user()
    tmp = tempfile.mkdtemp(prefix='libvirt-test-')
    try:
        for kind, emulator in runs:
            for i, chain in enumerate(chains):
                run = Run(tmp if len(chains) == 1 else
                          tempfile.mkdtemp(dir=tmp, prefix=f'{i}-'),
                          kind, emulator)
                tap.new_chain()     # the second table does not depend
                label = kind if len(chains) == 1 else \
                    f'{kind} [{chain[-2][0]}]'
                try:
                    for name, fn in chain:
                        tap.step(f'{label}: {name}', fn, run)
                finally:
                    run.cleanup()
    finally:
        if os.environ.get('KEEP_TMP') != '1':
            shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == '__main__':
    sys.exit(main())
