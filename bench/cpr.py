#!/usr/bin/env python3
"""Benchmark: downtime of a QEMU restart that keeps the guest's RAM in its
file, for guests of several RAM sizes.

The guest (the migration-test boot block, machine pc-i440fx-7.2, TCG)
writes to its first 100 MiB and suspends itself to S3.  Its RAM is a
shared memory-backend-file, filled with a non-zero pattern before QEMU
starts so that every page has content.  Each method restarts QEMU, as a
live update does:

  cpr:         patched QEMU: cprsave -> QEMU exits -> new QEMU (same
               arguments, -S) -> cprload.  cprsave writes the RAM file
               back to its file system before QEMU exits.
  cpr-reboot:  the reference QEMU (Debian 13's QEMU 10.0, --ref-qemu):
               migrate-set-parameters mode=cpr-reboot, x-ignore-shared on,
               migrate to file: -> quit -> new QEMU (same arguments,
               -incoming defer) -> migrate-incoming of the file.
  savevm:      patched QEMU: savevm -> quit -> new QEMU (-S) -> loadvm
               (the RAM is saved into the qcow2 disk).

Figures per run, from the QMP event timestamps and the wall clock:

  downtime:  STOP of the old QEMU -> RESUME of the new one (the guest's
             clock stands still in between)
  total:     the save command -> the new QEMU holding the guest suspended
             again (includes work done while the guest still runs)
  save, start, load: the save command to the old QEMU's exit, the new
             QEMU's start-up, the load command to the guest back

--dir chooses the file system of the RAM file and the state: /dev/shm
(tmpfs, the default) or a directory on a disk file system, where a safe
save has to write the RAM back.  Prints a table and writes
bench/results/cpr.json (or --json PATH).

    bench/cpr.py [--sizes 256,1024,4096] [--runs 3] [--dir DIR]
                 [--methods cpr,cpr-reboot,savevm] [--ref-qemu BINARY]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'lib'))
# pylint: disable=wrong-import-position
from qemu_env import BUILD, QEMU, QEMUMachine, runstate, upstream_qemu, \
    wait_for, write_bootblock  # noqa: E402
from lib_migrate import MACHINE, fill  # noqa: E402

QEMU_IMG = os.path.join(BUILD, 'qemu-img')
METHODS = ('cpr', 'cpr-reboot', 'savevm')


def vm(binary, tmp, name, size, disk, fmt, extra=()):
    m = QEMUMachine(binary, base_temp_dir=tmp, name=name)
    m.add_args('-accel', 'tcg', '-machine', f'{MACHINE},memory-backend=ram0',
               '-m', f'{size}M', '-nic', 'none',
               '-global', 'PIIX4_PM.disable_s3=0',
               '-object', f'memory-backend-file,id=ram0,size={size}M,'
                          f'mem-path={tmp}/ram,share=on',
               '-drive', f'if=none,id=d0,file={disk},format={fmt}',
               '-device', 'ide-hd,drive=d0,secs=1,cyls=1,heads=1', *extra)
    return m


def event_time(m, name, timeout=60):
    """Host time (s) of the first event name that m sent."""
    ev = m.event_wait(name, timeout=timeout)
    if ev is None:
        raise RuntimeError(f'no {name} event')
    ts = ev['timestamp']
    return ts['seconds'] + ts['microseconds'] / 1e6


def hmp(m, line):
    out = m.qmp('human-monitor-command', **{'command-line': line})['return']
    if out:
        raise RuntimeError(f'{line}: {out}')


def save(method, old, state):
    if method == 'cpr':
        old.qmp('cprsave', file=state, mode='reboot')
        t_stop = event_time(old, 'STOP')
        old.wait(timeout=600)
        if old.exitcode() != 0:
            raise RuntimeError(f'cprsave: QEMU exited with {old.exitcode()}')
    elif method == 'cpr-reboot':
        old.qmp('migrate-set-parameters', mode='cpr-reboot')
        old.qmp('migrate-set-capabilities', capabilities=[
            {'capability': 'x-ignore-shared', 'state': True}])
        res = old.qmp('migrate', uri=f'file:{state}')
        if 'error' in res:
            raise RuntimeError(f"migrate: {res['error']['desc']}")
        t_stop = event_time(old, 'STOP')
        wait_for(lambda: old.qmp('query-migrate')['return'].get('status')
                 in ('completed', 'failed'), 600, 'the migration', 0.005)
        status = old.qmp('query-migrate')['return']['status']
        if status != 'completed':
            raise RuntimeError(f'cpr-reboot migration {status}')
        old.shutdown()
    else:
        hmp(old, 'savevm bench')
        t_stop = event_time(old, 'STOP')
        old.shutdown()
    return t_stop


def load(method, new, state):
    if method == 'cpr':
        new.qmp('cprload', file=state)
    elif method == 'cpr-reboot':
        new.qmp('migrate-set-parameters', mode='cpr-reboot')
        new.qmp('migrate-set-capabilities', capabilities=[
            {'capability': 'x-ignore-shared', 'state': True}])
        new.qmp('migrate-incoming', uri=f'file:{state}')
    else:
        hmp(new, 'loadvm bench')
        new.qmp('cont')
    t_resume = event_time(new, 'RESUME', 600)
    wait_for(lambda: runstate(new) == 'suspended', 60, 'suspended', 0.005)
    return t_resume


def run_once(size, method, base_dir, binary):
    tmp = tempfile.mkdtemp(prefix='bench-cpr-', dir=base_dir)
    try:
        raw = write_bootblock(tmp, suspend=True)
        disk, fmt = raw, 'raw'
        if method == 'savevm':
            disk, fmt = os.path.join(tmp, 'disk.qcow2'), 'qcow2'
            subprocess.run([QEMU_IMG, 'convert', '-q', '-f', 'raw', '-O',
                            'qcow2', raw, disk], check=True)
        fill(os.path.join(tmp, 'ram'), size)
        old = vm(binary, tmp, 'old', size, disk, fmt)
        old.launch()
        wait_for(lambda: runstate(old) == 'suspended', 300,
                 'the guest to suspend')
        state = os.path.join(tmp, 'state')

        t0 = time.monotonic()
        t_stop = save(method, old, state)
        t_saved = time.monotonic()
        extra = ('-incoming', 'defer') if method == 'cpr-reboot' else ('-S',)
        new = vm(binary, tmp, 'new', size, disk, fmt, extra)
        new.launch()
        t_started = time.monotonic()
        t_resume = load(method, new, state)
        t1 = time.monotonic()
        file_size = (os.path.getsize(disk) if method == 'savevm'
                     else os.path.getsize(state))
        new.shutdown()
        return {'downtime_s': t_resume - t_stop, 'total_s': t1 - t0,
                'save_s': t_saved - t0, 'start_s': t_started - t_saved,
                'load_s': t1 - t_started, 'file_bytes': file_size}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def version(binary):
    return subprocess.run([binary, '--version'], check=True,
                          capture_output=True, text=True).stdout.splitlines()[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--sizes', default='256,1024,4096')
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--methods', default=','.join(METHODS))
    p.add_argument('--ref-qemu', default=None,
                   help='QEMU of the cpr-reboot method (default: Debian '
                        "13's QEMU 10.0 when installed)")
    p.add_argument('--json', default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'results', 'cpr.json'))
    p.add_argument('--dir', '--shm', dest='dir', default='/dev/shm',
                   help='where the RAM file and the state go')
    a = p.parse_args()
    methods = a.methods.split(',')
    ref = a.ref_qemu or upstream_qemu()
    if 'cpr-reboot' in methods and not ref:
        print('no reference QEMU for cpr-reboot: leaving it out')
        methods.remove('cpr-reboot')
    os.makedirs(a.dir, exist_ok=True)
    fs = subprocess.run(['stat', '-f', '-c', '%T', a.dir], check=True,
                        capture_output=True, text=True).stdout.strip()
    print(f'RAM file and state on {fs}')
    results = []
    print(f"{'RAM':>6} {'method':>10} {'downtime median (min-max) s':>28} "
          f"{'total s':>8} {'save s':>7} {'start s':>7} {'load s':>7} "
          f"{'file MiB':>9}")
    for size in [int(s) for s in a.sizes.split(',')]:
        for method in methods:
            binary = ref if method == 'cpr-reboot' else QEMU
            runs = [run_once(size, method, a.dir, binary)
                    for _ in range(a.runs)]
            d = [r['downtime_s'] for r in runs]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results.append({'ram_mib': size, 'method': method,
                            'qemu': version(binary), 'runs': runs,
                            'median': med})
            print(f"{size:>5}M {method:>10} {med['downtime_s']:>10.3f} "
                  f"({min(d):.3f}-{max(d):.3f})    "
                  f"{med['total_s']:>8.2f} {med['save_s']:>7.2f} "
                  f"{med['start_s']:>7.2f} {med['load_s']:>7.2f} "
                  f"{med['file_bytes'] / 2 ** 20:>9.1f}", flush=True)
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, 'w') as f:
        json.dump({'machine': f'{os.cpu_count()} CPUs, TCG',
                   'file_system': fs, 'results': results}, f, indent=1)
    print(f'results: {a.json}')


if __name__ == '__main__':
    main()
