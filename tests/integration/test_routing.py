"""Routing of client events to business workers: sticky binding (all events of a
client go to one worker, in order), re-binding when a worker dies, and holding
events while no worker is alive."""

import json
import time

import gwtest


class Sticky(gwtest.TestCase):

    def test_all_events_of_a_client_go_to_one_worker_in_order(self):
        cl, host = self.start_cluster(gateways=1, workers=2)
        protos = ('websocket', 'text', 'frame')
        clients = [cl.client(protos[i % 3]) for i in range(9)]
        ids = [c.id for c in clients]
        n = 25
        # Interleave the clients' messages, several per write.
        for i in range(0, n, 5):
            for c in clients:
                for k in range(i, i + 5):
                    c.send('m%02d' % k)
        for c in clients:
            self.assertEqual([c.recv() for _ in range(n)], ['m%02d' % k for k in range(n)])
        for c in clients:
            c.close()
        for cid in ids:
            cl.wait_event(ev='close', id=cid)
        for cid in ids:
            evs = cl.events(id=cid)
            self.assertEqual(len({e['pid'] for e in evs}), 1,
                             'events of %s went to several workers: %r'
                             % (cid, [(e['ev'], e['pid']) for e in evs]))
            kinds = [e['ev'] for e in evs]
            self.assertEqual(kinds[0], 'connect')
            self.assertEqual(kinds[-1], 'close')
            msgs = [e['msg'] for e in evs if e['ev'] == 'message']
            self.assertEqual(msgs, ['whoami'] + ['m%02d' % k for k in range(n)])


class WorkerDies(gwtest.TestCase):

    def test_killed_worker_clients_move_to_the_survivor(self):
        cl, host = self.start_cluster(gateways=1, workers=2)
        protos = ('websocket', 'text', 'frame')
        clients = [cl.client(protos[i % 3]) for i in range(8)]
        where = {c.id: c.whoami()['pid'] for c in clients}
        w0, w1 = host.workers
        # The worker of the first client dies (least_connections normally spreads
        # the clients over both; the test does not depend on it).
        victim, survivor = (w0, w1) if where[clients[0].id] == w0.pid else (w1, w0)
        moved = [c for c in clients if where[c.id] == victim.pid]
        stayed = [c for c in clients if where[c.id] == survivor.pid]
        victim.kill()  # SIGKILL: no goodbye to anyone

        # Each client of the dead worker: ask until the survivor answers.
        for c in moved:
            def answered_by_survivor(c=c):
                c.send('whoami')
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    try:
                        info = json.loads(c.recv(max(0.01, deadline - time.monotonic())))
                    except TimeoutError:
                        return False
                    if info['pid'] == survivor.pid:
                        return True
                return False
            gwtest.wait_for(answered_by_survivor, 'the survivor to answer %s' % c.id,
                            timeout=10, interval=0, check=cl.check_alive)
        # Drain late answers, then every client (moved or not) still works, and the
        # survivor handles them all.
        for i, c in enumerate(clients):
            c.send('echo:final %d' % i)
            while True:
                m = c.recv()
                if m == 'final %d' % i:
                    break
                self.assertEqual(json.loads(m)['pid'], survivor.pid)
        for c in clients:
            self.assertTrue(c.is_open(), 'client %s was disconnected' % c.id)
        self.assertFalse(cl.events(ev='close'), 'no client may be closed')
        for c in stayed + moved:
            last = cl.events(ev='message', id=c.id)[-1]
            self.assertEqual(last['pid'], survivor.pid)
        gwtest.wait_for(lambda: 'GW-PEER-DOWN' in host.gateways[0].log(),
                        'the gateway to log the dead worker leaving')

    def test_session_survives_the_worker(self):
        """The session lives at the gateway: the new worker sees what the dead one set."""
        cl, host = self.start_cluster(gateways=1, workers=2)
        c = cl.client('websocket')
        first = c.whoami()['pid']
        c.send('sess:set:user=alice')
        self.assertEqual(c.recv(), 'ok')
        c.send('sess:get:user')  # the write-back reached the gateway before this reply
        self.assertEqual(c.recv(), '"alice"')
        victim = [w for w in host.workers if w.pid == first][0]
        survivor = [w for w in host.workers if w.pid != first][0]
        victim.kill()
        host.gateways[0].wait_log(r'GW-PEER-DOWN businessworker')
        info = gwtest.wait_for(lambda: (lambda i: i if i['pid'] == survivor.pid else None)(
            c.whoami()), 'the survivor to serve the client', check=cl.check_alive)
        self.assertEqual(info['client_id'], c.id)
        c.send('sess:get:user')
        self.assertEqual(c.recv(), '"alice"')

    def test_new_clients_after_a_worker_died(self):
        cl, host = self.start_cluster(gateways=1, workers=2)
        host.workers[0].kill()
        host.gateways[0].wait_log(r'GW-PEER-DOWN businessworker %s' % host.worker_addr(0))
        for proto in ('websocket', 'text', 'frame'):
            c = cl.client(proto)
            self.assertEqual(c.whoami()['pid'], host.workers[1].pid)

    def test_restarted_worker_takes_new_clients(self):
        cl, host = self.start_cluster(gateways=1, workers=1)
        first = host.workers[0]
        a = cl.client('text')
        self.assertEqual(a.whoami()['pid'], first.pid)
        first.kill()
        second = cl.start_worker(host, 0)
        cl.wait_ready()
        gwtest.wait_for(lambda: a.whoami()['pid'] == second.pid,
                        'the old client to reach the restarted worker', timeout=10,
                        check=cl.check_alive)
        b = cl.client('websocket')
        self.assertEqual(b.whoami()['pid'], second.pid)


