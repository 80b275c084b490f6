"""Shared helpers for the project's Python tests and the demo.

Paths come from the environment set by scripts/check.sh (ROOT, SRC,
BUILD); QMP and process handling use the base tree's python/qemu
packages (qemu.machine.QEMUMachine), never a QMP client of our own.
"""

import os
import re
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.environ.get('ROOT') or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.environ.get('WORK') or os.path.join(ROOT, 'work')
# the line (lines/LINE.pin) whose trees the tests use: work/LINE/...
LINE = os.environ.get('LINE') or '7.2'
LWORK = os.environ.get('LWORK') or os.path.join(WORK, LINE)
SRC = os.environ.get('SRC') or os.path.join(LWORK, 'qemu')
BUILD = os.environ.get('BUILD') or os.path.join(LWORK, 'build')
QEMU = os.environ.get('QEMU') or os.path.join(BUILD, 'qemu-system-x86_64')
STOCK_QEMU = os.path.join(LWORK, 'stock', 'build', 'qemu-system-x86_64')
UPSTREAM_QEMU = '/usr/bin/qemu-system-x86_64'


def upstream_qemu():
    """Debian 13's QEMU 10.0 (installed by scripts/setup-deps.sh for the
    tests), or None when this machine does not have it."""
    try:
        out = subprocess.run([UPSTREAM_QEMU, '--version'], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return UPSTREAM_QEMU if 'version 10.0' in out else None


# make deb-check: the chroots that hold our installed Debian packages of
# a line (DEB_ROOT_7_2: bookworm with the 7.2 packages, DEB_ROOT_10_0:
# trixie with the 10.0 packages), for the cross-version rows on packages
DEB_ROOTS = {line: os.environ[f'DEB_ROOT_{line.replace(".", "_")}']
             for line in ('7.2', '10.0')
             if os.environ.get(f'DEB_ROOT_{line.replace(".", "_")}')}


def chroot_wrapper(root):
    """The command prefix that runs a program inside the chroot @root
    with /proc, /sys, /dev and $WORK at the same paths, in a private mount
    namespace (as scripts/deb-lib.sh's debroot_run): the QEMU of another
    Debian release's packages, on this host.  Every exec keeps the pid."""
    script = ('mount --bind "$R" "$R"; mount -t proc proc "$R/proc"; '
              'mount --rbind /sys "$R/sys"; mount --rbind /dev "$R/dev"; '
              'mkdir -p "$R$W"; mount --bind "$W" "$R$W"; '
              'exec chroot "$R" "$@"')
    return ['env', f'R={root}', f'W={WORK}', 'unshare', '--mount',
            '--propagation', 'private', 'sh', '-euc', script, 'sh']


def deb_qemu(line):
    """(binary, wrapper) of the installed QEMU of @line's packages in its
    chroot (DEB_ROOTS), or None."""
    root = DEB_ROOTS.get(line)
    if not root or not os.access(root + UPSTREAM_QEMU, os.X_OK):
        return None
    return UPSTREAM_QEMU, chroot_wrapper(root)


def qemu_available(qemu):
    """A binary path, or a (binary, wrapper) pair of deb_qemu(): runnable."""
    if isinstance(qemu, tuple):
        return True
    return bool(qemu) and os.access(qemu, os.X_OK)


def make_machine(qemu, **kwargs):
    """QEMUMachine of a binary path or of a deb_qemu() pair."""
    if isinstance(qemu, tuple):
        return QEMUMachine(qemu[0], wrapper=qemu[1], **kwargs)
    return QEMUMachine(qemu, **kwargs)


def work_tmpdir(prefix):
    """A temporary directory under $WORK/tmp: the chroots of deb_qemu()
    see it at the same path."""
    base = os.path.join(WORK, 'tmp')
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=base)


