"""on_websocket_connect may refuse the handshake (issue 3, item 5): with
gateway.websocket_auth on, the module's verdict comes before the 101; a refusal is
an HTTP status with its reason phrase on the status line and the module's reason
as the body, then the connection closes. Off by default: the handshake is answered
at once and the module cannot refuse.

Events of a refused client, as documented: on_connect (the upgrade request
arrived), on_websocket_connect (where it was refused), on_close - and nothing
else, even if the client sent frames right after its request."""

import gwtest
from gwtest import OP_TEXT, WsClient, ws_frame
from test_api_util import ApiCluster, ApiClient, GW_EINVAL, eventually

TOKEN = 'secret'


def raw_upgrade(host, path, extra=b''):
    """Sends an upgrade request (and `extra` bytes right after it); returns the
    connection and the parsed response (status, headers, body, head)."""
    c = WsClient(host.listeners['websocket'][0], host.listeners['websocket'][1],
                 handshake=False)
    c.send_raw(c.handshake_request(path) + extra)
    return c, c.read_http_response()


class WebSocketAuth(gwtest.TestCase):

    def setUp(self):
        self.api = ApiCluster(self, gateway={'websocket_auth': True},
                              module_config={'ws_token': TOKEN})

    def events_of(self, cid):
        return [e['ev'] for e in self.api.events(id=cid)]

    def test_refused_with_401(self):
        for host in self.api.hosts:
            for path in ('/chat', '/chat?token=wrong', '/chat?tok=secret'):
                with self.subTest(host=host.name, path=path):
                    n_before = len(self.api.events(ev='ws_connect'))
                    msg = ws_frame(OP_TEXT, b'{"op":"echo","data":"sneaked in","seq":1}')
                    c, (status, headers, body, head) = raw_upgrade(host, path, extra=msg)
                    first = head.split(b'\r\n', 1)[0]
                    self.assertEqual(first, b'HTTP/1.1 401 Unauthorized')
                    self.assertEqual(status, 401)
                    self.assertEqual(body, b'token required\n')
                    self.assertEqual(headers.get('connection'), 'close')
                    self.assertNotIn('sec-websocket-accept', headers)
                    self.assertEqual(c.expect_eof(5), b'')
                    c.close()
                    ev = eventually(lambda: self.api.events(ev='ws_connect')[n_before:],
                                    'ws_connect event')[0]
                    cid = ev['id']
                    self.assertEqual(ev['rc_reject'], 0)
                    self.assertEqual(ev['path'], '/chat')
                    self.api.wait_event(ev='close', id=cid)
                    self.assertEqual(self.events_of(cid), ['connect', 'ws_connect', 'close'])
        # A later event proves every worker handled all of the above: still no
        # message from the refused clients.
        ok = self.api.client(self.api.a, 'websocket', path='/?token=' + TOKEN)
        ok2 = self.api.client(self.api.b, 'websocket', path='/?token=' + TOKEN)
        for c in (ok, ok2):
            self.assertEqual(c.rc('echo', data='sync'), 0)
        self.assertEqual([e for e in self.api.events(ev='message')
                          if 'sneaked' in (e.get('msg') or '')], [])

    def test_accepted_with_the_token(self):
        for host in self.api.hosts:
            with self.subTest(host=host.name):
                msg = ws_frame(OP_TEXT, b'{"op":"echo","data":"early","seq":"early"}')
                c, (status, headers, body, head) = raw_upgrade(
                    host, '/chat?token=%s&x=1' % TOKEN, extra=msg)
                self.assertEqual(status, 101, head)
                self.assertEqual(headers['sec-websocket-accept'], gwtest.ws_accept(c.key))
                # The frame sent with the request waited for the verdict, then ran.
                api_c = ApiClient(c)
                self.assertEqual(api_c.reply('early')['rc'], 0)
                self.assertEqual(api_c.push(), 'early')
                info = api_c.whoami()
                self.assertEqual(self.events_of(info['client_id'])[:3],
                                 ['connect', 'ws_connect', 'message'])
                ev = self.api.wait_event(ev='ws_connect', id=info['client_id'])
                self.assertNotIn('rc_reject', ev)
                self.assertEqual(ev['query'], 'token=%s&x=1' % TOKEN)

    def test_other_statuses_and_bad_ones(self):
        # An invalid status is refused (GW_EINVAL) and the handshake goes on.
        c = self.api.client(self.api.a, 'websocket', path='/?token=%s&try_status=200' % TOKEN)
        self.assertEqual(self.api.wait_event(ev='ws_connect', id=c.id)['rc_try'], GW_EINVAL)
        c = self.api.client(self.api.b, 'websocket', path='/?token=%s&try_status=600' % TOKEN)
        self.assertEqual(self.api.wait_event(ev='ws_connect', id=c.id)['rc_try'], GW_EINVAL)
        # Any 4xx/5xx with the module's reason as the body.
        for st, phrase in ((403, b'Forbidden'), (429, b'Too Many Requests'),
                           (503, b'Service Unavailable')):
            conn, (status, headers, body, head) = raw_upgrade(
                self.api.b, '/?token=%s&try_status=%d' % (TOKEN, st))
            self.assertEqual(head.split(b'\r\n', 1)[0], b'HTTP/1.1 %d %s' % (st, phrase))
            self.assertEqual(body, b'tried\n')
            conn.expect_eof(5)

    def test_text_and_frame_clients_unaffected(self):
        for host in self.api.hosts:
            for proto in ('text', 'frame'):
                c = self.api.client(host, proto)
                self.assertEqual(c.rc('echo', data='hi'), 0)
                self.assertEqual(c.push(), 'hi')
                self.assertNotIn('ws_connect', self.events_of(c.id))


class WebSocketAuthOff(gwtest.TestCase):
    """Off (the default): no round trip, the handshake is answered at once; a
    module that calls gw_websocket_reject cannot refuse it."""

    def test_module_cannot_refuse_when_off(self):
        api = ApiCluster(self, module_config={'ws_token': TOKEN})
        c = api.client(api.b, 'websocket', path='/no-token')
        ev = api.wait_event(ev='ws_connect', id=c.id)
        self.assertIn('rc_reject', ev)  # the module tried
        self.assertEqual(c.rc('echo', data='still open'), 0)
        self.assertEqual(c.push(), 'still open')


if __name__ == '__main__':
    gwtest.main()
