#!/usr/bin/env python3
"""The globalstate section on the wire, byte for byte.

Migrates guests to a file (exec:cat) and extracts the globalstate
section's fields: uint32 size, then the 100 bytes that QEMU 7.2 used for
the runstate name and that QEMU 9.0+ splits into runstate[32],
has_vm_was_suspended, vm_was_suspended and unused[66].  Checks the bytes
against the layout upstream QEMU documents, and against what Debian 13's
QEMU 10.0 sends for the same guest when it is installed.  Feeds
malformed sections (name without NUL, unknown name, flags 2 and 255,
stream cut short) to an incoming QEMU, which must refuse each with an
error and exit status 1, without running the guest.  Feeds a running
guest's stream with the stale bytes a stock 7.2 can send (the flag set
next to "running", bytes after the name's NUL, non-zero unused[66]):
each loads as "running" and the guest's memory goes on changing.  Feeds
streams that record a runstate an incoming VM cannot enter (debug,
finish-migrate, save-vm, restore-vm, inmigrate): each loads as "paused",
and cont runs the guest.  Saves a suspended guest's device state with
xen-save-devices-state (stopped first, as Xen's libxl does): the section
records "suspended" with the flag set, and the file, loaded with
-incoming as libxl restores a guest, ends "suspended" (RESUME, then
SUSPEND), not woken.  Also compares
the device vmstate of stock and patched QEMU with QEMU's
scripts/vmstate-static-checker.py (globalstate is not a device, so it is
not part of -dump-vmstate).
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from qemu_env import LINE, QEMU, QEMUMachine, SRC, STOCK_QEMU, UPSTREAM_QEMU, \
    bootblock_args, globalstate_at, guest_counter, malformed_globalstate, \
    runstate, stale_globalstate, unenterable_globalstate, upstream_qemu, wait_event, wait_for, write_bootblock  # noqa: E402

MACHINE = 'pc-i440fx-7.2'


def stream_of(binary, guest, tmp):
    """Migrate a guest ('running', 'suspended' or 'stopped-suspended') of
    @binary to a file; return the stream and the offset of the
    globalstate section's fields in it."""
    disk = write_bootblock(tmp, suspend=guest != 'running')
    out = os.path.join(tmp, 'stream')
    vm = QEMUMachine(binary, base_temp_dir=tmp, name='src')
    vm.add_args('-accel', 'tcg', '-machine', MACHINE, '-m', '150M',
                '-nic', 'none', *bootblock_args(disk))
    try:
        vm.launch()
        if guest == 'running':
            wait_for(lambda: runstate(vm) == 'running', 30, 'running')
        else:
            wait_event(vm, 'SUSPEND', 120)
        if guest == 'stopped-suspended':
            vm.qmp('stop')
        vm.qmp('migrate-set-parameters', **{'max-bandwidth': 10 ** 9,
                                            'downtime-limit': 30000})
        vm.qmp('migrate', uri=f'exec:cat > {out}')
        wait_for(lambda: vm.qmp('query-migrate')['return'].get('status')
                 in ('completed', 'failed'), 120, 'migration to the file')
        status = vm.qmp('query-migrate')['return']['status']
        if status != 'completed':
            raise RuntimeError(f'migration to the file {status}')
    finally:
        vm.shutdown()
    with open(out, 'rb') as f:
        data = f.read()
    return data, globalstate_at(data)


def globalstate_bytes(binary, guest, tmp):
    """The section's 104 field bytes for such a guest."""
    data, at = stream_of(binary, guest, tmp)
    return data[at:at + 104]


