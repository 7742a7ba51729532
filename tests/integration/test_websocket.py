"""WebSocket strictness at the wire (RFC 6455): handshake errors (400, 426, 431),
protocol violations (1002, 1007), ping/pong, fragmentation, the close handshake,
and what on_websocket_connect sees."""

import struct
import time

import gwtest
from gwtest import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT


class Handshake(gwtest.TestCase):

    def setUp(self):
        self.cl, self.host = self.start_cluster(listen=('websocket',),
                                                gateway={'max_handshake_size': 2048})
        self.addr = self.host.listeners['websocket']

    def raw(self):
        c = gwtest.WsClient(*self.addr, handshake=False)
        self.addCleanup(c.close)
        return c

    def refused(self, request, status):
        c = self.raw()
        c.send_raw(request)
        got, headers, body, head = c.read_http_response()
        self.assertEqual(got, status, head)
        c.expect_eof(5)  # and the connection is closed
        return headers, body

    def test_good_handshake(self):
        ws = self.cl.client('websocket', path='/some/path?x=1')
        ws.send('ok?')
        self.assertEqual(ws.recv(), 'ok?')

    def test_400_bad_requests(self):
        c = self.raw()
        good = c.handshake_request('/').decode()
        cases = {
            'not HTTP': b'HELLO THERE\r\n\r\n',
            'no Upgrade header': good.replace('Upgrade: websocket\r\n', '').encode(),
            'no Connection: Upgrade': good.replace('Connection: Upgrade\r\n',
                                                   'Connection: keep-alive\r\n').encode(),
            'key not 16 bytes': good.replace('Sec-WebSocket-Key: ' + c.key,
                                             'Sec-WebSocket-Key: c2hvcnQ=').encode(),
            'no key': good.replace('Sec-WebSocket-Key: ' + c.key + '\r\n', '').encode(),
            'HTTP/1.0': good.replace('HTTP/1.1', 'HTTP/1.0').encode(),
            'no Host': '\r\n'.join(l for l in good.split('\r\n')
                                   if not l.startswith('Host:')).encode(),
        }
        for what, req in cases.items():
            with self.subTest(what):
                self.refused(req, 400)
        # The gateway still serves good clients.
        self.test_good_handshake()

    def test_426_version_8(self):
        c = self.raw()
        headers, _ = self.refused(c.handshake_request('/', version='8'), 426)
        self.assertEqual(headers.get('sec-websocket-version'), '13')

    def test_431_oversized_handshake(self):
        c = self.raw()
        req = c.handshake_request('/', headers=[('X-Big', 'a' * 4000)])
        self.refused(req, 431)

    def test_431_unterminated_handshake(self):
        """Header bytes beyond max_handshake_size without the blank line: 431 without
        waiting for the end of the request."""
        self.refused(b'GET / HTTP/1.1\r\nX-Filler: ' + b'b' * 3000, 431)

    def test_handshake_split_byte_by_byte(self):
        ws = gwtest.WsClient(*self.addr, bytewise=True)
        self.addCleanup(ws.close)
        ws.send('split')
        self.assertEqual(ws.recv(), 'split')

    def test_handshake_timeout(self):
        cl, host = self.start_cluster(listen=('websocket',), gateway={'handshake_timeout': 0.5})
        c = gwtest.WsClient(*host.listeners['websocket'], handshake=False)
        self.addCleanup(c.close)
        t0 = time.monotonic()
        c.send_raw(b'GET / HTTP/1.1\r\n')  # and nothing more
        c.expect_eof(5)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)


