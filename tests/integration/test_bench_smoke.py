"""Smoke test of the load generator (bench/, issue #5). Python 3 stdlib only.

Not a benchmark: a few hundred messages per run, asserting correct echo and exact
counts, never a timing.

  1. gw-echo-server on free ports: `gw-bench echo` over ws, text and frame; `broadcast`,
     `idle` (50 connections) and `connect` (50 handshakes) over ws.
  2. the checker itself: a text server that corrupts one echo and drops another must
     make `gw-bench echo` fail with one mismatch and one lost message.
  3. a real cluster (gw-register + gw-gateway + gw-businessworker with the bench
     broadcast module, which also echoes): echo over the three protocols, broadcast,
     connect, idle; and a second one with heartbeat on for `gw-bench heartbeat`.

usage: test_bench_smoke.py --bench B --echo-server E [--register R --gateway G
                           --worker W --module M] [unittest args]
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ARGS = {}
RUN_TIMEOUT = 60


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports (bound at once so the kernel cannot hand one out twice)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(('127.0.0.1', 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def free_port_pair(avoid):
    """A free port p with p + 1 free too (the register publishes on listen port + 1)."""
    for _ in range(100):
        p = free_port()
        if p + 1 > 65535 or p in avoid or p + 1 in avoid:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(('127.0.0.1', p + 1))
            return p
        except OSError:
            continue
    raise AssertionError('no free port pair')


def run_bench(*args, expect_ok=True):
    """Runs gw-bench with --json; returns (exit status, summary dict, stderr)."""
    cmd = [ARGS['bench']] + [str(a) for a in args] + ['--json']
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=RUN_TIMEOUT)
    lines = [l for l in p.stdout.splitlines() if l.startswith('{')]
    summary = json.loads(lines[-1]) if lines else None
    if expect_ok is not None and (p.returncode == 0) != expect_ok:
        raise AssertionError('%s: exit %d\nstdout: %s\nstderr: %s'
                             % (' '.join(cmd), p.returncode, p.stdout, p.stderr))
    if summary is None:
        raise AssertionError('%s: no JSON summary\nstderr: %s' % (' '.join(cmd), p.stderr))
    return p.returncode, summary, p.stderr


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class BenchChecks:
    """Assertions shared by the echo-server and cluster cases."""

    def check_echo(self, proto, port, n=300):
        _, s, _ = run_bench('echo', '-P', proto, '-p', port, '-c', 10, '-k', 4, '-n', n)
        self.assertTrue(s['ok'])
        self.assertEqual(s['conn_ok'], 10)
        self.assertEqual(s['sent_total'], n)
        self.assertEqual(s['received_total'], n)
        self.assertEqual(s['msgs'], n)
        self.assertEqual(s['rtt_us']['count'], n)
        self.assertEqual(s['mismatches'], 0)
        self.assertEqual(s['lost'], 0)

    def check_broadcast(self, port, receivers=20, n=30):
        _, s, _ = run_bench('broadcast', '-p', port, '-c', receivers, '-n', n, '--window', 4)
        self.assertTrue(s['ok'])
        self.assertEqual(s['conn_ok'], receivers + 1)
        self.assertEqual(s['broadcasts'], n)
        self.assertEqual(s['broadcasts_complete'], n)
        self.assertEqual(s['deliveries_total'], receivers * n)
        self.assertEqual(s['mismatches'] + s['lost'] + s['stalls'], 0)

    def check_idle(self, port, conns=50, sources=None):
        args = ['idle', '-p', port, '-c', conns, '-d', 0.5, '--heartbeat-msg', 'hb',
                '--heartbeat-interval', 0.2]
        if sources:
            args += ['--sources', sources]
        _, s, _ = run_bench(*args)
        self.assertTrue(s['ok'])
        self.assertEqual(s['conn_ok'], conns)
        self.assertEqual(s['held'], conns)
        self.assertEqual(s['conn_fail'], 0)
        self.assertGreater(s['heartbeats_sent'], 0)

    def check_connect(self, port, n=50):
        _, s, _ = run_bench('connect', '-p', port, '-c', 10, '-n', n, '--messages-per-conn', 1)
        self.assertTrue(s['ok'])
        self.assertEqual(s['conn_ok'], n)
        self.assertEqual(s['handshakes'], n)
        self.assertEqual(s['conn_fail'] + s['closed_early'] + s['mismatches'] + s['lost'], 0)


class EchoServerTest(unittest.TestCase, BenchChecks):
    @classmethod
    def setUpClass(cls):
        cls.proc = subprocess.Popen([ARGS['echo_server'], '--ws', '0', '--text', '0',
                                     '--frame', '0'], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        cls.ports = {}
        deadline = time.monotonic() + 10
        while len(cls.ports) < 3 and time.monotonic() < deadline:
            line = cls.proc.stdout.readline()
            if not line:
                break
            parts = line.split()
            if len(parts) == 3 and parts[0] == 'listening':
                cls.ports[parts[1]] = int(parts[2].rsplit(':', 1)[1])
        if len(cls.ports) < 3:
            stop(cls.proc)
            raise AssertionError('gw-echo-server did not report its ports: %r' % cls.ports)

    @classmethod
    def tearDownClass(cls):
        stop(cls.proc)

    def test_echo_ws(self):
        self.check_echo('ws', self.ports['ws'])

    def test_echo_text(self):
        self.check_echo('text', self.ports['text'])

    def test_echo_frame(self):
        self.check_echo('frame', self.ports['frame'])

    def test_echo_large_payload(self):
        # Frames above 125 and 65535 bytes use the 16- and 64-bit WebSocket lengths.
        for size in (200, 70000):
            _, s, _ = run_bench('echo', '-p', self.ports['ws'], '-c', 2, '-k', 2, '-n', 20,
                                '-s', size)
            self.assertEqual(s['received_total'], 20)
            self.assertEqual(s['mismatches'], 0)

    def test_broadcast(self):
        self.check_broadcast(self.ports['ws'])

    def test_idle(self):
        self.check_idle(self.ports['ws'], sources='127.0.0.2-127.0.0.4')

    def test_connect(self):
        self.check_connect(self.ports['ws'])

    def test_wrong_protocol_fails(self):
        # A WebSocket client against the text listener never completes its handshake.
        rc, s, _ = run_bench('echo', '-p', self.ports['text'], '-c', 2, '-n', 10,
                             '--timeout', 1, expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertFalse(s['ok'])
        self.assertEqual(s['conn_ok'], 0)


class FaultyServer(threading.Thread):
    """A text-protocol server that corrupts the 5th echoed line and drops the 9th."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        buf, count = b'', 0
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    count += 1
                    if count == 9:
                        continue
                    if count == 5:
                        line = line[:-1] + (b'x' if line[-1:] != b'x' else b'y')
                    conn.sendall(line + b'\n')


