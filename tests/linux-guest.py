#!/usr/bin/env python3
"""A real Linux guest through every way an operator moves it.

Debian 12's kernel with a busybox initramfs (scripts/build-guest.sh,
tests/guest/init) on pc-i440fx-7.2, TCG, 256 MiB of shared file RAM.  The
guest suspends itself to S3 (echo mem > /sys/power/state) on request and
is then moved, suspended, from QEMU to QEMU:

  precopy over TCP -> destination without -S: arrives suspended
  precopy over a unix socket -> destination with -S: paused, cont ->
      suspended
  postcopy over TCP: arrives suspended
  savevm -> quit -> new QEMU (-S) -> loadvm: prelaunch, cont ->
      suspended
  cprsave -> QEMU exits -> new QEMU (-S) -> cprload: suspended (on a
      QEMU without cprsave: migrate mode=cpr-reboot to file:, QEMU
      quits, new QEMU -incoming defer, migrate-incoming: suspended)
  an RTC alarm (/sys/class/rtc/rtc0/wakealarm) that falls due while the
      suspended guest is stopped: held, and cont wakes the guest (RESUME,
      then WAKEUP)
Every patched QEMU that returns the guest to "suspended" sends RESUME
then SUSPEND.
  precopy to Debian 13's QEMU 10.0 (when installed): arrives suspended

A second guest is reset with system_reset while it runs, while it is
suspended and while it is stopped while suspended: each time it boots
again (a new READY, its heartbeat from 1) and never resumes from S3; the
reset of the suspended guest sends RESET then WAKEUP.  system_wakeup
still resumes it from S3 afterwards.

Each time the destination must hold the guest asleep (no output, no
WAKEUP) until system_wakeup; then the guest resumes from S3, finds its
16 MiB random RAM blob unchanged and its heartbeat counter goes on from
where it stopped on the first QEMU (never restarting).  The guest's clock
jump across each S3 cycle is reported against the host's time between
the SUSPEND and WAKEUP events.  Prints TAP.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from qemu_env import BUILD, upstream_qemu, wait_for  # noqa: E402
from guest import Guest, GuestError, Tap, describe, exit_on_sigterm, \
    guest_built, jump_summary, set_caps, start_migration, \
    wait_migration  # noqa: E402

QEMU_IMG = os.environ.get('QEMU_IMG') or os.path.join(BUILD, 'qemu-img')


def expect_state(host, want):
    got = host.runstate()
    if got != want:
        raise GuestError(f'{host.name}: runstate {got}, expected {want}')


def boot(g):
    g.boot()
    hb = g.check_heartbeat()
    return f'booted, blob {g.blob}, heartbeat at {hb}'


def migrate_suspended(g, name, uri_of, dest_s=False, postcopy=False,
                      binary=None):
    """Suspend, migrate to a new QEMU, check it holds the guest asleep in
    the right state (our destination also says so with SUSPEND after
    RESUME; QEMU 10.0 sends RESUME only), wake it there."""
    g.suspend()
    src = g.host
    extra = ['-incoming', 'defer'] + (['-S'] if dest_s else [])
    kw = {'binary': binary} if binary else {}
    dst = g.new_host(name, extra=extra, **kw).launch()
    start_migration(src, dst, uri_of(dst), postcopy=postcopy,
                    params={'max-bandwidth': 1 << 30})
    if postcopy:
        src.cmd('migrate-start-postcopy')
    info = wait_migration(src, dst=dst)
    expect_state(src, 'postmigrate')
    g.adopt(dst)
    src.shutdown()
    if dest_s:
        expect_state(dst, 'paused')
        g.assert_asleep(dst)
        dst.cmd('cont')
    expect_state(dst, 'suspended')
    if binary:
        g.assert_asleep(dst)
    else:
        g.assert_back_asleep(dst)
    ram = info.get('ram', {})
    moved = (f"{ram.get('transferred', 0) / 2 ** 20:.1f} MiB in "
             f"{info.get('total-time', 0)} ms")
    if postcopy:
        if not ram.get('postcopy-requests', 0) and \
                not ram.get('postcopy-bytes', 0):
            raise GuestError('no page was sent in postcopy')
        moved += (f", {ram.get('postcopy-bytes', 0) / 2 ** 20:.1f} MiB "
                  f"in postcopy")
    cycle = g.wake(name)
    return f'{moved}; {describe(cycle)}'


def savevm_loadvm(g):
    g.suspend()
    old = g.host
    out = old.hmp('savevm s3snap')
    if out:
        raise GuestError(f'savevm: {out.strip()}')
    expect_state(old, 'suspended')
    g.assert_asleep(old, 0.5)
    old.shutdown()
    new = g.new_host('loadvm', extra=['-S']).launch()
    out = new.hmp('loadvm s3snap')
    if out:
        raise GuestError(f'loadvm: {out.strip()}')
    g.adopt(new)
    # -S wins: the loaded guest waits in prelaunch, flag set
    expect_state(new, 'prelaunch')
    g.assert_asleep(new, 0.5)
    new.cmd('cont')
    expect_state(new, 'suspended')
    g.assert_back_asleep(new)
    return describe(g.wake('savevm/loadvm'))


def has_command(host, name):
    return any(c['name'] == name for c in host.cmd('query-commands'))


def cpr(g):
    """Live update of a suspended guest: with cprsave/cprload where the
    QEMU under test has them (the 7.2 line), else upstream's migrate in
    mode cpr-reboot to a file.  Either way QEMU exits, a new QEMU maps the
    same RAM file and loads the state: suspended."""
    if not has_command(g.host, 'cprsave'):
        return cpr_reboot(g)
    g.suspend()
    old = g.host
    state = os.path.join(g.tmp, 'state.cpr')
    old.cmd('cprsave', file=state, mode='reboot')
    old.keep_ram = True
    old.vm.wait(timeout=60)
    rc = old.vm.exitcode()
    if rc != 0:
        raise GuestError(f'QEMU exited {rc} after cprsave')
    new = g.new_host('cprload', extra=['-S'],
                     mem_path=old.mem_path).launch()
    new.cmd('cprload', file=state)
    g.adopt(new)
    expect_state(new, 'suspended')
    g.assert_back_asleep(new)
    size = os.path.getsize(state) / 2 ** 20
    return f'state file {size:.1f} MiB; {describe(g.wake("cpr"))}'


def cpr_reboot(g):
    """migrate-set-parameters mode=cpr-reboot, x-ignore-shared, migrate to
    file:, quit; a new QEMU with the same arguments and -incoming defer
    loads the file (RAM from the shared file): suspended, RESUME then
    SUSPEND."""
    g.suspend()
    old = g.host
    state = os.path.join(g.tmp, 'state.cpr-reboot')
    old.cmd('migrate-set-parameters', mode='cpr-reboot')
    set_caps(old, x_ignore_shared=True)
    old.cmd('migrate', uri=f'file:{state}')
    wait_migration(old)
    expect_state(old, 'postmigrate')
    old.keep_ram = True
    old.shutdown()
    new = g.new_host('cpr-reboot', extra=['-incoming', 'defer'],
                     mem_path=old.mem_path).launch()
    new.cmd('migrate-set-parameters', mode='cpr-reboot')
    set_caps(new, x_ignore_shared=True)
    new.cmd('migrate-incoming', uri=f'file:{state}')
    g.adopt(new)
    wait_for(lambda: new.runstate() != 'inmigrate', 120,
             'the end of the incoming migration')
    expect_state(new, 'suspended')
    g.assert_back_asleep(new)
    # the next moves of the guest are plain migrations that send its RAM
    new.cmd('migrate-set-parameters', mode='normal')
    set_caps(new, x_ignore_shared=False)
    size = os.path.getsize(state) / 2 ** 20
    return f'state file {size:.1f} MiB; {describe(g.wake("cpr-reboot"))}'


def rtc_alarm_while_stopped(g):
    """The guest arms its RTC 6 s ahead and suspends; the host stops it
    for 12 s.  The alarm must not be lost: the VM stays paused and asleep,
    system_wakeup is refused, and cont sends RESUME then WAKEUP and runs
    the guest."""
    g.suspend(alarm=6)
    h = g.host
    h.cmd('stop')
    h.event('STOP')
    g.assert_asleep(h, 12)
    expect_state(h, 'paused')
    r = h.qmp('system_wakeup')
    if 'error' not in r:
        raise GuestError('system_wakeup of a stopped guest accepted')

    def cont():
        h.cmd('cont')
        h.event('RESUME', timeout=10)

    cycle = g.wake('rtc alarm while stopped', trigger=cont)
    if 'SUSPEND' in h.events():
        raise GuestError('SUSPEND after cont: the held wake-up was lost')
    return describe(cycle)


def boots(h):
    return sum(1 for kind, _, _ in h.lines() if kind == 'READY')


def resumes(h):
    return sum(1 for kind, _, _ in h.lines() if kind == 'RESUMED')


def guest_suspend(h):
    h.request('suspend')
    h.event('SUSPEND')
    wait_for(lambda: h.runstate() == 'suspended', 30, 'suspended')


def expect_reboot(h, before, resumed, want_events):
    """The guest boots again (READY number before + 1, then its heartbeat
    from 1), without resuming from S3 first, and the runstate events since
    the reset are want_events."""
    def fresh():
        if resumes(h) != resumed:
            raise GuestError('the guest resumed from S3 instead of '
                             'booting')
        lines = h.lines()
        ready = [i for i, line in enumerate(lines) if line[0] == 'READY']
        if len(ready) <= before:
            return None
        return any(kind == 'HB' and arg == '1'
                   for kind, arg, _ in lines[ready[before] + 1:])
    try:
        wait_for(fresh, 240, 'the guest to boot again', interval=0.2)
    except TimeoutError as e:
        raise GuestError(f'{e}; last lines {h.lines()[-3:]}') from None
    expect_state(h, 'running')
    # SeaBIOS resets the machine once more when it finds itself rebooted
    # (a RESET the guest asked for): not the host's reset, left out
    events = [e for e in h.vm.get_qmp_events(wait=False)
              if e['event'] in ('STOP', 'RESUME', 'SUSPEND', 'WAKEUP',
                                'RESET')]
    names = [e['event'] for e in events
             if not (e['event'] == 'RESET' and e['data']['guest'])]
    if names != want_events:
        raise GuestError(f'events {names}, expected {want_events}')
    guest = len(events) - len(names)
    return (f'booted again ({before + 1} boots), host events '
            f'{" ".join(names)}, then {guest} guest RESET')


def reset_reboots(g, how):
    """system_reset reboots the guest, whether it runs, sleeps in S3 or
    is stopped while asleep; it never resumes it from S3."""
    h = g.host
    if how != 'running':
        guest_suspend(h)
    if how == 'stopped-suspended':
        h.cmd('stop')
        h.event('STOP')
    before, resumed = boots(h), resumes(h)
    h.events()
    h.cmd('system_reset')
    if how == 'stopped-suspended':
        expect_state(h, 'prelaunch')
        h.cmd('cont')
        want = ['RESET', 'RESUME']
    elif how == 'suspended':
        want = ['RESET', 'WAKEUP']
    else:
        want = ['RESET']
    return expect_reboot(h, before, resumed, want)


def wakeup_resumes(g):
    """system_wakeup still resumes the guest from S3 (no new boot)."""
    h = g.host
    guest_suspend(h)
    before, resumed = boots(h), resumes(h)
    h.cmd('system_wakeup')
    h.event('WAKEUP')
    wait_for(lambda: resumes(h) == resumed + 1, 60, 'the guest to resume')
    if boots(h) != before:
        raise GuestError('the guest booted again on system_wakeup')
    return 'resumed from S3'


def main():
    exit_on_sigterm()
    tap = Tap(14)
    if not guest_built():
        print('Bail out! no guest: run scripts/build-guest.sh '
              '(make check does)')
        return 1
    g = Guest('linux-guest-')
    unix = os.path.join(g.tmp, 'mig.sock')
    try:
        disk = os.path.join(g.tmp, 'disk.qcow2')
        subprocess.run([QEMU_IMG, 'create', '-q', '-f', 'qcow2', disk,
                        '64M'], check=True)
        g.extra += ['-drive', f'if=none,id=snap,file={disk},format=qcow2']
        tap.step('Linux guest boots, heartbeat ticking', boot, g)
        tap.step('suspend, precopy over TCP, arrives suspended, wakes',
                 migrate_suspended, g, 'tcp',
                 lambda d: 'tcp:127.0.0.1:0')
        tap.step('suspend, precopy over unix to -S: paused, cont, wakes',
                 migrate_suspended, g, 'unix-S', lambda d: f'unix:{unix}',
                 True)
        tap.step('suspend, postcopy over TCP, arrives suspended, wakes',
                 migrate_suspended, g, 'postcopy',
                 lambda d: 'tcp:127.0.0.1:0', False, True)
        tap.step('suspend, savevm, new QEMU -S, loadvm, cont, wakes',
                 savevm_loadvm, g)
        tap.step('suspend, live update (cprsave/cprload or migrate '
                 'cpr-reboot), new QEMU, wakes', cpr, g)
        tap.step('suspend with an RTC alarm, stop 12 s, cont: the alarm '
                 'wakes the guest', rtc_alarm_while_stopped, g)
        up = upstream_qemu()
        if up is None:
            tap.skip('suspend, precopy to QEMU 10.0', 'no QEMU 10.0')
        else:
            tap.step('suspend, precopy to QEMU 10.0, arrives suspended, '
                     'wakes', migrate_suspended, g, 'qemu-10.0',
                     lambda d: f'unix:{unix}.10', False, False, up)
        tap.step('heartbeat 1..N across every QEMU, RAM blob intact',
                 lambda: (f'{len(g.hosts)} QEMUs, heartbeat 1..'
                          f'{g.check_heartbeat()}, {g.suspends} S3 cycles\n'
                          f'{jump_summary(g.cycles)}'))
        tap.new_chain()
        r = Guest('linux-reset-')
        try:
            tap.step('second guest boots', boot, r)
            for how in ('running', 'suspended', 'stopped-suspended'):
                tap.step(f'system_reset of the {how} guest reboots it',
                         reset_reboots, r, how)
            tap.step('system_wakeup after that still resumes from S3',
                     wakeup_resumes, r)
        finally:
            r.shutdown()
    finally:
        g.shutdown()
    return tap.done()


if __name__ == '__main__':
    sys.exit(main())