class Frames(gwtest.TestCase):

    def setUp(self):
        self.cl, self.host = self.start_cluster(listen=('websocket',))
        self.ws = self.cl.client('websocket')
        self.cid = self.ws.id  # whoami: the client is bound and known

    def assert_fails(self, code):
        got, _, before = self.ws.expect_close(5)
        self.assertEqual(got, code)
        self.ws.expect_eof(5)
        self.cl.wait_event('on_close after close %d' % code, ev='close', id=self.cid)
        return before

    def test_unmasked_frame_1002(self):
        self.ws.send_frame(OP_TEXT, 'naked', mask=False)
        self.assert_fails(1002)
        self.assertFalse(self.cl.events(ev='message', msg='naked'))

    def test_invalid_utf8_1007(self):
        self.ws.send_frame(OP_TEXT, b'bad \xc3\x28 text')
        self.assert_fails(1007)

    def test_invalid_utf8_across_fragments_1007(self):
        self.ws.send_frame(OP_TEXT, b'ok \xe2\x82', fin=False)  # incomplete euro sign
        self.ws.send_frame(OP_CONT, b'\x41 not a continuation byte', fin=True)
        self.assert_fails(1007)

    def test_truncated_utf8_at_end_1007(self):
        self.ws.send_frame(OP_TEXT, b'ends in the middle \xf0\x9f\x98')
        self.assert_fails(1007)

    def test_valid_utf8_across_fragments(self):
        euro = '\u20ac'.encode()
        self.ws.send_frame(OP_TEXT, b'price ' + euro[:1], fin=False)
        self.ws.send_frame(OP_CONT, euro[1:2], fin=False)
        self.ws.send_frame(OP_CONT, euro[2:] + b'5', fin=True)
        self.assertEqual(self.ws.recv(), 'price \u20ac5')

    def test_reserved_opcodes_1002(self):
        self.ws.send_frame(3, b'reserved data opcode')
        self.assert_fails(1002)

    def test_reserved_control_opcode_1002(self):
        self.ws.send_frame(0xB, b'')
        self.assert_fails(1002)

    def test_rsv_bits_1002(self):
        self.ws.send_frame(OP_TEXT, 'compressed?', rsv=4)
        self.assert_fails(1002)

    def test_continuation_without_start_1002(self):
        self.ws.send_frame(OP_CONT, 'orphan')
        self.assert_fails(1002)

    def test_new_message_inside_fragmented_1002(self):
        self.ws.send_frame(OP_TEXT, 'part', fin=False)
        self.ws.send_frame(OP_TEXT, 'another start')
        self.assert_fails(1002)

    def test_control_frame_too_long_1002(self):
        self.ws.send_frame(OP_PING, b'p' * 126)
        self.assert_fails(1002)

    def test_fragmented_control_frame_1002(self):
        self.ws.send_frame(OP_PING, b'half', fin=False)
        self.assert_fails(1002)

    def test_invalid_close_code_1002(self):
        self.ws.send_close(1005)  # may never be sent
        self.assert_fails(1002)

    def test_ping_gets_pong(self):
        self.ws.ping(b'are you there?')
        f = self.ws.recv_frame()
        self.assertEqual((f.fin, f.opcode, f.payload), (1, OP_PONG, b'are you there?'))
        self.ws.ping(b'')
        f = self.ws.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b''))
        # Pings are not messages for the worker.
        self.ws.send('after ping')
        self.assertEqual(self.ws.recv(), 'after ping')
        self.assertEqual([e['msg'] for e in self.cl.events(ev='message', id=self.cid)],
                         ['whoami', 'after ping'])

    def test_unsolicited_pong_ignored(self):
        self.ws.send_frame(OP_PONG, b'unasked')
        self.ws.send('still fine')
        self.assertEqual(self.ws.recv(), 'still fine')

    def test_fragmented_message_reassembled(self):
        text = 'fragmented message with a ping in the middle ' * 3
        self.ws.send_fragmented(OP_TEXT, text, nparts=4, ping_between=True)
        frames = []
        while True:
            f = self.ws.recv_frame()
            frames.append(f)
            if f.opcode == OP_TEXT:
                break
        pongs = [f for f in frames if f.opcode == OP_PONG]
        self.assertEqual(len(pongs), 3)
        self.assertEqual(frames[-1].payload.decode(), text)
        data = bytes(range(256)) * 10
        self.ws.send_fragmented(OP_BINARY, data, nparts=7)
        self.assertEqual(self.ws.recv_message(), (OP_BINARY, data))
        # Empty fragments are fine too.
        self.ws.send_frame(OP_TEXT, b'', fin=False)
        self.ws.send_frame(OP_CONT, b'x', fin=False)
        self.ws.send_frame(OP_CONT, b'', fin=True)
        self.assertEqual(self.ws.recv(), 'x')
        msgs = self.cl.events(ev='message', id=self.cid)
        self.assertEqual(msgs[1]['msg'], text)
        self.assertEqual(len(msgs), 4)

    def test_close_handshake_echoes_code(self):
        self.ws.send_close(4001, b'bye now')
        code, reason, before = self.ws.expect_close(5)
        self.assertEqual(code, 4001)
        self.assertEqual(before, [])
        self.ws.expect_eof(5)
        self.cl.wait_event(ev='close', id=self.cid)

    def test_close_normal(self):
        self.ws.send_close(1000)
        self.assertEqual(self.ws.expect_close(5)[0], 1000)
        self.ws.expect_eof(5)
        self.cl.wait_event(ev='close', id=self.cid)

    def test_close_without_code_answered_1000(self):
        self.ws.send_close(None)
        self.assertEqual(self.ws.expect_close(5)[0], 1000)
        self.ws.expect_eof(5)

    def test_nothing_after_close_is_processed(self):
        self.ws.send_raw(gwtest.ws_frame(OP_CLOSE, struct.pack('>H', 1000)) +
                         gwtest.ws_frame(OP_TEXT, 'after close'))
        self.assertEqual(self.ws.expect_close(5)[0], 1000)
        self.ws.expect_eof(5)
        self.cl.wait_event(ev='close', id=self.cid)
        self.assertFalse(self.cl.events(ev='message', msg='after close'))


