"""gwctl against a running cluster of 2 gateways x 2 workers (issue 3, item 6):
every subcommand, text and --json output, --register (repeatable), --config,
--secret-key, --binary, and a non-zero exit with a clear message when nothing
answers (wrong register port, wrong secret key, every gateway stopped) or the
input is bad."""

import json
import time

import gwtest
from test_api_util import (MAX_MESSAGE, ApiCluster, Paused, eventually, gwctl_binary, run_gwctl,
                           sync_all)

GHOST = '0a0000010b5400000001'


class Gwctl(gwtest.TestCase):

    def setUp(self):
        gwctl_binary()
        # node_timeout long: a SIGSTOPped gateway stays in the roster.
        self.api = ApiCluster(self, cluster={'node_timeout': 30.0})
        self.c = self.api.spread(2)  # c0 ws, c1 text (A); c2 frame, c3 ws (B)
        c, ctl = self.c, self.c[0]
        self.ctl = ctl
        for op, args in (('bind_uid', dict(id=c[1].id, uid='42')),
                         ('bind_uid', dict(id=c[2].id, uid='42')),
                         ('bind_uid', dict(id=c[3].id, uid='7')),
                         ('join_group', dict(id=c[0].id, group='room:lobby')),
                         ('join_group', dict(id=c[3].id, group='room:lobby')),
                         ('set_session', dict(id=c[3].id, session={'name': 'ann'}))):
            self.assertEqual(ctl.rc(op, **args), 0)

    def gwctl(self, *args, timeout='3'):
        return run_gwctl(self, ['--register', self.api.register, '--timeout', timeout] +
                         list(args))

    def ok(self, *args):
        rc, out, err = self.gwctl(*args)
        self.assertEqual(rc, 0, 'gwctl %s: %s%s' % (' '.join(args), out, err))
        return out

    def test_gateways(self):
        out = self.ok('gateways')
        self.assertEqual(sorted(out.split()), sorted(h.gateway_addr() for h in self.api.hosts))

    def test_send_to_client(self):
        for t in self.c:
            self.assertEqual(self.ok('send-to-client', t.id, 'hello ' + t.id), '')
            self.assertEqual(t.push(), 'hello ' + t.id)
        self.assertEqual(json.loads(self.ok('--json', 'send-to-client', self.c[3].id, 'j')),
                         {'ok': True})
        self.assertEqual(self.c[3].push(), 'j')
        self.ok('--binary', 'send-to-client', self.c[3].id, 'bin')
        self.assertEqual(self.c[3].push(), b'bin')

    def test_send_to_uid_group_all(self):
        c = self.c
        self.ok('send-to-uid', '42', 'to 42')
        self.ok('send-to-group', 'room:lobby', 'to lobby')
        self.ok('send-to-all', 'to all')
        self.ok('send-to-uid', 'nobody', 'lost')
        self.ok('send-to-group', 'nothing', 'lost')
        # gwctl's sends are ordered among themselves per gateway: 'to all' came last.
        got = {x.id: x.pushes_until('to all') for x in c}
        self.assertEqual(got, {c[0].id: ['to lobby', 'to all'], c[1].id: ['to 42', 'to all'],
                               c[2].id: ['to 42', 'to all'],
                               c[3].id: ['to lobby', 'to all']})
        got = sync_all(c, self.ctl, 'marker')
        self.assertEqual(got, {x.id: [] for x in c})

    def test_close_client(self):
        ws = self.c[3]
        self.ok('close-client', ws.id, 'bye')
        code, _, before = ws.conn.expect_close(5)
        self.assertEqual((code, before), (1000, [(gwtest.OP_TEXT, b'bye')]))
        ws.conn.send_close(1000)
        self.api.wait_event(ev='close', id=ws.id)
        t = self.c[1]
        self.ok('close-client', t.id)
        t.conn.expect_eof(5)
        eventually(lambda: self.ok('is-online', t.id).strip() == 'false', 'offline')

    def test_is_online(self):
        self.assertEqual(self.ok('is-online', self.c[2].id), 'true\n')
        r = json.loads(self.ok('--json', 'is-online', self.c[0].id))
        self.assertEqual(r, {'online': True, 'complete': True, 'gateways': 1, 'answered': 1})
        unknown = self.c[2].id[:12] + '%08x' % ((int(self.c[2].id[12:], 16) + 99) & 0xffffffff)
        self.assertEqual(self.ok('is-online', unknown), 'false\n')

    def test_count(self):
        self.assertEqual(self.ok('count'), '4\n')
        self.assertEqual(self.ok('count', '--group', 'room:lobby'), '2\n')
        self.assertEqual(self.ok('count', '--group', 'nothing'), '0\n')
        r = json.loads(self.ok('--json', 'count'))
        self.assertEqual(r, {'count': 4, 'complete': True, 'gateways': 2, 'answered': 2})

    def test_list(self):
        c = self.c
        self.assertEqual(sorted(self.ok('list').split()), sorted(x.id for x in c))
        self.assertEqual(sorted(self.ok('list', '--group', 'room:lobby').split()),
                         sorted([c[0].id, c[3].id]))
        self.assertEqual(sorted(self.ok('list', '--uid', '42').split()), sorted([c[1].id, c[2].id]))
        self.assertEqual(self.ok('list', '--uid', 'nobody'), '')
        r = json.loads(self.ok('--json', 'list', '--uid', '7'))
        self.assertEqual(r, {'clients': [c[3].id], 'complete': True, 'gateways': 2,
                             'answered': 2})
        r = json.loads(self.ok('--json', 'list'))
        self.assertEqual(sorted(r['clients']), sorted(x.id for x in c))
        rc, out, err = self.gwctl('list', '--uid', '42', '--group', 'room:lobby')
        self.assertEqual(rc, 2)
        self.assertIn('usage', err)

    def test_session_get_and_set(self):
        t = self.c[3]
        self.assertEqual(json.loads(self.ok('session', 'get', t.id)), {'name': 'ann'})
        self.assertEqual(self.ok('session', 'set', t.id, '{"name":"bob","n":[1,2]}'), '')
        self.assertEqual(json.loads(self.ok('session', 'get', t.id)),
                         {'name': 'bob', 'n': [1, 2]})
        self.assertEqual(t.call('session_get')['session'], {'name': 'bob', 'n': [1, 2]})
        r = json.loads(self.ok('--json', 'session', 'get', t.id))
        self.assertEqual(r, {'session': {'name': 'bob', 'n': [1, 2]}, 'complete': True,
                             'gateways': 1, 'answered': 1})
        for bad in ('{"name":', '[1,2]', '"text"', ''):
            rc, out, err = self.gwctl('session', 'set', t.id, bad)
            self.assertEqual(rc, 2, bad)
            self.assertIn('not a JSON object', err)
        self.assertEqual(t.call('session_get')['session'], {'name': 'bob', 'n': [1, 2]})
        self.assertEqual(self.ok('session', 'get', self.c[0].id), '{}\n')

    def test_connections(self):
        out = self.ok('connections')
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith('CLIENT_ID'), out)
        self.assertEqual(len(lines), 1 + len(self.c))
        for x in self.c:
            row = [l for l in lines if l.startswith(x.id)]
            self.assertEqual(len(row), 1, out)
            self.assertIn(x.proto, row[0])
        rows = json.loads(self.ok('--json', 'connections'))['connections']
        by_id = {r['client_id']: r for r in rows}
        self.assertEqual(sorted(by_id), sorted(x.id for x in self.c))
        self.assertEqual(by_id[self.c[3].id]['uid'], '7')
        self.assertEqual(by_id[self.c[3].id]['groups'], ['room:lobby'])
        self.assertEqual(by_id[self.c[3].id]['gateway'], self.api.b.gateway_addr())

    def test_register_repeatable_and_config(self):
        dead = '127.0.0.1:%d' % gwtest.ephemeral_port()
        rc, out, err = run_gwctl(self, ['--register', dead, '--register', self.api.register,
                                        '--timeout', '3', 'count'])
        self.assertEqual((rc, out), (0, '4\n'), err)
        rc, out, err = run_gwctl(self, ['--config', self.api.b.path, '--timeout', '3', 'count'])
        self.assertEqual((rc, out), (0, '4\n'), err)

    def test_nothing_answers(self):
        dead = '127.0.0.1:%d' % gwtest.ephemeral_port()
        t0 = time.monotonic()
        rc, out, err = run_gwctl(self, ['--register', dead, '--timeout', '1', 'count'])
        self.assertEqual(rc, 1)
        self.assertIn('cannot reach the cluster', err)
        self.assertIn('no register answered', err)
        self.assertEqual(out, '')
        for cmd in (['send-to-all', 'x'], ['gateways']):
            rc, out, err = run_gwctl(self, ['--register', dead, '--timeout', '1'] + cmd)
            self.assertEqual(rc, 1, cmd)
            self.assertIn('no register answered', err)
        self.assertLess(time.monotonic() - t0, 20)
        for bad in ('nonsense', '127.0.0.1', '127.0.0.1:0', 'host:1238'):
            rc, out, err = run_gwctl(self, ['--register', bad, '--timeout', '1', 'count'])
            self.assertEqual(rc, 1, bad)
            self.assertIn('register address', err)

    def test_incomplete_and_no_gateway(self):
        # Quick, while B is still in gwctl's own view of the roster (libgwclient
        # forgets a node the registers have not heard from for 3 s).
        with Paused(self, self.api.gateway(self.api.b)):
            rc, out, err = self.gwctl('count', timeout='0.5')
            self.assertEqual((rc, out), (0, '2\n'), err)
            self.assertIn('1 of 2 gateways answered', err)
            self.assertIn('incomplete', err)
            rc, out, err = self.gwctl('--json', 'count', timeout='0.5')
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out),
                             {'count': 2, 'complete': False, 'gateways': 2, 'answered': 1})
            with Paused(self, self.api.gateway(self.api.a)):
                for cmd in (['list'], ['is-online', self.c[0].id]):
                    rc, out, err = self.gwctl(*cmd, timeout='0.5')
                    self.assertEqual((rc, out), (1, ''), cmd)
                    self.assertIn('no gateway answered within 0.5 s', err)
        eventually(lambda: self.ok('count') == '4\n', 'both gateways back')

    def test_bad_arguments(self):
        rc, out, err = self.gwctl('send-to-client', GHOST, 'x')
        self.assertEqual(rc, 1)
        self.assertIn("gateway is not in the cluster", err)
        rc, out, err = self.gwctl('send-to-client', 'not-an-id', 'x')
        self.assertEqual(rc, 1)
        self.assertIn('invalid argument', err)
        rc, out, err = self.gwctl('send-to-uid', '', 'x')
        self.assertEqual(rc, 1)
        self.assertIn('invalid argument', err)
        rc, out, err = self.gwctl('is-online', 'not-an-id')
        self.assertEqual(rc, 1)
        self.assertIn('invalid argument', err)
        rc, out, err = run_gwctl(self, ['--config', self.api.a.path, '--timeout', '3',
                                        'send-to-all', 'x' * (MAX_MESSAGE + 1)])
        self.assertEqual(rc, 1)
        self.assertIn('max_message_size', err)
        for args in (['frobnicate'], ['send-to-client', 'x'], ['session', 'get'], ['count', 'x'],
                     ['--timeout', '0', 'count']):
            rc, out, err = self.gwctl(*args)
            self.assertEqual(rc, 2, args)
        rc, out, err = run_gwctl(self, ['--help'])
        self.assertEqual(rc, 0)
        for cmd in ('send-to-client', 'send-to-uid', 'send-to-group', 'send-to-all', 'close-client',
                    'is-online', 'count', 'list', 'session get', 'session set', 'connections',
                    'gateways', '--register', '--secret-key', '--json'):
            self.assertIn(cmd, out)
        # Nobody received anything from the refused commands.
        got = sync_all(self.c, self.ctl, 'marker')
        self.assertEqual(got, {x.id: [] for x in self.c})


