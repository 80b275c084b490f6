"""Shared helpers for the project's Python tests and the demo.

Paths come from the environment set by scripts/check.sh (ROOT, SRC,
BUILD); QMP and process handling use the base tree's python/qemu
packages (qemu.machine.QEMUMachine), never a QMP client of our own.
"""

import os
import re
import sys
import tempfile
import time

ROOT = os.environ.get('ROOT') or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.environ.get('WORK') or os.path.join(ROOT, 'work')
SRC = os.environ.get('SRC') or os.path.join(WORK, 'qemu')
BUILD = os.environ.get('BUILD') or os.path.join(WORK, 'build')
QEMU = os.environ.get('QEMU') or os.path.join(BUILD, 'qemu-system-x86_64')

sys.path.insert(0, os.path.join(SRC, 'python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402


def bootblock_bytes(src=SRC):
    """The migration-test boot sector, from the tree's generated header."""
    path = os.path.join(src, 'tests', 'migration', 'i386', 'a-b-bootblock.h')
    with open(path, encoding='ascii') as f:
        text = f.read()
    body = text[text.index('{') + 1:text.index('}')]
    data = bytes(int(x, 16) for x in re.findall(r'0x[0-9a-fA-F]{2}', body))
    if len(data) != 512 or data[-2:] != b'\x55\xaa':
        raise RuntimeError(f'{path}: not a 512-byte boot sector')
    return data


def write_bootblock(directory):
    """Write the boot sector as a raw disk image; return its path."""
    path = os.path.join(directory, 'bootsect.img')
    with open(path, 'wb') as f:
        f.write(bootblock_bytes())
    return path


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate() until true; raise TimeoutError naming what."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout}s waiting for {what}')
        time.sleep(interval)


def runstate(vm):
    """Runstate name reported by query-status."""
    return vm.qmp('query-status')['return']['status']


def new_tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)
