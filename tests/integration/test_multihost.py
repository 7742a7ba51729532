"""Two simulated hosts, 127.0.0.2 and 127.0.0.3, each with a gateway and a business
worker and its own config file (own lan_ip, shared register list): client_ids name
the gateway's host, gw_send_to_client crosses gateways, send_to_all reaches the
clients of both gateways."""

import socket

import gwtest

HOST_A, HOST_B = '127.0.0.2', '127.0.0.3'


def loopback_alias_usable(ip):
    s = socket.socket()
    try:
        s.bind((ip, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


class TwoHosts(gwtest.TestCase):

    def setUp(self):
        for ip in (HOST_A, HOST_B):
            if not loopback_alias_usable(ip):
                self.skipTest('cannot bind %s' % ip)
        self.cl = self.cluster(register_ip=HOST_A)
        self.a = self.cl.add_host(lan_ip=HOST_A, register=True, name='hostA')
        self.b = self.cl.add_host(lan_ip=HOST_B, name='hostB')
        self.cl.start()

    def test_configs_differ_only_by_host(self):
        self.assertEqual(self.a.conf['cluster']['registers'], self.b.conf['cluster']['registers'])
        self.assertNotEqual(self.a.path, self.b.path)
        # Every gateway saw both workers (wait_ready checked the other direction).
        for gw in (self.a.gateways[0], self.b.gateways[0]):
            log = gw.log()
            self.assertIn('businessworker %s joined' % self.a.worker_addr(), log)
            self.assertIn('businessworker %s joined' % self.b.worker_addr(), log)

    def test_client_ids_name_their_gateway(self):
        ca = self.cl.client('websocket', host=self.a)
        cb = self.cl.client('text', host=self.b, source='127.0.0.9')
        ia, ib = ca.whoami(), cb.whoami()
        self.assertEqual(gwtest.parse_client_id(ia['client_id'])[:2],
                         (HOST_A, self.a.gateway_start))
        self.assertEqual(gwtest.parse_client_id(ib['client_id'])[:2],
                         (HOST_B, self.b.gateway_start))
        self.assertEqual(ia['gateway'], HOST_A)
        self.assertEqual(ib['gateway'], HOST_B)
        ev = self.cl.wait_event(ev='connect', id=ib['client_id'])
        self.assertEqual(ev['remote'], '127.0.0.9')
        self.assertEqual(ev['gateway'], HOST_B)

    def test_send_to_client_across_gateways(self):
        ca = self.cl.client('websocket', host=self.a)
        cb = self.cl.client('websocket', host=self.b)
        ca.send('to:%s:hi from A' % cb.id)
        self.assertEqual(cb.recv(), 'hi from A')
        cb.send('to:%s:hi from B' % ca.id)
        self.assertEqual(ca.recv(), 'hi from B')
        # Several clients of host B send to A (whichever worker handles them, one of
        # the two gateways is on another host than that worker).
        senders = [self.cl.client('text', host=self.b) for _ in range(4)]
        for i, s in enumerate(senders):
            s.send('to:%s:n%d' % (ca.id, i))
        got = sorted(ca.recv() for _ in senders)
        self.assertEqual(got, ['n%d' % i for i in range(len(senders))])

    def test_send_to_all_reaches_both_gateways(self):
        protos = ('websocket', 'text', 'frame')
        cs = [self.cl.client(p, host=h) for h in (self.a, self.b) for p in protos]
        for c in cs:
            c.id
        cs[0].send('all:everyone')
        cs[0].send('all:marker')  # same sender: ordered after 'everyone'
        for c in cs:
            self.assertEqual([c.recv(), c.recv()], ['everyone', 'marker'], c.id)

    def test_include_and_exclude_lists_across_gateways(self):
        cs = [self.cl.client('text', host=h) for h in (self.a, self.b, self.a, self.b)]
        for c in cs:
            c.id
        chosen = [cs[1], cs[2]]  # one per gateway
        # Two senders (their orders are independent): each ends with its own marker.
        cs[0].send('list:%s,%s:chosen' % (chosen[0].id, chosen[1].id))
        cs[0].send('all:marker0')
        cs[3].send('allx:not to 3')
        cs[3].send('all:marker3')

        def received(c):
            got = []
            while not ('marker0' in got and 'marker3' in got):
                got.append(c.recv())
            return got
        for c in cs:
            got = received(c)
            from0 = [m for m in got if m in ('chosen', 'marker0')]
            from3 = [m for m in got if m in ('not to 3', 'marker3')]
            self.assertEqual(from0, ['chosen', 'marker0'] if c in chosen else ['marker0'], c.id)
            self.assertEqual(from3, ['marker3'] if c is cs[3] else ['not to 3', 'marker3'], c.id)
            self.assertEqual(len(got), len(from0) + len(from3))

    def test_close_client_across_gateways(self):
        ca = self.cl.client('text', host=self.a)
        cb = self.cl.client('websocket', host=self.b)
        ca.send('closeid:%s' % cb.id)
        code, _, _ = cb.expect_close(5)
        self.assertEqual(code, 1000)
        cb.expect_eof(10)
        self.cl.wait_event(ev='close', id=cb.id)


if __name__ == '__main__':
    gwtest.main()
