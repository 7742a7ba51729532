"""Failure behaviour under the supervisor, with traffic flowing (issue 4):

- a business worker SIGKILLed under load: clients stay connected, the master
  restarts it, and their new events flow again within 2 s;
- the register SIGKILLed, or frozen for longer than node_timeout: client traffic
  goes on, and the nodes register again when it is back;
- a gateway SIGKILLed: its clients are disconnected (unavoidable), the workers
  run on_close for them, the master restarts it and new clients connect.

Reload under steady load (no disconnect, no lost message) is in
test_supervisor_reload.py. Waits are bounded polls; the times measured are
printed, and only generous bounds are asserted (a loaded 2-core machine).
"""

import json
import os
import signal
import time
import unittest

import gwtest
from gwtest import wait_for
from test_supervisor_util import SupCluster


def events(path, ev):
    out = []
    try:
        with open(path, 'rb') as f:
            for line in f.read().split(b'\n'):
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get('ev') == ev:
                    out.append(e)
    except FileNotFoundError:
        pass
    return out


class Traffic:
    """Clients that each keep one numbered echo request outstanding."""

    def __init__(self, cluster, n):
        self.clients = [cluster.client() for _ in range(n)]
        self.seq = 0

    def round(self, timeout=10):
        """Every client sends one request and reads its answer."""
        self.seq += 1
        for ws in self.clients:
            ws.send('echo:r%d' % self.seq)
        for ws in self.clients:
            self.expect(ws, 'r%d' % self.seq, timeout)

    @staticmethod
    def expect(ws, want, timeout):
        # Requests lost inside a process that was killed are not answered; skip
        # answers to older rounds, never newer ones. TimeoutError when none came.
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError('no answer %r' % want)
            got = ws.recv(timeout=left)  # TimeoutError from the harness
            if got == want:
                return
            if not got.startswith('r') or int(got[1:]) > int(want[1:]):
                raise AssertionError('unexpected answer %r while waiting for %r' % (got, want))

    def all_open(self):
        return all(ws.is_open() for ws in self.clients)


