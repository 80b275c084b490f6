#!/usr/bin/env python3
"""cprsave on the patched QEMU 7.2, resume on QEMU 10.0 and 10.2.

A suspended and a running guest of machine pc-i440fx-7.2, with their RAM
in a shared memory-backend-file, are saved with cprsave; the patched QEMU
exits; QEMU 10.0 started with the same arguments and -incoming defer
loads the file with x-ignore-shared on (migrate-incoming of the file),
as a host moving from Debian 12 to Debian 13 by kexec would.  The guest
must come back in its state, with its memory, and run (after
system_wakeup if it was suspended).  The same load runs on the patched
QEMUs of the newer lines where they are built (work/10.0/build: the
10.0.13 of Debian 13 with the backport; work/10.2/build), the path of a
host moving from Debian 12 to 13 by kexec.  With the chroots of make
deb-check (DEB_ROOT_7_2, DEB_ROOT_10_0) the same runs on the installed
packages: cprsave on our Debian 12 package, the load on our Debian 13
package (DEB_ONLY=1: those rows alone).  Prints TAP.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from qemu_env import DEB_ROOTS, GUEST_SUSPENDED_FLAG, QEMU, WORK, \
    bootblock_args, deb_qemu, guest_counter, make_machine, read_guest_u32, \
    runstate, upstream_qemu, wait_event, wait_for, work_tmpdir, \
    write_bootblock  # noqa: E402


def targets():
    """(source name, source QEMU, name, QEMU) of the saves and the QEMUs
    that load them; a QEMU is None if it is missing here."""
    src = ('patched 7.2', QEMU)
    out = [src + ('QEMU 10.0', upstream_qemu())]
    for line in ('10.0', '10.2'):
        b = os.path.join(WORK, line, 'build', 'qemu-system-x86_64')
        out.append(src + (f'patched {line}',
                          b if os.access(b, os.X_OK) else None))
    if os.environ.get('DEB_ONLY') == '1':
        out = []
    if DEB_ROOTS:
        out.append(('our Debian 12 package', deb_qemu('7.2'),
                    'our Debian 13 package', deb_qemu('10.0')))
    return out


def case(suspend, tmp, source, target):
    disk = write_bootblock(tmp, suspend=suspend)
    args = ['-accel', 'tcg', '-machine', 'pc-i440fx-7.2,memory-backend=ram0',
            '-m', '150M', '-nic', 'none',
            '-object', f'memory-backend-file,id=ram0,size=150M,'
                       f'mem-path={tmp}/guest-ram,share=on',
            *bootblock_args(disk)]
    state = os.path.join(tmp, 'state.cpr')
    old = make_machine(source, base_temp_dir=tmp, name='old')
    old.add_args(*args)
    old.launch()
    if suspend:
        wait_event(old, 'SUSPEND', 120)
    else:
        start = guest_counter(old)
        wait_for(lambda: guest_counter(old) != start, 60, 'guest running')
    was = runstate(old)
    counter = guest_counter(old)
    old.qmp('cprsave', file=state, mode='reboot')
    old.wait(timeout=60)
    if old.exitcode() != 0:
        raise RuntimeError(f'the saving QEMU exited with {old.exitcode()}')

    new = make_machine(target, base_temp_dir=tmp, name='new')
    new.add_args(*args, '-incoming', 'defer')
    new.launch()
    try:
        new.qmp('migrate-set-capabilities', capabilities=[
            {'capability': 'x-ignore-shared', 'state': True}])
        new.qmp('migrate-incoming', uri=f'file:{state}')
        wait_for(lambda: runstate(new) != 'inmigrate', 60, 'the load')
        time.sleep(0.3)
        end = runstate(new)
        same = (not suspend) or (guest_counter(new) == counter and
                                 read_guest_u32(new, GUEST_SUSPENDED_FLAG)
                                 == 1)
        if end == 'suspended':
            new.qmp('system_wakeup')
            wait_event(new, 'WAKEUP', 60)
        start = guest_counter(new)
        wait_for(lambda: guest_counter(new) != start, 60, 'guest to run')
        return was, end, same, runstate(new)
    finally:
        new.shutdown()


def main():
    cases = [(s, t) for t in targets() for s in (True, False)]
    print(f'1..{len(cases)}')
    for i, (suspend, (sname, source, name, target)) in enumerate(cases, 1):
        desc = f"{'suspended' if suspend else 'running'} guest: cprsave on " \
               f"{sname}, load on {name}"
        if not target or not source:
            print(f'ok {i} - {desc} # SKIP no {name if source else sname} '
                  'here')
            continue
        tmp = work_tmpdir('cpr-interop-')
        try:
            was, end, same, after = case(suspend, tmp, source, target)
            ok = end == was and same and after == 'running'
            print(f"{'ok' if ok else 'not ok'} {i} - {desc}: saved {was}, "
                  f"{name} ends {end}, memory intact: {same}, then {after} "
                  "with the guest writing memory")
        except Exception as e:  # pylint: disable=broad-except
            print(f'not ok {i} - {desc}: {e}')
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
