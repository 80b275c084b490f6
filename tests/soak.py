#!/usr/bin/env python3
"""Soak: suspend -> migrate -> wake round trips of a real Linux guest.

The guest of tests/linux-guest.py goes from QEMU to QEMU, one new QEMU per
cycle, the migration kind turning round: precopy over TCP, precopy over a
unix socket, precopy over a unix socket to a destination started with -S
(then cont), postcopy over TCP.  Every cycle checks that the destination
holds the guest asleep until system_wakeup, that the guest resumes with
its 16 MiB random RAM blob intact, and that its heartbeat counter went
1, 2, 3 ... across every QEMU so far.  The soak stops at the first
failure.

  SOAK_CYCLES   number of cycles (default 4, one of each kind: what make
                check runs; make soak runs 200)
  SOAK_MINUTES  stop starting new cycles after this time (default 30)
  SOAK_JSON     write the per-cycle figures there (make soak does)

Prints TAP: one point per cycle, and a summary with the guest's clock
jump distribution.
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from guest import Guest, GuestError, exit_on_sigterm, guest_built, \
    jump_summary, start_migration, wait_migration  # noqa: E402

KINDS = ('precopy-tcp', 'precopy-unix', 'precopy-unix-S', 'postcopy-tcp')


def cycle(g, i):
    kind = KINDS[(i - 1) % len(KINDS)]
    t0 = time.monotonic()
    g.suspend()
    src = g.host
    dest_s = kind.endswith('-S')
    dst = g.new_host(f'c{i}', extra=['-incoming', 'defer'] +
                     (['-S'] if dest_s else [])).launch()
    if 'tcp' in kind:
        uri = 'tcp:127.0.0.1:0'
    else:
        uri = f'unix:{os.path.join(g.tmp, f"c{i}.sock")}'
    postcopy = kind.startswith('postcopy')
    start_migration(src, dst, uri, postcopy=postcopy,
                    params={'max-bandwidth': 1 << 30})
    if postcopy:
        src.cmd('migrate-start-postcopy')
    info = wait_migration(src, dst=dst)
    g.adopt(dst)
    src.shutdown()
    if dest_s:
        state = dst.runstate()
        if state != 'paused':
            raise GuestError(f'-S destination {state}, expected paused')
        dst.cmd('cont')
    state = dst.runstate()
    if state != 'suspended':
        raise GuestError(f'destination {state}, expected suspended')
    g.assert_asleep(dst, 0.3)
    c = g.wake(kind, heartbeats=1)
    c.update({'cycle': i, 'migration_ms': info.get('total-time', 0),
              'cycle_s': time.monotonic() - t0})
    return c


def main():
    exit_on_sigterm()
    cycles = int(os.environ.get('SOAK_CYCLES', str(len(KINDS))))
    minutes = float(os.environ.get('SOAK_MINUTES', '30'))
    out = os.environ.get('SOAK_JSON')
    print(f'1..{cycles + 2}', flush=True)
    if not guest_built():
        print('Bail out! no guest: run scripts/build-guest.sh')
        return 1
    g = Guest('soak-')
    deadline = time.monotonic() + minutes * 60
    done, failure = [], None
    try:
        try:
            g.boot()
            print(f'ok 1 - guest boots, blob {g.blob}', flush=True)
        except Exception as e:          # pylint: disable=broad-except
            failure = f'boot: {e}'
            print(f'not ok 1 - guest boots: {e}', flush=True)
        for i in range(1, cycles + 1):
            if failure or time.monotonic() > deadline:
                why = failure or f'time limit of {minutes:g} min reached'
                print(f'not ok {i + 1} - cycle {i} not run ({why})'
                      if failure else
                      f'ok {i + 1} - cycle {i} # SKIP {why}', flush=True)
                continue
            try:
                c = cycle(g, i)
                done.append(c)
                print(f'ok {i + 1} - cycle {i} {c["what"]}: '
                      f'{c["migration_ms"]} ms migration, '
                      f'{c["cycle_s"]:.1f} s round trip, wall clock '
                      f'{c["wall_jump_s"] - c["host_s"]:+.2f} s off',
                      flush=True)
            except Exception as e:      # pylint: disable=broad-except
                failure = f'cycle {i}: {type(e).__name__}: {e}'
                print(f'not ok {i + 1} - cycle {i}: {failure}', flush=True)
        n = cycles + 2
        try:
            last = g.check_heartbeat()
            ok = not failure and last > 0
            detail = f'heartbeat 1..{last} across {len(g.hosts)} QEMUs'
        except GuestError as e:
            ok, detail = False, str(e)
        print(f'{"ok" if ok else "not ok"} {n} - {len(done)} cycles, '
              f'{1 if failure else 0} failures; {detail}', flush=True)
        if done:
            rt = sorted(c['cycle_s'] for c in done)
            print(f'# round trip: min {rt[0]:.1f} s, median '
                  f'{statistics.median(rt):.1f} s, max {rt[-1]:.1f} s')
            print(f'# {jump_summary(done)}')
        if failure:
            print(f'# first failure: {failure}')
        if out:
            with open(out, 'w', encoding='utf-8') as f:
                json.dump({'cycles_asked': cycles, 'cycles_done': len(done),
                           'failure': failure, 'kinds': KINDS,
                           'cycles': done}, f, indent=1)
    finally:
        g.shutdown()
    return 1 if failure else 0


if __name__ == '__main__':
    sys.exit(main())
