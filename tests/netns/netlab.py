"""netlab - hosts in network namespaces for the GatewayWorker-C multi-host suite.

A Lab is a small LAN on this machine: one "switch" namespace holding a Linux
bridge, and one namespace per host, each joined to the bridge by a veth pair
(eth0 in the host, veth<NAME> on the switch) with its own address in 10.77.0.0/24.
Nothing is added to the machine's own network namespace. A host's link is cut
with `ip -n SWITCH link set veth<NAME> down`: the host keeps running and keeps
its sockets, as after a pulled cable, and nothing reaches it or leaves it.

Each host runs the project's supervisor exactly as the deployment guide says
(docs/DEPLOY.md): `scripts/start_all.sh start -d --config FILE` inside its
namespace, with a configuration adapted from config/examples/.

Names carry the pid of the test process and a random part (gwnt-<pid>-<rand>-X),
so a crashed earlier run cannot collide with this one; namespaces of earlier runs
whose test process is gone are removed at start (their processes killed first).
Python 3 stdlib only.
"""

import base64
import ctypes
import datetime
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
PREFIX = 'gwnt-'
SUBNET = '10.77.0'
NETNS_DIR = '/var/run/netns'

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


class Unavailable(Exception):
    """Network namespaces cannot be made here (the suite is skipped)."""


def log(msg):
    sys.stderr.write('[netlab %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


def run(argv, check=True, timeout=30, env=None, capture=True):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None,
                       timeout=timeout, env=env)
    out = p.stdout.decode('utf-8', 'replace') if capture else ''
    if check and p.returncode != 0:
        raise RuntimeError('%s failed (exit %d): %s' % (' '.join(argv), p.returncode, out.strip()))
    return p.returncode, out


def wait_for(cond, what, timeout, interval=0.05, pump=None):
    """Polls cond() until true (returned) or raises AssertionError after timeout.
    pump(t) is called instead of sleeping (to keep clients read and answered)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1f s waiting for %s' % (timeout, what))
        if pump:
            pump(interval)
        else:
            time.sleep(interval)


# ---------------------------------------------------------------------------
# preflight and stale runs

def preflight():
    """Raises Unavailable with the reason when namespaces, veths or bridges cannot
    be made here."""
    if os.geteuid() != 0:
        raise Unavailable('not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)')
    if shutil.which('ip') is None:
        raise Unavailable('iproute2 (the ip command) is not installed')
    probe = '%sprobe-%d-%04x' % (PREFIX, os.getpid(), random.getrandbits(16))
    try:
        rc, out = run(['ip', 'netns', 'add', probe], check=False)
        if rc != 0:
            raise Unavailable('cannot create a network namespace: %s' % out.strip())
        rc, out = run(['ip', '-n', probe, 'link', 'add', 'br0', 'type', 'bridge'], check=False)
        if rc != 0:
            raise Unavailable('cannot create a bridge in a namespace: %s' % out.strip())
        rc, out = run(['ip', '-n', probe, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name',
                       'vb'], check=False)
        if rc != 0:
            raise Unavailable('cannot create a veth pair: %s' % out.strip())
        try:
            with netns(probe):
                pass
        except OSError as e:
            raise Unavailable('cannot enter a network namespace (setns): %s' % e)
    finally:
        run(['ip', 'netns', 'del', probe], check=False)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def ns_pids(ns):
    rc, out = run(['ip', 'netns', 'pids', ns], check=False)
    return [int(x) for x in out.split()] if rc == 0 else []


def kill_ns_processes(ns, sig=signal.SIGKILL):
    """Kills, by pid, every process still inside namespace ns (all of them were
    started by this suite)."""
    pids = ns_pids(ns)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def delete_ns(ns):
    for _ in range(50):
        if not kill_ns_processes(ns):
            break
        time.sleep(0.1)
    run(['ip', 'netns', 'del', ns], check=False)


def remove_stale():
    """Namespaces of earlier runs whose test process is gone."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return
    for name in names:
        m = re.match(re.escape(PREFIX) + r'(?:probe-)?(\d+)-', name)
        if m and not _pid_alive(int(m.group(1))):
            log('removing namespace %s left by an earlier run' % name)
            delete_ns(name)


# ---------------------------------------------------------------------------
# entering a namespace (sockets created inside stay in it)

