"""Helpers of the Gateway API integration tests (test_api_*.py); no tests here.

The cluster of these tests: two simulated hosts, each with one gateway and one
business worker running tests/integration/apimod.c (host A on 127.0.0.1 with the
register, host B on 127.0.0.2 when that address can be bound, else 127.0.0.1 too),
so 2 gateways x 2 workers, and every gateway routes its clients to both workers.

Clients talk to apimod with JSON commands (ApiClient.call); whatever else a client
receives (messages pushed by sends) is kept apart (ApiClient.push).

Gateways can be started with a statistics page (common/shstats.h: a memfd whose
descriptor the gateway finds in GW_STATS_FD, as gw-master does), so that a test
can read a gateway's counters (commands_in, unknown_client, bad_commands) without
asking it anything: `ApiCluster(stats=True)`.
"""

import json
import mmap
import os
import signal
import socket
import struct
import subprocess
import time
import unittest

import gwtest
from gwtest import DEFAULT_TIMEOUT, wait_for

APIMOD = os.path.join(gwtest.BUILD_DIR, 'tests', 'integration', 'libgw_apimod.so')
GWCTL = os.path.join(gwtest.BUILD_DIR, 'gwclient', 'gwctl')

# include/gatewayworker.h
GW_OK, GW_EINVAL, GW_ETOOBIG, GW_EUTF8, GW_EUNREACHABLE, GW_ENOCONTEXT, GW_EREADONLY, \
    GW_ENOQUERY = range(8)
GW_BINARY, GW_RAW = 1, 2

MAX_MESSAGE = 16384  # gateway.max_message_size of these clusters (small: cheap oversize)


def apimod():
    if not os.path.exists(APIMOD):
        raise unittest.SkipTest('%s not built' % APIMOD)
    return APIMOD


def gwctl_binary():
    if not os.access(GWCTL, os.X_OK):
        raise unittest.SkipTest('%s not built' % GWCTL)
    return GWCTL


