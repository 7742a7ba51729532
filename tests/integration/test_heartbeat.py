"""Client heartbeat (gateway.ping_interval, ping_not_response_limit, ping_data,
ws_ping, heartbeat_message). Time bounds are generous: a loaded 2-core machine must
not fail them; only "not too early" is checked tightly (it cannot be slowed down)."""

import time

import gwtest
from gwtest import OP_PING


class SilentClose(gwtest.TestCase):
    """ping_interval 1, ping_not_response_limit 1: silence for 1 s closes the client."""

    def setUp(self):
        self.cl, self.host = self.start_cluster(
            gateway={'ping_interval': 1, 'ping_not_response_limit': 1})

    def test_silent_clients_closed_after_about_one_second(self):
        clients = []
        for proto in ('websocket', 'text', 'frame'):
            # Before connecting: the gateway's silence clock cannot start earlier.
            t0 = time.monotonic()
            clients.append((self.cl.client(proto), t0))
        for c, t0 in clients:
            c.expect_eof(5)
            self.assertGreaterEqual(time.monotonic() - t0, 0.9, '%s closed too early' % c.proto)
        for c, t0 in clients:
            # The worker learns the client_id from the connect event.
            conn = [e for e in self.cl.events(ev='connect') if e['proto'] == c.proto]
            self.assertEqual(len(conn), 1)
            ev = self.cl.wait_event(ev='close', id=conn[0]['id'])
            self.assertGreaterEqual(ev['t'] - t0, 0.9, '%s: on_close too early' % c.proto)
            self.assertLess(ev['t'] - t0, 3.0, '%s: on_close too late' % c.proto)

    def test_websocket_gets_close_frame(self):
        ws = self.cl.client('websocket')
        code, _, before = ws.expect_close(5)
        self.assertEqual(before, [])
        self.assertEqual(code, 1001)
        ws.expect_eof(5)

    def test_active_clients_stay(self):
        clients = [self.cl.client(p) for p in ('websocket', 'text', 'frame')]
        ids = [c.id for c in clients]
        end = time.monotonic() + 4.0
        n = 0
        while time.monotonic() < end:
            for c in clients:
                c.send('echo:beat %d' % n)
            for c in clients:
                self.assertEqual(c.recv(), 'beat %d' % n)
            n += 1
            time.sleep(0.3)
        for c in clients:
            self.assertTrue(c.is_open(), '%s client was closed' % c.proto)
        self.assertFalse([e for e in self.cl.events(ev='close') if e['id'] in ids])

    def test_websocket_ping_frames_count_as_heartbeat(self):
        ws = self.cl.client('websocket')
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            ws.ping(b'hb')
            f = ws.recv_frame()
            self.assertEqual(f.payload, b'hb')
            time.sleep(0.3)
        self.assertTrue(ws.is_open())
        # Pings are not messages.
        self.assertFalse(self.cl.events(ev='message'))


class PingData(gwtest.TestCase):
    """ping_not_response_limit 0 with ping_data: pings are sent, nothing is closed."""

    def test_pings_arrive_and_nothing_closes(self):
        cl, host = self.start_cluster(
            gateway={'ping_interval': 0.5, 'ping_not_response_limit': 0,
                     'ping_data': '{"type":"ping"}'})
        t0 = time.monotonic()
        clients = [cl.client(p) for p in ('websocket', 'text', 'frame')]
        for c in clients:
            for i in range(3):
                self.assertEqual(c.recv(5), '{"type":"ping"}')
        # Three pings, one per 0.5 s of silence: at least ~1.5 s went by.
        self.assertGreaterEqual(time.monotonic() - t0, 1.2)
        for c in clients:
            self.assertTrue(c.is_open())
            c.send('echo:still here')
        for c in clients:
            # Pings may arrive in between.
            while True:
                m = c.recv()
                if m != '{"type":"ping"}':
                    break
            self.assertEqual(m, 'still here')
        self.assertFalse(cl.events(ev='close'))


class WsPing(gwtest.TestCase):
    """ws_ping: WebSocket ping control frames; answered pongs keep the client."""

    def setUp(self):
        self.cl, self.host = self.start_cluster(
            listen=('websocket',),
            gateway={'ping_interval': 0.5, 'ping_not_response_limit': 3, 'ws_ping': True})

    def test_ping_frames_answered_keep_the_client(self):
        ws = self.cl.client('websocket')  # answers pings (auto_pong)
        cid = ws.id
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                ws.recv_message(0.2)
            except TimeoutError:
                pass
        self.assertGreaterEqual(len(ws.pings), 2, 'ping frames received: %r' % ws.pings)
        self.assertTrue(ws.is_open())
        self.assertFalse(self.cl.events(ev='close', id=cid))

    def test_unanswered_pings_close_the_client(self):
        t0 = time.monotonic()
        ws = self.cl.client('websocket', auto_pong=False)
        frames = []
        while True:
            try:
                f = ws.recv_frame(6)
            except gwtest.ConnectionClosed:
                break
            frames.append(f)
        self.assertGreaterEqual(time.monotonic() - t0, 1.4)
        self.assertIn(OP_PING, [f.opcode for f in frames])


class HeartbeatMessage(gwtest.TestCase):
    """heartbeat_message: absorbed by the gateway, still a heartbeat."""

    def test_heartbeat_message_absorbed(self):
        cl, host = self.start_cluster(
            gateway={'ping_interval': 1, 'ping_not_response_limit': 1,
                     'heartbeat_message': 'HB'})
        ws, t = cl.client('websocket'), cl.client('text')
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            ws.send('HB')
            t.send('HB')
            time.sleep(0.3)
        for c in (ws, t):
            self.assertTrue(c.is_open())
            c.send('real message')
            self.assertEqual(c.recv(), 'real message')
        self.assertFalse(cl.events(ev='message', msg='HB'))
        self.assertEqual(len(cl.events(ev='message', msg='real message')), 2)


if __name__ == '__main__':
    gwtest.main()
