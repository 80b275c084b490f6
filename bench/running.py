#!/usr/bin/env python3
"""Benchmark: live migration of a running guest, this series' QEMU 7.2
versus the unpatched QEMU 7.2.22 built from the same base (no regression).

The guest is idle: a 512-byte boot sector that halts with interrupts off
(cli; hlt; jmp back), since a guest writing its memory all the time never
converges under TCG.  Otherwise as bench/migration.py: machine
pc-i440fx-7.2 under TCG; source RAM a shared memory-backend-file in
/dev/shm filled with a non-zero pattern, destination RAM an anonymous,
preallocated memory-backend-ram with -incoming defer; max-bandwidth 10^12
bytes/s, default downtime-limit (300 ms); TCP loopback and unix socket.
The source must be 'running' (halted in the boot sector) before migrating;
afterwards the source must be 'postmigrate' and the destination 'running'
with the source's memory (sampled), or the benchmark fails.

From the source's query-migrate after completion: total-time, downtime,
setup-time, RAM bytes transferred, throughput = transferred /
(total - setup).  The binaries alternate within each repetition, after
one unmeasured 256 MiB migration per binary (the first migration after a
pause is often much slower here).  Prints median (min-max) per size, transport
and binary and the patched/stock ratios of the median total time and
downtime; writes bench/results/running.json (or --json PATH).

    bench/running.py [--sizes 256,1024,4096] [--runs 5]
                     [--transports tcp,unix]
"""

from lib_migrate import matrix_main


if __name__ == '__main__':
    matrix_main('running', 'running-guest migration: patched 7.2 vs stock '
                '7.2', 'stock', 'idle', 'running (idle)', bound=False)