class Failures(unittest.TestCase):

    def start(self, **kw):
        c = SupCluster(self, **kw)
        c.start()
        c.wait_linked()
        return c

    def test_worker_killed_under_load(self):
        c = self.start(workers=2)
        t = Traffic(c, 8)
        for _ in range(20):
            t.round()
        served = []
        for ws in t.clients:
            ws.send('whoami')
            served.append(json.loads(ws.recv())['pid'])
        # The victim is the worker of the first client (least-connections routing
        # spreads the clients over both, but the test does not depend on it).
        victim = next(p for p in c.procs('businessworker') if p['pid'] == served[0])
        os.kill(victim['pid'], signal.SIGKILL)
        killed = time.monotonic()
        # Issue 4: new events flow within 2 s of the kill. A request sent in the
        # instant after the kill may be lost with the dead process (nanomsg takes it
        # into a connection it has not yet seen close: at-most-once), so every client
        # not yet answered sends a new request every 0.2 s; for each client, the send
        # time of its first request that is answered is when its events flowed again
        # (when the answer arrives also depends on how loaded the machine is).
        sent = {i: {} for i in range(len(t.clients))}  # client -> seq -> send time
        flowed = {}
        while len(flowed) < len(t.clients):
            self.assertLess(time.monotonic() - killed, 15, 'no answer within 15 s of the kill '
                            '(clients answered: %r)' % sorted(flowed))
            for i, ws in enumerate(t.clients):
                if i not in flowed:
                    t.seq += 1
                    ws.send('echo:r%d' % t.seq)
                    sent[i][t.seq] = time.monotonic()
            window = time.monotonic() + 0.2
            while time.monotonic() < window and len(flowed) < len(t.clients):
                for i, ws in enumerate(t.clients):
                    if i in flowed:
                        continue
                    try:
                        got = ws.recv(timeout=0.01)
                    except TimeoutError:
                        continue
                    seq = int(got[1:]) if got.startswith('r') else None
                    self.assertIn(seq, sent[i], 'unexpected answer %r' % got)
                    flowed[i] = sent[i][seq] - killed
                    answered = time.monotonic() - killed
        worst = max(flowed.values())
        print('events of every client flowed again %.3f s after the SIGKILL, the last answer '
              'came %.3f s after it (%d of %d clients were on the killed worker)'
              % (worst, answered, served.count(victim['pid']), len(served)))
        self.assertLess(worst, 2.0, 'a client\'s events did not flow within 2 s of the kill')
        self.assertTrue(t.all_open(), 'a client was disconnected by a worker crash')
        # The master restarted it.
        c.wait_status(lambda st: any(p['role'] == 'businessworker' and p['index'] == victim['index']
                                     and p['pid'] not in (None, victim['pid']) and
                                     p['state'] == 'running' for p in st['processes']),
                      'the worker to be restarted')
        for _ in range(20):
            t.round()
        self.assertTrue(t.all_open())

    def test_register_killed_traffic_goes_on(self):
        c = self.start(workers=1)
        t = Traffic(c, 4)
        t.round()
        reg = c.procs('register')[0]
        os.kill(reg['pid'], signal.SIGKILL)
        # Traffic while the register is gone and while it comes back.
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            t.round()
        new = c.wait_status(lambda st: any(p['role'] == 'register' and
                                           p['pid'] not in (None, reg['pid']) and
                                           p['state'] == 'running' for p in st['processes']),
                            'the register to be restarted')
        new_pid = next(p['pid'] for p in new['processes'] if p['role'] == 'register')
        # Both nodes announce themselves to the new register.
        for role in ('gateway', 'businessworker'):
            c.wait_log(r'register#0\[%d\] INFO GW-NODE-JOIN %s ' % (new_pid, role))
        t.round()
        self.assertTrue(t.all_open())

    def test_register_frozen_longer_than_node_timeout(self):
        # No register for 3 s (node_timeout is 1 s here): nodes keep their view of
        # each other, traffic goes on; after SIGCONT nobody is expired by mistake.
        c = self.start(workers=2)
        t = Traffic(c, 6)
        t.round()
        reg = c.procs('register')[0]
        os.kill(reg['pid'], signal.SIGSTOP)
        try:
            end = time.monotonic() + 3
            while time.monotonic() < end:
                t.round()
        finally:
            os.kill(reg['pid'], signal.SIGCONT)
        end = time.monotonic() + 2
        while time.monotonic() < end:
            t.round()
        self.assertTrue(t.all_open())
        self.assertNotIn('GW-PEER-DOWN', c.log())

    def test_gateway_killed(self):
        c = self.start(workers=2)
        clients = [c.client() for _ in range(5)]
        for i, ws in enumerate(clients):
            ws.send('echo:hi%d' % i)
            self.assertEqual(ws.recv(), 'hi%d' % i)
        ids = {e['id'] for e in events(c.events_path, 'connect')}
        self.assertEqual(len(ids), 5)
        gw = c.procs('gateway')[0]
        os.kill(gw['pid'], signal.SIGKILL)
        killed = time.monotonic()
        for ws in clients:  # unavoidable: their TCP connections died with it
            with self.assertRaises((gwtest.ConnectionClosed, gwtest.WsClosed, OSError)):
                ws.recv(timeout=10)
        # The workers run on_close for every one of them.
        wait_for(lambda: ids <= {e['id'] for e in events(c.events_path, 'close')},
                 'on_close for the clients of the killed gateway', timeout=20)
        print('on_close for all 5 clients %.2f s after the SIGKILL' % (time.monotonic() - killed))
        closes = [e['id'] for e in events(c.events_path, 'close')]
        self.assertEqual(sorted(closes), sorted(ids), 'each client closed exactly once')
        # Restarted; new clients connect and are served.
        c.wait_status(lambda st: any(p['role'] == 'gateway' and
                                     p['pid'] not in (None, gw['pid']) and
                                     p['state'] == 'running' for p in st['processes']),
                      'the gateway to be restarted')
        ws = wait_for(lambda: self.try_client(c), 'a new client to connect', timeout=20)
        ws.send('echo:back')
        self.assertEqual(ws.recv(timeout=10), 'back')

    @staticmethod
    def try_client(c):
        try:
            return c.client()
        except OSError:
            return None


if __name__ == '__main__':
    gwtest.main()
