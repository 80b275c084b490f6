#!/usr/bin/env python3
"""cprsave to a full filesystem and to a read-only one.

In a private mount namespace (root; the test re-executes itself under
`unshare --mount` when needed), a 4 MiB tmpfs and a read-only tmpfs are
mounted.  A suspended guest with anonymous RAM (so its state file is much
bigger than 4 MiB) is saved to each: cprsave must fail with a clear error
leave no file and no temporary file behind, and leave the VM "suspended"
(for the full filesystem, after stopping it: STOP then RESUME), from
where it wakes and runs.  Prints TAP.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from qemu_env import QEMU, QEMUMachine, bootblock_args, guest_counter, \
    runstate, wait_event, wait_for, write_bootblock  # noqa: E402

INNER = '--in-namespace'


def mount(*args):
    subprocess.run(['mount', *args], check=True, capture_output=True)


def case(tmp, target_dir, expect, want_events):
    disk = write_bootblock(tmp, suspend=True)
    vm = QEMUMachine(QEMU, base_temp_dir=tmp, name='vm')
    vm.add_args('-accel', 'tcg', '-machine', 'pc', '-m', '150M', '-nic',
                'none', *bootblock_args(disk))
    vm.launch()
    try:
        wait_event(vm, 'SUSPEND', 120)
        file = os.path.join(target_dir, 'state.cpr')
        r = vm.qmp('cprsave', file=file, mode='reboot')
        err = r.get('error', {}).get('desc', '')
        events = [e['event'] for e in vm.get_qmp_events(wait=False)
                  if e['event'] in ('STOP', 'RESUME', 'SHUTDOWN')]
        left = os.listdir(target_dir)
        state = runstate(vm)
        vm.qmp('system_wakeup')
        wait_event(vm, 'WAKEUP', 60)
        start = guest_counter(vm)
        wait_for(lambda: guest_counter(vm) != start, 60, 'guest to run')
        ok = (expect in err and events == want_events and
              not left and state == 'suspended')
        return ok, (f'error "{err}", events {events}, files left {left}, '
                    f'VM {state}, then woken and running')
    finally:
        vm.shutdown()


def main():
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root for tmpfs mounts')
        return
    if INNER not in sys.argv:
        r = subprocess.run(['unshare', '--mount', sys.executable,
                            os.path.abspath(__file__), INNER])
        sys.exit(r.returncode)

    print('1..2')
    tmp = tempfile.mkdtemp(prefix='cpr-faults-')
    full = os.path.join(tmp, 'full')
    ro = os.path.join(tmp, 'ro')
    os.mkdir(full)
    os.mkdir(ro)
    try:
        mount('--make-rprivate', '/')
        mount('-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', full)
        mount('-t', 'tmpfs', '-o', 'ro,size=4m', 'tmpfs', ro)
        for i, (d, expect, events, desc) in enumerate((
                # the write fails after the VM was stopped
                (full, 'No space left on device', ['STOP', 'RESUME'],
                 'cprsave to a full filesystem'),
                # the file cannot even be created: nothing is stopped
                (ro, 'Read-only file system', [],
                 'cprsave to a read-only filesystem')), 1):
            try:
                ok, detail = case(tmp, d, expect, events)
            except Exception as e:  # pylint: disable=broad-except
                ok, detail = False, str(e)
            print(f"{'ok' if ok else 'not ok'} {i} - {desc}: {detail}")
    finally:
        for d in (full, ro):
            subprocess.run(['umount', d], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
