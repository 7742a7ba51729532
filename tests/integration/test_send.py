"""Sending from the module: send_to_all (everyone exactly once, with an exclude list
and with an include list), send_to_client, close_client (last message, then a close
frame 1000, then on_close), destroy, sessions."""


import gwtest
from gwtest import OP_BINARY, OP_TEXT


class Send(gwtest.TestCase):

    def setUp(self):
        self.cl, self.host = self.start_cluster(gateways=1, workers=2)

    def clients(self, n=20):
        """n clients spread over the three protocols, each with a known client_id."""
        protos = ('websocket', 'text', 'frame')
        cs = [self.cl.client(protos[i % 3]) for i in range(n)]
        for c in cs:
            c.id
        return cs

    def expect_next(self, clients, expected):
        """Each client's next messages are exactly `expected` (a list)."""
        for c in clients:
            got = [c.recv() for _ in expected]
            self.assertEqual(got, expected, '%s client %s' % (c.proto, c.id))

    def test_send_to_all_exactly_once(self):
        cs = self.clients(20)
        self.assertEqual(len({c.id for c in cs}), 20)
        cs[0].send('all:hello everyone')
        # A second broadcast from the same client (same worker, so ordered) as a
        # marker: nothing (no duplicate) comes in between.
        cs[0].send('all:marker')
        self.expect_next(cs, ['hello everyone', 'marker'])
        for c in cs:
            self.assertTrue(c.is_open())

    def test_send_to_all_binary_on_websocket(self):
        ws = self.cl.client('websocket')
        t = self.cl.client('text')
        t.send('all:from text')
        self.assertEqual(ws.recv_message(), (OP_TEXT, b'from text'))
        self.assertEqual(t.recv(), 'from text')

    def test_send_to_all_with_exclude_list(self):
        cs = self.clients(9)
        sender = cs[4]
        sender.send('allx:not for me')
        sender.send('all:marker')
        self.expect_next([c for c in cs if c is not sender], ['not for me', 'marker'])
        self.expect_next([sender], ['marker'])

    def test_send_to_all_with_include_list(self):
        cs = self.clients(9)
        chosen = [cs[1], cs[2], cs[6]]
        cs[0].send('list:%s:just you three' % ','.join(c.id for c in chosen))
        cs[0].send('all:marker')
        self.expect_next(chosen, ['just you three', 'marker'])
        self.expect_next([c for c in cs if c not in chosen], ['marker'])

    def test_include_list_with_unknown_and_closed_clients(self):
        cs = self.clients(3)
        gone = self.cl.client('text')
        gone_id = gone.id
        gone.close()
        self.cl.wait_event(ev='close', id=gone_id)
        # A well-formed id on this gateway that never existed, and a closed client.
        ip, port, conn = gwtest.parse_client_id(cs[0].id)
        ghost = cs[0].id[:12] + '%08x' % ((conn + 1000000) & 0xffffffff)
        cs[0].send('list:%s,%s,%s:hi' % (ghost, gone_id, cs[1].id))
        cs[0].send('all:marker')
        self.expect_next([cs[1]], ['hi', 'marker'])
        self.expect_next([cs[0], cs[2]], ['marker'])

    def test_send_to_client(self):
        a, b, c = self.cl.client('websocket'), self.cl.client('text'), self.cl.client('frame')
        a.send('to:%s:hi b' % b.id)
        a.send('to:%s:hi c' % c.id)
        self.assertEqual(b.recv(), 'hi b')
        self.assertEqual(c.recv(), 'hi c')
        c.send('to:%s:hi a' % a.id)
        self.assertEqual(a.recv(), 'hi a')
        a.send('all:marker')
        self.expect_next([a, b, c], ['marker'])

    def test_send_errors(self):
        ws = self.cl.client('websocket')
        ws.send('rc:to:nothex:x')
        self.assertEqual(ws.recv(), 'rc=1')  # GW_EINVAL
        ws.send('rc:to:0a0000010001deadbeef:x')  # a gateway not in the cluster
        self.assertEqual(ws.recv(), 'rc=4')  # GW_EUNREACHABLE
        ws.send('still here')
        self.assertEqual(ws.recv(), 'still here')

    def test_close_client_websocket(self):
        ws = self.cl.client('websocket')
        cid = ws.id
        ws.send('close:goodbye')
        code, reason, before = ws.expect_close(5)
        self.assertEqual(before, [(OP_TEXT, b'goodbye')])
        self.assertEqual(code, 1000)
        ws.send_close(1000)  # complete the close handshake
        ws.expect_eof(5)
        self.cl.wait_event(ev='close', id=cid)

    def test_close_client_websocket_without_close_reply(self):
        """A client that never answers the close frame is disconnected anyway."""
        ws = self.cl.client('websocket')
        ws.send('close:')
        code, _, before = ws.expect_close(5)
        self.assertEqual((code, before), (1000, []))
        ws.expect_eof(10)  # after the gateway's linger time at the latest

    def test_close_client_text_and_frame(self):
        for proto in ('text', 'frame'):
            with self.subTest(proto):
                c = self.cl.client(proto)
                cid = c.id
                c.send('close:last words')
                self.assertEqual(c.recv(), 'last words')
                self.assertEqual(c.expect_eof(5), b'')
                self.cl.wait_event(ev='close', id=cid)

    def test_close_other_client(self):
        a, b = self.cl.client('text'), self.cl.client('websocket')
        a.send('closeid:%s' % b.id)
        code, _, before = b.expect_close(5)
        self.assertEqual((code, before), (1000, []))
        b.expect_eof(10)
        self.cl.wait_event(ev='close', id=b.id)
        a.send('alive')
        self.assertEqual(a.recv(), 'alive')

    def test_no_events_after_close(self):
        """Messages a client sends after the gateway began closing it never reach a
        worker."""
        t = self.cl.client('text')
        cid = t.id
        t.send('close:bye')
        self.assertEqual(t.recv(), 'bye')
        try:
            t.send('after close')
        except OSError:
            pass  # already gone: fine
        t.expect_eof(5)
        self.cl.wait_event(ev='close', id=cid)
        # A later event of another client: the worker has processed everything before.
        other = self.cl.client('text')
        other.send('sync')
        self.assertEqual(other.recv(), 'sync')
        self.assertFalse(self.cl.events(ev='message', msg='after close'))

    def test_destroy(self):
        for proto in ('websocket', 'text'):
            with self.subTest(proto):
                c = self.cl.client(proto)
                cid = c.id
                c.send('destroy')
                c.expect_eof(5)
                self.cl.wait_event(ev='close', id=cid)
        a, b = self.cl.client('frame'), self.cl.client('frame')
        a.send('destroyid:%s' % b.id)
        b.expect_eof(5)
        self.cl.wait_event(ev='close', id=b.id)
        a.send('alive')
        self.assertEqual(a.recv(), 'alive')

    def test_close_event_exactly_once(self):
        ws = self.cl.client('websocket')
        cid = ws.id
        ws.send('close:bye')
        ws.expect_close(5)
        ws.send_close(1000)
        ws.expect_eof(5)
        self.cl.wait_event(ev='close', id=cid)
        # A later event proves the worker has processed everything before it.
        t = self.cl.client('text')
        t.send('sync')
        self.assertEqual(t.recv(), 'sync')
        self.assertEqual(len(self.cl.events(ev='close', id=cid)), 1)
        self.assertEqual(len(self.cl.events(ev='connect', id=cid)), 1)

    def test_session(self):
        ws = self.cl.client('websocket')
        cid = ws.id
        ws.send('sess:set:name=alice')
        self.assertEqual(ws.recv(), 'ok')
        ws.send('sess:get:name')
        self.assertEqual(ws.recv(), '"alice"')
        ws.send('sess:set:room=42')
        self.assertEqual(ws.recv(), 'ok')
        ws.send('sess:del:name')
        self.assertEqual(ws.recv(), 'ok')
        ws.send('sess:get:name')
        self.assertEqual(ws.recv(), 'null')
        ws.send('sess:get:room')
        self.assertEqual(ws.recv(), '"42"')
        ws.close()
        ev = self.cl.wait_event(ev='close', id=cid)
        self.assertEqual(ev['session'], {'room': '42'}, 'on_close sees the last session')

    def test_session_is_per_client(self):
        a, b = self.cl.client('text'), self.cl.client('text')
        a.send('sess:set:k=a')
        b.send('sess:set:k=b')
        self.assertEqual((a.recv(), b.recv()), ('ok', 'ok'))
        a.send('sess:get:k')
        b.send('sess:get:k')
        self.assertEqual((a.recv(), b.recv()), ('"a"', '"b"'))

    def test_binary_reply(self):
        ws = self.cl.client('websocket')
        ws.send('bin')
        self.assertEqual(ws.recv_message(), (OP_BINARY, bytes(range(256))))
        f = self.cl.client('frame')
        f.send('bin')
        self.assertEqual(f.recv_bytes(), bytes(range(256)))

    def test_whoami(self):
        for proto in ('websocket', 'text', 'frame'):
            c = self.cl.client(proto)
            info = c.whoami()
            ip, port, _ = gwtest.parse_client_id(info['client_id'])
            self.assertEqual((ip, port), ('127.0.0.1', self.host.gateway_start))
            self.assertEqual(info['protocol'], proto)
            self.assertEqual(info['gateway_port'], self.host.listeners[proto][1])
            self.assertIn(info['worker'], (0, 1))


if __name__ == '__main__':
    gwtest.main()
