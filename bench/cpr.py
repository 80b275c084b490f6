#!/usr/bin/env python3
"""Benchmark: downtime of a QEMU restart with cprsave/cprload versus
savevm/loadvm, for guests of several RAM sizes.

The guest's RAM is a shared memory-backend-file in /dev/shm, filled with a
non-zero pattern before QEMU starts (so that every page has content to
save), with the migration-test boot block writing to its first 100 MiB
and suspending itself to S3.  Both methods restart QEMU, as a live update
does:

  cpr:    cprsave -> QEMU exits -> new QEMU (same arguments, -S) ->
          cprload                       (guest RAM stays in its file)
  savevm: savevm -> quit -> new QEMU (same arguments, -S) -> loadvm
                                        (RAM saved into the qcow2 disk)

Downtime is the wall-clock time from the save command to the new QEMU
holding the guest suspended again, QEMU start-up included.  Prints a
table and writes bench/results/cpr.json (or --json PATH).

    bench/cpr.py [--sizes 256,1024,4096] [--runs 3]
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
from qemu_env import BUILD, QEMU, QEMUMachine, runstate, wait_for, \
    write_bootblock  # noqa: E402
from lib_migrate import fill  # noqa: E402

QEMU_IMG = os.path.join(BUILD, 'qemu-img')


def vm(tmp, name, size, disk, fmt, extra=()):
    m = QEMUMachine(QEMU, base_temp_dir=tmp, name=name)
    m.add_args('-accel', 'tcg', '-machine', 'pc,memory-backend=ram0',
               '-m', f'{size}M', '-nic', 'none',
               '-object', f'memory-backend-file,id=ram0,size={size}M,'
                          f'mem-path={tmp}/ram,share=on',
               '-drive', f'if=none,id=d0,file={disk},format={fmt}',
               '-device', 'ide-hd,drive=d0,secs=1,cyls=1,heads=1', *extra)
    return m


def run_once(size, method, shm):
    tmp = tempfile.mkdtemp(prefix='bench-cpr-', dir=shm)
    try:
        raw = write_bootblock(tmp, suspend=True)
        disk, fmt = raw, 'raw'
        if method == 'savevm':
            disk, fmt = os.path.join(tmp, 'disk.qcow2'), 'qcow2'
            subprocess.run([QEMU_IMG, 'convert', '-q', '-f', 'raw', '-O',
                            'qcow2', raw, disk], check=True)
        fill(os.path.join(tmp, 'ram'), size)
        old = vm(tmp, 'old', size, disk, fmt)
        old.launch()
        wait_for(lambda: runstate(old) == 'suspended', 300,
                 'the guest to suspend')
        state = os.path.join(tmp, 'state.cpr')

        t0 = time.monotonic()
        if method == 'cpr':
            old.qmp('cprsave', file=state, mode='reboot')
            old.wait(timeout=600)
        else:
            out = old.qmp('human-monitor-command',
                          **{'command-line': 'savevm bench'})['return']
            if out:
                raise RuntimeError(out)
            old.shutdown()
        t_saved = time.monotonic()
        new = vm(tmp, 'new', size, disk, fmt, ('-S',))
        new.launch()
        t_started = time.monotonic()
        if method == 'cpr':
            new.qmp('cprload', file=state)
        else:
            out = new.qmp('human-monitor-command',
                          **{'command-line': 'loadvm bench'})['return']
            if out:
                raise RuntimeError(out)
            new.qmp('cont')
        wait_for(lambda: runstate(new) == 'suspended', 60, 'suspended')
        t1 = time.monotonic()
        file_size = (os.path.getsize(state) if method == 'cpr'
                     else os.path.getsize(disk))
        new.shutdown()
        return {'downtime_s': t1 - t0, 'save_s': t_saved - t0,
                'start_s': t_started - t_saved, 'load_s': t1 - t_started,
                'file_bytes': file_size}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--sizes', default='256,1024,4096')
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--json', default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'results', 'cpr.json'))
    p.add_argument('--shm', default='/dev/shm')
    a = p.parse_args()
    results = []
    print(f"{'RAM':>6} {'method':>7} {'downtime median (min-max) s':>30} "
          f"{'save s':>7} {'start s':>7} {'load s':>7} {'file MiB':>9}")
    for size in [int(s) for s in a.sizes.split(',')]:
        for method in ('cpr', 'savevm'):
            runs = [run_once(size, method, a.shm) for _ in range(a.runs)]
            d = [r['downtime_s'] for r in runs]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results.append({'ram_mib': size, 'method': method, 'runs': runs,
                            'median': med})
            print(f"{size:>5}M {method:>7} {med['downtime_s']:>12.2f} "
                  f"({min(d):.2f}-{max(d):.2f})      "
                  f"{med['save_s']:>7.2f} {med['start_s']:>7.2f} "
                  f"{med['load_s']:>7.2f} "
                  f"{med['file_bytes'] / 2 ** 20:>9.1f}", flush=True)
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, 'w') as f:
        json.dump({'machine': f'{os.cpu_count()} CPUs, TCG',
                   'qemu': subprocess.run(
                       [QEMU, '--version'], check=True, capture_output=True,
                       text=True).stdout.splitlines()[0],
                   'results': results}, f, indent=1)
    print(f'results: {a.json}')


if __name__ == '__main__':
    main()
