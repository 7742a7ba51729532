"""Bad input to every gw_* function of include/gatewayworker.h gives the documented
error and changes nothing (issue 3, "Tests"): malformed and unknown client ids,
oversize messages, text that is not UTF-8, names that are empty, too long or not
UTF-8, sessions that are not JSON objects or too big, close codes a client may not
see, the *_current_client functions outside an event, gw_wait, timers.

"Nothing changes" is checked three ways: a snapshot of the cluster's state (every
session, uid, group and connection) is the same before and after, no client
receives anything, and the gateways received no command at all for the refused
calls (their commands_in counters, read from their statistics pages)."""

import json

import gwtest
from test_api_util import (ApiCluster, GW_BINARY, GW_EINVAL, GW_ENOCONTEXT, GW_ETOOBIG,
                           GW_EUNREACHABLE, GW_EUTF8, GW_RAW, MAX_MESSAGE, eventually,
                           sync_all)

GHOST = '0a0000010b5400000001'  # a gateway that is not in the cluster


def fill(n, ch='x'):
    return {'fill': ch, 'n': n}


NOT_UTF8 = {'hex': 'c328'}        # an invalid 2-byte sequence
SURROGATE = {'hex': 'eda080'}     # UTF-16 surrogate encoded in UTF-8: invalid
OVERLONG = {'hex': 'c0af'}        # overlong '/': invalid