class Membership(gwtest.TestCase):

    def test_stale_roster_does_not_drop_live_workers(self):
        """A roster older than one already applied (possible in practice: a roster
        answered to a "send me the roster" heartbeat can arrive after a newer one)
        must not take live workers out of service."""
        cl, host = self.start_cluster(gateways=1, workers=1)
        gw = host.gateways[0]
        c = cl.client('text')
        pid = c.whoami()['pid']
        # A real roster: ask the register as an API client would, into an inbox of
        # our own, to learn its header and its nodes.
        inbox = gwtest.SpListener()
        self.addCleanup(inbox.close)
        ask = gwtest.SpClient('127.0.0.1', cl.register_port, gwtest.NN_PUSH)
        self.addCleanup(ask.close)
        ask.send(gwtest.gwp_batch(
            [gwtest.gwp_frame(gwtest.CMD_HEARTBEAT, aux=1, a=b'{"name":"test","pid":1}')],
            role=gwtest.ROLE_CLIENT, port=inbox.port))
        batch = inbox.recv()
        hdr, frames = gwtest.gwp_parse(batch)
        self.assertEqual((hdr['role'], frames[0]['cmd']), (gwtest.ROLE_REGISTER, gwtest.CMD_ROSTER))
        roster = json.loads(frames[0]['a'])
        # The same register incarnation (same nonce), an older version, and a node
        # list from before the worker joined.
        stale = {'version': 0,
                 'nodes': [n for n in roster['nodes'] if n['role'] != 'businessworker']}
        stale_batch = gwtest.gwp_batch(
            [gwtest.gwp_frame(gwtest.CMD_ROSTER, a=json.dumps(stale).encode())],
            role=gwtest.ROLE_REGISTER, ip=hdr['ip'], port=hdr['port'], nonce=hdr['nonce'])
        push = gwtest.SpClient('127.0.0.1', host.gateway_start, gwtest.NN_PUSH)
        self.addCleanup(push.close)
        push.send(stale_batch)
        push.send(b'not a batch: processed after the roster')  # a marker in the log
        gw.wait_log('GW-BAD-BATCH')
        self.assertNotIn('GW-PEER-DOWN', gw.log())
        self.assertEqual(c.whoami()['pid'], pid)


class NoWorker(gwtest.TestCase):

    def test_events_held_until_a_worker_starts(self):
        cl = self.cluster()
        host = cl.add_host(gateways=1, workers=1, register=True,
                           gateway={'worker_wait_timeout': 10})
        cl.start_register(host)
        gw = cl.start_gateway(host)
        clients = [cl.client(p) for p in ('websocket', 'text', 'frame')]
        for i, c in enumerate(clients):
            c.send('echo:held %d' % i)
        gw.wait_log('GW-NO-WORKER')
        for c in clients:
            with self.assertRaises(TimeoutError):
                c.recv(0.3)  # nobody can answer yet
        cl.start_worker(host, 0)
        for i, c in enumerate(clients):
            self.assertEqual(c.recv(8), 'held %d' % i)
        for c in clients:
            info = c.whoami()
            evs = [e['ev'] for e in cl.events(id=info['client_id'])]
            expected = ['connect', 'ws_connect'] if c.proto == 'websocket' else ['connect']
            self.assertEqual(evs, expected + ['message', 'message'])
            self.assertTrue(c.is_open())

    def test_clients_closed_after_worker_wait_timeout(self):
        cl = self.cluster()
        host = cl.add_host(gateways=1, workers=1, register=True,
                           gateway={'worker_wait_timeout': 1})
        cl.start_register(host)
        cl.start_gateway(host)
        t0 = time.monotonic()  # before connecting: the hold cannot start earlier
        c = cl.client('text')
        c.send('echo:nobody home')
        c.expect_eof(8)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        # A worker that starts later is not sent events of a closed client.
        w = cl.start_worker(host, 0)
        cl.wait_ready()
        d = cl.client('text')
        d.send('echo:fresh')
        self.assertEqual(d.recv(), 'fresh')
        self.assertFalse(cl.events(ev='message', msg='echo:nobody home'))


if __name__ == '__main__':
    gwtest.main()