def bindable(ip):
    s = socket.socket()
    try:
        s.bind((ip, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


HOST_B_IP = '127.0.0.2' if bindable('127.0.0.2') else '127.0.0.1'


# ---------------------------------------------------------------------------
# statistics pages (layout of common/shstats.c, version 1)

SHSTATS_MAGIC, SHSTATS_VERSION = 0x54534857, 1
SHSTATS_HDR = struct.Struct('=IIII16sii')  # magic version size state role index pid
SHSTATS_COUNT_OFF, SHSTATS_TICK_OFF, SHSTATS_SLOTS_OFF = 56, 48, 96
SHSTATS_SLOT = struct.Struct('=32sQII')  # name value kind reserved
SHSTATS_MAX = 64
SHSTATS_SIZE = SHSTATS_SLOTS_OFF + SHSTATS_MAX * SHSTATS_SLOT.size


class StatsPage:
    """A page made the way gw-master makes it (gw_shstats_create), read here."""

    def __init__(self, role, index):
        self.fd = os.memfd_create('gw-stats-%s-%d' % (role, index), 0)
        os.ftruncate(self.fd, 4096)
        self.map = mmap.mmap(self.fd, 4096)
        SHSTATS_HDR.pack_into(self.map, 0, SHSTATS_MAGIC, SHSTATS_VERSION, SHSTATS_SIZE, 0,
                              role.encode(), index, 0)

    def close_fd(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def tick(self):
        return struct.unpack_from('=Q', self.map, SHSTATS_TICK_OFF)[0]

    def values(self):
        n = min(struct.unpack_from('=I', self.map, SHSTATS_COUNT_OFF)[0], SHSTATS_MAX)
        out = {}
        for i in range(n):
            name, value, _, _ = SHSTATS_SLOT.unpack_from(self.map,
                                                         SHSTATS_SLOTS_OFF + i * SHSTATS_SLOT.size)
            out[name.split(b'\0', 1)[0].decode('ascii', 'replace')] = value
        return out

    def get(self, name):
        return self.values().get(name, 0)

    def settle(self, timeout=DEFAULT_TIMEOUT):
        """Waits until the gateway published twice more (so that anything it did
        before this call is in the page)."""
        t0 = self.tick()
        wait_for(lambda: self.tick() != t0, 'a stats publication', timeout)
        t1 = self.tick()
        wait_for(lambda: self.tick() != t1, 'a second stats publication', timeout)


class StatsProc(gwtest.Proc):
    """A gateway started with a statistics page (GW_STATS_FD), as under gw-master."""

    def start(self):
        self.page = StatsPage(self.role, self.index)
        argv = [gwtest.binary(self.role), '--config', self.config, '--index', str(self.index)]
        env = gwtest.proc_env()
        env['GW_STATS_FD'] = str(self.page.fd)
        self._log = open(self.log_path, 'ab')
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      cwd=os.path.dirname(self.config), env=env,
                                      pass_fds=(self.page.fd,),
                                      preexec_fn=gwtest._die_with_parent)
        gwtest._LIVE.add(self.popen)
        self.page.close_fd()
        return self


def start_gateway_with_stats(cl, host, index=0):
    """Cluster.start_gateway with a StatsProc."""
    cl._nlogs = getattr(cl, '_nlogs', 0) + 1
    name = '%s/gateway#%d' % (host.name, index)
    log = os.path.join(cl.dir, '%02d-%s-gateway-%d.log' % (cl._nlogs, host.name, index))
    p = StatsProc('gateway', host.path, index, log, name)
    cl.procs.append(p)
    p.start()
    while len(host.gateways) <= index:
        host.gateways.append(None)
    host.gateways[index] = p
    p.wait_log(r'GW-START gateway %d started' % index)
    return p


# ---------------------------------------------------------------------------
# the cluster

class ApiCluster:
    """Two hosts (A with the register), one gateway and one apimod worker each."""

    def __init__(self, tc, secret_key='', stats=False, gateway=None, businessworker=None,
                 cluster=None, module_config=None, listen=('websocket', 'text', 'frame')):
        self.tc = tc
        self.cl = gwtest.Cluster(tc, secret_key=secret_key)
        gw = {'max_message_size': MAX_MESSAGE}
        gwtest.deep_merge(gw, gateway or {})
        bw = {'query_timeout': 3.0, 'module_config': dict(module_config or {})}
        gwtest.deep_merge(bw, businessworker or {})
        self.a = self.cl.add_host(lan_ip='127.0.0.1', register=True, name='hostA',
                                  module=apimod(), gateway=gw, businessworker=bw,
                                  cluster=cluster, listen=listen)
        self.b = self.cl.add_host(lan_ip=HOST_B_IP, name='hostB', module=apimod(),
                                  gateway=dict(gw), businessworker=json.loads(json.dumps(bw)),
                                  cluster=cluster, listen=listen)
        self.hosts = (self.a, self.b)
        if stats:
            for h in self.hosts:
                if h.conf['register']['count']:
                    self.cl.start_register(h)
            for h in self.hosts:
                start_gateway_with_stats(self.cl, h, 0)
            for h in self.hosts:
                self.cl.start_worker(h, 0)
            self.cl.wait_ready()
        else:
            self.cl.start()
        self.worker_pids = sorted(h.workers[0].pid for h in self.hosts)

    @property
    def register(self):
        return self.cl.registers[0]

    def gateway(self, host):
        return host.gateways[0]

    def client(self, host=None, proto='websocket', **kw):
        """An ApiClient on `host`'s gateway (A by default), identified (whoami)."""
        conn = self.cl.client(proto, host=host or self.a, **kw)
        c = ApiClient(conn)
        c.whoami()
        return c

    def spread(self, n_per_gateway=2, protos=('websocket', 'text', 'frame')):
        """n clients on each gateway, protocols in turn: with 2 per gateway, each
        worker gets one client of each gateway (least_connections)."""
        out = []
        k = 0
        for h in self.hosts:
            for _ in range(n_per_gateway):
                out.append(self.client(h, protos[k % len(protos)]))
                k += 1
        return out

    def events(self, **match):
        return self.cl.events(**match)

    def wait_event(self, **kw):
        return self.cl.wait_event(**kw)


# ---------------------------------------------------------------------------
# clients

_seq = [0]


def next_seq():
    _seq[0] += 1
    return _seq[0]


class ApiClient:
    """A wire client of apimod: JSON commands and their replies (matched by seq),
    pushed messages kept apart."""

    def __init__(self, conn):
        self.conn = conn
        self.pushes = []  # (binary?, bytes) received while waiting for replies
        self.replies = {}  # seq -> reply
        self.info = None

    @property
    def proto(self):
        return self.conn.proto

    @property
    def id(self):
        return self.info['client_id']

    @property
    def pid(self):
        """The pid of the client's worker."""
        return self.info['pid']

    def __repr__(self):
        return '<%s client %s>' % (self.proto, self.info and self.id)

    def whoami(self):
        self.info = self.call('whoami')
        return self.info

    def send_json(self, obj):
        self.conn.send(json.dumps(obj))

    def _recv_one(self, timeout):
        """(binary?, bytes) of the next message."""
        if self.proto == 'websocket':
            op, data = self.conn.recv_message(timeout)
            return op == gwtest.OP_BINARY, data
        return False, self.conn.recv_bytes(timeout)

    def _take(self, timeout):
        binary, data = self._recv_one(timeout)
        if not binary:
            try:
                obj = json.loads(data)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and 'op' in obj and 'seq' in obj:
                self.replies[obj['seq']] = obj
                return
        self.pushes.append((binary, data))

    def request(self, op, **args):
        """Sends a command; returns its seq (collect the reply with reply(seq))."""
        seq = next_seq()
        req = {'op': op, 'seq': seq}
        req.update(args)
        self.send_json(req)
        return seq

    def reply(self, seq, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while seq not in self.replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('%r: no reply to command %r within %.1f s'
                                     % (self, seq, timeout))
            try:
                self._take(left)
            except TimeoutError:
                continue
        return self.replies.pop(seq)

    def call(self, op, timeout=DEFAULT_TIMEOUT, **args):
        r = self.reply(self.request(op, **args), timeout)
        if 'error' in r:
            raise AssertionError('apimod refused %s %r: %s' % (op, args, r['error']))
        return r

    def rc(self, op, **args):
        return self.call(op, **args)['rc']

    def q(self, name, mode='async', timeout=DEFAULT_TIMEOUT, **args):
        """A query; returns the reply (result, complete, asked, answered, rc/id)."""
        r = self.call('q', timeout=timeout, q=name, mode=mode, **args)
        return r

    def value(self, name, **args):
        """A query's result, asserting that it is complete."""
        r = self.q(name, **args)
        if r['rc'] <= 0:
            raise AssertionError('query %s %r returned %d' % (name, args, r['rc']))
        if not r['complete']:
            raise AssertionError('query %s %r incomplete: %r' % (name, args, r))
        return r['result']

    def push(self, timeout=DEFAULT_TIMEOUT):
        """The next pushed message (text as str, binary as bytes; bytes also when
        a text/frame client receives bytes that are not UTF-8)."""
        binary, data = self.push_raw(timeout)
        if binary:
            return data
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError:
            return data

    def push_raw(self, timeout=DEFAULT_TIMEOUT):
        """The next pushed message as (WebSocket binary frame?, bytes)."""
        deadline = time.monotonic() + timeout
        while not self.pushes:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('%r: no message within %.1f s' % (self, timeout))
            try:
                self._take(left)
            except TimeoutError:
                continue
        return self.pushes.pop(0)

    def pushes_until(self, marker, timeout=DEFAULT_TIMEOUT):
        """Every pushed message up to and including `marker`."""
        got = []
        while True:
            m = self.push(timeout)
            got.append(m)
            if m == marker:
                return got

    def no_push(self, wait=0.3):
        """True when nothing is pushed within `wait` seconds (replies are kept)."""
        deadline = time.monotonic() + wait
        while not self.pushes:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            try:
                self._take(left)
            except TimeoutError:
                return True
        return False

    def close(self):
        self.conn.close()


def sync_all(clients, sender, marker):
    """`sender` broadcasts `marker` to every client; returns each client's pushed
    messages before it (the marker is the last thing a send issued earlier by the
    same worker can precede)."""
    assert sender.rc('send_to_all', data=marker) == 0
    return {c.id: c.pushes_until(marker)[:-1] for c in clients}


def eventually(fn, what, timeout=DEFAULT_TIMEOUT, interval=0.05):
    """Polls fn() until it returns a true value (bounded)."""
    return wait_for(fn, what, timeout, interval)


# ---------------------------------------------------------------------------
# gwctl

def run_gwctl(tc, args, timeout=30):
    """Runs gwctl; returns (exit status, stdout, stderr). Fails on a sanitizer report."""
    p = subprocess.run([gwctl_binary()] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=gwtest.proc_env())
    out, err = p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')
    gwtest.assert_no_sanitizer_report(tc, out + err)
    return p.returncode, out, err


class Paused:
    """SIGSTOP a process for a `with` block (SIGCONT at the end, and at cleanup)."""

    def __init__(self, tc, proc):
        self.proc = proc
        tc.addCleanup(self.resume)
        self.stopped = False

    def __enter__(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.stopped = True
        return self

    def resume(self):
        if self.stopped:
            self.stopped = False
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def __exit__(self, *exc):
        self.resume()
        return False
