"""gwtest - harness of the GatewayWorker-C integration tests (Python 3 stdlib only).

Starts real gw-register / gw-gateway / gw-businessworker processes on free loopback
ports, each with its own config file (docs/CONFIG.md) in a temporary directory, and
talks to them as wire-level clients:

    class T(gwtest.TestCase):
        def test_echo(self):
            cl, host = self.start_cluster(gateways=1, workers=1)
            ws = cl.client('websocket')
            ws.send('hello')
            self.assertEqual(ws.recv(), 'hello')

Readiness is polled, never slept for: a gateway is up when it logged GW-START
(its listeners are open by then), the cluster is ready when every gateway logged
that every worker joined and vice versa (GW-PEER-UP with the peer's address and
pid, so a restarted process is told from its predecessor); every wait is bounded and fails with what it waited
for. On teardown every process gets SIGTERM then SIGKILL; a process that crashed,
exited on its own, needed SIGKILL, exited non-zero, or logged a sanitizer report
fails the test, and the logs of all processes are printed when a test fails.

Environment:
    GW_BUILD_DIR    meson build directory (meson sets it; default ../../build)
    GW_TEST_DEBUG   log_level "debug" in every process, and always print the logs
    GW_TEST_KEEP    keep the temporary directories
"""

import atexit
import base64
import ctypes
import fcntl
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.path.abspath(os.environ.get('GW_BUILD_DIR') or os.path.join(HERE, '..', '..', 'build'))
DEBUG = bool(os.environ.get('GW_TEST_DEBUG'))
KEEP = bool(os.environ.get('GW_TEST_KEEP'))

BINARIES = {
    'register': os.path.join('register', 'gw-register'),
    'gateway': os.path.join('gateway', 'gw-gateway'),
    'businessworker': os.path.join('businessworker', 'gw-businessworker'),
}

MODULES = {
    'testmod': os.path.join('tests', 'integration', 'libgw_testmod.so'),
    'noabi': os.path.join('tests', 'integration', 'libgw_testmod_noabi.so'),
    'nomsg': os.path.join('tests', 'integration', 'libgw_testmod_nomsg.so'),
    'badabi': os.path.join('tests', 'integration', 'libgw_testmod_badabi.so'),
    'echo': os.path.join('examples', 'libgw_echo.so'),
}

SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:',
                     'ERROR: ThreadSanitizer', 'ERROR: MemorySanitizer')

DEFAULT_TIMEOUT = 10.0
STOP_GRACE = 10.0


def binary(role):
    path = os.path.join(BUILD_DIR, BINARIES[role])
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest('%s not built (GW_BUILD_DIR=%s)' % (path, BUILD_DIR))
    return path


def module_path(name):
    if os.path.isabs(name):
        return name
    path = os.path.join(BUILD_DIR, MODULES[name])
    if not os.path.exists(path):
        raise unittest.SkipTest('%s not built' % path)
    return path


# Every process started here, so that nothing outlives the test process: children
# get SIGKILL when it dies (PR_SET_PDEATHSIG), and a SIGTERM (meson's timeout)
# or a normal exit kills whatever is left.
_LIVE = set()
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill_all():
    for popen in list(_LIVE):
        if popen.poll() is None:
            try:
                popen.kill()
            except OSError:
                pass


def _on_sigterm(signum, frame):
    _kill_all()
    sys.stderr.write('gwtest: SIGTERM (timeout?): killed all cluster processes\n')
    os._exit(128 + signum)


atexit.register(_kill_all)
if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _on_sigterm)


def proc_env():
    env = dict(os.environ)
    env.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
    env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1')
    return env


# ---------------------------------------------------------------------------
# waiting

def wait_for(cond, what, timeout=DEFAULT_TIMEOUT, interval=0.02, check=None):
    """Polls cond() until it returns a true value (returned) or raises after timeout.
    check(), if given, runs on every round (e.g. to fail fast when a process died)."""
    deadline = time.monotonic() + timeout
    while True:
        if check:
            check()
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1f s waiting for %s' % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# ports

PORT_LO, PORT_HI, PORT_BLOCK = 20000, 32000, 200  # below the ephemeral range (32768+)
_block = None