class BadInput(gwtest.TestCase):

    def setUp(self):
        self.api = ApiCluster(self, stats=True)
        self.ctl = self.api.client(self.api.a, 'websocket')     # issues the calls
        self.victim = self.api.client(self.api.b, 'websocket')  # their target
        self.other = self.api.client(self.api.b, 'text')
        self.everyone = [self.ctl, self.victim, self.other]
        ctl, v = self.ctl, self.victim
        self.assertEqual(ctl.rc('bind_uid', id=v.id, uid='vu'), 0)
        self.assertEqual(ctl.rc('join_group', id=v.id, group='vg'), 0)
        self.assertEqual(ctl.rc('join_group', id=self.other.id, group='vg'), 0)
        self.assertEqual(ctl.rc('set_session', id=v.id, session={'keep': 'me'}), 0)

    def bad_ids(self):
        v = self.victim.id
        return [None, '', 'nothex', 'z' * 20, v[:19], v + '0', v.upper(),
                v[:12] + '00000000',  # connection 0 does not exist
                v[:19] + ' ', ' ' + v[1:]]

    def snapshot(self):
        ctl = self.ctl
        conns = sorted((r['client_id'], r['uid'], sorted(r['groups']), r['protocol'])
                       for r in ctl.value('get_connections'))
        return {
            'sessions': ctl.value('get_all_client_sessions'),
            'groups': {k: sorted(v) for k, v in ctl.value('get_all_group_client_id_list').items()},
            'uids': sorted(ctl.value('get_all_uid_list')),
            'vu': ctl.value('get_client_id_by_uid', uid='vu'),
            'conns': conns,
            'count': ctl.value('get_all_client_count'),
        }

    def cases(self):
        """(op, args, expected rc) of every refused call."""
        v = self.victim.id
        big = fill(MAX_MESSAGE + 1)
        out = []
        for bid in self.bad_ids():
            out += [
                ('send_to_client', dict(id=bid, data='x'), GW_EINVAL),
                ('close_client', dict(id=bid), GW_EINVAL),
                ('destroy_client', dict(id=bid), GW_EINVAL),
                ('bind_uid', dict(id=bid, uid='u'), GW_EINVAL),
                ('unbind_uid', dict(id=bid, uid='vu'), GW_EINVAL),
                ('join_group', dict(id=bid, group='g'), GW_EINVAL),
                ('leave_group', dict(id=bid, group='vg'), GW_EINVAL),
                ('set_session', dict(id=bid, session={'a': 1}), GW_EINVAL),
                ('update_session', dict(id=bid, patch={'a': 1}), GW_EINVAL),
                ('send_to_all', dict(data='x', ids=[v, bid]), GW_EINVAL),
                ('send_to_all', dict(data='x', exclude=[bid]), GW_EINVAL),
                ('send_to_groups', dict(groups=['vg'], data='x', exclude=[v, bid]), GW_EINVAL),
                ('q', dict(q='is_online', id=bid), -GW_EINVAL),
                ('q', dict(q='get_session', id=bid), -GW_EINVAL),
                ('q', dict(q='get_uid_by_client_id', id=bid), -GW_EINVAL),
            ]
        # A gateway that is not in the cluster.
        out += [
            ('send_to_client', dict(id=GHOST, data='x'), GW_EUNREACHABLE),
            ('close_client', dict(id=GHOST, data='x'), GW_EUNREACHABLE),
            ('destroy_client', dict(id=GHOST), GW_EUNREACHABLE),
            ('bind_uid', dict(id=GHOST, uid='u'), GW_EUNREACHABLE),
            ('unbind_uid', dict(id=GHOST, uid='u'), GW_EUNREACHABLE),
            ('join_group', dict(id=GHOST, group='g'), GW_EUNREACHABLE),
            ('leave_group', dict(id=GHOST, group='g'), GW_EUNREACHABLE),
            ('set_session', dict(id=GHOST, session={}), GW_EUNREACHABLE),
            ('update_session', dict(id=GHOST, patch={}), GW_EUNREACHABLE),
        ]
        # Messages: too big, not UTF-8, missing.
        for data, rc in ((big, GW_ETOOBIG), (NOT_UTF8, GW_EUTF8), (SURROGATE, GW_EUTF8),
                         (OVERLONG, GW_EUTF8)):
            out += [
                ('send_to_client', dict(id=v, data=data), rc),
                ('send_to_current', dict(data=data), rc),
                ('echo', dict(data=data), rc),
                ('send_to_all', dict(data=data), rc),
                ('send_to_all', dict(data=data, ids=[v]), rc),
                ('send_to_uid', dict(uid='vu', data=data), rc),
                ('send_to_uids', dict(uids=['vu'], data=data), rc),
                ('send_to_group', dict(group='vg', data=data), rc),
                ('send_to_groups', dict(groups=['vg'], data=data), rc),
                ('close_client', dict(id=v, data=data), rc),
                ('close_current', dict(data=data), rc),
            ]
        for flags in (GW_BINARY, GW_RAW):  # too big whatever the flags
            out += [('send_to_client', dict(id=v, data=big, flags=flags), GW_ETOOBIG),
                    ('send_to_all', dict(data=big, flags=flags), GW_ETOOBIG),
                    ('send_to_uids', dict(uids=['vu'], data=big, flags=flags), GW_ETOOBIG),
                    ('send_to_groups', dict(groups=['vg'], data=big, flags=flags), GW_ETOOBIG)]
        for op, extra in (('send_to_client', dict(id=v)), ('send_to_current', {}),
                          ('send_to_all', {}), ('send_to_uid', dict(uid='vu')),
                          ('send_to_group', dict(group='vg')), ('close_client', dict(id=v))):
            out.append((op, dict(extra, data=None, len=5), GW_EINVAL))  # NULL data, len 5
        # Names: empty, NULL, longer than 1024 bytes, not UTF-8.
        for name, rc in (('', GW_EINVAL), (None, GW_EINVAL), (fill(1025, 'n'), GW_EINVAL),
                         (NOT_UTF8, GW_EUTF8), (SURROGATE, GW_EUTF8)):
            out += [
                ('bind_uid', dict(id=v, uid=name), rc),
                ('unbind_uid', dict(id=v, uid=name), rc),
                ('join_group', dict(id=v, group=name), rc),
                ('leave_group', dict(id=v, group=name), rc),
                ('ungroup', dict(group=name), rc),
                ('send_to_uid', dict(uid=name, data='x'), rc),
                ('send_to_uids', dict(uids=['vu', name], data='x'), rc),
                ('send_to_group', dict(group=name, data='x'), rc),
                ('send_to_groups', dict(groups=['vg', name], data='x'), rc),
                ('q', dict(q='get_client_count_by_group', group=name), -rc),
                ('q', dict(q='get_client_id_list_by_group', group=name), -rc),
                ('q', dict(q='get_client_sessions_by_group', group=name), -rc),
                ('q', dict(q='get_client_id_by_uid', uid=name), -rc),
                ('q', dict(q='is_uid_online', uid=name), -rc),
                ('q', dict(q='get_uid_list_by_group', group=name), -rc),
                ('q', dict(q='get_uid_count_by_group', group=name), -rc),
                ('q', dict(q='batch_get_client_id_by_uid', uids=['vu', name]), -rc),
                ('q', dict(q='batch_get_client_count_by_group', groups=['vg', name]), -rc),
            ]
        # Lists: NULL with a count.
        out += [
            ('send_to_uids', dict(uids=None, uids_n=2, data='x'), GW_EINVAL),
            ('send_to_groups', dict(groups=None, groups_n=2, data='x'), GW_EINVAL),
            ('send_to_groups', dict(groups=['vg'], exclude=None, exclude_n=0, data=big),
             GW_ETOOBIG),
            ('q', dict(q='batch_get_client_id_by_uid', uids=[]), -GW_EINVAL),
            ('q', dict(q='batch_get_client_id_by_uid', uids=None, uids_n=3), -GW_EINVAL),
            ('q', dict(q='batch_get_client_count_by_group', groups=[]), -GW_EINVAL),
            ('q', dict(q='batch_get_client_count_by_group', groups=None, groups_n=3), -GW_EINVAL),
        ]
        # Close codes a client may not receive (1004-1006, 1015, <1000, 2xxx, >4999).
        for code in (1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535):
            out.append(('close_client', dict(id=v, data='bye', code=code), GW_EINVAL))
        # Sessions that are not objects, or too big.
        for value in ([1, 2], 'text', 42, None, True):
            out += [('set_session', dict(id=v, session=value), GW_EINVAL),
                    ('update_session', dict(id=v, patch=value), GW_EINVAL),
                    ('set_session', dict(id='self', session=value), GW_EINVAL),
                    ('update_session', dict(id='self', patch=value), GW_EINVAL)]
        huge = {'big': {'$fill': 'x', '$n': MAX_MESSAGE}}
        out += [('set_session', dict(id=v, session=huge), GW_ETOOBIG),
                ('update_session', dict(id=v, patch=huge), GW_ETOOBIG)]
        # The handshake verdict outside on_websocket_connect.
        for status in (401, 200, 600):
            out.append(('ws_reject', dict(status=status), GW_ENOCONTEXT))
        return out

    def run_cases(self, cases):
        """Runs the cases in batches (one callback each); returns the mismatches."""
        wrong = []
        for i in range(0, len(cases), 30):
            chunk = cases[i:i + 30]
            r = self.ctl.call('batch', ops=[dict(args, op=op) for op, args, _ in chunk])
            for (op, args, want), got in zip(chunk, r['results']):
                if got is None or 'error' in got or got.get('rc') != want:
                    wrong.append((op, args, want, got))
        return wrong

    def test_refused_calls_change_nothing(self):
        pa, pb = self.api.gateway(self.api.a).page, self.api.gateway(self.api.b).page
        before = self.snapshot()
        pa.settle()
        pb.settle()
        in_a, in_b = pa.get('commands_in'), pb.get('commands_in')
        cases = self.cases()
        self.assertGreater(len(cases), 300)
        wrong = self.run_cases(cases)
        self.assertEqual(wrong, [], '\n'.join('%s %r: want %r, got %r' % w for w in wrong[:40]))
        pa.settle()
        pb.settle()
        # Nothing reached gateway B; gateway A got only the replies to ctl (one
        # per batch).
        self.assertEqual(pb.get('commands_in') - in_b, 0)
        self.assertEqual(pa.get('commands_in') - in_a, (len(cases) + 29) // 30)
        self.assertEqual(self.snapshot(), before)
        got = sync_all(self.everyone, self.ctl, 'marker')
        self.assertEqual(got, {c.id: [] for c in self.everyone})
        for c in self.everyone:
            self.assertEqual(c.rc('echo', data='alive'), 0)
            self.assertEqual(c.push(), 'alive')

    def test_unknown_client_on_a_live_gateway(self):
        """A well-formed id of a connection the gateway does not have (never was,
        or closed): the call is sent (0: queued), the gateway counts it as for an
        unknown client and does nothing."""
        v = self.victim.id
        unknown = v[:12] + '%08x' % ((int(v[12:], 16) + 1000) & 0xffffffff)
        gone = self.api.client(self.api.b, 'frame')
        gone_id = gone.id
        gone.close()
        self.api.wait_event(ev='close', id=gone_id)
        eventually(lambda: self.ctl.value('is_online', id=gone_id) is False, 'gone offline')
        pb = self.api.gateway(self.api.b).page
        before = self.snapshot()
        pb.settle()
        in_b, unk_b = pb.get('commands_in'), pb.get('unknown_client')
        ops = []
        for cid in (unknown, gone_id):
            ops += [('send_to_client', dict(id=cid, data='x')),
                    ('close_client', dict(id=cid, data='bye')),
                    ('destroy_client', dict(id=cid)),
                    ('bind_uid', dict(id=cid, uid='vu')),
                    ('unbind_uid', dict(id=cid, uid='vu')),
                    ('join_group', dict(id=cid, group='vg')),
                    ('leave_group', dict(id=cid, group='vg')),
                    ('set_session', dict(id=cid, session={'a': 1})),
                    ('update_session', dict(id=cid, patch={'a': 1}))]
        r = self.ctl.call('batch', ops=[dict(args, op=op) for op, args in ops])
        self.assertEqual([x['rc'] for x in r['results']], [0] * len(ops))
        # Queries about them answer "not there".
        for cid in (unknown, gone_id):
            self.assertIs(self.ctl.value('is_online', id=cid), False)
            self.assertIsNone(self.ctl.value('get_session', id=cid))
            self.assertIsNone(self.ctl.value('get_uid_by_client_id', id=cid))
        pb.settle()
        self.assertEqual(pb.get('commands_in') - in_b, len(ops) + 6)  # + the 6 queries
        self.assertEqual(pb.get('unknown_client') - unk_b, len(ops))
        self.assertEqual(self.snapshot(), before)
        got = sync_all(self.everyone, self.ctl, 'marker')
        self.assertEqual(got, {c.id: [] for c in self.everyone})

    def test_limits_accepted(self):
        """The edges of the refused ranges work: a message of exactly
        max_message_size, binary and raw bytes that are not UTF-8, a 1024-byte name,
        valid close codes."""
        v, ctl = self.victim, self.ctl
        self.assertEqual(ctl.rc('send_to_client', id=v.id, data=fill(MAX_MESSAGE, 'm')), 0)
        self.assertEqual(v.push(), 'm' * MAX_MESSAGE)
        self.assertEqual(ctl.rc('send_to_client', id=v.id, data=NOT_UTF8, flags=GW_BINARY), 0)
        self.assertEqual(v.push(), b'\xc3\x28')
        # GW_RAW: the bytes as they are, no framing: a WebSocket text frame built here.
        raw = bytes([0x81, 2]) + b'ok'
        self.assertEqual(ctl.rc('send_to_client', id=v.id, data={'hex': raw.hex()}, flags=GW_RAW),
                         0)
        self.assertEqual(v.push(), 'ok')
        name = fill(1024, 'n')
        self.assertEqual(ctl.rc('bind_uid', id=v.id, uid=name), 0)
        self.assertEqual(ctl.rc('join_group', id=v.id, group=name), 0)
        self.assertEqual(ctl.value('get_uid_by_client_id', id=v.id), 'n' * 1024)
        self.assertEqual(ctl.rc('send_to_uid', uid=name, data='long uid'), 0)
        self.assertEqual(ctl.rc('send_to_group', group=name, data='long group'), 0)
        self.assertEqual(v.pushes_until('long group'), ['long uid', 'long group'])
        self.assertEqual(ctl.rc('send_to_client', id=v.id, data=''), 0)  # empty message
        self.assertEqual(v.push(), '')
        for code in (1000, 1003, 1007, 1014, 3000, 4999):
            c = self.api.client(self.api.b, 'websocket')
            self.assertEqual(ctl.rc('close_client', id=c.id, code=code), 0)
            got, _, _ = c.conn.expect_close(5)
            self.assertEqual(got, code)

    def test_close_current_with_bad_message_does_not_close(self):
        c = self.api.client(self.api.a, 'websocket')
        self.assertEqual(c.rc('close_current', data=fill(MAX_MESSAGE + 1)), GW_ETOOBIG)
        self.assertEqual(c.rc('close_current', data=NOT_UTF8), GW_EUTF8)
        self.assertEqual(c.rc('echo', data='open'), 0)
        self.assertEqual(c.push(), 'open')
        self.assertTrue(self.ctl.value('is_online', id=c.id))

    def test_outside_an_event(self):
        # The timer's report comes as a message of its own (no seq).
        self.ctl.request('timer_ctx')
        report = json.loads(self.ctl.push())
        self.assertEqual(report['op'], 'timer_ctx')
        for k in ('send_current', 'send_current_ex', 'close_current', 'destroy_current',
                  'ws_reject'):
            self.assertEqual(report[k], GW_ENOCONTEXT, k)
        self.assertTrue(report['current_null'] and report['session_null'])
        self.assertEqual(report['is_binary'], 0)
        self.assertTrue(self.ctl.value('is_online', id=self.ctl.id))

    def test_timers_and_strerror(self):
        r = self.ctl.call('timer_bad')
        self.assertEqual((r['negative'], r['null_cb'], r['del_unknown']),
                         (-GW_EINVAL, -GW_EINVAL, GW_EINVAL))
        self.assertGreater(r['add'], 0)
        self.assertEqual((r['del'], r['del_again']), (0, GW_EINVAL))
        codes = list(range(0, 8)) + [-c for c in range(1, 8)] + [-12, 99, -99999]
        texts = self.ctl.call('strerror', codes=codes)['texts']
        self.assertTrue(all(isinstance(t, str) and t for t in texts), texts)
        self.assertEqual(len(set(texts[:8])), 8)  # each expected error has its own text
        self.assertEqual(texts[8:15], texts[1:8])  # -GW_E* as GW_E*

    def test_oversize_session_of_the_current_client(self):
        """gw_set_session / gw_update_session on the current client with a session
        the gateway would refuse (bigger than max_message_size)."""
        c = self.api.client(self.api.a, 'websocket')
        self.assertEqual(c.rc('session_put', set={'small': 1}), 0)
        huge = {'big': {'$fill': 'x', '$n': MAX_MESSAGE}}
        self.assertEqual(c.rc('set_session', id='self', session=huge), GW_ETOOBIG)
        self.assertEqual(c.rc('update_session', id='self', patch=huge), GW_ETOOBIG)
        self.assertEqual(c.call('session_get')['session'], {'small': 1})
        self.assertEqual(self.ctl.value('get_session', id=c.id), {'small': 1})

    def test_oversize_session_changed_in_place(self):
        """A change to gw_session() in place that makes the session bigger than the
        gateway keeps: the module's view and the gateway's copy must not part."""
        c = self.api.client(self.api.a, 'websocket')
        self.assertEqual(c.rc('session_put', set={'small': 1}), 0)
        self.assertEqual(c.rc('session_put', set={'big': {'$fill': 'x', '$n': MAX_MESSAGE}}), 0)
        at_gateway = sorted(self.ctl.value('get_session', id=c.id, keys_only=True))
        seen = sorted(c.call('session_get', keys_only=True)['keys'])
        self.assertEqual(seen, at_gateway, 'the worker and the gateway disagree')
        self.assertEqual(c.rc('session_put', set={'after': 2}), 0)
        at_gateway = sorted(self.ctl.value('get_session', id=c.id, keys_only=True))
        self.assertEqual(sorted(c.call('session_get', keys_only=True)['keys']), at_gateway)
        self.assertIn('after', at_gateway)


if __name__ == '__main__':
    gwtest.main()
