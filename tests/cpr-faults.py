#!/usr/bin/env python3
"""cprsave to a full filesystem, to a read-only one, and with a directory
that cannot be synced.

In a private mount namespace (root; the test re-executes itself under
`unshare --mount` when needed), a 4 MiB tmpfs and a read-only tmpfs are
mounted.  A suspended guest with anonymous RAM (so its state file is much
bigger than 4 MiB) is saved to each: cprsave must fail with a clear error
leave no file and no temporary file behind, and leave the VM "suspended"
(for the full filesystem, after stopping it: STOP, RESUME, SUSPEND), from
where it wakes and runs.  When only the sync of the directory fails,
after the complete file got its name (made to fail by an LD_PRELOAD shim
built here, since no real filesystem fails it on demand), cprsave reports
the error, keeps the file, and the VM goes on; a new QEMU then loads the
file.  Prints TAP.
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
# the runstate events a failed cprsave may send; a suspended VM it
# stopped goes back to sleep: STOP, RESUME, SUSPEND
RUNSTATE_EVENTS = ('STOP', 'RESUME', 'SUSPEND', 'SHUTDOWN')


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
                  if e['event'] in RUNSTATE_EVENTS]
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


SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/stat.h>

/* fsync() of a directory fails, as on a storage error */
int fsync(int fd)
{
    static int (*real_fsync)(int);
    struct stat st;

    if (!real_fsync) {
        real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}
"""


def dir_sync_case(tmp):
    """The directory sync fails after the rename: file kept, VM goes on."""
    src = os.path.join(tmp, 'shim.c')
    lib = os.path.join(tmp, 'shim.so')
    with open(src, 'w', encoding='ascii') as f:
        f.write(SHIM)
    subprocess.run(['cc', '-shared', '-fPIC', '-o', lib, src, '-ldl'],
                   check=True, capture_output=True)
    wrapper = os.path.join(tmp, 'qemu-shimmed')
    with open(wrapper, 'w', encoding='ascii') as f:
        f.write(f'#!/bin/sh\nLD_PRELOAD={lib} exec {QEMU} "$@"\n')
    os.chmod(wrapper, 0o755)
    target = os.path.join(tmp, 'states')
    os.mkdir(target)
    file = os.path.join(target, 'state.cpr')
    disk = write_bootblock(tmp, suspend=True)
    args = ['-accel', 'tcg', '-machine', 'pc', '-m', '150M', '-nic', 'none',
            *bootblock_args(disk)]

    vm = QEMUMachine(wrapper, base_temp_dir=tmp, name='vm')
    vm.add_args(*args)
    vm.launch()
    try:
        wait_event(vm, 'SUSPEND', 120)
        counter = guest_counter(vm)
        r = vm.qmp('cprsave', file=file, mode='reboot')
        err = r.get('error', {}).get('desc', '')
        events = [e['event'] for e in vm.get_qmp_events(wait=False)
                  if e['event'] in RUNSTATE_EVENTS]
        left = sorted(os.listdir(target))
        state = runstate(vm)
    finally:
        vm.shutdown()

    vm = QEMUMachine(QEMU, base_temp_dir=tmp, name='vm2')
    vm.add_args(*args, '-S')
    vm.launch()
    try:
        r = vm.qmp('cprload', file=file)
        loaded = runstate(vm)
        same = guest_counter(vm) == counter
        vm.qmp('system_wakeup')
        wait_event(vm, 'WAKEUP', 60)
        start = guest_counter(vm)
        wait_for(lambda: guest_counter(vm) != start, 60, 'guest to run')
    finally:
        vm.shutdown()
    ok = ('could not be synced' in err and
          events == ['STOP', 'RESUME', 'SUSPEND'] and
          left == ['state.cpr'] and state == 'suspended' and
          'error' not in r and loaded == 'suspended' and same)
    return ok, (f'error "{err}", events {events}, files {left}, VM {state}; '
                f'a new QEMU loads the kept file: {loaded}, memory '
                f'{"as saved" if same else "changed"}, woken and running')


def main():
    if os.geteuid() != 0:
        print('1..0 # SKIP needs root for tmpfs mounts')
        return
    if INNER not in sys.argv:
        r = subprocess.run(['unshare', '--mount', sys.executable,
                            os.path.abspath(__file__), INNER])
        sys.exit(r.returncode)

    print('1..3')
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
                (full, 'No space left on device',
                 ['STOP', 'RESUME', 'SUSPEND'],
                 'cprsave to a full filesystem'),
                # the file cannot even be created: nothing is stopped
                (ro, 'Read-only file system', [],
                 'cprsave to a read-only filesystem')), 1):
            try:
                ok, detail = case(tmp, d, expect, events)
            except Exception as e:  # pylint: disable=broad-except
                ok, detail = False, str(e)
            print(f"{'ok' if ok else 'not ok'} {i} - {desc}: {detail}")
        try:
            ok, detail = dir_sync_case(tmp)
        except Exception as e:  # pylint: disable=broad-except
            ok, detail = False, str(e)
        print(f"{'ok' if ok else 'not ok'} 3 - cprsave whose directory "
              f"cannot be synced: {detail}")
    finally:
        for d in (full, ro):
            subprocess.run(['umount', d], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
