"""gw-master: rolling reload of business workers, crash-loop backoff, and the
Prometheus endpoint."""

import os
import re
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import gwtest
from gwtest import wait_for
from test_supervisor_util import SupCluster, parse_prometheus, pid_alive


def by_role(st):
    out = {}
    for p in st['processes']:
        out.setdefault(p['role'], []).append(p)
    return out


class ReloadTest(unittest.TestCase):

    def test_reload_replaces_workers_one_at_a_time(self):
        c = SupCluster(self, workers=2)
        c.start()
        st = by_role(c.wait_linked())
        old_workers = [p['pid'] for p in st['businessworker']]
        others = [p['pid'] for p in st['gateway'] + st['register']]
        ws = c.client()
        ws.send('echo:before')
        self.assertEqual(ws.recv(), 'before')

        r = c.run('reload', timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('reload done: 2 business worker(s) replaced', r.stdout)

        st = by_role(c.wait_linked())
        new_workers = [p['pid'] for p in st['businessworker']]
        for old, new in zip(old_workers, new_workers):
            self.assertNotEqual(old, new)
            self.assertFalse(pid_alive(old))
        self.assertEqual([p['pid'] for p in st['gateway'] + st['register']], others)
        self.assertTrue(all(p['restarts'] == 0 for p in c.status()['processes']))
        # One at a time: worker 1 was asked to go only once worker 0's replacement ran.
        log = c.log()
        self.assertLess(log.index('replacing businessworker#0 (pid %d)' % old_workers[0]),
                        log.index('businessworker#0 is running (pid %d)' % new_workers[0]))
        self.assertLess(log.index('businessworker#0 is running (pid %d)' % new_workers[0]),
                        log.index('replacing businessworker#1 (pid %d)' % old_workers[1]))
        self.assertIn('reload done: 2 business worker(s) replaced', log)
        # The client stayed connected through it and is served by the new workers.
        ws.send('echo:after')
        self.assertEqual(ws.recv(), 'after')
        info = ws.whoami()
        self.assertIn(info['pid'], new_workers)

        # SIGUSR1 to the master does the same (GatewayWorker's reload signal).
        os.kill(c.popen.pid, signal.SIGUSR1)
        c.wait_log(r'reload done: 2 business worker\(s\) replaced(.|\n)*reload done: 2')
        st = by_role(c.wait_linked())
        self.assertTrue(all(p['pid'] not in new_workers for p in st['businessworker']))

    def test_reload_under_load_loses_nothing(self):
        # Clients keep a pipeline of echo requests going while every worker is
        # replaced: no disconnect, every reply, in order.
        c = SupCluster(self, workers=2)
        c.start()
        c.wait_linked()
        clients = [c.client() for _ in range(4)]
        reload = subprocess.Popen(c.argv('reload'), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        n = 0
        deadline = time.monotonic() + 120
        while reload.poll() is None or n < 200:
            self.assertLess(time.monotonic(), deadline, 'reload did not finish')
            for ws in clients:
                for k in range(n, n + 20):
                    ws.send('echo:%d' % k)
            for ws in clients:
                for k in range(n, n + 20):
                    self.assertEqual(ws.recv(timeout=10), str(k))
            n += 20
        out, err = reload.communicate()
        self.assertEqual(reload.returncode, 0, err)
        self.assertIn('reload done: 2 business worker(s) replaced', out)
        for ws in clients:
            self.assertTrue(ws.is_open())

    def test_reload_stops_at_a_broken_build(self):
        c = SupCluster(self, workers=2, supervisor={'restart_backoff_max': 1})
        c.start()
        st = by_role(c.wait_linked())
        w0, w1 = [p['pid'] for p in st['businessworker']]
        good = c.conf['businessworker']['module']
        c.conf['businessworker']['module'] = os.path.join(c.dir, 'missing.so')
        c.write()  # each new worker reads the file: the "new build" is broken

        r = c.run('reload', timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r'reload failed: businessworker#0 exited with status 3 '
                                   r'\(business module refused\) while starting')
        # Worker 1 was never touched and keeps serving with the old module.
        st = by_role(c.status())
        self.assertEqual(st['businessworker'][1]['pid'], w1)
        self.assertEqual(st['businessworker'][1]['state'], 'running')
        self.assertFalse(pid_alive(w0))
        ws = c.client()
        ws.send('echo:still served')
        self.assertEqual(ws.recv(), 'still served')
        # Fixed: the slot's next restart attempt picks it up.
        c.conf['businessworker']['module'] = good
        c.write()
        c.wait_linked(timeout=30)

    def test_crash_loop_backs_off(self):
        c = SupCluster(self, businessworker={'module': '/nonexistent/libmissing.so'},
                       supervisor={'restart_backoff_max': 4})
        c.start()
        # Four refusals: delays 1, 2, 4 (the cap) seconds between them.
        rx = re.compile(r'^(\S+) master\[\d+\] ERROR GW-CHILD-REFUSED businessworker#0 \(pid '
                        r'(\d+)\) exited with status 3 \(business module refused\) [0-9.]+ s '
                        r'after start; next attempt in ([0-9.]+) s', re.M)
        wait_for(lambda: len(rx.findall(c.log())) >= 4, 'four refusals', timeout=30,
                 check=c.check_master)
        found = rx.findall(c.log())
        self.assertEqual([float(d) for _, _, d in found[:4]], [1.0, 2.0, 4.0, 4.0])
        self.assertEqual(len({pid for _, pid, _ in found}), len(found))  # each a new process
        starts = [m.group(1) for m in re.finditer(
            r'^(\S+) master\[\d+\] INFO GW-CHILD-START started businessworker#0', c.log(), re.M)]

        def secs(ts):  # 2026-11-26T17:01:32.778Z -> seconds of the day
            h, m, s = ts[11:-1].split(':')
            return int(h) * 3600 + int(m) * 60 + float(s)
        gaps = [secs(b) - secs(a) for a, b in zip(starts, starts[1:])][:3]
        for gap, delay in zip(gaps, (1.0, 2.0, 4.0)):
            self.assertGreaterEqual(gap, delay * 0.95, gaps)
        # The worker's own reason is in the log too, and status tells the story.
        self.assertIn('/nonexistent/libmissing.so', c.log())
        w = c.procs('businessworker')[0]
        self.assertGreaterEqual(w['restarts'], 3)
        self.assertEqual(w['last_exit'], 'exited with status 3 (business module refused)')
        self.assertTrue(all(p['state'] == 'running' for p in c.procs() if p['role'] != 'businessworker'))


class MetricsTest(unittest.TestCase):

    def test_prometheus_endpoint(self):
        c = SupCluster(self)
        c.start()
        c.wait_linked()
        ws = c.client()
        ws.send('echo:m')
        self.assertEqual(ws.recv(), 'm')

        def sample(fams, name, role):
            s = [v for labels, v in fams.get(name, {}).get('samples', [])
                 if labels == {'role': role, 'index': '0'}]
            return s[0] if s else None

        def scrape():
            status, ctype, body = c.metrics()
            self.assertEqual(status, 200)
            self.assertEqual(ctype, 'text/plain; version=0.0.4; charset=utf-8')
            return parse_prometheus(body)

        def settled(f):  # pages are refreshed every 250 ms: wait for this traffic
            return (sample(f, 'gatewayworker_connections', 'gateway') == 1 and
                    (sample(f, 'gatewayworker_msgs_in_total', 'gateway') or 0) >= 1 and
                    (sample(f, 'gatewayworker_events_total', 'businessworker') or 0) >= 2 and
                    sample(f, 'gatewayworker_nodes', 'register') == 2)
        fams = wait_for(lambda: (lambda f: f if settled(f) else None)(scrape()),
                        'the client and its message in the metrics')
        for name, typ in (('gatewayworker_up', 'gauge'),
                          ('gatewayworker_restarts_total', 'counter'),
                          ('gatewayworker_busy', 'gauge'),
                          ('gatewayworker_resident_memory_bytes', 'gauge'),
                          ('gatewayworker_uptime_seconds', 'gauge'),
                          ('gatewayworker_connections', 'gauge'),
                          ('gatewayworker_msgs_in_total', 'counter'),
                          ('gatewayworker_msgs_out_total', 'counter'),
                          ('gatewayworker_bytes_in_total', 'counter'),
                          ('gatewayworker_heartbeat_closes_total', 'counter'),
                          ('gatewayworker_events_total', 'counter'),
                          ('gatewayworker_gateways', 'gauge'),
                          ('gatewayworker_heartbeats_total', 'counter'),
                          ('gatewayworker_nodes', 'gauge')):
            self.assertIn(name, fams)
            self.assertEqual(fams[name]['type'], typ, name)
        for role in ('register', 'gateway', 'businessworker'):
            self.assertEqual(sample(fams, 'gatewayworker_up', role), 1)
            self.assertEqual(sample(fams, 'gatewayworker_restarts_total', role), 0)
            self.assertEqual(sample(fams, 'gatewayworker_busy', role), 0)
            self.assertGreater(sample(fams, 'gatewayworker_resident_memory_bytes', role), 0)
        self.assertGreaterEqual(sample(fams, 'gatewayworker_msgs_in_total', 'gateway'), 1)
        self.assertGreaterEqual(sample(fams, 'gatewayworker_events_total', 'businessworker'), 2)
        self.assertGreater(sample(fams, 'gatewayworker_heartbeats_total', 'register'), 0)
        self.assertEqual(sample(fams, 'gatewayworker_nodes', 'register'), 2)
        # Role-specific families carry only their role.
        self.assertEqual({l['role'] for l, _ in fams['gatewayworker_events_total']['samples']},
                         {'businessworker'})

        # A crash shows up as a restart.
        os.kill(c.procs('businessworker')[0]['pid'], signal.SIGKILL)
        wait_for(lambda: (lambda f: sample(f, 'gatewayworker_restarts_total', 'businessworker')
                          == 1 and sample(f, 'gatewayworker_up', 'businessworker') == 1)(scrape()),
                 'the restart in the metrics')

        # Other paths and methods.
        with self.assertRaises(urllib.error.HTTPError) as cm:
            c.metrics('/nope')
        self.assertEqual(cm.exception.code, 404)
        req = urllib.request.Request('http://127.0.0.1:%d/metrics' % c.metrics_port,
                                     data=b'x', method='POST')
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(cm.exception.code, 405)
        req = urllib.request.Request('http://127.0.0.1:%d/metrics' % c.metrics_port,
                                     method='HEAD')
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertGreater(int(r.headers['Content-Length']), 0)
            self.assertEqual(r.read(), b'')
        # A client that sends garbage or nothing does not disturb the endpoint.
        g = gwtest.Conn('127.0.0.1', c.metrics_port)
        self.addCleanup(g.close)
        g.send_raw(b'\x00\x01garbage\r\n\r\n')
        self.assertIn(b'400', g.expect_eof(5))
        idle = gwtest.Conn('127.0.0.1', c.metrics_port)
        self.addCleanup(idle.close)
        self.assertEqual(c.metrics()[0], 200)

    def test_metrics_off_by_default(self):
        c = SupCluster(self, supervisor={'metrics_listen': ''})
        c.start()
        c.wait_running()
        with self.assertRaises(OSError):
            urllib.request.urlopen('http://127.0.0.1:%d/metrics' % c.metrics_port, timeout=2)


if __name__ == '__main__':
    gwtest.main()