sys.path.insert(0, os.path.join(SRC, 'python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402,F401 (re-exported)


def bootblock_header(src=SRC):
    """The generated header of the migration tests' x86 boot block: under
    tests/migration/ up to QEMU 9.x, tests/qtest/migration/ since."""
    for sub in (('tests', 'migration'), ('tests', 'qtest', 'migration')):
        path = os.path.join(src, *sub, 'i386', 'a-b-bootblock.h')
        if os.path.exists(path):
            return path
    raise RuntimeError(f'{src}: no i386/a-b-bootblock.h in the migration tests')


def bootblock_bytes(src=SRC):
    """The migration-test boot sector, from the tree's generated header."""
    path = bootblock_header(src)
    with open(path, encoding='ascii') as f:
        text = f.read()
    body = text[text.index('{') + 1:text.index('}')]
    data = bytes(int(x, 16) for x in re.findall(r'0x[0-9a-fA-F]{2}', body))
    if len(data) != 512 or data[-2:] != b'\x55\xaa':
        raise RuntimeError(f'{path}: not a 512-byte boot sector')
    return data


def bootblock_suspend_offset(src=SRC):
    """Offset of the boot block's suspend option (a word of the boot
    sector), from the symbols its Makefile generates into the header."""
    path = bootblock_header(src)
    with open(path, encoding='ascii') as f:
        syms = dict(re.findall(r'#define SYM_(\w+) (0x[0-9a-fA-F]+)', f.read()))
    if 'suspend_me' not in syms or 'start' not in syms:
        raise RuntimeError(f'{path}: no SYM_suspend_me/SYM_start')
    return int(syms['suspend_me'], 16) - int(syms['start'], 16)


# The boot block's record, in guest memory, of having suspended; the
# first byte of the first page it writes is its memory counter.
TEST_MEM_START = 1024 * 1024
GUEST_SUSPENDED_FLAG = TEST_MEM_START + 4


def write_bootblock(directory, suspend=False):
    """Write the boot sector as a raw disk image; return its path.

    With suspend, the guest enters ACPI S3 after its first memory pass."""
    data = bytearray(bootblock_bytes())
    data[bootblock_suspend_offset()] = 1 if suspend else 0
    path = os.path.join(directory, 'bootsect.img')
    with open(path, 'wb') as f:
        f.write(data)
    return path


def bootblock_args(path):
    """QEMU arguments for the boot disk (a one-sector disk needs its
    geometry spelt out for AHCI on q35)."""
    return ['-drive', f'if=none,id=d0,file={path},format=raw',
            '-device', 'ide-hd,drive=d0,secs=1,cyls=1,heads=1']


def read_guest_u32(vm, addr):
    """A 32-bit word of guest physical memory, read through HMP."""
    out = vm.qmp('human-monitor-command',
                 **{'command-line': f'xp /1wx {addr:#x}'})['return']
    return int(out.split(':')[1].split()[0], 16)


def guest_counter(vm):
    """The boot block's memory counter (first byte of its first page)."""
    return read_guest_u32(vm, TEST_MEM_START) & 0xff


# The globalstate section of a migration stream: after its header (the
# name, then instance and version ids, 4 bytes each) come the uint32 size
# and the 100 bytes of runstate[32], has_vm_was_suspended,
# vm_was_suspended, unused[66].
GLOBALSTATE_SECTION = b'\x0bglobalstate'


def globalstate_at(stream):
    """Offset of the globalstate section's fields in a stream."""
    return (stream.index(GLOBALSTATE_SECTION) + len(GLOBALSTATE_SECTION) +
            8)


def malformed_globalstate(data, at):
    """Mutations of a stream's globalstate section (fields at @at):
    a list of (description, mutated stream, text the refusal must
    contain)."""
    name = at + 4
    return [
        ('runstate name without NUL',
         data[:name] + b'A' * 32 + data[name + 32:], 'not NUL-terminated'),
        ('unknown runstate name',
         data[:name] + b'sleeping'.ljust(32, b'\0') + data[name + 32:],
         'sleeping'),
        ('vm_was_suspended = 2',
         data[:at + 37] + b'\x02' + data[at + 38:], 'vm_was_suspended'),
        ('vm_was_suspended = 255',
         data[:at + 37] + b'\xff' + data[at + 38:], 'vm_was_suspended'),
        ('has_vm_was_suspended = 2',
         data[:at + 36] + b'\x02' + data[at + 37:], 'vm_was_suspended'),
        ('stream cut inside the section', data[:at + 20], 'globalstate'),
    ]


def stale_globalstate(data, at):
    """Variants of a running guest's stream whose globalstate section
    carries bytes a stock QEMU 7.2 can leave there (it keeps the 100
    bytes it last loaded and pads only up to the name it stores): a
    list of (description, stream).  Each must load as "running"."""
    name = at + 4
    return [
        ('"running" with has_vm_was_suspended = 1, vm_was_suspended = 1',
         data[:at + 36] + b'\x01\x01' + data[at + 38:]),
        ('"running" with has_vm_was_suspended = 0, vm_was_suspended = 1',
         data[:at + 36] + b'\x00\x01' + data[at + 38:]),
        ('"running" then the rest of "finish-migrate" after its NUL',
         data[:name] + b'running\0grate'.ljust(32, b'\0') +
         data[name + 32:]),
        ('"running" with non-zero unused[66]',
         data[:at + 38] + bytes(range(1, 67)) + data[at + 104:]),
    ]


def unenterable_globalstate(data, at):
    """Variants of a running guest's stream that record a runstate an
    incoming VM cannot enter: a list of (runstate, stream).  Each must
    load as "paused"."""
    name = at + 4
    out = []
    for state in ('debug', 'finish-migrate', 'save-vm', 'restore-vm',
                  'inmigrate'):
        out.append((state, data[:at] +
                    struct.pack('>I', len(state) + 1) +
                    state.encode().ljust(32, b'\0') + data[name + 32:]))
    return out


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate() until true; raise TimeoutError naming what."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout}s waiting for '
                               f'{what}')
        time.sleep(interval)


def wait_event(vm, name, timeout, match=None):
    """Wait for QMP event @name (optionally matching @match) for at most
    @timeout seconds; return it, or raise TimeoutError naming it.

    The base tree's QMP client applies a timeout only when it is a
    float: QEMUMachine.event_wait(name, timeout=60) waits forever."""
    try:
        event = vm.event_wait(name, timeout=float(timeout), match=match)
    except TimeoutError:
        event = None
    if event is None:
        raise TimeoutError(f'no {name} event in {timeout} s')
    return event


def runstate(vm):
    """Runstate name reported by query-status."""
    return vm.qmp('query-status')['return']['status']


def new_tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)