class WebsocketConnect(gwtest.TestCase):
    """on_websocket_connect gets the request's path, query, headers and cookies."""

    def setUp(self):
        self.cl, self.host = self.start_cluster(listen=('websocket',))
        self.ws = self.cl.client('websocket', path='/chat/room?a=1&b=x%20y',
                                 headers=[('X-Test', 'hello there'),
                                          ('Cookie', 'sid=abc123; lang=en'),
                                          ('User-Agent', 'gwtest')])
        self.cid = self.ws.id
        self.ev = self.cl.wait_event(ev='ws_connect', id=self.cid)

    def test_path_query_headers_cookies(self):
        ev = self.ev
        self.assertEqual(ev['method'], 'GET')
        self.assertEqual(ev['uri'], '/chat/room?a=1&b=x%20y')
        self.assertEqual(ev['path'], '/chat/room')
        self.assertEqual(ev['query'], 'a=1&b=x%20y')
        self.assertEqual(ev['header_x_test'], 'hello there')
        self.assertEqual(ev['header_host'], '%s:%d' % self.host.listeners['websocket'])
        self.assertEqual(ev['cookie_sid'], 'abc123')
        self.assertEqual(ev['cookie_lang'], 'en')
        req = ev['request']
        self.assertEqual(req['headers']['user-agent'], 'gwtest')
        self.assertEqual(req['cookies'], {'sid': 'abc123', 'lang': 'en'})

    def test_query_parameters_decoded(self):
        """gw_request_get: percent-decoded query parameters ($_GET); the request JSON
        has "get" (docs/PROTOCOL.md, EV_WS_CONNECT)."""
        self.assertEqual(self.ev['get_a'], '1')
        self.assertEqual(self.ev['get_b'], 'x y')
        self.assertEqual(self.ev['request'].get('get'), {'a': '1', 'b': 'x y'})

    def test_event_order(self):
        """connect (TCP accepted), then ws_connect (handshake), then messages."""
        self.ws.send('first')
        self.assertEqual(self.ws.recv(), 'first')
        evs = [e['ev'] for e in self.cl.events(id=self.cid)]
        self.assertEqual(evs, ['connect', 'ws_connect', 'message', 'message'])
        self.assertEqual(self.cl.events(ev='connect', id=self.cid)[0]['proto'], 'websocket')


if __name__ == '__main__':
    gwtest.main()
