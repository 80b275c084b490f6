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

    bench/migration.py [--sizes 256,1024,4096] [--runs 5]
                       [--transports tcp,unix]
"""

from lib_migrate import matrix_main


if __name__ == '__main__':
    matrix_main('migration', 'suspended-guest migration: patched 7.2 vs '
                'QEMU 10.0', '10.0', 'suspending', 'suspended', bound=True)