class CheckerTest(unittest.TestCase):
    def test_mismatch_and_loss_are_reported(self):
        srv = FaultyServer()
        srv.start()
        try:
            rc, s, _ = run_bench('echo', '-P', 'text', '-p', srv.port, '-c', 1, '-k', 2,
                                 '-n', 20, '--timeout', 1, expect_ok=False)
        finally:
            srv.sock.close()
        self.assertEqual(rc, 1)
        self.assertFalse(s['ok'])
        self.assertEqual(s['mismatches'], 1)
        self.assertEqual(s['lost'], 1)
        self.assertEqual(s['sent_total'], 20)
        self.assertEqual(s['received_total'], 19)


class ClusterBase:
    """register + gateway (ws, text, frame listeners) + worker with the bench module."""

    GATEWAY_EXTRA = {}

    @classmethod
    def setUpClass(cls):
        for k in ('register', 'gateway', 'worker', 'module'):
            if not ARGS.get(k):
                raise unittest.SkipTest('cluster binaries not given')
        cls.dir = tempfile.mkdtemp(prefix='gw-bench-smoke-')
        ws, text, frame, gw_inbox, bw_inbox = free_ports(5)
        reg = free_port_pair({ws, text, frame, gw_inbox, bw_inbox})
        cls.ports = {'ws': ws, 'text': text, 'frame': frame}
        cfg = {
            'cluster': {'lan_ip': '127.0.0.1', 'registers': ['127.0.0.1:%d' % reg],
                        'log_level': 'warn', 'run_dir': os.path.join(cls.dir, 'run'),
                        'heartbeat_interval': 0.2, 'node_timeout': 1.0},
            'register': {'count': 1, 'listen': '127.0.0.1:%d' % reg, 'publish_interval': 0.2},
            'gateway': dict({'count': 1, 'start_port': gw_inbox,
                             'listen': ['websocket://127.0.0.1:%d' % ws,
                                        'text://127.0.0.1:%d' % text,
                                        'frame://127.0.0.1:%d' % frame]},
                            **cls.GATEWAY_EXTRA),
            'businessworker': {'count': 1, 'start_port': bw_inbox, 'module': ARGS['module']},
        }
        cls.config = os.path.join(cls.dir, 'bench.json')
        with open(cls.config, 'w') as f:
            json.dump(cfg, f)
        cls.procs = []
        cls.logs = []
        try:
            for role in ('register', 'gateway', 'worker'):
                log = open(os.path.join(cls.dir, role + '.log'), 'w')
                cls.logs.append(log)
                cls.procs.append(subprocess.Popen([ARGS[role], '--config', cls.config],
                                                  stdout=log, stderr=subprocess.STDOUT))
            cls.wait_ready()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def wait_ready(cls):
        """Until one echo goes through gateway -> worker -> gateway (bounded)."""
        deadline = time.monotonic() + 20
        last = ''
        while time.monotonic() < deadline:
            for p in cls.procs:
                if p.poll() is not None:
                    raise AssertionError('a cluster process exited: %s' % cls.log_text())
            if cls.port_open():
                rc, _, last = run_bench('echo', '-p', cls.ports['ws'], '-c', 1, '-n', 1,
                                        '--timeout', 1, expect_ok=None)
                if rc == 0:
                    return
            time.sleep(0.2)
        raise AssertionError('cluster not ready: %s\n%s' % (last, cls.log_text()))

    @classmethod
    def port_open(cls):
        try:
            with socket.create_connection(('127.0.0.1', cls.ports['ws']), timeout=1):
                return True
        except OSError:
            return False

    @classmethod
    def log_text(cls):
        out = []
        for name in ('register', 'gateway', 'worker'):
            path = os.path.join(cls.dir, name + '.log')
            if os.path.exists(path):
                with open(path) as f:
                    out.append('--- %s ---\n%s' % (name, f.read()))
        return '\n'.join(out)

    @classmethod
    def tearDownClass(cls):
        for p in reversed(getattr(cls, 'procs', [])):
            stop(p)
        for log in getattr(cls, 'logs', []):
            log.close()
        if getattr(cls, 'dir', None):
            shutil.rmtree(cls.dir, ignore_errors=True)