def _reserve_block():
    """Locks a block of PORT_BLOCK ports for this test process (flock, released when
    the process exits), so that concurrent test processes never pick the same ports."""
    global _block
    if _block is not None:
        return _block
    lockdir = os.path.join(tempfile.gettempdir(), 'gwtest-ports')
    os.makedirs(lockdir, exist_ok=True)
    nblocks = (PORT_HI - PORT_LO) // PORT_BLOCK
    first = random.randrange(nblocks)
    for k in range(nblocks):
        b = (first + k) % nblocks
        fd = os.open(os.path.join(lockdir, 'block-%d.lock' % b), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _block = [fd, PORT_LO + b * PORT_BLOCK, 0]  # fd, base, next offset
        return _block
    raise RuntimeError('no free port block in %s' % lockdir)


def port_is_free(port, hosts=('0.0.0.0',)):
    for host in hosts:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_ports(n=1):
    """First of n consecutive TCP ports that are free on every loopback address
    (binds to each on 0.0.0.0 and releases it), from this process's block."""
    blk = _reserve_block()
    _, base, off = blk
    while off + n <= PORT_BLOCK:
        start = base + off
        if all(port_is_free(start + i) for i in range(n)):
            blk[2] = off + n
            return start
        off += 1
    # The block is used up (long-running process): take another one.
    global _block
    os.close(blk[0])
    _block = None
    return free_ports(n)


def ephemeral_port(host='127.0.0.1'):
    """A port the kernel considers free right now (bind to port 0 and release)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# processes

class Proc:
    """One gw-* process; stderr and stdout go to its own log file."""

    def __init__(self, role, config, index, log_path, name):
        self.role = role
        self.config = config
        self.index = index
        self.log_path = log_path
        self.name = name
        self.popen = None
        self.stopped_by_test = False  # SIGKILL/SIGTERM sent on purpose
        self.expect_exit = False

    def start(self):
        argv = [binary(self.role), '--config', self.config, '--index', str(self.index)]
        self._log = open(self.log_path, 'ab')
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      cwd=os.path.dirname(self.config), env=proc_env(),
                                      preexec_fn=_die_with_parent)
        _LIVE.add(self.popen)
        return self

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        with open(self.log_path, 'rb') as f:
            f.seek(offset)
            return f.read().decode('utf-8', 'replace')

    def check_alive(self):
        if not self.alive():
            raise AssertionError('%s exited unexpectedly (%s); its log:\n%s'
                                 % (self.name, describe_rc(self.popen.returncode), self.log()))

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT, since=0, must_live=True):
        """Waits until the log (from byte offset `since`) matches the regex; returns the match."""
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log_since(since)),
                        '%r in the log of %s' % (pattern, self.name), timeout,
                        check=self.check_alive if must_live else None)

    def signal(self, sig):
        if self.alive():
            self.stopped_by_test = True
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        """SIGKILL, on purpose (the test kills this process)."""
        self.signal(signal.SIGKILL)
        self.popen.wait(DEFAULT_TIMEOUT)

    def terminate(self):
        """Phase 1 of the teardown: notes whether the process died on its own, then
        sends SIGTERM."""
        if self.popen is None:
            return
        rc = self.popen.poll()
        self.died_early = rc is not None and not self.stopped_by_test and not self.expect_exit
        self.terminated = rc is None
        if rc is None:
            try:
                os.kill(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, grace=STOP_GRACE):
        """Phase 2: waits for the exit (SIGKILL after `grace` s). Returns a problem
        description or None."""
        if self.popen is None:
            return None
        if not hasattr(self, 'terminated'):
            self.terminate()
        problem = None
        if self.died_early:
            problem = '%s exited on its own during the test (%s)' % (
                self.name, describe_rc(self.popen.returncode))
        elif self.terminated:
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
                problem = '%s did not exit within %.0f s of SIGTERM (killed)' % (self.name, grace)
            else:
                rc = self.popen.returncode
                if rc != 0 and not self.stopped_by_test:
                    problem = '%s exited with %s after SIGTERM' % (self.name, describe_rc(rc))
        self._log.close()
        text = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problem = (problem + '; ' if problem else '') + \
                    '%s logged a sanitizer report (%r)' % (self.name, marker)
                break
        return problem


def describe_rc(rc):
    if rc is None:
        return 'running'
    if rc < 0:
        try:
            return 'signal %s' % signal.Signals(-rc).name
        except ValueError:
            return 'signal %d' % -rc
    return 'exit code %d' % rc


def assert_no_sanitizer_report(tc, output):
    for marker in SANITIZER_MARKERS:
        if marker in output:
            tc.fail('sanitizer report (%r) in the output:\n%s' % (marker, output))


def run_to_exit(role, config, index=0, timeout=DEFAULT_TIMEOUT, extra_args=()):
    """Runs a gw-* binary that is expected to exit; returns (returncode, output)."""
    argv = [binary(role), '--config', config, '--index', str(index)] + list(extra_args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, env=proc_env(),
                       cwd=os.path.dirname(os.path.abspath(config)))
    return p.returncode, p.stdout.decode('utf-8', 'replace')


# ---------------------------------------------------------------------------
# configuration and the cluster

def deep_merge(dst, src):
    for k, v in (src or {}).items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], v)
        else:
            dst[k] = v
    return dst


class Host:
    """One simulated host: a config file with its lan_ip and the processes that use it."""

    def __init__(self, cluster, name, lan_ip, path, conf, listeners):
        self.cluster = cluster
        self.name = name
        self.lan_ip = lan_ip
        self.path = path
        self.conf = conf
        self.listeners = listeners  # proto -> (ip, port)
        self.gateways = []
        self.workers = []
        self.register = None

    @property
    def gateway_start(self):
        return self.conf['gateway']['start_port']

    @property
    def worker_start(self):
        return self.conf['businessworker']['start_port']

    def gateway_addr(self, i=0):
        return '%s:%d' % (self.lan_ip, self.gateway_start + i)

    def worker_addr(self, i=0):
        return '%s:%d' % (self.lan_ip, self.worker_start + i)

    def event_log(self):
        return self.conf['businessworker'].get('module_config', {}).get('event_log')

    def write(self):
        with open(self.path, 'w') as f:
            json.dump(self.conf, f, indent=2)


class Cluster:
    """Processes of one test, their configs and logs in a temporary directory."""

    def __init__(self, tc, secret_key='', register_ip='127.0.0.1'):
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix='gwtest-')
        self.run_dir = os.path.join(self.dir, 'run')
        os.makedirs(self.run_dir)
        self.secret_key = secret_key
        self.register_ip = register_ip
        self.register_port = free_ports(2)  # announce on P, roster on P + 1
        self.hosts = []
        self.procs = []
        self.clients = []
        self.events_path = os.path.join(self.dir, 'events.log')
        self._nlogs = 0
        tc.addCleanup(self.shutdown)

    @property
    def registers(self):
        return ['%s:%d' % (self.register_ip, self.register_port)]

    def add_host(self, lan_ip='127.0.0.1', gateways=1, workers=1, register=False,
                 listen=('websocket', 'text', 'frame'), listen_ip=None, cluster=None,
                 gateway=None, businessworker=None, module='testmod', event_log=None,
                 secret_key=None, name=None):
        """Writes a config file for one host (not started yet). `gateway`,
        `businessworker`, `cluster` are merged into their sections."""
        name = name or 'host%d' % len(self.hosts)
        listen_ip = listen_ip or lan_ip
        listeners = {}
        urls = []
        for proto in listen:
            port = free_ports(1)
            listeners[proto] = (listen_ip, port)
            urls.append('%s://%s:%d' % (proto, listen_ip, port))
        conf = {
            'cluster': {
                'secret_key': self.secret_key if secret_key is None else secret_key,
                'lan_ip': lan_ip,
                'registers': self.registers,
                'heartbeat_interval': 0.2,
                'node_timeout': 1.0,
                'log_level': 'debug' if DEBUG else 'info',
                'run_dir': self.run_dir,
            },
            'register': {'count': 1 if register else 0},
            'gateway': {
                'count': gateways,
                'listen': urls,
                'start_port': free_ports(max(gateways, 1)),
            },
            'businessworker': {
                'count': workers,
                'start_port': free_ports(max(workers, 1)),
                'module_config': {'event_log': event_log or self.events_path},
            },
        }
        if workers or module:
            conf['businessworker']['module'] = module_path(module) if module else ''
        if register:
            conf['register']['listen'] = '%s:%d' % (self.register_ip, self.register_port)
            conf['register']['publish_interval'] = 0.5
        deep_merge(conf['cluster'], cluster)
        deep_merge(conf['gateway'], gateway)
        deep_merge(conf['businessworker'], businessworker)
        host = Host(self, name, lan_ip, os.path.join(self.dir, name + '.json'), conf, listeners)
        host.write()
        self.hosts.append(host)
        return host

    def _proc(self, role, host, index):
        self._nlogs += 1
        name = '%s/%s#%d' % (host.name, role, index)
        log = os.path.join(self.dir, '%02d-%s-%s-%d.log' % (self._nlogs, host.name, role, index))
        p = Proc(role, host.path, index, log, name)
        self.procs.append(p)
        return p.start()

    def start_register(self, host):
        p = self._proc('register', host, 0)
        host.register = p
        p.wait_log(r'GW-START register listening')
        return p

    def start_gateway(self, host, index=0):
        p = self._proc('gateway', host, index)
        while len(host.gateways) <= index:
            host.gateways.append(None)
        host.gateways[index] = p
        p.wait_log(r'GW-START gateway %d started' % index)
        return p

    def start_worker(self, host, index=0, wait=True):
        p = self._proc('businessworker', host, index)
        while len(host.workers) <= index:
            host.workers.append(None)
        host.workers[index] = p
        if wait:
            p.wait_log(r'GW-START business worker %d' % index)
        return p

    def start_host(self, host):
        """Starts the host's register (if any), gateways and workers (not waiting
        for them to see each other: see wait_ready)."""
        if host.conf['register']['count']:
            self.start_register(host)
        for i in range(host.conf['gateway']['count']):
            self.start_gateway(host, i)
        for i in range(host.conf['businessworker']['count']):
            self.start_worker(host, i)

    def start(self):
        for h in self.hosts:
            if h.conf['register']['count']:
                self.start_register(h)
        for h in self.hosts:
            for i in range(h.conf['gateway']['count']):
                self.start_gateway(h, i)
            for i in range(h.conf['businessworker']['count']):
                self.start_worker(h, i)
        self.wait_ready()

    def live(self, role):
        out = []
        for h in self.hosts:
            procs = h.gateways if role == 'gateway' else h.workers
            for i, p in enumerate(procs):
                if p is not None and p.alive():
                    out.append((h, i, p))
        return out

    def check_alive(self):
        for p in self.procs:
            if not p.stopped_by_test and not p.expect_exit:
                p.check_alive()

    def wait_joined(self, observer, peer_role, addr, pid, timeout=DEFAULT_TIMEOUT):
        """Waits until `observer` logged that the node `addr` (role 'gateway' or
        'businessworker') with `pid` joined."""
        observer.wait_log(r'GW-PEER-UP %s %s joined \(pid %d\)' % (peer_role, re.escape(addr), pid),
                          timeout)

    def wait_ready(self, timeout=DEFAULT_TIMEOUT, gateways=None, workers=None):
        """Waits until every live gateway saw every live worker join and vice versa
        (or the given subsets)."""
        gws = gateways if gateways is not None else self.live('gateway')
        wks = workers if workers is not None else self.live('businessworker')
        for (gh, gi, gp) in gws:
            for (wh, wi, wp) in wks:
                self.wait_joined(gp, 'businessworker', wh.worker_addr(wi), wp.pid, timeout)
                self.wait_joined(wp, 'gateway', gh.gateway_addr(gi), gp.pid, timeout)

    # -- clients --

    def client(self, proto='websocket', host=None, **kw):
        host = host or self.hosts[0]
        ip, port = host.listeners[proto]
        cls = {'websocket': WsClient, 'text': LineClient, 'frame': FrameClient}[proto]
        c = cls(ip, port, **kw)
        self.clients.append(c)
        self.tc.addCleanup(c.close)
        return c

    # -- the event log of testmod --

    def events(self, path=None, **match):
        """Events of testmod's log (list of dicts) whose fields equal `match`."""
        path = path or self.events_path
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        for line in data.split(b'\n'):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line being written
            if all(e.get(k) == v for k, v in match.items()):
                out.append(e)
        return out

    def wait_event(self, what=None, timeout=DEFAULT_TIMEOUT, path=None, pred=None, **match):
        """Waits for an event with fields `match` (and pred(e), if given); returns it."""
        def find():
            for e in self.events(path, **match):
                if pred is None or pred(e):
                    return e
            return None
        return wait_for(find, what or 'event %r' % match, timeout, check=self.check_alive)

    # -- teardown --

    def logs(self):
        out = []
        for p in self.procs:
            out.append('===== %s (pid %s, %s) %s =====\n%s' % (
                p.name, p.popen.pid if p.popen else '-',
                describe_rc(p.popen.returncode) if p.popen else 'not started',
                p.log_path, p.log()))
        ev = self.events()
        if ev:
            out.append('===== events.log (%d events, last 60) =====\n%s' % (
                len(ev), '\n'.join(json.dumps(e) for e in ev[-60:])))
        return '\n'.join(out)

    def shutdown(self):
        for c in self.clients:
            c.close()
        # Role by role, each waited for: workers first (a stopping worker asks the
        # gateways to move its clients, so they must still be up), then gateways,
        # then registers.
        problems = []
        for role in ('businessworker', 'gateway', 'register'):
            procs = [p for p in self.procs if p.role == role]
            for p in procs:
                p.terminate()
            problems += [x for x in (p.stop() for p in procs) if x]
        failed = test_failed(self.tc)
        if problems or failed or DEBUG:
            sys.stderr.write('\n--- logs of %s (%s) ---\n%s\n--- end of logs ---\n' % (
                self.tc.id(), self.dir, self.logs()))
        if not KEEP and not problems and not failed:
            shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            raise AssertionError('process problems: ' + '; '.join(problems))


