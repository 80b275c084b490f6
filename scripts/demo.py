#!/usr/bin/env python3
"""Demo: a suspended guest goes through stop/cont, a live migration over
TCP and a wakeup on the destination, on the patched QEMU.

The guest is the boot block of QEMU's migration-test: it increments the
first byte of every page of its memory, and with its suspend option set
it puts itself into ACPI S3 after its first pass.  Every step prints the
runstates of both QEMUs and the QMP events they sent.
"""

import os
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'lib'))
# pylint: disable=wrong-import-position
from qemu_env import QEMU, QEMUMachine, bootblock_args, guest_counter, \
    new_tmpdir, runstate, wait_for, write_bootblock  # noqa: E402

RUNSTATE_EVENTS = ('SUSPEND', 'STOP', 'RESUME', 'WAKEUP')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def events(vm, name, expect, waited=None):
    """Runstate events the VM sent since the last call (plus the one just
    waited for), as a string; they must be @expect."""
    seen = [waited] if waited else []
    seen += [e['event'] for e in vm.get_qmp_events(wait=False)
             if e['event'] in RUNSTATE_EVENTS]
    got = ' '.join(seen) if seen else '-'
    if got != expect:
        raise RuntimeError(f'{name} events: {got}, expected {expect}')
    return f"{name} events: {got}"


def assert_halted(vm):
    """The guest's memory counter does not move."""
    before = guest_counter(vm)
    time.sleep(0.3)
    after = guest_counter(vm)
    if before != after:
        raise RuntimeError(f'guest runs while it should not: {before} -> '
                           f'{after}')
    return after


def show(step, src, dst, expect=None):
    """Print the runstates after @step; they must be @expect (if given)."""
    states = f'source {runstate(src)}'
    if dst is not None:
        states += f', destination {runstate(dst)}'
    print(f'{step:<44} {states}')
    if expect is not None and states != expect:
        raise RuntimeError(f'after "{step}": {states}, expected {expect}')


def main():
    tmp = new_tmpdir('qemu-demo-')
    disk = write_bootblock(tmp, suspend=True)
    port = free_port()
    common = ['-accel', 'tcg', '-M', 'pc', '-m', '150M', '-display', 'none',
              *bootblock_args(disk)]
    src = QEMUMachine(QEMU, base_temp_dir=tmp, name='source')
    src.add_args(*common)
    dst = QEMUMachine(QEMU, base_temp_dir=tmp, name='destination')
    dst.add_args(*common, '-incoming', f'tcp:127.0.0.1:{port}')
    try:
        src.launch()
        ver = src.qmp('query-version')['return']['qemu']
        print(f"QEMU {ver['major']}.{ver['minor']}.{ver['micro']}, machine pc, "
              "guest: migration-test boot block with S3 enabled")
        show('source started', src, None)

        src.event_wait('SUSPEND', timeout=120)
        show('guest suspended itself (ACPI S3)', src, None,
             'source suspended')
        print('  ' + events(src, 'source', 'SUSPEND', 'SUSPEND'))

        src.qmp('stop')
        show('stop', src, None, 'source paused')
        err = src.qmp('system_wakeup')['error']['desc']
        print(f'  system_wakeup while stopped: error "{err}"')
        src.qmp('cont')
        show('cont', src, None, 'source suspended')
        print('  ' + events(src, 'source', 'STOP RESUME SUSPEND'))

        counter = assert_halted(src)
        dst.launch()
        show('destination started with -incoming', src, dst,
             'source suspended, destination inmigrate')
        src.qmp('migrate', uri=f'tcp:127.0.0.1:{port}')
        wait_for(lambda: src.qmp('query-migrate')['return'].get('status')
                 in ('completed', 'failed'), 120, 'migration to finish')
        info = src.qmp('query-migrate')['return']
        print(f"migration over TCP: {info['status']}, "
              f"{info['ram']['transferred'] // 1024} KiB sent in "
              f"{info['total-time']} ms, downtime {info['downtime']} ms")
        if info['status'] != 'completed':
            raise RuntimeError(f'migration failed: {info}')
        wait_for(lambda: runstate(dst) == 'suspended', 60,
                 'the destination to be suspended')
        show('migrated', src, dst,
             'source postmigrate, destination suspended')
        print('  ' + events(src, 'source', 'STOP'))
        print('  ' + events(dst, 'destination', 'RESUME SUSPEND'))
        print(f'  guest memory counter: {counter} on the source, '
              f'{assert_halted(dst)} on the destination, not moving')

        dst.qmp('system_wakeup')
        dst.event_wait('WAKEUP', timeout=60)
        wait_for(lambda: guest_counter(dst) != counter, 60,
                 'the guest to write its memory again')
        show('system_wakeup on the destination', src, dst,
             'source postmigrate, destination running')
        print('  ' + events(dst, 'destination', 'WAKEUP', 'WAKEUP'))
        print(f'  guest memory counter moves again: {counter} -> '
              f'{guest_counter(dst)}')
    finally:
        dst.shutdown()
        src.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print('demo done')


if __name__ == '__main__':
    main()
