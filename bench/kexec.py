#!/usr/bin/env python3
"""Benchmark: downtime of a live update across a real kexec of the host.

Runs the cycles of tests/kexec.py (cprsave of the L2 guest, QEMU exits,
kexec of the host VM L1 into the same kernel, a new QEMU, cprload) with
L2's RAM on a DAX file system on pmem and on a disk file system, for a
suspended, a running and a paused L2, and reports the downtime from
cprsave to L2 back in its state, split into save, exit and kexec to
L1's init, QEMU start and load, and the state file's size.  Nested TCG
(L0 and L1 emulated): the figures are this machine's, not a real host's.
Prints a table (medians, min-max) and writes bench/results/kexec.json
(or --json PATH).  Needs the kexec host (make kexec-host).

    bench/kexec.py [--runs 3]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'lib'))
# pylint: disable=wrong-import-position
import kexec  # noqa: E402  (tests/kexec.py)
from kexec_host import host_built  # noqa: E402

KEYS = ('downtime_s', 'save_s', 'exit_kexec_to_init_s', 'qemu_start_s',
        'load_s')


def spread(values):
    return (f'{statistics.median(values):.1f} '
            f'({min(values):.1f}-{max(values):.1f})')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--json', default=os.path.join(HERE, 'results',
                                                   'kexec.json'))
    args = ap.parse_args()
    if not host_built():
        print('no kexec host: run make kexec-host')
        return 1
    tmp = tempfile.mkdtemp(prefix='bench-kexec-')
    try:
        for ram in ('pmem', 'disk'):
            for state in ('suspended', 'running', 'paused'):
                for _ in range(args.runs):
                    kexec.cycle(tmp, ram, state)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    print('| L2 | RAM on | downtime s | save s | exit+kexec to init s '
          '| QEMU start s | load s | state file |')
    print('|---|---|---|---|---|---|---|---|')
    for ram in ('pmem', 'disk'):
        for state in ('suspended', 'running', 'paused'):
            runs = [f for f in kexec.FIGURES
                    if f['ram'] == ram and f['state'] == state]
            row = {'ram': ram, 'state': state, 'runs': runs}
            rows.append(row)
            cells = [spread([r[k] for r in runs]) for k in KEYS]
            print(f'| {state} | {ram} | ' + ' | '.join(cells) +
                  f' | {runs[0]["state_file_bytes"]} B |')
    with open(args.json, 'w', encoding='utf-8') as f:
        json.dump({'note': 'nested TCG (L0 and L1 emulated), 128 MiB L2',
                   'rows': rows}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
