"""Queries across 2 gateways x 2 workers (issue 3, item 4): every query of
include/gatewayworker.h, asynchronous (callback) and blocking (gw_wait), with the
same results; with one gateway stopped (SIGSTOP) the result is marked incomplete
with asked/answered right and comes by the deadline, the asynchronous form stalls
nobody, and the blocking form delays only the events of its own worker, without
losing or reordering them."""

import time

import gwtest
from test_api_util import ApiCluster, Paused, eventually

QUERY_TIMEOUT = 2.0


def norm(v):
    """Lists sorted (recursively), so results compare regardless of order."""
    if isinstance(v, list):
        items = [norm(x) for x in v]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


class Queries(gwtest.TestCase):

    def setUp(self):
        self.api = ApiCluster(self, businessworker={'query_timeout': QUERY_TIMEOUT},
                              cluster={'node_timeout': 30.0})
        self.c = self.api.spread(2)
        c, ctl = self.c, self.c[0]
        for op in (('bind_uid', dict(id=c[0].id, uid='u0')),
                   ('bind_uid', dict(id=c[2].id, uid='u2')),
                   ('join_group', dict(id=c[0].id, group='g')),
                   ('join_group', dict(id=c[2].id, group='g')),
                   ('join_group', dict(id=c[3].id, group='h')),
                   ('set_session', dict(id=c[1].id, session={'k': 1})),
                   ('set_session', dict(id=c[3].id, session={'name': 'dee', 'deep': {'a': [1]}}))):
            self.assertEqual(ctl.rc(op[0], **op[1]), 0)

    def expected(self):
        c = self.c
        ids = [x.id for x in c]
        sessions = {c[0].id: {}, c[1].id: {'k': 1}, c[2].id: {},
                    c[3].id: {'name': 'dee', 'deep': {'a': [1]}}}
        return [
            ('is_online', dict(id=c[1].id), True, 1),
            ('is_online', dict(id=c[3].id), True, 1),
            ('get_session', dict(id=c[3].id), sessions[c[3].id], 1),
            ('get_session', dict(id=c[1].id), sessions[c[1].id], 1),
            ('get_uid_by_client_id', dict(id=c[0].id), 'u0', 1),
            ('get_uid_by_client_id', dict(id=c[1].id), None, 1),
            ('get_all_client_count', {}, 4, 2),
            ('get_client_count_by_group', dict(group='g'), 2, 2),
            ('get_all_client_id_list', {}, ids, 2),
            ('get_client_id_list_by_group', dict(group='g'), [c[0].id, c[2].id], 2),
            ('get_all_client_sessions', {}, sessions, 2),
            ('get_client_sessions_by_group', dict(group='g'), {c[0].id: {}, c[2].id: {}}, 2),
            ('get_client_id_by_uid', dict(uid='u2'), [c[2].id], 2),
            ('is_uid_online', dict(uid='u2'), True, 2),
            ('is_uid_online', dict(uid='nobody'), False, 2),
            ('get_all_uid_list', {}, ['u0', 'u2'], 2),
            ('get_all_uid_count', {}, 2, 2),
            ('get_uid_list_by_group', dict(group='g'), ['u0', 'u2'], 2),
            ('get_uid_count_by_group', dict(group='g'), 2, 2),
            ('get_all_group_id_list', {}, ['g', 'h'], 2),
            ('get_all_group_client_id_list', {}, {'g': [c[0].id, c[2].id], 'h': [c[3].id]}, 2),
            ('batch_get_client_id_by_uid', dict(uids=['u0', 'u2', 'nobody']),
             {'u0': [c[0].id], 'u2': [c[2].id], 'nobody': []}, 2),
            ('batch_get_client_count_by_group', dict(groups=['g', 'h', 'none']),
             {'g': 2, 'h': 1, 'none': 0}, 2),
        ]

    def test_every_query_async_and_blocking(self):
        for asker in (self.c[1], self.c[2]):  # one on each gateway, different workers
            seen_ids = set()
            for name, args, want, asked in self.expected():
                for mode in ('async', 'wait'):
                    with self.subTest(asker=asker.id, q=name, mode=mode):
                        r = asker.q(name, mode=mode, **args)
                        self.assertGreater(r['rc'], 0, r)
                        self.assertNotIn(r['rc'], seen_ids)
                        seen_ids.add(r['rc'])
                        self.assertEqual(norm(r['result']), norm(want), r)
                        self.assertEqual((r['complete'], r['asked'], r['answered']),
                                         (True, asked, asked), r)
                        if mode == 'async':
                            # The callback runs later, outside any event.
                            self.assertTrue(r['cb'] and r['cur_null'] and r['session_null'], r)
                        else:
                            self.assertTrue(r['again_null'], r)
            # get_all_group_uid_list: h has members but no uid.
            r = asker.value('get_all_group_uid_list')
            self.assertEqual(norm(r.get('g')), ['u0', 'u2'])
            self.assertEqual(r.get('h', []), [])

    def test_connections(self):
        c = self.c
        rows = self.c[1].value('get_connections')
        self.assertEqual(len(rows), 4)
        by_id = {r['client_id']: r for r in rows}
        self.assertEqual(sorted(by_id), sorted(x.id for x in c))
        for x in c:
            r = by_id[x.id]
            ip, port, _ = gwtest.parse_client_id(x.id)
            self.assertEqual(r['gateway'], '%s:%d' % (ip, port))
            self.assertEqual(r['protocol'], x.proto)
            self.assertEqual(r['remote'], '127.0.0.1')
            self.assertEqual(r['remote_port'], x.conn.sock.getsockname()[1])
            self.assertIsInstance(r['idle_ms'], int)
            self.assertGreaterEqual(r['idle_ms'], 0)
            self.assertIsInstance(r['send_queue'], int)
        self.assertEqual(by_id[c[0].id]['uid'], 'u0')
        self.assertEqual(by_id[c[0].id]['groups'], ['g'])
        self.assertIsNone(by_id[c[1].id]['uid'])
        self.assertEqual(by_id[c[1].id]['groups'], [])
        self.assertEqual(by_id[c[3].id]['groups'], ['h'])

    def test_query_of_a_gateway_not_in_the_cluster(self):
        ghost = '0a0000010b5400000001'  # 10.0.0.1:2900, not a member
        r = self.c[0].q('is_online', id=ghost)
        self.assertGreater(r['rc'], 0)
        self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                         (False, True, 0, 0))
        r = self.c[0].q('get_session', id=ghost, mode='wait')
        self.assertEqual((r['result'], r['asked']), (None, 0))
        # An unknown connection on a live gateway: asked, answered, not online.
        ip, port, conn = gwtest.parse_client_id(self.c[3].id)
        unknown = self.c[3].id[:12] + '%08x' % ((conn + 777) & 0xffffffff)
        r = self.c[0].q('is_online', id=unknown)
        self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                         (False, True, 1, 1))
        self.assertIsNone(self.c[0].value('get_session', id=unknown))
        self.assertIsNone(self.c[0].value('get_uid_by_client_id', id=unknown))

    def test_gw_wait_refuses_bad_ids(self):
        r = self.c[0].call('wait_bad')
        self.assertEqual({k: r[k] for k in ('zero', 'negative', 'unknown', 'with_cb')},
                         {'zero': True, 'negative': True, 'unknown': True, 'with_cb': True}, r)

    def on_host(self, host):
        return [x for x in self.c if gwtest.parse_client_id(x.id)[1] == host.gateway_start]

    def test_stopped_gateway_async(self):
        a_clients = self.on_host(self.api.a)
        x, y = a_clients  # both on gateway A, one per worker
        b_client = self.on_host(self.api.b)[0]
        with Paused(self, self.api.gateway(self.api.b)):
            t0 = time.monotonic()
            seqs = {key: x.request('q', q=name, mode='async', **args) for key, name, args in (
                ('count', 'get_all_client_count', {}), ('ids', 'get_all_client_id_list', {}),
                ('group', 'get_client_id_list_by_group', {'group': 'g'}),
                ('b_online', 'is_online', {'id': b_client.id}),
                ('b_session', 'get_session', {'id': b_client.id}),
                ('x_online', 'is_online', {'id': x.id}))}
            # Meanwhile the worker of x serves its other clients at once.
            self.assertEqual(y.rc('echo', data='not stalled'), 0)
            self.assertEqual(y.push(), 'not stalled')
            x_seq = x.request('echo', data='x not stalled')
            self.assertEqual(x.push(), 'x not stalled')
            self.assertEqual(x.reply(x_seq)['rc'], 0)
            replies = {name: x.reply(seq, timeout=QUERY_TIMEOUT + 10) for name, seq in seqs.items()}
            elapsed = time.monotonic() - t0
        a_ids = sorted(c.id for c in a_clients)
        count = replies['count']
        self.assertEqual((count['result'], count['complete'], count['asked'], count['answered']),
                         (2, False, 2, 1), count)
        # Not before the deadline (B could not answer), and not long after it.
        self.assertGreaterEqual(count['ms'], QUERY_TIMEOUT * 1000 * 0.9, count)
        self.assertLess(elapsed, QUERY_TIMEOUT + 10)
        r = replies['ids']
        self.assertEqual((sorted(r['result']), r['complete'], r['asked'], r['answered']),
                         (a_ids, False, 2, 1))
        r = replies['group']
        self.assertEqual((r['result'], r['complete']), ([self.c[0].id], False))
        # One-client queries about a client of B: asked 1, answered 0; of A: complete.
        for key, empty in (('b_online', False), ('b_session', None)):
            r = replies[key]
            self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                             (empty, False, 1, 0), r)
        r = replies['x_online']
        self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                         (True, True, 1, 1), r)
        self.assertLess(r['ms'], QUERY_TIMEOUT * 1000 * 0.9, r)
        # Resumed: B's late answers are dropped, new queries are complete again.
        eventually(lambda: x.q('get_all_client_count')['complete'], 'complete again')
        r = x.q('get_all_client_count')
        self.assertEqual((r['result'], r['asked'], r['answered']), (4, 2, 2))
        r = x.q('is_online', id=b_client.id, mode='wait')
        self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                         (True, True, 1, 1))

    def test_stopped_gateway_single_client_queries(self):
        x = self.on_host(self.api.a)[0]
        b_client = self.on_host(self.api.b)[1]  # has the session {"name": "dee", ...}
        with Paused(self, self.api.gateway(self.api.b)):
            s1 = x.request('q', q='is_online', id=b_client.id, mode='async')
            s2 = x.request('q', q='get_session', id=b_client.id, mode='async')
            s3 = x.request('q', q='get_uid_by_client_id', id=b_client.id, mode='wait')
            for seq, empty in ((s1, False), (s2, None), (s3, None)):
                r = x.reply(seq, timeout=QUERY_TIMEOUT + 10)
                self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                                 (empty, False, 1, 0), r)
                self.assertGreaterEqual(r['ms'], QUERY_TIMEOUT * 1000 * 0.9, r)
        self.assertEqual(x.value('get_session', id=b_client.id)['name'], 'dee')

    def test_stopped_gateway_blocking_wait(self):
        a_clients = self.on_host(self.api.a)
        # x and y on the same worker (both on A or one on B: any gateway that runs).
        x = a_clients[0]
        extra = [self.api.client(self.api.a, 'text') for _ in range(2)]
        same = [c for c in a_clients[1:] + extra if c.pid == x.pid]
        other = [c for c in a_clients[1:] + extra if c.pid != x.pid]
        self.assertTrue(same and other)
        y, z = same[0], other[0]
        with Paused(self, self.api.gateway(self.api.b)):
            xs = x.request('q', q='get_all_client_count', mode='wait')
            ys = [y.request('echo', data='y%d' % i) for i in range(5)]
            zs = z.request('echo', data='z')
            r = x.reply(xs, timeout=QUERY_TIMEOUT + 10)
            self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                             (4, False, 2, 1), r)
            self.assertGreaterEqual(r['ms'], QUERY_TIMEOUT * 1000 * 0.9, r)
            # y's messages waited for x's callback and came after it, all, in order.
            self.assertEqual([y.push() for _ in ys], ['y%d' % i for i in range(5)])
            self.assertEqual([y.reply(s)['rc'] for s in ys], [0] * 5)
            self.assertEqual(z.push(), 'z')
            self.assertEqual(z.reply(zs)['rc'], 0)
            ev_x = self.api.wait_event(ev='message', id=x.id, seq=xs)
            ev_y = [self.api.wait_event(ev='message', id=y.id, seq=s) for s in ys]
            ev_z = self.api.wait_event(ev='message', id=z.id, seq=zs)
            self.assertEqual(ev_x['pid'], ev_y[0]['pid'])
            for e in ev_y:
                self.assertGreaterEqual(e['t0'], ev_x['t'], 'y handled during the wait')
            self.assertEqual([e['t0'] for e in ev_y], sorted(e['t0'] for e in ev_y))
            # The other worker was not held up by x's wait.
            self.assertLess(ev_z['t0'], ev_x['t'])
            # gw_wait with its own, shorter timeout.
            seq = x.request('q', q='get_all_client_count', mode='wait', timeout=0.3)
            r = x.reply(seq, timeout=QUERY_TIMEOUT + 10)
            self.assertEqual((r['complete'], r['asked'], r['answered']), (False, 2, 1), r)
            self.assertLess(r['ms'], QUERY_TIMEOUT * 1000 * 0.9, r)
        eventually(lambda: x.q('get_all_client_count', mode='wait')['complete'], 'complete again')


