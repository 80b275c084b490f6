#!/usr/bin/env python3
"""Benchmark: live migration of a suspended guest, this series' QEMU 7.2
versus Debian 13's QEMU 10.0, for guests of several RAM sizes.

Each binary migrates to a new QEMU of the same binary, on the same machine
type (pc-i440fx-7.2, TCG).  The source guest's RAM is a shared
memory-backend-file in /dev/shm filled with a non-zero pattern before QEMU
starts; the migration-test boot block writes every page of its first 100
MiB once and suspends the guest to S3.  The destination has the same
arguments with an anonymous, preallocated memory-backend-ram (see
bench/lib_migrate.py) and -incoming defer, then migrate-incoming.  The
source's max-bandwidth is 10^12 bytes/s for both binaries (both default to
128 MiB/s, which would make that limit the figure measured); downtime-limit
keeps its default (300 ms).  Migration goes over TCP loopback and over a
unix socket.  Every migration must end with the source 'postmigrate' and
the destination 'suspended', holding the source's memory (sampled), or the
benchmark fails.

QEMU switches to its stop-and-copy phase once the RAM left to send fits
in downtime-limit at the bandwidth it measured, so 'downtime' includes
whatever RAM was left then (a small guest may go almost whole).  Both
versions count every byte sent while the guest is not running, so all of
a suspended guest's RAM, as ram.downtime-bytes in query-migrate.

From the source's query-migrate after completion: total-time, downtime,
setup-time, RAM bytes transferred, and throughput = transferred /
(total - setup).  Each migration is followed by a memory-copy bound: the
same number of bytes pushed from one thread to another over the same kind
of socket (1 MiB sendall, recv_into a reused buffer); 'mig/bound' is
migration throughput over that.  The binaries alternate within each
repetition, after one unmeasured 256 MiB migration per binary (the first
migration after a pause is often much slower here).  Prints median (min-max)
per size, transport and binary, and the patched/10.0 ratios of the median
total time and downtime; writes bench/results/migration.json (or --json
PATH).

    bench/migration.py [--sizes 256,1024,4096] [--runs 3]
                       [--transports tcp,unix]
"""

import argparse
import os

from lib_migrate import RESULTS, binaries, machine_info, ratios, \
    run_matrix, write_json, MAX_BANDWIDTH


def main():
    p = argparse.ArgumentParser(
        description='suspended-guest migration: patched 7.2 vs QEMU 10.0')
    p.add_argument('--sizes', default='256,1024,4096',
                   help='guest RAM sizes in MiB (default %(default)s)')
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--transports', default='tcp,unix')
    p.add_argument('--json', default=os.path.join(RESULTS, 'migration.json'))
    p.add_argument('--shm', default='/dev/shm')
    a = p.parse_args()
    bins = binaries(['patched', '10.0'])
    sizes = [int(s) for s in a.sizes.split(',')]
    transports = a.transports.split(',')
    cells = run_matrix(bins, sizes, transports, a.runs, 'suspending',
                       bound=True, shm=a.shm)
    write_json(a.json, {**machine_info(bins), 'guest': 'suspended',
                        'destination_ram': 'memory-backend-ram,prealloc=on',
                        'max_bandwidth': MAX_BANDWIDTH, 'runs': a.runs,
                        'results': cells,
                        'ratios': ratios(cells, list(bins))})


if __name__ == '__main__':
    main()