def test_failed(tc):
    """Whether the running test (or one of its subtests) has failed so far. Usable
    from cleanups, where unittest's outcome.success is reset (Python 3.11)."""
    outcome = getattr(tc, '_outcome', None)
    if outcome is None:
        return False
    result = getattr(outcome, 'result', None)
    for entries in (getattr(result, 'failures', ()), getattr(result, 'errors', ())):
        for t, _ in entries:
            if getattr(t, 'test_case', t) is tc:
                return True
    return False


class TestCase(unittest.TestCase):
    """unittest.TestCase with cluster helpers."""

    def cluster(self, **kw):
        return Cluster(self, **kw)

    def start_cluster(self, gateways=1, workers=1, secret_key='', **host_kw):
        """One host running a register, `gateways` gateways and `workers` workers,
        started and ready. Returns (cluster, host)."""
        cl = Cluster(self, secret_key=secret_key)
        host = cl.add_host(gateways=gateways, workers=workers, register=True, **host_kw)
        cl.start()
        return cl, host


# ---------------------------------------------------------------------------
# clients

class ConnectionClosed(Exception):
    """The server closed the TCP connection (EOF or reset)."""

    def __init__(self, msg='connection closed', data=b''):
        super().__init__(msg)
        self.data = data


class WsClosed(Exception):
    """A WebSocket close frame arrived."""

    def __init__(self, code, reason=b''):
        super().__init__('WebSocket closed by the server with %s %r' % (code, reason))
        self.code = code
        self.reason = reason


