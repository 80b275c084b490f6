#!/usr/bin/env python3
"""Benchmark: latency of QMP 'stop' and 'cont' on a suspended guest, this
series' QEMU 7.2, with Debian 13's QEMU 10.0 for reference when present.

A guest of 256 MiB (or each of --sizes; RAM a shared memory-backend-file
in /dev/shm filled with a non-zero pattern, machine pc-i440fx-7.2, TCG)
runs the migration-test boot block, which writes its memory once and
suspends the guest to S3.  Then, --runs (default 50) times:

  stop reply   wall time from sending 'stop' to its reply
  STOP event   from sending 'stop' to the STOP event, by the event's own
               timestamp (QEMU's wall clock when it emitted it; the event
               comes before the reply)
  cont reply   wall time from sending 'cont' to its reply

The runstate must be 'paused' after each stop and 'suspended' after each
cont (in both binaries), and each stop must emit one STOP event, or the
benchmark fails.  Prints min / median / max in milliseconds; writes
bench/results/runstate.json (or --json PATH).

    bench/runstate.py [--runs 50] [--sizes 256]
"""

import argparse
import os
import shutil
import tempfile
import time

from lib_migrate import RESULTS, binaries, fill, machine_info, make_vm, \
    runstate, spread, wait_suspended, write_bootblock, write_json

FIGURES = ('stop_reply_ms', 'stop_event_ms', 'cont_reply_ms')


def expect(vm, state, when):
    got = runstate(vm)
    if got != state:
        raise RuntimeError(f'runstate {got} {when}, expected {state}')


def measure(binary, size, n, shm):
    tmp = tempfile.mkdtemp(prefix='bench-runstate-', dir=shm)
    vm = None
    try:
        ram = os.path.join(tmp, 'ram')
        fill(ram, size)
        vm = make_vm(binary, tmp, 'vm', size,
                     write_bootblock(tmp, suspend=True), ram_file=ram)
        vm.launch()
        wait_suspended(vm)
        vm.get_qmp_events()
        runs = []
        for _ in range(n):
            wall0 = time.time()
            t0 = time.monotonic()
            vm.command('stop')
            t1 = time.monotonic()
            stops = [e for e in vm.get_qmp_events() if e['event'] == 'STOP']
            if len(stops) != 1:
                raise RuntimeError(f'{len(stops)} STOP events for one stop')
            ts = stops[0]['timestamp']
            event = ts['seconds'] + ts['microseconds'] / 1e6 - wall0
            expect(vm, 'paused', 'after stop')
            t2 = time.monotonic()
            vm.command('cont')
            t3 = time.monotonic()
            expect(vm, 'suspended', 'after cont')
            vm.get_qmp_events()
            runs.append({'stop_reply_ms': (t1 - t0) * 1000,
                         'stop_event_ms': event * 1000,
                         'cont_reply_ms': (t3 - t2) * 1000})
        return runs
    finally:
        if vm is not None:
            vm.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(
        description='stop/cont latency on a suspended guest')
    p.add_argument('--runs', '-n', type=int, default=50,
                   help='stop/cont cycles per binary (default %(default)s)')
    p.add_argument('--sizes', default='256',
                   help='guest RAM sizes in MiB (default %(default)s)')
    p.add_argument('--json', default=os.path.join(RESULTS, 'runstate.json'))
    p.add_argument('--shm', default='/dev/shm')
    a = p.parse_args()
    bins = binaries(['patched', '10.0'])
    results = []
    print(f"{'RAM':>6} {'qemu':>7} {'measure':>12} {'min ms':>8} "
          f"{'median ms':>10} {'max ms':>8}")
    for size in [int(s) for s in a.sizes.split(',')]:
        for name, binary in bins.items():
            runs = measure(binary, size, a.runs, a.shm)
            summary = {k: spread(r[k] for r in runs) for k in FIGURES}
            results.append({'ram_mib': size, 'qemu': name, 'runs': runs,
                            'summary': summary})
            for k in FIGURES:
                s = summary[k]
                label = k[:-3].replace('_', ' ')
                print(f"{size:>5}M {name:>7} {label:>12} {s['min']:>8.3f} "
                      f"{s['median']:>10.3f} {s['max']:>8.3f}", flush=True)
    write_json(a.json, {**machine_info(bins), 'runs': a.runs,
                        'results': results})


if __name__ == '__main__':
    main()
