#!/usr/bin/env python3
"""Cross-version migration of running, paused and suspended guests.

Sources and destinations:
  patched  the series' QEMU 7.2.22 (work/7.2/build)
  stock    QEMU 7.2.22 built from the same base without the series
           (work/7.2/stock/build, made by scripts/build-stock.sh)
  10.0     Debian 13's QEMU 10.0 (qemu-system-x86 from bookworm-backports,
           installed by scripts/setup-deps.sh), /usr/bin/qemu-system-x86_64
  p10.2    the 10.2 line: QEMU 10.2.2 with its series (work/10.2/build)
  p10.0    the 10.0 line: QEMU 10.0.13 with the backport (work/10.0/build)
  deb7.2   our Debian 12 packages of the 7.2 line, installed in a bookworm
           chroot (DEB_ROOT_7_2; make deb-check LINE=10.0 sets it up)
  deb10.0  our Debian 13 packages of the 10.0 line, in a trixie chroot
           (DEB_ROOT_10_0)

The p10.2 and p10.0 rows are the path of an operator who upgrades hosts
one by one (patched 7.2 -> patched 10.x and back, and to and from
Debian's own 10.0); a row whose QEMU is not built is skipped.  The
deb rows (only when the chroots are given; DEB_ONLY=1 runs them alone)
are the same path on the installed packages: Debian 12 host to Debian 13
host.

Every guest runs the migration-test boot block on machine pc-i440fx-7.2
and is migrated over a unix socket.  Each case checks the destination's
end state, wakes or continues it, and checks that the guest writes its
memory again from where it was.  Prints TAP, and the result table as
comments.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
# pylint: disable=wrong-import-position
from qemu_env import DEB_ROOTS, GUEST_SUSPENDED_FLAG, QEMU, STOCK_QEMU, \
    WORK, bootblock_args, deb_qemu, guest_counter, make_machine, \
    qemu_available, read_guest_u32, runstate, upstream_qemu, wait_event, \
    wait_for, work_tmpdir, write_bootblock  # noqa: E402

MACHINE = 'pc-i440fx-7.2'


def binaries():
    bins = {'patched': QEMU, 'stock': STOCK_QEMU}
    for line in ('10.2', '10.0'):
        bins[f'p{line}'] = os.path.join(WORK, line, 'build',
                                        'qemu-system-x86_64')
    if upstream_qemu():
        bins['10.0'] = upstream_qemu()
    for line in DEB_ROOTS:
        if deb_qemu(line):
            bins[f'deb{line}'] = deb_qemu(line)
    return bins


# (source, destination, guest state on the source, expected destination
# state, what the operator does then, expected state after it)
CASES = [
    ('patched', 'stock', 'running', 'running', None, None),
    ('patched', 'stock', 'paused', 'paused', 'cont', 'running'),
    ('stock', 'patched', 'running', 'running', None, None),
    ('stock', 'patched', 'paused', 'paused', 'cont', 'running'),
    # a stock 7.2 destination takes "suspended" as it is, but cannot wake
    # a guest it restored into that state (checked, not required)
    ('patched', 'stock', 'suspended', 'suspended', 'system_wakeup', None),
    # a stock 7.2 source wakes the guest when migration completes
    ('stock', 'patched', 'suspended', 'running', None, None),
    ('patched', '10.0', 'running', 'running', None, None),
    ('patched', '10.0', 'paused', 'paused', 'cont', 'running'),
    ('patched', '10.0', 'suspended', 'suspended', 'system_wakeup', 'running'),
    ('patched', '10.0', 'stopped-suspended', 'paused', 'cont', 'suspended'),
    ('10.0', 'patched', 'suspended', 'suspended', 'system_wakeup', 'running'),
]
# the newer lines: every guest state both ways with the patched 7.2, and
# a suspended guest to and from Debian's 10.0
for _new in ('p10.2', 'p10.0'):
    for _a, _b in (('patched', _new), (_new, 'patched')):
        CASES += [
            (_a, _b, 'running', 'running', None, None),
            (_a, _b, 'paused', 'paused', 'cont', 'running'),
            (_a, _b, 'suspended', 'suspended', 'system_wakeup', 'running'),
            (_a, _b, 'stopped-suspended', 'paused', 'cont', 'suspended'),
        ]
    CASES += [
        (_new, '10.0', 'suspended', 'suspended', 'system_wakeup', 'running'),
        ('10.0', _new, 'suspended', 'suspended', 'system_wakeup', 'running'),
    ]


# the packages: Debian 12 host to Debian 13 host (and back), every state
DEB_CASES = []
if DEB_ROOTS:
    for _a, _b in (('deb7.2', 'deb10.0'), ('deb10.0', 'deb7.2')):
        DEB_CASES += [
            (_a, _b, 'running', 'running', None, None),
            (_a, _b, 'paused', 'paused', 'cont', 'running'),
            (_a, _b, 'suspended', 'suspended', 'system_wakeup', 'running'),
            (_a, _b, 'stopped-suspended', 'paused', 'cont', 'suspended'),
        ]
CASES = DEB_CASES if os.environ.get('DEB_ONLY') == '1' else CASES + DEB_CASES


def make_vm(binary, tmp, name, disk, incoming=None):
    vm = make_machine(binary, base_temp_dir=tmp, name=name)
    vm.add_args('-accel', 'tcg', '-machine', MACHINE, '-m', '150M',
                '-nic', 'none', *bootblock_args(disk))
    if incoming:
        vm.add_args('-incoming', incoming)
    return vm


def counter_moves(vm, timeout=60):
    start = guest_counter(vm)
    wait_for(lambda: guest_counter(vm) != start, timeout,
             'the guest to write its memory')


def guest_runs(vm, timeout=20):
    try:
        counter_moves(vm, timeout)
        return True
    except TimeoutError:
        return False


def run_case(bins, src_name, dst_name, state, tmp):
    """Returns (destination state, state after the follow-up action)."""
    disk = write_bootblock(tmp, suspend=state in ('suspended',
                                                  'stopped-suspended'))
    sock = os.path.join(tmp, 'mig.sock')
    src = make_vm(bins[src_name], tmp, 'src', disk)
    dst = make_vm(bins[dst_name], tmp, 'dst', disk, f'unix:{sock}')
    try:
        src.launch()
        if state in ('suspended', 'stopped-suspended'):
            wait_event(src, 'SUSPEND', 120)
            if runstate(src) != 'suspended':
                raise RuntimeError(f'source {runstate(src)} after SUSPEND')
        else:
            counter_moves(src)
        if state in ('paused', 'stopped-suspended'):
            src.qmp('stop')
        # converge even while the guest writes all of its memory
        src.qmp('migrate-set-parameters', **{'max-bandwidth': 10 ** 9,
                                             'downtime-limit': 30000})
        dst.launch()
        counter = guest_counter(src)
        flag = read_guest_u32(src, GUEST_SUSPENDED_FLAG)
        src.qmp('migrate', uri=f'unix:{sock}')
        wait_for(lambda: src.qmp('query-migrate')['return'].get('status')
                 in ('completed', 'failed', 'cancelled'), 120,
                 'migration to end')
        status = src.qmp('query-migrate')['return']
        if status['status'] != 'completed':
            raise RuntimeError(f"migration {status['status']}: "
                               f"{status.get('error-desc')}")
        wait_for(lambda: runstate(dst) not in ('inmigrate',), 60,
                 'the destination to load')
        time.sleep(0.2)
        end = runstate(dst)
        # the guest's memory came over as it was
        if end in ('paused', 'suspended'):
            assert guest_counter(dst) == counter, 'guest memory differs'
        assert read_guest_u32(dst, GUEST_SUSPENDED_FLAG) == flag or \
            state in ('running', 'paused'), 'suspend record lost'
        return end, dst, src
    except Exception:
        dst.shutdown()
        src.shutdown()
        raise


def follow_up(dst, action):
    if action is None:
        return runstate(dst)
    if action == 'system_wakeup':
        dst.qmp('system_wakeup')
        wait_event(dst, 'WAKEUP', 60)
    else:
        dst.qmp(action)
        time.sleep(0.2)
    return runstate(dst)


def main():
    bins = binaries()
    print(f'1..{len(CASES)}')
    rows = []
    for i, (s, d, state, want, action, want_after) in enumerate(CASES, 1):
        desc = f'{s} -> {d}, {state} guest'
        missing = [b for b in (s, d) if b not in bins or
                   not qemu_available(bins[b])]
        if missing:
            print(f'ok {i} - {desc} # SKIP no {", ".join(missing)} QEMU')
            rows.append((s, d, state, 'skipped', ''))
            continue
        tmp = work_tmpdir('xver-')
        dst = src = None
        try:
            end, dst, src = run_case(bins, s, d, state, tmp)
            after = follow_up(dst, action)
            if after == 'suspended':
                after = 'suspended; system_wakeup -> ' + \
                    follow_up(dst, 'system_wakeup')
            if after.startswith('running'):
                runs = guest_runs(dst)
                after += ', guest runs' if runs else \
                    ', guest does not run (memory unchanged for 20 s)'
                if want_after is not None and not runs:
                    want_after = 'guest runs'
            ok = end == want and (want_after is None or
                                  after.startswith(want_after))
            rows.append((s, d, state, end, f'{action or "-"}: {after}'))
            print(f'{"ok" if ok else "not ok"} {i} - {desc}: destination '
                  f'{end} (expected {want}); {action or "-"} -> {after}')
        except Exception as e:  # pylint: disable=broad-except
            rows.append((s, d, state, f'error: {e}', ''))
            print(f'not ok {i} - {desc}: {e}')
        finally:
            for vm in (dst, src):
                if vm is not None:
                    vm.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)
    print('# | source | destination | guest on source | destination ends '
          '| then |')
    print('# |---|---|---|---|---|')
    for r in rows:
        print('# | ' + ' | '.join(r) + ' |')


if __name__ == '__main__':
    main()
