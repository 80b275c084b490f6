#!/usr/bin/env python3
"""Demo: boot the migration-test boot block guest on the built QEMU and
show its runstates.

This is the placeholder the series replaces: it only shows that the
patched QEMU builds and runs a guest.  The suspend / migrate / wake
walk-through arrives with the migration part of the series.
"""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'lib'))
# pylint: disable=wrong-import-position
from qemu_env import QEMU, QEMUMachine, new_tmpdir, runstate, \
    wait_for, write_bootblock  # noqa: E402


def main():
    tmp = new_tmpdir('qemu-demo-')
    serial = os.path.join(tmp, 'serial.log')
    vm = QEMUMachine(QEMU, base_temp_dir=tmp, name='demo')
    vm.add_args('-accel', 'tcg', '-M', 'pc', '-m', '150M', '-nographic',
                '-drive', f'file={write_bootblock(tmp)},format=raw,if=ide',
                '-serial', f'file:{serial}')
    try:
        vm.launch()
        ver = vm.qmp('query-version')['return']['qemu']
        print(f"QEMU {ver['major']}.{ver['minor']}.{ver['micro']} started")
        print(f'runstate: {runstate(vm)}')

        def serial_text():
            try:
                with open(serial, encoding='latin-1') as f:
                    return f.read()
            except FileNotFoundError:
                return ''
        # after the firmware's own output, the boot block prints 'A' once,
        # then a 'B' after every pass over its memory
        wait_for(lambda: re.search(r'AB+$', serial_text()), 60,
                 "the guest's first full memory pass")
        tail = re.search(r'AB+$', serial_text()).group(0)
        print(f"guest serial: {tail!r} (A = booted, "
              "B = one pass over its memory)")
        vm.qmp('stop')
        print(f'after stop: {runstate(vm)}')
        vm.qmp('cont')
        print(f'after cont: {runstate(vm)}')
    finally:
        vm.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print('demo done')


if __name__ == '__main__':
    main()