def load_refused(stream, tmp, expect):
    """Feed @stream to an incoming patched QEMU: it must refuse it, exit
    with status 1 (no crash), never start the guest, and say why."""
    path = os.path.join(tmp, 'bad-stream')
    with open(path, 'wb') as f:
        f.write(stream)
    disk = write_bootblock(tmp, suspend=True)
    try:
        r = subprocess.run([QEMU, '-accel', 'tcg', '-machine', MACHINE,
                            '-m', '150M', '-nic', 'none', '-display', 'none',
                            *bootblock_args(disk), '-qmp', 'null',
                            '-incoming', f'exec:cat {path}'],
                           capture_output=True, text=True, timeout=60,
                           check=False)
    except subprocess.TimeoutExpired:
        return False, 'accepted: QEMU still running after 60 s'
    ok = r.returncode == 1 and expect in r.stderr
    err = ' / '.join(r.stderr.split('\n')[:2])
    return ok, f'exit {r.returncode}, "{err}"'


def load_running(stream, tmp, cont=False):
    """Feed @stream (of a running guest) to an incoming patched QEMU: it
    must load it as "running" (as "paused" with @cont, and run after a
    cont) and the guest must go on writing its memory."""
    path = os.path.join(tmp, 'stale-stream')
    with open(path, 'wb') as f:
        f.write(stream)
    disk = write_bootblock(tmp, suspend=False)
    vm = QEMUMachine(QEMU, base_temp_dir=tmp, name='dst')
    vm.add_args('-accel', 'tcg', '-machine', MACHINE, '-m', '150M',
                '-nic', 'none', *bootblock_args(disk),
                '-incoming', f'exec:cat {path}')
    want = 'paused' if cont else 'running'
    try:
        vm.launch()
        wait_for(lambda: runstate(vm) != 'inmigrate', 60, 'the load')
        status = runstate(vm)
        if status != want:
            result = False, f'loaded as "{status}"'
        else:
            if cont:
                vm.qmp('cont')
                status = runstate(vm)
            first = guest_counter(vm)
            wait_for(lambda: guest_counter(vm) != first, 60,
                     'the guest to write its memory')
            result = True, (f'loaded as "{want}", guest memory changing'
                            f'{" after cont" if cont else ""}')
    except Exception as e:  # pylint: disable=broad-except
        result = False, f'{e}'
    try:
        vm.shutdown()
    except Exception as e:  # pylint: disable=broad-except
        result = False, f'{result[1]}; shutdown: {e}'
    if vm.exitcode() not in (0, None):
        result = False, f'{result[1]}; QEMU exit code {vm.exitcode()}'
    return result


# The device state file holds no RAM: no vapic, whose state refers to
# its option ROM in guest RAM (Xen guests have none either)
XEN_ARGS = ('-global', 'apic-common.vapic=off')


def xen_save(binary, tmp):
    """xen-save-devices-state of a suspended guest of @binary, stopped
    first as libxl does; return the file and the runstate after it."""
    disk = write_bootblock(tmp, suspend=True)
    out = os.path.join(tmp, 'xen-state')
    vm = QEMUMachine(binary, base_temp_dir=tmp, name='xen-src')
    vm.add_args('-accel', 'tcg', '-machine', MACHINE, '-m', '150M',
                '-nic', 'none', *bootblock_args(disk), *XEN_ARGS)
    try:
        vm.launch()
        wait_event(vm, 'SUSPEND', 120)
        vm.qmp('stop')
        r = vm.qmp('xen-save-devices-state', filename=out, live=False)
        if 'error' in r:
            raise RuntimeError(f'xen-save-devices-state: {r["error"]}')
        after = runstate(vm)
    finally:
        vm.shutdown()
    return out, after


def xen_load(path, tmp):
    """Load a xen-save-devices-state file with -incoming, as libxl
    restores a guest; return (runstate, events since the load)."""
    disk = write_bootblock(tmp, suspend=True)
    vm = QEMUMachine(QEMU, base_temp_dir=tmp, name='xen-dst')
    # Xen's machine skips the configuration section, which the device
    # state file lacks
    vm.add_args('-accel', 'tcg', '-machine', MACHINE, '-m', '150M',
                '-nic', 'none', *bootblock_args(disk), *XEN_ARGS,
                '-global', 'migration.send-configuration=off',
                '-incoming', 'defer')
    try:
        vm.launch()
        vm.qmp('migrate-incoming', uri=f'exec:cat {path}')
        wait_for(lambda: runstate(vm) != 'inmigrate', 60, 'the load')
        status = runstate(vm)
        events = [e['event'] for e in vm.get_qmp_events()
                  if e['event'] in ('STOP', 'RESUME', 'SUSPEND', 'WAKEUP')]
    finally:
        # the file has no RAM: a guest that runs runs garbage; kill it
        vm.kill()
    return status, events