class GwctlSecret(gwtest.TestCase):
    """A cluster with a secret_key: gwctl needs it (--secret-key or --config)."""

    def setUp(self):
        gwctl_binary()
        self.api = ApiCluster(self, secret_key='s3cret')
        self.c = self.api.client(self.api.b, 'websocket')
        self.reg = ['--register', self.api.register, '--timeout', '2']

    def test_secret_key(self):
        c, reg = self.c, self.reg
        rc, out, err = run_gwctl(self, reg + ['--secret-key', 's3cret', 'count'])
        self.assertEqual((rc, out), (0, '1\n'), err)
        rc, out, err = run_gwctl(self, reg + ['--secret-key', 's3cret', 'send-to-client', c.id,
                                             'signed'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(c.push(), 'signed')
        rc, out, err = run_gwctl(self, ['--config', self.api.a.path, '--timeout', '2', 'count'])
        self.assertEqual((rc, out), (0, '1\n'), err)
        # A wrong key, or none: no register answers (it drops what it cannot
        # authenticate), and nothing is delivered.
        for key in (['--secret-key', 'wrong'], []):
            for cmd in (['count'], ['send-to-client', c.id, 'forged'], ['gateways']):
                rc, out, err = run_gwctl(self, reg + key + cmd)
                self.assertEqual((rc, out), (1, ''), key + cmd)
                self.assertIn('no register answered: check the register addresses and '
                              'secret_key', err)
        self.assertTrue(c.no_push(0.5))


if __name__ == '__main__':
    gwtest.main()
