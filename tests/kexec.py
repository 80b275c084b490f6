#!/usr/bin/env python3
"""cprsave, a real kexec of the host kernel, cprload.

A host VM (L1: Debian 12's kernel, an initramfs with busybox, Debian's
kexec-tools and the patched QEMU; scripts/build-kexec-host.sh) runs an
L2 guest (the migration-test boot block, writing a counter to its
memory) in the patched QEMU, with L2's RAM in a shared file.  The test
talks QMP to L2 over L1's serial port and:

  brings L2 to its state (running; paused by stop; suspended by itself),
  cprsave FILE reboot -> L2's QEMU exits 0 -> L1's init kexecs the same
  kernel and initramfs (marker kx.mode=load on the command line, the
  pmem region repeated) -> the new L1 kernel boots (new boot id, uptime
  from zero) -> init starts L2's QEMU with the same arguments plus -S ->
  cprload FILE -> L2 is in its saved state with its memory counter as
  saved; system_wakeup / cont / nothing runs it and the counter moves on.

Where L2's RAM file lives: "pmem" (a DAX ext2 on legacy pmem, memmap=
on L1's command line), "disk" (ext2 on L1's virtio disk), or "tmpfs"
(L1's /tmp, which does not survive the kexec: cprload must refuse and
leave L2's QEMU in prelaunch).

  tests/kexec.py          one suspended cycle on pmem, the tmpfs refusal
                          (what make check runs)
  tests/kexec.py --all    pmem and disk x running, paused, suspended,
                          and the tmpfs refusal, with each step and
                          runstate printed (make kexec-check)

Figures (downtime split into save, kexec to init, QEMU start, load; state
file size) are printed as TAP comments: nested TCG, not a real host's.
Prints TAP.
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from qemu_env import wait_for  # noqa: E402
from guest import Tap, exit_on_sigterm  # noqa: E402
from kexec_host import L1, SerialQMP, KexecError, fields, \
    host_built  # noqa: E402

STATE_FILE = '/state/l2.cpr'
VERBOSE = False
FIGURES = []        # one dict per completed cycle (bench/kexec.py)


def say(text):
    if VERBOSE:
        print(f'# {text}', flush=True)


def counter_moves(qmp, timeout=120):
    first = qmp.counter()
    return wait_for(lambda: (c if (c := qmp.counter()) != first else None),
                    timeout, 'L2 memory counter to move', interval=0.2)


def cycle(tmp, ram, state):
    """One cprsave -> kexec -> cprload cycle; returns its figures."""
    d = tempfile.mkdtemp(prefix=f'{ram}-{state}-', dir=tmp)
    disk = None
    if ram == 'disk':
        disk = os.path.join(d, 'disk.img')
        with open(disk, 'wb') as f:
            f.truncate(512 << 20)
    l1 = L1(d, ram, 'suspend' if state == 'suspended' else 'run', disk)
    qmp = SerialQMP(l1.sock, 'l2')
    try:
        l1.launch()
        qmp.connect()
        boot1 = fields(l1.wait('BOOT')[1])
        say(f'L1 booted: boot id {boot1["id"]}, {l1.wait("MOUNTS")[1]}')
        if state == 'suspended':
            qmp.event('SUSPEND')
        else:
            counter_moves(qmp)
        if state == 'paused':
            qmp.cmd('stop')
        saved_status = qmp.status()
        if saved_status != state:
            raise KexecError(f'L2 is {saved_status}, expected {state}')
        counter = qmp.counter()
        say(f'L2 {saved_status}, memory counter {counter}')

        t0 = time.monotonic()
        qmp.cmd('cprsave', file=STATE_FILE, mode='reboot')
        qmp.event('SHUTDOWN', timeout=60)
        t_saved = time.monotonic()
        qmp.close()
        qmp.start_connect()     # for the next L2 QEMU's greeting
        _, rest = l1.wait('L2-EXIT')
        ex = fields(rest)
        if ex['rc'] != '0' or ex['state'] != 'present':
            raise KexecError(f'L2 QEMU after cprsave: {rest}')
        say(f'cprsave: L2 QEMU exited 0, state file {ex["size"]} bytes')
        _, rest = l1.wait('KEXEC')
        up1 = float(fields(rest)['uptime'])
        t_boot, rest = l1.wait('BOOT', 2)
        boot2 = fields(rest)
        if boot2['id'] == boot1['id'] or boot2['mode'] != 'load' or \
                float(boot2['uptime']) >= up1:
            raise KexecError(f'no new kernel: {boot1} then {boot2}')
        say(f'kexec at L1 uptime {up1:.1f} s; new kernel: boot id '
            f'{boot2["id"]}, uptime {boot2["uptime"]} s at init')
        l1.wait('L2-START', 2)
        qmp.finish_connect()
        t_qemu = time.monotonic()
        status = qmp.status()
        if status != 'prelaunch':
            raise KexecError(f'new L2 QEMU is {status}, expected prelaunch')

        if ram == 'tmpfs':
            _, err = qmp.try_cmd('cprload', file=STATE_FILE)
            status = qmp.status()
            say(f'cprload refused: "{err}"; L2 QEMU {status}')
            if err is None or status != 'prelaunch':
                raise KexecError(f'cprload of a guest whose RAM was lost: '
                                 f'error {err!r}, L2 QEMU {status}')
            if 'RAM' not in err:
                raise KexecError(f'cprload refused, but not for its RAM: '
                                 f'{err}')
            return f'cprload refused: "{err}"; L2 QEMU stays prelaunch'

        qmp.cmd('cprload', file=STATE_FILE)
        t_loaded = time.monotonic()
        status = qmp.status()
        now = qmp.counter()
        say(f'cprload: L2 {status}, memory counter {now}')
        if status != state:
            raise KexecError(f'L2 is {status} after cprload, expected '
                             f'{state}')
        if state != 'running' and now != counter:
            raise KexecError(f'memory counter {now} after cprload, '
                             f'{counter} saved')
        if state == 'suspended':
            qmp.cmd('system_wakeup')
            qmp.event('WAKEUP', timeout=60)
        elif state == 'paused':
            qmp.cmd('cont')
        if qmp.status() != 'running':
            raise KexecError(f'L2 is {qmp.status()}, expected running')
        moved = counter_moves(qmp)
        say(f'L2 running, memory counter {now} -> {moved}')
        FIGURES.append({
            'ram': ram, 'state': state,
            'downtime_s': round(t_loaded - t0, 2),
            'save_s': round(t_saved - t0, 2),
            'exit_kexec_to_init_s': round(t_boot - t_saved, 2),
            'qemu_start_s': round(t_qemu - t_boot, 2),
            'load_s': round(t_loaded - t_qemu, 2),
            'state_file_bytes': int(ex['size']),
        })
        return (f'{state} on {ram}: counter {counter} saved, {now} loaded, '
                f'then {moved}; new boot id; downtime '
                f'{t_loaded - t0:.1f} s = save {t_saved - t0:.1f} + '
                f'exit and kexec to init {t_boot - t_saved:.1f} + QEMU '
                f'start {t_qemu - t_boot:.1f} + load '
                f'{t_loaded - t_qemu:.1f}; state file {ex["size"]} bytes '
                f'(nested TCG figures)')
    finally:
        qmp.close()
        l1.shutdown()


def main():
    global VERBOSE          # pylint: disable=global-statement
    exit_on_sigterm()
    full = '--all' in sys.argv[1:]
    VERBOSE = full
    cases = ([(r, s) for r in ('pmem', 'disk')
              for s in ('suspended', 'running', 'paused')] if full
             else [('pmem', 'suspended')])
    cases.append(('tmpfs', 'suspended'))
    tap = Tap(len(cases))
    if not host_built():
        print('Bail out! no kexec host: run scripts/build-kexec-host.sh '
              '(make check does)')
        return 1
    tmp = tempfile.mkdtemp(prefix='kexec-test-')
    try:
        for ram, state in cases:
            what = ('cprload refuses a guest whose RAM file was lost '
                    '(tmpfs)' if ram == 'tmpfs' else
                    f'{state} guest, RAM on {ram}')
            tap.new_chain()         # the cases do not depend on each other
            tap.step(f'cprsave, kexec, cprload: {what}', cycle, tmp, ram,
                     state)
    finally:
        if os.environ.get('KEEP_TMP') != '1':
            shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == '__main__':
    sys.exit(main())