def xen_case(n):
    """Test points n and n + 1: the bytes and the load."""
    tmp = tempfile.mkdtemp(prefix='wire-xen-')
    want = expected('suspended', 1, 1)
    path = None
    try:
        path, after = xen_save(QEMU, tmp)
        with open(path, 'rb') as f:
            data = f.read()
        b = data[globalstate_at(data):globalstate_at(data) + 104]
        ok = b == want and after == 'paused'
        print(f'{"ok" if ok else "not ok"} {n} - xen-save-devices-state of '
              f'a suspended guest (stopped): {fmt(b)}, source "{after}"')
        if not ok:
            print(f'#   expected {fmt(want)}, source "paused"')
    except Exception as e:  # pylint: disable=broad-except
        print(f'not ok {n} - xen-save-devices-state: {e}')
    try:
        if path is None:
            raise RuntimeError('no file to load')
        status, events = xen_load(path, tmp)
        ok = status == 'suspended' and events == ['RESUME', 'SUSPEND']
        print(f'{"ok" if ok else "not ok"} {n + 1} - its file loaded with '
              f'-incoming: "{status}", events {" ".join(events) or "none"}')
    except Exception as e:  # pylint: disable=broad-except
        print(f'not ok {n + 1} - its file loaded with -incoming: {e}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def expected(name, has_flag, flag):
    return (struct.pack('>I', len(name) + 1) +
            name.encode().ljust(32, b'\0') + bytes([has_flag, flag]) +
            bytes(66))


def fmt(b):
    size = struct.unpack('>I', b[:4])[0]
    name = b[4:36].rstrip(b'\0').decode(errors='replace')
    return (f'size {size}, "{name}" + {36 - 4 - len(name)} NUL, '
            f'{b[36]:02x} {b[37]:02x}, '
            f'tail {b[38:].hex() if any(b[38:]) else "zero"}')


def main():
    up = upstream_qemu() is not None
    stock = os.access(STOCK_QEMU, os.X_OK)
    cases = [
        # (binary label, guest, expected bytes)
        ('patched', 'suspended', expected('suspended', 1, 0)),
        ('patched', 'stopped-suspended', expected('paused', 1, 1)),
        ('patched', 'running', expected('running', 1, 0)),
        ('10.0', 'suspended', expected('suspended', 1, 0)),
        ('10.0', 'stopped-suspended', expected('paused', 1, 1)),
        ('10.0', 'running', expected('running', 1, 0)),
    ]
    if LINE == '7.2':
        cases += [
            # stock 7.2: 100-byte name, no flag; it wakes a suspended guest
            ('stock', 'running', expected('running', 0, 0)),
            ('stock', 'suspended', expected('running', 0, 0)),
        ]
    else:
        cases += [
            # a newer line's stock QEMU sends the flag as 10.0 does
            ('stock', 'running', expected('running', 1, 0)),
            ('stock', 'suspended', expected('suspended', 1, 0)),
        ]
    bins = {'patched': QEMU, 'stock': STOCK_QEMU, '10.0': UPSTREAM_QEMU}
    extra = (len(malformed_globalstate(bytes(64), 0)) +
             len(stale_globalstate(bytes(128), 0)) +
             len(unenterable_globalstate(bytes(128), 0)))
    print(f'1..{len(cases) + 4 + extra}')
    n = 0
    got = {}
    for label, guest, want in cases:
        n += 1
        desc = f'{label} QEMU, {guest} guest'
        if (label == '10.0' and not up) or (label == 'stock' and not stock):
            print(f'ok {n} - {desc} # SKIP no {label} QEMU')
            continue
        tmp = tempfile.mkdtemp(prefix='wire-')
        try:
            b = globalstate_bytes(bins[label], guest, tmp)
            got[(label, guest)] = b
            ok = b == want
            print(f'{"ok" if ok else "not ok"} {n} - {desc}: {fmt(b)}')
            if not ok:
                print(f'#   expected {fmt(want)}')
        except Exception as e:  # pylint: disable=broad-except
            print(f'not ok {n} - {desc}: {e}')
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    n += 1
    pairs = [g for g in ('suspended', 'stopped-suspended', 'running')
             if ('patched', g) in got and ('10.0', g) in got]
    if not up:
        print(f'ok {n} - patched and 10.0 send identical bytes # SKIP no 10.0')
    else:
        same = pairs and all(got[('patched', g)] == got[('10.0', g)]
                             for g in pairs)
        print(f'{"ok" if same else "not ok"} {n} - patched and 10.0 send '
              f'identical globalstate bytes ({", ".join(pairs)})')

    # malformed globalstate sections from a real stream of a suspended
    # guest: every one refused with an error, no crash, no guest started
    tmp = tempfile.mkdtemp(prefix='wire-bad-')
    try:
        data, at = stream_of(QEMU, 'suspended', tmp)
        for desc, stream, expect in malformed_globalstate(data, at):
            n += 1
            ok, detail = load_refused(stream, tmp, expect)
            print(f'{"ok" if ok else "not ok"} {n} - malformed globalstate, '
                  f'{desc}: {detail}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # stale bytes next to a live runstate: ignored, never refused
    tmp = tempfile.mkdtemp(prefix='wire-stale-')
    try:
        data, at = stream_of(QEMU, 'running', tmp)
        for desc, stream in stale_globalstate(data, at):
            n += 1
            ok, detail = load_running(stream, tmp)
            print(f'{"ok" if ok else "not ok"} {n} - stale globalstate, '
                  f'{desc}: {detail}')
        # recorded states an incoming VM cannot enter: paused, no abort
        for state, stream in unenterable_globalstate(data, at):
            n += 1
            ok, detail = load_running(stream, tmp, cont=True)
            print(f'{"ok" if ok else "not ok"} {n} - globalstate '
                  f'"{state}": {detail}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # Xen's device state of a suspended guest keeps it suspended
    xen_case(n + 1)
    n += 2

    n += 1
    if not stock:
        print(f'ok {n} - vmstate-static-checker # SKIP no stock QEMU')
        return
    tmp = tempfile.mkdtemp(prefix='vmstate-')
    try:
        files = {}
        for label in ('stock', 'patched'):
            files[label] = os.path.join(tmp, f'{label}.json')
            subprocess.run([bins[label], '-M', MACHINE, '-dump-vmstate',
                            files[label]], check=True)
        checker = os.path.join(SRC, 'scripts', 'vmstate-static-checker.py')

        def check(s, d):
            r = subprocess.run([sys.executable, checker, '-s', files[s],
                                '-d', files[d]], capture_output=True,
                               text=True)
            return r.returncode, (r.stdout + r.stderr).splitlines()

        # what the base's checker reports comparing stock with itself
        # (10.2's reports the sd-card subsections) is not the series'
        base_rc, base = check('stock', 'stock')
        rcs, new = [], []
        for s, d in (('stock', 'patched'), ('patched', 'stock')):
            rc, lines = check(s, d)
            rcs.append(rc)
            for line in lines:
                if line not in base:
                    new.append(line)
                    print(f'# {s} -> {d}: {line}')
        ok = not new and all(rc in (0, base_rc) for rc in rcs)
        known = f', {len(set(base))} known to the checker itself' if base else ''
        print(f'{"ok" if ok else "not ok"} {n} - vmstate-static-checker '
              f'stock <-> patched ({MACHINE}): exit codes {rcs}, '
              f'{len(new)} new report(s){known}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