class netns:
    """with netns(name): sockets created here belong to that namespace."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.orig = os.open('/proc/thread-self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
        fd = os.open(os.path.join(NETNS_DIR, self.name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, 'setns(%s): %s' % (self.name, os.strerror(e)))
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        _libc.setns(self.orig, CLONE_NEWNET)
        os.close(self.orig)


# ---------------------------------------------------------------------------
# a minimal WebSocket client (RFC 6455, text messages, pings answered)

class WsClosed(Exception):
    pass


class Ws:
    def __init__(self, ns, ip, port, timeout=10.0, path='/', raw_host=None):
        with netns(ns):
            self.sock = socket.create_connection((ip, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ns, self.ip, self.port = ns, ip, port
        self.buf = bytearray()
        self.inbox = []
        self.closed = False
        self.close_code = None
        key = base64.b64encode(os.urandom(16)).decode()
        req = ('GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
               'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n'
               % (path, raw_host or ip, port, key))
        self.sock.sendall(req.encode())
        deadline = time.monotonic() + timeout
        while b'\r\n\r\n' not in self.buf:
            self._read(deadline)
        head, _, rest = bytes(self.buf).partition(b'\r\n\r\n')
        self.buf = bytearray(rest)
        status = head.split(b'\r\n')[0]
        if b' 101 ' not in status + b' ':
            raise AssertionError('WebSocket handshake with %s:%d refused: %r' % (ip, port, head))
        accept = base64.b64encode(hashlib.sha1(
            key.encode() + b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest())
        if accept not in head:
            raise AssertionError('bad Sec-WebSocket-Accept from %s:%d' % (ip, port))
        self.sock.setblocking(False)
        self._parse()

    def fileno(self):
        return self.sock.fileno()

    def _read(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('no data from %s:%d in time' % (self.ip, self.port))
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError('no data from %s:%d in time' % (self.ip, self.port))
        if not chunk:
            raise WsClosed('EOF during the handshake')
        self.buf += chunk

    def _frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            hdr = struct.pack('>BB', 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack('>BBH', 0x80 | opcode, 0x80 | 126, n)
        else:
            hdr = struct.pack('>BBQ', 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        return hdr + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))

    def _send(self, data):
        self.sock.setblocking(True)
        self.sock.settimeout(10)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def send(self, text):
        self._send(self._frame(1, text.encode()))

    def feed(self):
        """Reads what is available (non-blocking) and parses complete frames."""
        if self.closed:
            return
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            self.buf += chunk
        self._parse()

    def _parse(self):
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                (n,) = struct.unpack('>H', self.buf[2:4])
                off = 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                (n,) = struct.unpack('>Q', self.buf[2:10])
                off = 10
            if len(self.buf) < off + n:
                return
            payload = bytes(self.buf[off:off + n])
            del self.buf[:off + n]
            op = b0 & 0x0F
            if op == 9:  # ping: answer (the gateways of the examples send ws_ping)
                try:
                    self._send(self._frame(10, payload))
                except OSError:
                    pass
            elif op == 8:
                self.closed = True
                self.close_code = struct.unpack('>H', payload[:2])[0] if len(payload) >= 2 else None
            elif op in (1, 2):  # the server sends unfragmented messages here
                self.inbox.append(payload.decode('utf-8', 'replace'))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


def pump(clients, timeout=0.05):
    """Reads every client that has data within timeout (answers pings)."""
    socks = [c for c in clients if not c.closed]
    if not socks:
        time.sleep(timeout)
        return
    try:
        ready, _, _ = select.select(socks, [], [], timeout)
    except (OSError, ValueError):
        ready = socks
    for c in ready:
        c.feed()


# ---------------------------------------------------------------------------
# the lab

class Host:
    def __init__(self, lab, name, ip):
        self.lab = lab
        self.name = name
        self.ip = ip
        self.ns = '%s%s-%s' % (PREFIX, lab.tag, name)
        self.veth = 'veth' + name
        self.dir = os.path.join(lab.dir, 'host' + name)
        self.config = os.path.join(self.dir, 'gatewayworker.json')
        self.conf = None
        self.started = False

    # -- configuration --

    def write_config(self, conf):
        os.makedirs(self.dir, exist_ok=True)
        self.conf = conf
        with open(self.config, 'w') as f:
            json.dump(conf, f, indent=2)

    @property
    def run_dir(self):
        return self.conf['cluster']['run_dir']

    @property
    def log_path(self):
        return os.path.join(self.run_dir, 'gatewayworker.log')

    def count(self, role):
        return self.conf.get(role, {}).get('count', 1)

    # -- commands inside the namespace --

    def exec_argv(self, argv):
        return ['ip', 'netns', 'exec', self.ns] + list(argv)

    def start_all(self, *args, timeout=60, check=True):
        env = dict(os.environ)
        env['GW_BUILD_DIR'] = self.lab.build_dir
        return run(self.exec_argv([os.path.join(ROOT, 'scripts', 'start_all.sh')] + list(args) +
                                  ['--config', self.config]), check=check, timeout=timeout, env=env)

    def start(self):
        self.start_all('start', '-d', '--no-build')
        self.started = True

    def stop(self, timeout=30):
        if self.started:
            self.start_all('stop', check=False, timeout=timeout)
            self.started = False

    def status(self):
        rc, out = self.start_all('status', '--json', check=False, timeout=15)
        if rc != 0:
            raise AssertionError('status of host %s failed: %s' % (self.name, out))
        return json.loads(out)

    def procs(self, role=None):
        return [p for p in self.status()['processes'] if role is None or p['role'] == role]

    def pid_of(self, role, index=0):
        for p in self.procs(role):
            if p['index'] == index:
                return p['pid']
        return None

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_lines_since(self, offset):
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(offset)
                return f.read().decode('utf-8', 'replace').splitlines()
        except FileNotFoundError:
            return []

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    # -- clients (created in the lab's client namespace) --

    def ws(self, port=8282, **kw):
        return Ws(self.lab.client_ns, self.ip, port, **kw)


def log_time(line):
    """The UTC wall-clock time (seconds since the epoch) of a log line, or None."""
    m = re.match(r'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ', line)
    if not m:
        return None
    dt = datetime.datetime.strptime(m.group(1), '%Y-%m-%dT%H:%M:%S.%f')
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


class Lab:
    def __init__(self, workdir, build_dir):
        self.tag = '%d-%04x' % (os.getpid(), random.getrandbits(16))
        self.dir = workdir
        self.build_dir = build_dir
        self.switch = '%s%s-sw' % (PREFIX, self.tag)
        self.client_ns = '%s%s-cl' % (PREFIX, self.tag)
        self.hosts = {}
        self.namespaces = []
        self.created = False

    def _ns_add(self, ns):
        run(['ip', 'netns', 'add', ns])
        self.namespaces.append(ns)
        run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])

    def _attach(self, ns, veth, ip):
        run(['ip', '-n', self.switch, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0',
             'netns', ns])
        run(['ip', '-n', self.switch, 'link', 'set', veth, 'master', 'br0'])
        run(['ip', '-n', self.switch, 'link', 'set', veth, 'up'])
        run(['ip', '-n', ns, 'addr', 'add', '%s/24' % ip, 'dev', 'eth0'])
        run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up'])

    def create(self):
        self.created = True
        self._ns_add(self.switch)
        run(['ip', '-n', self.switch, 'link', 'add', 'br0', 'type', 'bridge'])
        run(['ip', '-n', self.switch, 'link', 'set', 'br0', 'up'])
        self._ns_add(self.client_ns)
        self._attach(self.client_ns, 'vethcl', '%s.100' % SUBNET)

    def add_host(self, name, last_octet):
        h = Host(self, name, '%s.%d' % (SUBNET, last_octet))
        self._ns_add(h.ns)
        self._attach(h.ns, h.veth, h.ip)
        self.hosts[name] = h
        return h

    def cut(self, host):
        run(['ip', '-n', self.switch, 'link', 'set', host.veth, 'down'])

    def restore(self, host):
        run(['ip', '-n', self.switch, 'link', 'set', host.veth, 'up'])

    def destroy(self):
        """Stops every host (gracefully, then by pid) and deletes every namespace
        (which deletes the veths and the bridge). Safe to call more than once."""
        for h in self.hosts.values():
            try:
                # A cut link would make the graceful stop wait for nothing.
                run(['ip', '-n', self.switch, 'link', 'set', h.veth, 'up'], check=False)
                h.stop(timeout=20)
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                log('stopping host %s: %s' % (h.name, e))
        for ns in reversed(self.namespaces):
            delete_ns(ns)
        self.namespaces = []
