"""Echo over the three client protocols: WebSocket (text and binary), text lines
(LF and CRLF) and length-prefixed frames; messages split byte by byte; messages of
max_message_size; oversize messages close the client."""

import hashlib
import struct

import gwtest
from gwtest import OP_BINARY, OP_CONT, OP_TEXT

MAX = 1048576  # the default gateway.max_message_size


class Echo(gwtest.TestCase):

    def setUp(self):
        self.cl, self.host = self.start_cluster()

    def test_websocket_text_and_binary(self):
        ws = self.cl.client('websocket')
        text = 'héllo wörld \u2713 \U0001F600'
        ws.send_text(text)
        self.assertEqual(ws.recv_message(), (OP_TEXT, text.encode()))
        data = bytes(range(256)) * 3
        ws.send_binary(data)
        self.assertEqual(ws.recv_message(), (OP_BINARY, data))
        ws.send_text('')
        self.assertEqual(ws.recv_message(), (OP_TEXT, b''))
        ws.send_binary(b'')
        self.assertEqual(ws.recv_message(), (OP_BINARY, b''))
        # A binary reply made by the module (GW_BINARY).
        ws.send_text('bin')
        self.assertEqual(ws.recv_message(), (OP_BINARY, bytes(range(256))))
        # Several frames in one TCP write, answered in order.
        ws.send_raw(b''.join(gwtest.ws_frame(OP_TEXT, 'm%d' % i) for i in range(20)))
        self.assertEqual([ws.recv() for _ in range(20)], ['m%d' % i for i in range(20)])
        # The worker saw them as text and binary.
        ev = self.cl.wait_event(ev='message', msg=text)
        self.assertEqual(ev['binary'], 0)
        self.assertEqual(ev['proto'], 'websocket')
        self.cl.wait_event(ev='message', len=768, binary=1)

    def test_text_lines_lf_and_crlf(self):
        t = self.cl.client('text')
        t.send('plain')
        self.assertEqual(t.recv(), 'plain')
        t.send('windows', eol=b'\r\n')
        self.assertEqual(t.recv(), 'windows')
        # Several lines in one write, mixed endings, and an empty line.
        t.send_raw('a\nb\r\n\nünï\n'.encode())
        self.assertEqual([t.recv() for _ in range(4)], ['a', 'b', '', 'ünï'])
        # A line split over two writes.
        t.send_raw(b'fir')
        t.send_raw(b'st\nsecond\n')
        self.assertEqual([t.recv(), t.recv()], ['first', 'second'])
        ev = self.cl.wait_event(ev='message', msg='windows')
        self.assertEqual(ev['len'], 7, 'the CR of CRLF must not reach the worker')
        self.assertEqual(ev['proto'], 'text')

    def test_frame(self):
        f = self.cl.client('frame')
        f.send('framed')
        self.assertEqual(f.recv(), 'framed')
        f.send(b'')
        self.assertEqual(f.recv_bytes(), b'')
        blob = bytes(range(256))  # not UTF-8: the module echoes it as binary
        f.send(blob)
        self.assertEqual(f.recv_bytes(), blob)
        f.send('line\nbreaks\ninside')
        self.assertEqual(f.recv(), 'line\nbreaks\ninside')
        f.send_raw(b''.join(f.encode(b'n%d' % i) for i in range(20)))
        self.assertEqual([f.recv() for _ in range(20)], ['n%d' % i for i in range(20)])
        self.assertEqual(self.cl.wait_event(ev='message', msg='framed')['proto'], 'frame')

    def test_split_byte_by_byte(self):
        ws = gwtest.WsClient(*self.host.listeners['websocket'], bytewise=True)
        self.addCleanup(ws.close)
        t = self.cl.client('text')
        f = self.cl.client('frame')
        msg = 'split \u00e9\u20ac\U0001F600 end'  # multi-byte characters split too
        ws.send_bytewise(gwtest.ws_frame(OP_TEXT, msg))
        self.assertEqual(ws.recv(), msg)
        # A fragmented message, every frame split byte by byte.
        ws.send_bytewise(gwtest.ws_frame(OP_BINARY, b'\x00\x01', fin=False) +
                         gwtest.ws_frame(OP_CONT, b'\x02\x03', fin=True))
        self.assertEqual(ws.recv_message(), (OP_BINARY, b'\x00\x01\x02\x03'))
        t.send_bytewise((msg + '\r\n').encode())
        self.assertEqual(t.recv(), msg)
        f.send_bytewise(f.encode(msg.encode()))
        self.assertEqual(f.recv(), msg)
        # Two messages whose boundary falls inside one write.
        raw = f.encode(b'one') + f.encode(b'two')
        f.send_raw(raw[:9])
        f.send_raw(raw[9:])
        self.assertEqual([f.recv(), f.recv()], ['one', 'two'])

    def test_message_of_max_size(self):
        ws, t, f = (self.cl.client(p) for p in ('websocket', 'text', 'frame'))
        body = (b'abcdefghij' * (MAX // 10 + 1))[:MAX]
        digest = hashlib.sha256(body).hexdigest()
        ws.send_text(body)
        op, got = ws.recv_message(30)
        self.assertEqual((op, len(got), hashlib.sha256(got).hexdigest()), (OP_TEXT, MAX, digest))
        # A fragmented message of exactly max_message_size.
        ws.send_fragmented(OP_BINARY, body, nparts=5)
        op, got = ws.recv_message(30)
        self.assertEqual((op, len(got), hashlib.sha256(got).hexdigest()),
                         (OP_BINARY, MAX, digest))
        t.send(body)
        got = t.recv_bytes(30)
        self.assertEqual((len(got), hashlib.sha256(got).hexdigest()), (MAX, digest))
        f.send(body)
        got = f.recv_bytes(30)
        self.assertEqual((len(got), hashlib.sha256(got).hexdigest()), (MAX, digest))
        # And the connections still work.
        for c in (ws, t, f):
            c.send('after')
            self.assertEqual(c.recv(), 'after')

    def test_large_reply_from_the_module(self):
        ws, t = self.cl.client('websocket'), self.cl.client('text')
        for c in (ws, t):
            c.send('big:%d' % (MAX - 100))
            self.assertEqual(c.recv(30), 'x' * (MAX - 100))


class Oversize(gwtest.TestCase):
    """max_message_size 4096: a larger message closes the client (WebSocket 1009)."""

    LIMIT = 4096

    def setUp(self):
        self.cl, self.host = self.start_cluster(gateway={'max_message_size': self.LIMIT})

    def assert_no_big_message(self, cid):
        self.assertFalse([e for e in self.cl.events(ev='message', id=cid)
                          if e['len'] > self.LIMIT], 'an oversize message reached the worker')

    def test_websocket_1009(self):
        ws = self.cl.client('websocket')
        ws.id
        ws.send_text('x' * self.LIMIT)  # exactly the limit: fine
        self.assertEqual(len(ws.recv()), self.LIMIT)
        ws.send_text('x' * (self.LIMIT + 1))
        code, _, before = ws.expect_close(5)
        self.assertEqual(code, 1009)
        self.assertEqual(before, [])
        ws.expect_eof(5)
        self.cl.wait_event(ev='close', id=ws.id)
        self.assert_no_big_message(ws.id)

    def test_websocket_fragmented_1009(self):
        ws = self.cl.client('websocket')
        ws.id
        ws.send_frame(OP_TEXT, 'a' * 3000, fin=False)
        ws.send_frame(OP_CONT, 'b' * 3000, fin=True)
        code, _, _ = ws.expect_close(5)
        self.assertEqual(code, 1009)
        ws.expect_eof(5)
        self.cl.wait_event(ev='close', id=ws.id)

    def test_websocket_announced_length_1009(self):
        """A header announcing 2^40 bytes fails at once, before any payload."""
        ws = self.cl.client('websocket')
        ws.id
        ws.send_raw(struct.pack('>BBQ', 0x82, 0xFF, 1 << 40) + b'\x01\x02\x03\x04')
        code, _, _ = ws.expect_close(5)
        self.assertEqual(code, 1009)
        ws.expect_eof(5)

    def test_text_closed(self):
        t = self.cl.client('text')
        cid = t.id
        t.send('y' * self.LIMIT)
        self.assertEqual(len(t.recv()), self.LIMIT)
        t.send('y' * (self.LIMIT + 1))
        self.assertEqual(t.expect_eof(5), b'')
        self.cl.wait_event(ev='close', id=cid)
        self.assert_no_big_message(cid)

    def test_text_closed_without_newline(self):
        """An unterminated line longer than the limit is refused before its end."""
        t = self.cl.client('text')
        cid = t.id
        t.send_raw(b'z' * (self.LIMIT + 10))
        self.assertEqual(t.expect_eof(5), b'')
        self.cl.wait_event(ev='close', id=cid)

    def test_frame_closed(self):
        f = self.cl.client('frame')
        cid = f.id
        f.send(b'q' * self.LIMIT)
        self.assertEqual(len(f.recv_bytes()), self.LIMIT)
        # Only the header: the gateway decides from the announced length.
        f.send_raw(struct.pack('>I', self.LIMIT + 5))
        self.assertEqual(f.expect_eof(5), b'')
        self.cl.wait_event(ev='close', id=cid)

    def test_frame_length_below_4_closed(self):
        f = self.cl.client('frame')
        cid = f.id
        f.send_raw(struct.pack('>I', 3))
        self.assertEqual(f.expect_eof(5), b'')
        self.cl.wait_event(ev='close', id=cid)

    def test_others_unaffected(self):
        """Closing one oversize client leaves the others connected."""
        ok = [self.cl.client(p) for p in ('websocket', 'text', 'frame')]
        bad = self.cl.client('text')
        bad.send('y' * (self.LIMIT + 1))
        bad.expect_eof(5)
        for c in ok:
            c.send('still here')
            self.assertEqual(c.recv(), 'still here')


class EchoExample(gwtest.TestCase):
    """The shipped example module examples/echo works in a cluster."""

    def test_echo_module(self):
        cl, host = self.start_cluster(module='echo')
        ws, t, f = (cl.client(p) for p in ('websocket', 'text', 'frame'))
        for c in (ws, t, f):
            c.send('example %s' % c.proto)
            self.assertEqual(c.recv(), 'example %s' % c.proto)
        ws.send_binary(b'\xff\x00')
        self.assertEqual(ws.recv_message(), (OP_BINARY, b'\xff\x00'))


if __name__ == '__main__':
    gwtest.main()
