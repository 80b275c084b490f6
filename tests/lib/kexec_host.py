"""The host VM (L1) of the kexec live-update test, and QMP to the QEMU in it.

L1 runs Debian 12's kernel with the initramfs of scripts/build-kexec-host.sh
(init: tests/kexec/init) on the patched QEMU (L0, TCG).  Its init starts
the L2 QEMU (the patched build, inside L1) whose QMP monitor is L1's
ttyS1, which L0 offers as a unix socket: SerialQMP talks QMP to L2
through it with the base tree's QMP client.  L1's console (ttyS0) goes to
a file; its "KX ..." lines say what init did.
"""

import asyncio
import os
import re
import time

from qemu_env import QEMU, WORK, QEMUMachine, wait_for
from qemu.qmp import QMPClient

HOST_DIR = os.environ.get('KEXEC_HOST_DIR') or os.path.join(WORK,
                                                            'kexec-host')
KERNEL = os.path.join(HOST_DIR, 'vmlinuz')
INITRD = os.path.join(HOST_DIR, 'initrd.img')
# L1's legacy pmem: 512 MiB at 2 GiB of its 3 GiB
PMEM = 'memmap=512M!2G'
KX = re.compile(r'^KX (\S+)(?: (.*))?$')


def host_built():
    return os.path.isfile(KERNEL) and os.path.isfile(INITRD)


class KexecError(Exception):
    pass


class SerialQMP:
    """QMP to the L2 QEMU over L1's serial port.  connect() must be
    called before that QEMU starts: its greeting goes to whoever is
    connected at that moment."""

    def __init__(self, path, name):
        self.path = path
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.client = None
        self._task = None

    def _run(self, coro, timeout):
        try:
            return self.loop.run_until_complete(
                asyncio.wait_for(coro, timeout))
        except asyncio.TimeoutError:
            raise KexecError(f'{self.name}: no answer in {timeout} s') \
                from None

    def connect(self, timeout=300):
        self.start_connect()
        self.finish_connect(timeout)

    def start_connect(self):
        """Connect to the socket and return; the greeting of the QEMU
        that starts later waits in the socket until finish_connect()."""
        self.client = QMPClient(self.name)
        self._task = self.loop.create_task(self.client.connect(self.path))
        self.loop.run_until_complete(asyncio.sleep(0.2))

    def finish_connect(self, timeout=300):
        self._run(self._task, timeout)
        self._task = None

    def cmd(self, name, timeout=300, **args):
        """Returns the reply, or raises the client's ExecuteError."""
        return self._run(self.client.execute(name, args or None), timeout)

    def try_cmd(self, name, timeout=300, **args):
        """(reply, None) or (None, error description)."""
        try:
            return self.cmd(name, timeout, **args), None
        except KexecError:
            raise
        except Exception as e:          # pylint: disable=broad-except
            desc = getattr(e, 'error_message', None) or str(e)
            return None, desc

    def event(self, name, timeout=300):
        async def wait():
            async for e in self.client.events:
                if e['event'] == name:
                    return e
            return None
        return self._run(wait(), timeout)

    def status(self):
        return self.cmd('query-status')['status']

    def counter(self):
        """The boot block's memory counter (first byte at 1 MiB)."""
        out = self.cmd('human-monitor-command',
                       **{'command-line': 'xp /1bx 0x100000'})
        return int(out.split(':')[1].split()[0], 16)

    def close(self):
        if self.client is not None:
            try:
                self._run(self.client.disconnect(), 10)
            except Exception:           # pylint: disable=broad-except
                pass
            self.client = None


class L1:
    """One L1 VM on L0; @ram is where L2's RAM file lives (pmem, disk,
    tmpfs), @guest the boot block variant (suspend, run)."""

    def __init__(self, tmp, ram, guest, disk=None):
        self.dir = tmp
        self.console = os.path.join(tmp, 'console.log')
        self.sock = os.path.join(tmp, 'l2-qmp.sock')
        args = ['-accel', 'tcg', '-machine', 'pc', '-m', '3G', '-smp', '1',
                '-nic', 'none', '-display', 'none', '-vga', 'none',
                '-kernel', KERNEL, '-initrd', INITRD,
                '-append', f'console=ttyS0 {PMEM} kx.mode=start '
                           f'kx.ram={ram} kx.guest={guest}',
                '-chardev', f'file,id=s0,path={self.console}',
                '-serial', 'chardev:s0',
                '-chardev', f'socket,id=s1,path={self.sock},server=on,'
                            'wait=off',
                '-serial', 'chardev:s1']
        if disk:
            args += ['-drive', f'file={disk},if=virtio,format=raw']
        self.vm = QEMUMachine(QEMU, base_temp_dir=tmp, name='l0')
        self.vm.add_args(*args)
        self.seen = {}          # line kind -> [(host time, rest), ...]
        self._at = 0

    def launch(self):
        self.vm.launch()
        wait_for(lambda: os.path.exists(self.sock), 30, 'L0 chardev socket')

    def poll(self):
        """Read new KX lines of the console, stamped with the host time
        they were first seen."""
        now = time.monotonic()
        try:
            with open(self.console, 'rb') as f:
                f.seek(self._at)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b'\n') + 1
        self._at += end
        for raw in data[:end].decode('ascii', 'replace').split('\n'):
            m = KX.match(raw.strip('\r'))
            if m:
                self.seen.setdefault(m.group(1), []).append(
                    (now, m.group(2) or ''))
                if m.group(1) == 'ERROR':
                    raise KexecError(f'L1 init: {m.group(2)}')

    def wait(self, kind, count=1, timeout=300):
        """The @count-th KX @kind line: (host time, rest)."""
        def seen():
            self.poll()
            lines = self.seen.get(kind, [])
            return lines[count - 1] if len(lines) >= count else None
        try:
            return wait_for(seen, timeout, f'L1 line KX {kind} #{count}',
                            interval=0.1)
        except TimeoutError:
            if not self.vm.is_running():
                raise KexecError(f'L0 QEMU exited waiting for KX {kind}') \
                    from None
            raise KexecError(f'no KX {kind} #{count} in {timeout} s') \
                from None

    def shutdown(self):
        try:
            self.vm.shutdown(timeout=30)
        except Exception:               # pylint: disable=broad-except
            self.vm.kill()


def fields(rest):
    """'a=1 b=x' -> {'a': '1', 'b': 'x'}"""
    return dict(kv.split('=', 1) for kv in rest.split() if '=' in kv)