class GatewayLeaves(gwtest.TestCase):
    """A gateway that leaves the roster while a query waits for it: the query
    completes (incomplete) without waiting for the deadline; later queries ask only
    the gateways in the roster; the gateway comes back when it resumes."""

    def setUp(self):
        # node_timeout 1 s (gwtest's default), a deadline well after it.
        self.api = ApiCluster(self, businessworker={'query_timeout': 8.0})
        self.c = self.api.spread(1)

    def test_query_completes_when_the_gateway_leaves(self):
        x = self.c[0]
        with Paused(self, self.api.gateway(self.api.b)):
            t0 = time.monotonic()
            r = x.q('get_all_client_count', timeout=20)
            self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                             (1, False, 2, 1), r)
            self.assertLess(r['ms'], 8000 * 0.9, r)
            # Left the roster: only A is asked, and that is complete.
            r = x.q('get_all_client_count')
            self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']),
                             (1, True, 1, 1), r)
        self.assertLess(time.monotonic() - t0, 20)
        eventually(lambda: x.q('get_all_client_count')['asked'] == 2, 'B back in the roster',
                   timeout=15)
        r = x.q('get_all_client_count')
        self.assertEqual((r['result'], r['complete'], r['asked'], r['answered']), (2, True, 2, 2))
        # B's client is still served.
        self.assertEqual(self.c[1].rc('echo', data='still here'), 0)
        self.assertEqual(self.c[1].push(), 'still here')


if __name__ == '__main__':
    gwtest.main()