class HandshakeError(Exception):
    def __init__(self, status, headers, body, raw):
        super().__init__('WebSocket handshake refused: %s %r' % (status, body[:200]))
        self.status = status
        self.headers = headers
        self.body = body
        self.raw = raw


class Conn:
    """A TCP client with a receive buffer and deadline-bounded reads."""

    proto = None

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT, source=None):
        self.host, self.port = host, port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self._id = None

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_bytewise(self, data, delay=0.002):
        """Sends one byte per write (with TCP_NODELAY and a pause, so the server
        sees them in separate reads)."""
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if delay:
                time.sleep(delay)

    def _fill(self, deadline):
        """Reads more bytes into buf; ConnectionClosed on EOF, TimeoutError at deadline."""
        if self.eof:
            raise ConnectionClosed(data=bytes(self.buf))
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('no data from %s:%d in time' % (self.host, self.port))
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError('no data from %s:%d in time' % (self.host, self.port))
        except ConnectionResetError:
            self.eof = True
            raise ConnectionClosed('connection reset', data=bytes(self.buf))
        if not chunk:
            self.eof = True
            raise ConnectionClosed(data=bytes(self.buf))
        self.buf += chunk

    def recv_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_until(self, sep, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            self._fill(deadline)

    def expect_eof(self, timeout=None):
        """Reads until the server closes; returns what came before the EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._fill(deadline)
            except ConnectionClosed:
                out = bytes(self.buf)
                self.buf.clear()
                return out
            except TimeoutError:
                raise AssertionError('connection to %s:%d still open after %.1f s'
                                     % (self.host, self.port, timeout or self.timeout))

    def is_open(self, wait=0.05):
        """True unless the server closed the connection (drains nothing into buf
        permanently: bytes read are kept)."""
        if self.eof:
            return False
        try:
            self._fill(time.monotonic() + wait)
        except TimeoutError:
            return True
        except ConnectionClosed:
            return False
        return True

    # generic message interface (send(str), recv() -> str), per protocol

    def whoami(self, timeout=None):
        self.send('whoami')
        info = json.loads(self.recv(timeout))
        self._id = info['client_id']
        return info

    @property
    def id(self):
        if self._id is None:
            self.whoami()
        return self._id


class LineClient(Conn):
    """text:// protocol: one message per line ending in \\n."""

    proto = 'text'

    def send(self, msg, eol=b'\n'):
        if isinstance(msg, str):
            msg = msg.encode()
        self.send_raw(msg + eol)

    def recv_bytes(self, timeout=None):
        return self.recv_until(b'\n', timeout)[:-1]

    def recv(self, timeout=None):
        return self.recv_bytes(timeout).decode('utf-8')


class FrameClient(Conn):
    """frame:// protocol: 4-byte big-endian length (including itself), then the body."""

    proto = 'frame'

    @staticmethod
    def encode(body):
        return struct.pack('>I', len(body) + 4) + body

    def send(self, msg):
        if isinstance(msg, str):
            msg = msg.encode()
        self.send_raw(self.encode(msg))

    def recv_bytes(self, timeout=None):
        deadline = (timeout or self.timeout)
        t0 = time.monotonic()
        (n,) = struct.unpack('>I', self.recv_exact(4, deadline))
        if n < 4:
            raise AssertionError('frame length %d < 4 from the server' % n)
        return self.recv_exact(n - 4, max(0.001, deadline - (time.monotonic() - t0)))

    def recv(self, timeout=None):
        return self.recv_bytes(timeout).decode('utf-8')


WS_GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def ws_frame(opcode, payload=b'', fin=True, mask=True, rsv=0, mask_key=None, length=None):
    """Builds one WebSocket frame (client frames are masked unless mask=False).
    `length` overrides the length field (for malformed frames)."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack('>BB', b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack('>BBH', b0, mbit | 126, n)
    else:
        hdr = struct.pack('>BBQ', b0, mbit | 127, n)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload)) if len(payload) < 4096 \
            else _mask_fast(payload, key)
        return hdr + key + masked
    return hdr + payload


def _mask_fast(payload, key):
    n = len(payload)
    k = int.from_bytes((key * ((n + 3) // 4))[:n], 'big')
    return (int.from_bytes(payload, 'big') ^ k).to_bytes(n, 'big')


class WsFrame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def __repr__(self):
        return 'WsFrame(fin=%d, op=%d, %d bytes %r)' % (self.fin, self.opcode, len(self.payload),
                                                        self.payload[:40])


class WsClient(Conn):
    """RFC 6455 client: handshake (with Sec-WebSocket-Key check), masked frames,
    fragmentation, ping/pong/close."""

    proto = 'websocket'

    def __init__(self, host, port, path='/', headers=(), timeout=DEFAULT_TIMEOUT,
                 handshake=True, bytewise=False, auto_pong=True, source=None):
        super().__init__(host, port, timeout, source)
        self.auto_pong = auto_pong
        self.response_headers = {}
        self.pings = []  # payloads of ping frames received (and answered)
        if handshake:
            self.handshake(path, headers, bytewise)

    def handshake_request(self, path='/', headers=(), key=None, version='13'):
        self.key = key or base64.b64encode(os.urandom(16)).decode()
        lines = ['GET %s HTTP/1.1' % path, 'Host: %s:%d' % (self.host, self.port),
                 'Upgrade: websocket', 'Connection: Upgrade',
                 'Sec-WebSocket-Key: %s' % self.key, 'Sec-WebSocket-Version: %s' % version]
        lines += ['%s: %s' % kv for kv in headers]
        return ('\r\n'.join(lines) + '\r\n\r\n').encode()

    def read_http_response(self, timeout=None):
        """Reads an HTTP response head (and a Content-Length body); returns
        (status, headers dict with lower-case names, body)."""
        head = self.recv_until(b'\r\n\r\n', timeout)
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split(' ')[1])
        headers = {}
        for line in lines[1:]:
            if ':' in line:
                k, v = line.split(':', 1)
                headers[k.strip().lower()] = v.strip()
        body = b''
        if 'content-length' in headers:
            body = self.recv_exact(int(headers['content-length']), timeout)
        return status, headers, body, head

    def handshake(self, path='/', headers=(), bytewise=False):
        req = self.handshake_request(path, headers)
        if bytewise:
            self.send_bytewise(req)
        else:
            self.send_raw(req)
        status, hdrs, body, head = self.read_http_response()
        if status != 101:
            raise HandshakeError(status, hdrs, body, head)
        if hdrs.get('sec-websocket-accept') != ws_accept(self.key):
            raise AssertionError('bad Sec-WebSocket-Accept %r (expected %r)'
                                 % (hdrs.get('sec-websocket-accept'), ws_accept(self.key)))
        if hdrs.get('upgrade', '').lower() != 'websocket' or \
                'upgrade' not in hdrs.get('connection', '').lower():
            raise AssertionError('bad 101 response: %r' % head)
        self.response_headers = hdrs
        self.connected_at = time.monotonic()

    # sending

    def send_frame(self, opcode, payload=b'', fin=True, mask=True, rsv=0, length=None):
        self.send_raw(ws_frame(opcode, payload, fin, mask, rsv, length=length))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_fragmented(self, opcode, payload, nparts=3, ping_between=False):
        """Sends one message as nparts frames (first with opcode, then continuations)."""
        if isinstance(payload, str):
            payload = payload.encode()
        size = max(1, (len(payload) + nparts - 1) // nparts)
        parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b'']
        for i, part in enumerate(parts):
            self.send_frame(opcode if i == 0 else OP_CONT, part, fin=(i == len(parts) - 1))
            if ping_between and i < len(parts) - 1:
                self.send_frame(OP_PING, b'between')

    def ping(self, data=b''):
        self.send_frame(OP_PING, data)

    def send_close(self, code=1000, reason=b''):
        payload = b'' if code is None else struct.pack('>H', code) + reason
        self.send_frame(OP_CLOSE, payload)

    def send(self, msg):
        self.send_text(msg)

    # receiving

    def recv_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        t = lambda: max(0.001, deadline - time.monotonic())
        b0, b1 = self.recv_exact(2, t())
        if b1 & 0x80:
            raise AssertionError('the server sent a masked frame')
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack('>H', self.recv_exact(2, t()))
        elif n == 127:
            (n,) = struct.unpack('>Q', self.recv_exact(8, t()))
        payload = self.recv_exact(n, t()) if n else b''
        return WsFrame(b0 >> 7, (b0 >> 4) & 7, b0 & 0x0F, payload)

    def recv_message(self, timeout=None):
        """Next data message as (opcode, payload); answers pings (auto_pong), skips
        pongs, raises WsClosed on a close frame."""
        deadline = time.monotonic() + (timeout or self.timeout)
        opcode, parts = None, []
        while True:
            f = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if f.rsv:
                raise AssertionError('frame with RSV bits from the server: %r' % f)
            if f.opcode == OP_PING:
                self.pings.append(f.payload)
                if self.auto_pong:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                code = struct.unpack('>H', f.payload[:2])[0] if len(f.payload) >= 2 else None
                raise WsClosed(code, f.payload[2:])
            if f.opcode in (OP_TEXT, OP_BINARY):
                if opcode is not None:
                    raise AssertionError('new data frame inside a fragmented message')
                opcode = f.opcode
            elif f.opcode == OP_CONT:
                if opcode is None:
                    raise AssertionError('continuation frame without a message')
            else:
                raise AssertionError('unexpected opcode %d from the server' % f.opcode)
            parts.append(f.payload)
            if f.fin:
                return opcode, b''.join(parts)

    def recv(self, timeout=None):
        op, data = self.recv_message(timeout)
        if op != OP_TEXT:
            raise AssertionError('expected a text message, got opcode %d: %r' % (op, data[:60]))
        return data.decode('utf-8')

    def recv_bytes(self, timeout=None):
        return self.recv_message(timeout)[1]

    def expect_close(self, timeout=None):
        """Reads until a close frame; returns (code, reason, data messages before it)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        before = []
        while True:
            try:
                before.append(self.recv_message(max(0.001, deadline - time.monotonic())))
            except WsClosed as e:
                return e.code, e.reason, before


# ---------------------------------------------------------------------------
# raw HTTP and nanomsg SP

def http_exchange(host, port, request, timeout=DEFAULT_TIMEOUT):
    """Sends raw bytes to a listener and returns (status, headers, body) of the response."""
    c = WsClient(host, port, handshake=False, timeout=timeout)
    try:
        c.send_raw(request)
        status, headers, body, _ = c.read_http_response(timeout)
        return status, headers, body
    finally:
        c.close()


NN_PUSH, NN_PULL, NN_SUB, NN_PUB = 0x50, 0x51, 0x21, 0x20


class SpClient:
    """A hand-made nanomsg SP-over-TCP peer: 8-byte protocol header, then
    messages as u64 big-endian length + payload."""

    def __init__(self, host, port, proto=NN_PUSH, timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.settimeout(timeout)
        self.sock.sendall(b'\x00SP\x00' + struct.pack('>HH', proto, 0))
        hdr = b''
        while len(hdr) < 8:
            chunk = self.sock.recv(8 - len(hdr))
            if not chunk:
                raise ConnectionClosed('SP peer closed during the handshake')
            hdr += chunk
        if hdr[:4] != b'\x00SP\x00':
            raise AssertionError('not an SP header: %r' % hdr)
        self.peer_proto = struct.unpack('>H', hdr[4:6])[0]

    def send(self, payload):
        self.sock.sendall(struct.pack('>Q', len(payload)) + payload)

    def _exact(self, n):
        data = b''
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionClosed('SP peer closed')
            data += chunk
        return data

    def recv(self, timeout=DEFAULT_TIMEOUT):
        """One message."""
        self.sock.settimeout(timeout)
        (n,) = struct.unpack('>Q', self._exact(8))
        return self._exact(n)

    def close(self):
        self.sock.close()


class SpListener:
    """A hand-made nanomsg SP-over-TCP inbox (NN_PULL): binds a free loopback port,
    accepts one peer (e.g. the register's link that brings a roster) and reads
    messages from it."""

    def __init__(self, host='127.0.0.1', proto=NN_PULL, timeout=DEFAULT_TIMEOUT):
        self.proto = proto
        self.timeout = timeout
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind((host, 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.conn = None

    def _accept(self):
        self.lsock.settimeout(self.timeout)
        self.conn, _ = self.lsock.accept()
        self.conn.settimeout(self.timeout)
        self.conn.sendall(b'\x00SP\x00' + struct.pack('>HH', self.proto, 0))
        hdr = b''
        while len(hdr) < 8:
            chunk = self.conn.recv(8 - len(hdr))
            if not chunk:
                raise ConnectionClosed('SP peer closed during the handshake')
            hdr += chunk

    def recv(self, timeout=DEFAULT_TIMEOUT):
        if self.conn is None:
            self._accept()
        self.conn.settimeout(timeout)
        data = b''
        while len(data) < 8:
            chunk = self.conn.recv(8 - len(data))
            if not chunk:
                raise ConnectionClosed('SP peer closed')
            data += chunk
        (n,) = struct.unpack('>Q', data)
        data = b''
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise ConnectionClosed('SP peer closed')
            data += chunk
        return data

    def close(self):
        if self.conn:
            self.conn.close()
        self.lsock.close()


ROLE_REGISTER, ROLE_GATEWAY, ROLE_WORKER, ROLE_CLIENT = 1, 2, 3, 4
CMD_HEARTBEAT, CMD_ROSTER, CMD_SEND, CMD_SEND_ALL, CMD_CLOSE, CMD_DESTROY = 1, 2, 30, 31, 32, 33


def gwp_frame(cmd, conn=0, a=b'', b=b'', flags=0, aux=0, req=0):
    return struct.pack('>BBHIIII', cmd, flags, aux, conn, req, len(a), len(b)) + a + b


def gwp_batch(frames, role=ROLE_WORKER, port=1, ip='127.0.0.1', nonce=None, key=None):
    """A batch (docs/PROTOCOL.md); with `key`, HMAC-SHA256 tagged."""
    ipn = struct.unpack('>I', socket.inet_aton(ip))[0]
    nonce = random.getrandbits(64) if nonce is None else nonce
    hdr = struct.pack('>BBBBBBHIQI', ord('G'), ord('W'), 1, 1 if key else 0, role, 0, port, ipn,
                      nonce, len(frames))
    body = hdr + b''.join(frames)
    if key:
        body += hmac.new(key.encode() if isinstance(key, str) else key, body,
                         hashlib.sha256).digest()
    return body


def gwp_parse(batch):
    """A batch -> (header dict, [frame dicts]) (no tag check)."""
    (m0, m1, ver, flags, role, _, port, ipn, nonce, count) = struct.unpack(
        '>BBBBBBHIQI', batch[:24])
    hdr = dict(version=ver, flags=flags, role=role, port=port,
               ip=socket.inet_ntoa(struct.pack('>I', ipn)), nonce=nonce, count=count)
    frames, off = [], 24
    for _ in range(count):
        cmd, fl, aux, conn, req, alen, blen = struct.unpack('>BBHIIII', batch[off:off + 20])
        off += 20
        frames.append(dict(cmd=cmd, flags=fl, aux=aux, conn=conn, req=req,
                           a=batch[off:off + alen], b=batch[off + alen:off + alen + blen]))
        off += alen + blen
    return hdr, frames


def parse_client_id(cid):
    """client_id -> (gateway ip, gateway inbox port, connection number)."""
    assert re.fullmatch(r'[0-9a-f]{20}', cid), cid
    ip = socket.inet_ntoa(bytes.fromhex(cid[:8]))
    return ip, int(cid[8:12], 16), int(cid[12:], 16)


def main():
    unittest.main(verbosity=2)
