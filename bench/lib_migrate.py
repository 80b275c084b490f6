"""Shared parts of the migration benchmarks: bench/migration.py,
bench/running.py and bench/runstate.py (not a benchmark itself;
scripts/bench.sh skips bench/lib_*.py).

Every guest runs on machine pc-i440fx-7.2 under TCG, with S3 enabled, no
NIC and no VGA, whatever the QEMU binary.  A migration source keeps its
RAM in a shared memory-backend-file in /dev/shm, filled before QEMU
starts with a non-zero pattern so that every page has content to send;
the destination takes the same arguments with its RAM in an anonymous
memory-backend-ram of the same id and size, preallocated (prealloc=on,
before the migration starts) and -incoming defer.  Preallocation keeps
the host kernel's page allocation out of the figures: without it, 1 GiB
migrations on this machine took anywhere from 0.4 s to 3 s with either
binary (6 alternating runs each of patched and stock 7.2: 0.44-3.01 s and
0.41-2.89 s; preallocated: 0.44-0.94 s and 0.47-0.91 s).

The source's max-bandwidth is set to MAX_BANDWIDTH for every binary
(7.2 and 10.0 both default to 128 MiB/s); downtime-limit keeps its
default (300 ms in both).  The figures are those query-migrate reports on
the source once the migration has completed and the source is
'postmigrate'.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'lib'))
# pylint: disable=wrong-import-position
from qemu_env import QEMU, STOCK_QEMU, UPSTREAM_QEMU, QEMUMachine, \
    bootblock_args, read_guest_u32, runstate, upstream_qemu, wait_for, \
    write_bootblock, GUEST_SUSPENDED_FLAG, TEST_MEM_START  # noqa: E402

MACHINE = 'pc-i440fx-7.2'
MAX_BANDWIDTH = 10 ** 12            # bytes/s, far above any real rate
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'results')
MIB = 2 ** 20


def binaries(names):
    """{name: path} for the QEMU binaries asked for that exist here.

    names: from 'patched' (this series' 7.2), 'stock' (unpatched 7.2) and
    '10.0' (Debian 13's).  A missing patched QEMU is an error; a missing
    reference binary is reported and left out."""
    if not os.access(QEMU, os.X_OK):
        sys.exit(f'no patched QEMU at {QEMU}: run "make prepare"')
    found = {}
    for name in names:
        if name == 'patched':
            found[name] = QEMU
        elif name == 'stock':
            if os.access(STOCK_QEMU, os.X_OK):
                found[name] = STOCK_QEMU
            else:
                print(f'stock QEMU 7.2 not built ({STOCK_QEMU}): skipping '
                      f'its column ("make stock" builds it)', flush=True)
        elif name == '10.0':
            path = upstream_qemu()
            if path:
                found[name] = path
            else:
                print(f'QEMU 10.0 not installed ({UPSTREAM_QEMU}): skipping '
                      f'its column ("make deps-test" installs it)',
                      flush=True)
        else:
            raise ValueError(name)
    return found


def version(binary):
    out = subprocess.run([binary, '--version'], check=True,
                         capture_output=True, text=True).stdout
    return out.splitlines()[0]


def fill(path, size_mib):
    """A RAM file whose every page holds non-zero bytes, except the boot
    block's record of having suspended (1 MiB + 4), which must start 0."""
    block = (b'\xa5' * 4095 + b'\x01') * 256        # 1 MiB
    with open(path, 'wb') as f:
        for _ in range(size_mib):
            f.write(block)
        f.seek(GUEST_SUSPENDED_FLAG)
        f.write(bytes(4))


def write_idle_bootsector(directory):
    """A boot sector that halts with interrupts off (cli; hlt; jmp back to
    the hlt), so that a running guest dirties no memory; its path."""
    data = bytearray(512)
    data[0:4] = b'\xfa\xf4\xeb\xfd'
    data[510:512] = b'\x55\xaa'
    path = os.path.join(directory, 'idle.img')
    with open(path, 'wb') as f:
        f.write(data)
    return path


def make_vm(binary, tmp, name, size, disk, ram_file=None, incoming=False):
    """A QEMUMachine for a guest of size MiB booting disk; RAM in the
    shared file ram_file, or anonymous and preallocated if None."""
    vm = QEMUMachine(binary, base_temp_dir=tmp, name=name)
    if ram_file:
        backend = (f'memory-backend-file,id=ram0,size={size}M,'
                   f'mem-path={ram_file},share=on')
    else:
        backend = f'memory-backend-ram,id=ram0,size={size}M,prealloc=on'
    vm.add_args('-accel', 'tcg', '-machine', f'{MACHINE},memory-backend=ram0',
                '-m', f'{size}M', '-nic', 'none',
                '-global', 'PIIX4_PM.disable_s3=0', '-object', backend,
                *bootblock_args(disk))
    if incoming:
        vm.add_args('-incoming', 'defer')
    return vm


def wait_suspended(vm, timeout=300):
    wait_for(lambda: runstate(vm) == 'suspended', timeout,
             'the guest to suspend itself')


def wait_idle(vm, timeout=120):
    """Wait for the idle boot sector's hlt (the BIOS is done)."""
    def halted():
        regs = vm.command('human-monitor-command',
                          command_line='info registers')
        return 'HLT=1' in regs and 'EIP=00007c02' in regs
    wait_for(halted, timeout, 'the idle guest to halt', interval=0.1)


def incoming_uri(dst, transport, tmp):
    """Start the destination listening; the URI the source connects to."""
    if transport == 'unix':
        uri = f'unix:{os.path.join(tmp, "mig.sock")}'
        dst.command('migrate-incoming', uri=uri)
        return uri
    if transport != 'tcp':
        raise ValueError(transport)
    dst.command('migrate-incoming', uri='tcp:127.0.0.1:0')
    addr = dst.command('query-migrate')['socket-address'][0]
    return f"tcp:{addr['host']}:{addr['port']}"


def sample_addresses(size_mib, guest):
    """Guest-physical addresses to compare after migration: in RAM mapped
    one to one from the RAM file (above 1 MiB, below 3 GiB)."""
    top = min(size_mib, 3072) * MIB
    addrs = [TEST_MEM_START + 4092 + k * ((top - TEST_MEM_START) // 8)
             for k in range(8)]
    if guest == 'suspending':
        addrs += [GUEST_SUSPENDED_FLAG, TEST_MEM_START]
    return addrs


def check_memory(dst, ram_file, addrs):
    """The destination's guest memory matches the (stopped) source's."""
    with open(ram_file, 'rb') as f:
        for addr in addrs:
            f.seek(addr)
            want = struct.unpack('<I', f.read(4))[0]
            got = read_guest_u32(dst, addr)
            if got != want:
                raise RuntimeError(f'guest memory at {addr:#x} differs after '
                                   f'migration: {got:#x}, source {want:#x}')


def migrate_once(binary, size, transport, guest, shm='/dev/shm'):
    """Boot a guest, migrate it to a new QEMU of the same binary; return
    the source's query-migrate figures.

    guest: 'suspending' (the migration-test boot block, suspended to S3
    before migration; the destination must end 'suspended') or 'idle' (the
    halting boot sector, running; the destination must end 'running').
    The source must end 'postmigrate'.  Anything else raises."""
    tmp = tempfile.mkdtemp(prefix='bench-mig-', dir=shm)
    src = dst = None
    try:
        if guest == 'suspending':
            disk, want = write_bootblock(tmp, suspend=True), 'suspended'
        else:
            disk, want = write_idle_bootsector(tmp), 'running'
        ram_file = os.path.join(tmp, 'ram')
        fill(ram_file, size)
        src = make_vm(binary, tmp, 'src', size, disk, ram_file=ram_file)
        dst = make_vm(binary, tmp, 'dst', size, disk, incoming=True)
        src.launch()
        dst.launch()
        if guest == 'suspending':
            wait_suspended(src)
        else:
            wait_idle(src)
        if runstate(src) != want:
            raise RuntimeError(f'source is {runstate(src)}, not {want}, '
                               f'before migration')
        src.command('migrate-set-capabilities', capabilities=[
            {'capability': 'events', 'state': True}])
        src.command('migrate-set-parameters', max_bandwidth=MAX_BANDWIDTH)
        params = src.command('query-migrate-parameters')
        uri = incoming_uri(dst, transport, tmp)
        src.command('migrate', uri=uri)
        src.events_wait([('MIGRATION', {'data': {'status': s}})
                         for s in ('completed', 'failed', 'cancelled')],
                        timeout=1200.0)
        info = src.command('query-migrate')
        if info['status'] != 'completed':
            raise RuntimeError(f"migration {info['status']}: "
                               f"{info.get('error-desc')}")
        # 7.2 announces 'completed' before it has computed total-time and
        # downtime (0 until then); the source's runstate goes to
        # 'postmigrate' after that.
        try:
            wait_for(lambda: runstate(src) == 'postmigrate', 60,
                     'the source to be postmigrate')
        except TimeoutError as e:
            raise RuntimeError(f'source {runstate(src)} after migration, '
                               f'not postmigrate') from e
        info = src.command('query-migrate')
        wait_for(lambda: runstate(dst) != 'inmigrate', 120,
                 'the destination to load')
        states = runstate(src), runstate(dst)
        if states != ('postmigrate', want):
            raise RuntimeError(f'after migration: source {states[0]}, '
                               f'destination {states[1]}; expected '
                               f'postmigrate, {want}')
        check_memory(dst, ram_file, sample_addresses(size, guest))
        transfer_ms = info['total-time'] - info['setup-time']
        if transfer_ms <= 0:
            raise RuntimeError(f'query-migrate: no transfer time: {info}')
        transferred = info['ram']['transferred']
        return {'total_ms': info['total-time'],
                'downtime_ms': info['downtime'],
                'setup_ms': info['setup-time'],
                'transferred_bytes': transferred,
                'throughput_mib_s': transferred / MIB / (transfer_ms / 1000),
                'downtime_limit_ms': params['downtime-limit'],
                'max_bandwidth': params['max-bandwidth'],
                'query_migrate': info}
    finally:
        for vm in (dst, src):
            if vm is not None:
                vm.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def copy_bound(nbytes, transport, shm='/dev/shm', chunk=MIB):
    """Push nbytes through a socket of the migration's kind (TCP loopback
    or unix) from one thread to another with chunk-sized sendall and
    recv_into a reused buffer: a memory-copy bound for migration on this
    machine.  Returns MiB/s, from connect to the last byte received."""
    tmp = None
    if transport == 'tcp':
        listener = socket.create_server(('127.0.0.1', 0))
        addr = listener.getsockname()
        family = socket.AF_INET
    else:
        tmp = tempfile.mkdtemp(prefix='bench-bound-', dir=shm)
        addr = os.path.join(tmp, 'bound.sock')
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(addr)
        listener.listen(1)
        family = socket.AF_UNIX
    listener.settimeout(60)
    received = []

    def receive():
        conn, _ = listener.accept()
        buf = bytearray(chunk)
        got = 0
        with conn:
            while got < nbytes:
                n = conn.recv_into(buf)
                if not n:
                    break
                got += n
        received.append(got)

    thread = threading.Thread(target=receive)
    thread.start()
    data = b'\xa5' * chunk
    try:
        with socket.socket(family) as s:
            s.connect(addr)
            t0 = time.monotonic()
            full, rest = divmod(nbytes, chunk)
            for _ in range(full):
                s.sendall(data)
            s.sendall(data[:rest])
            thread.join()
            elapsed = time.monotonic() - t0
    finally:
        listener.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if received != [nbytes]:
        raise RuntimeError(f'copy bound: {received} bytes of {nbytes}')
    return nbytes / MIB / elapsed


def spread(values):
    """median, min and max of values."""
    values = list(values)
    return {'median': statistics.median(values), 'min': min(values),
            'max': max(values)}


FIGURES = ('total_ms', 'downtime_ms', 'setup_ms', 'transferred_bytes',
           'throughput_mib_s')


def run_matrix(bins, sizes, transports, runs, guest, bound=False,
               shm='/dev/shm'):
    """Migrate a guest of each size over each transport with each binary,
    runs times; each repetition alternates the binaries' order.  Prints a
    table per size as it completes; returns the result records.

    With bound, every migration is followed by copy_bound() of the bytes
    it transferred over the same kind of socket.

    One unmeasured 256 MiB migration per binary comes first: on this
    machine the first migration after a pause is often several times
    slower than the next ones, whichever the binary."""
    names = list(bins)
    cells = []
    for name in names:
        migrate_once(bins[name], 256, transports[0], guest, shm)
    print_header(bound)
    for size in sizes:
        per = {(t, n): [] for t in transports for n in names}
        for run in range(runs):
            order = names if run % 2 == 0 else names[::-1]
            for transport in transports:
                for name in order:
                    r = migrate_once(bins[name], size, transport, guest, shm)
                    if bound:
                        r['bound_mib_s'] = copy_bound(
                            r['transferred_bytes'], transport, shm)
                        r['bound_ratio'] = \
                            r['throughput_mib_s'] / r['bound_mib_s']
                    per[transport, name].append(r)
        for transport in transports:
            for name in names:
                rs = per[transport, name]
                keys = FIGURES + (('bound_mib_s', 'bound_ratio')
                                  if bound else ())
                cell = {'ram_mib': size, 'transport': transport,
                        'qemu': name, 'runs': rs,
                        'summary': {k: spread(r[k] for r in rs)
                                    for k in keys}}
                cells.append(cell)
                print_row(cell, bound)
        print_ratios([c for c in cells if c['ram_mib'] == size], names)
    return cells


def ratios(cells, names):
    """patched/other ratios of the median total time and downtime, per
    size and transport."""
    out = []
    med = {(c['ram_mib'], c['transport'], c['qemu']): c['summary']
           for c in cells}
    for (size, transport, name), s in med.items():
        if name != 'patched':
            continue
        for other in names:
            if other == 'patched' or (size, transport, other) not in med:
                continue
            o = med[size, transport, other]
            out.append({'ram_mib': size, 'transport': transport,
                        'versus': other,
                        'total': s['total_ms']['median'] /
                        o['total_ms']['median'],
                        'downtime': s['downtime_ms']['median'] /
                        max(o['downtime_ms']['median'], 1e-9)})
    return out


def fmt(s, spec='.0f'):
    return (f"{s['median']:{spec}} ({s['min']:{spec}}-{s['max']:{spec}})")


def print_header(bound):
    line = (f"{'RAM':>6} {'via':>4} {'qemu':>7} "
            f"{'total ms med (min-max)':>24} {'downtime ms':>18} "
            f"{'setup ms':>9} {'MiB sent':>9} {'MiB/s':>17}")
    if bound:
        line += f" {'bound MiB/s':>11} {'mig/bound':>9}"
    print(line, flush=True)


def print_row(cell, bound):
    s = cell['summary']
    line = (f"{cell['ram_mib']:>5}M {cell['transport']:>4} "
            f"{cell['qemu']:>7} {fmt(s['total_ms']):>24} "
            f"{fmt(s['downtime_ms']):>18} "
            f"{s['setup_ms']['median']:>9.0f} "
            f"{s['transferred_bytes']['median'] / MIB:>9.1f} "
            f"{fmt(s['throughput_mib_s']):>17}")
    if bound:
        line += (f" {s['bound_mib_s']['median']:>11.0f} "
                 f"{s['bound_ratio']['median']:>9.2f}")
    print(line, flush=True)


def print_ratios(cells, names):
    for r in ratios(cells, names):
        print(f"{r['ram_mib']:>5}M {r['transport']:>4} patched/"
              f"{r['versus']}: total time {r['total']:.2f}, downtime "
              f"{r['downtime']:.2f}", flush=True)


def write_json(path, doc):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    print(f'results: {path}')


def machine_info(bins):
    return {'machine': f'{os.cpu_count()} CPUs, TCG, {MACHINE}',
            'qemu': {name: version(path) for name, path in bins.items()}}


def matrix_main(name, description, other, guest, label, bound):
    """Command line of bench/migration.py and bench/running.py: patched
    against @other ('10.0' or 'stock') migrating @guest ('suspending' or
    'idle', recorded as @label); results in bench/results/NAME.json."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--sizes', default='256,1024,4096',
                   help='guest RAM sizes in MiB (default %(default)s)')
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--transports', default='tcp,unix')
    p.add_argument('--json', default=os.path.join(RESULTS, f'{name}.json'))
    p.add_argument('--shm', default='/dev/shm')
    a = p.parse_args()
    bins = binaries(['patched', other])
    cells = run_matrix(bins, [int(s) for s in a.sizes.split(',')],
                       a.transports.split(','), a.runs, guest, bound=bound,
                       shm=a.shm)
    write_json(a.json, {**machine_info(bins), 'guest': label,
                        'destination_ram': 'memory-backend-ram,prealloc=on',
                        'max_bandwidth': MAX_BANDWIDTH, 'runs': a.runs,
                        'results': cells,
                        'ratios': ratios(cells, list(bins))})