class ClusterTest(ClusterBase, unittest.TestCase, BenchChecks):
    def test_echo_ws(self):
        self.check_echo('ws', self.ports['ws'])

    def test_echo_text(self):
        self.check_echo('text', self.ports['text'])

    def test_echo_frame(self):
        self.check_echo('frame', self.ports['frame'])

    def test_broadcast(self):
        self.check_broadcast(self.ports['ws'])

    def test_idle(self):
        self.check_idle(self.ports['ws'])

    def test_connect(self):
        self.check_connect(self.ports['ws'])


class ClusterHeartbeatTest(ClusterBase, unittest.TestCase):
    """A gateway with heartbeat on: silent clients closed, beating ones kept (no timing
    asserted: the close delay is only reported, and the early-close check is lenient)."""

    INTERVAL, LIMIT = 0.3, 2
    GATEWAY_EXTRA = {'ping_interval': INTERVAL, 'ping_not_response_limit': LIMIT,
                     'ws_ping': True}

    def check_heartbeat(self, proto):
        _, s, _ = run_bench('heartbeat', '-P', proto, '-p', self.ports[proto], '-c', 20,
                            '--beating', 10, '--interval', self.INTERVAL, '--limit', self.LIMIT,
                            '--early-tolerance', 200, '-d', 2)
        self.assertTrue(s['ok'])
        self.assertEqual(s['conn_ok'], 30)
        self.assertEqual(s['silent_last_msgs'], 20)
        self.assertEqual(s['silent_closed'], 20)
        self.assertEqual(s['not_closed'], 0)
        self.assertEqual(s['beating_closed'], 0)
        self.assertGreater(s['heartbeats_sent'], 0)
        if proto == 'ws':
            self.assertEqual(s['close_frame'], 20)  # 1001 "going away" before the close

    def test_heartbeat_ws(self):
        self.check_heartbeat('ws')

    def test_heartbeat_text(self):
        self.check_heartbeat('text')


def main():
    argv = [sys.argv[0]]
    it = iter(sys.argv[1:])
    keys = {'--bench': 'bench', '--echo-server': 'echo_server', '--register': 'register',
            '--gateway': 'gateway', '--worker': 'worker', '--module': 'module'}
    for a in it:
        if a in keys:
            ARGS[keys[a]] = os.path.abspath(next(it))
        else:
            argv.append(a)
    if 'bench' not in ARGS or 'echo_server' not in ARGS:
        sys.exit(__doc__)
    unittest.main(argv=argv)


if __name__ == '__main__':
    main()
