"""The Gateway API across 2 gateways x 2 workers (issue 3, items 1 and 2): uids,
groups, the sends that use them and the queries that list them, with
GatewayWorker's meaning and without its bugs: each client gets a multi-group or
multi-uid message once, uid and group "0" work, unbind_uid only unbinds the uid
named, list queries are complete, and uid/group sends reach only the gateways that
hold members (counted at each gateway through its statistics page)."""

import os

import gwtest
from gwtest import OP_BINARY, OP_TEXT
from test_api_util import (ApiCluster, GW_BINARY, GWCTL, run_gwctl, sync_all, eventually)


def ids(clients):
    return sorted(c.id for c in clients)


class Membership(gwtest.TestCase):

    def setUp(self):
        self.api = ApiCluster(self)
        # c[0], c[1] on gateway A; c[2], c[3] on gateway B; each gateway gave one of
        # its clients to each worker.
        self.c = self.api.spread(2)
        self.ctl = self.c[0]  # issues the commands: one worker, ordered per gateway

    def test_clients_spread_over_both_gateways_and_workers(self):
        gws = {c.info['gateway'] for c in self.c}
        self.assertEqual(gws, {'127.0.0.1', self.api.b.lan_ip})
        for host in self.api.hosts:
            on = [c for c in self.c if gwtest.parse_client_id(c.id)[1] == host.gateway_start]
            self.assertEqual(len(on), 2)
            self.assertEqual({c.pid for c in on}, set(self.api.worker_pids), on)

    def test_bind_uid_queries(self):
        c, ctl = self.c, self.ctl
        for cl, uid in ((c[0], 'u1'), (c[2], 'u1'), (c[1], 'u2')):
            self.assertEqual(ctl.rc('bind_uid', id=cl.id, uid=uid), 0)
        r = ctl.value('get_client_id_by_uid', uid='u1')
        self.assertEqual(sorted(r), ids([c[0], c[2]]), r)
        self.assertEqual(ctl.value('get_client_id_by_uid', uid='nobody'), [])
        self.assertIs(ctl.value('is_uid_online', uid='u1'), True)
        self.assertIs(ctl.value('is_uid_online', uid='nobody'), False)
        self.assertEqual(ctl.value('get_uid_by_client_id', id=c[1].id), 'u2')
        self.assertEqual(ctl.value('get_uid_by_client_id', id=c[2].id), 'u1')
        self.assertIsNone(ctl.value('get_uid_by_client_id', id=c[3].id))
        self.assertEqual(sorted(ctl.value('get_all_uid_list')), ['u1', 'u2'])
        # u1 is on both gateways: counted once.
        self.assertEqual(ctl.value('get_all_uid_count'), 2)
        batch = self._sorted_lists(ctl.value('batch_get_client_id_by_uid',
                                             uids=['u1', 'u2', 'nobody']))
        self.assertEqual({k: v for k, v in batch.items() if v},
                         {'u1': ids([c[0], c[2]]), 'u2': [c[1].id]})
        self.assertIn(batch.get('nobody', []), ([],))
        # Several clients per uid, one uid per client: a new bind replaces.
        self.assertEqual(ctl.rc('bind_uid', id=c[0].id, uid='u2'), 0)
        self.assertEqual(ctl.value('get_uid_by_client_id', id=c[0].id), 'u2')
        self.assertEqual(ctl.value('get_client_id_by_uid', uid='u1'), [c[2].id])
        self.assertEqual(sorted(ctl.value('get_client_id_by_uid', uid='u2')), ids([c[0], c[1]]))
        # Binding the uid a client already has changes nothing.
        self.assertEqual(ctl.rc('bind_uid', id=c[0].id, uid='u2'), 0)
        self.assertEqual(sorted(ctl.value('get_client_id_by_uid', uid='u2')), ids([c[0], c[1]]))

    @staticmethod
    def _sorted_lists(d):
        return {k: sorted(v) for k, v in d.items()}

    def test_unbind_uid_only_the_uid_named(self):
        c, ctl = self.c, self.ctl
        target = c[3]  # on gateway B
        self.assertEqual(ctl.rc('bind_uid', id=target.id, uid='alice'), 0)
        # GatewayWorker unbinds whatever uid the client has; here it is a no-op.
        self.assertEqual(ctl.rc('unbind_uid', id=target.id, uid='bob'), 0)
        self.assertEqual(ctl.value('get_uid_by_client_id', id=target.id), 'alice')
        self.assertIs(ctl.value('is_uid_online', uid='alice'), True)
        self.assertEqual(ctl.rc('unbind_uid', id=target.id, uid='alice'), 0)
        self.assertIsNone(ctl.value('get_uid_by_client_id', id=target.id))
        self.assertIs(ctl.value('is_uid_online', uid='alice'), False)
        self.assertEqual(ctl.value('get_all_uid_list'), [])
        # Unbinding a client that has no uid is a no-op too.
        self.assertEqual(ctl.rc('unbind_uid', id=target.id, uid='alice'), 0)
        self.assertEqual(ctl.rc('send_to_uid', uid='alice', data='lost'), 0)
        got = sync_all(c, ctl, 'marker')
        self.assertEqual(got, {x.id: [] for x in c})

    def test_send_to_uid_and_uids_each_client_once(self):
        c, ctl = self.c, self.ctl
        for cl, uid in ((c[0], 'a'), (c[2], 'a'), (c[1], 'b'), (c[3], 'c')):
            self.assertEqual(ctl.rc('bind_uid', id=cl.id, uid=uid), 0)
        self.assertEqual(ctl.rc('send_to_uid', uid='a', data='to a'), 0)
        self.assertEqual(ctl.rc('send_to_uids', uids=['a', 'b', 'a', 'nobody'], data='to a+b'), 0)
        self.assertEqual(ctl.rc('send_to_uids', uids=[], data='to nobody'), 0)
        got = sync_all(c, ctl, 'marker')
        self.assertEqual(got[c[0].id], ['to a', 'to a+b'])
        self.assertEqual(got[c[2].id], ['to a', 'to a+b'])
        self.assertEqual(got[c[1].id], ['to a+b'])
        self.assertEqual(got[c[3].id], [])
        # Binary flag: a WebSocket binary frame.
        ws = [x for x in c if x.proto == 'websocket'][0]
        self.assertEqual(ctl.rc('bind_uid', id=ws.id, uid='bin'), 0)
        self.assertEqual(ctl.rc('send_to_uids', uids=['bin'], data={'hex': '00ff10'},
                                flags=GW_BINARY), 0)
        self.assertEqual(ws.push(), b'\x00\xff\x10')

    def test_uid_and_group_zero(self):
        c, ctl = self.c, self.ctl
        self.assertEqual(ctl.rc('bind_uid', id=c[1].id, uid='0'), 0)
        self.assertEqual(ctl.rc('bind_uid', id=c[2].id, uid='0'), 0)
        self.assertEqual(ctl.rc('join_group', id=c[2].id, group='0'), 0)
        self.assertEqual(ctl.rc('join_group', id=c[3].id, group='0'), 0)
        self.assertEqual(sorted(ctl.value('get_client_id_by_uid', uid='0')), ids([c[1], c[2]]))
        self.assertIs(ctl.value('is_uid_online', uid='0'), True)
        self.assertEqual(ctl.value('get_uid_by_client_id', id=c[2].id), '0')
        self.assertEqual(ctl.value('get_all_uid_list'), ['0'])
        self.assertEqual(ctl.value('get_client_count_by_group', group='0'), 2)
        self.assertEqual(sorted(ctl.value('get_client_id_list_by_group', group='0')),
                         ids([c[2], c[3]]))
        self.assertEqual(ctl.value('get_uid_list_by_group', group='0'), ['0'])
        self.assertEqual(ctl.value('get_uid_count_by_group', group='0'), 1)
        self.assertEqual(ctl.value('get_all_group_id_list'), ['0'])
        self.assertEqual(ctl.value('get_all_group_uid_list'), {'0': ['0']})
        self.assertEqual(ctl.rc('send_to_uid', uid='0', data='uid zero'), 0)
        self.assertEqual(ctl.rc('send_to_group', group='0', data='group zero'), 0)
        got = sync_all(c, ctl, 'marker')
        self.assertEqual(got, {c[0].id: [], c[1].id: ['uid zero'],
                               c[2].id: ['uid zero', 'group zero'], c[3].id: ['group zero']})
        self.assertEqual(ctl.rc('unbind_uid', id=c[2].id, uid='0'), 0)
        self.assertEqual(ctl.rc('leave_group', id=c[2].id, group='0'), 0)
        self.assertEqual(ctl.value('get_client_id_by_uid', uid='0'), [c[1].id])
        self.assertEqual(ctl.value('get_client_id_list_by_group', group='0'), [c[3].id])
        self.assertEqual(ctl.rc('ungroup', group='0'), 0)
        self.assertEqual(ctl.value('get_all_group_id_list'), [])

    def test_groups_join_leave_ungroup(self):
        c, ctl = self.c, self.ctl
        for cl in c:
            self.assertEqual(ctl.rc('join_group', id=cl.id, group='room'), 0)
        self.assertEqual(ctl.rc('join_group', id=c[0].id, group='room'), 0)  # twice: once
        self.assertEqual(ctl.rc('join_group', id=c[1].id, group='other'), 0)
        self.assertEqual(ctl.value('get_client_count_by_group', group='room'), 4)
        self.assertEqual(sorted(ctl.value('get_client_id_list_by_group', group='room')), ids(c))
        self.assertEqual(sorted(ctl.value('get_all_group_id_list')), ['other', 'room'])
        self.assertEqual(ctl.value('get_client_count_by_group', group='none'), 0)
        self.assertEqual(ctl.value('get_client_id_list_by_group', group='none'), [])
        # Leaving a group one is not in, or one that does not exist: no-op.
        self.assertEqual(ctl.rc('leave_group', id=c[0].id, group='other'), 0)
        self.assertEqual(ctl.rc('leave_group', id=c[0].id, group='none'), 0)
        self.assertEqual(ctl.rc('leave_group', id=c[2].id, group='room'), 0)
        self.assertEqual(sorted(ctl.value('get_client_id_list_by_group', group='room')),
                         ids([c[0], c[1], c[3]]))
        self.assertEqual(ctl.rc('send_to_group', group='room', data='hi room'), 0)
        got = sync_all(c, ctl, 'm1')
        self.assertEqual(got, {c[0].id: ['hi room'], c[1].id: ['hi room'], c[2].id: [],
                               c[3].id: ['hi room']})
        # ungroup empties the group on both gateways; the members stay connected.
        self.assertEqual(ctl.rc('ungroup', group='room'), 0)
        self.assertEqual(ctl.value('get_client_count_by_group', group='room'), 0)
        self.assertEqual(ctl.value('get_all_group_id_list'), ['other'])
        self.assertEqual(ctl.value('get_all_client_count'), 4)
        self.assertEqual(ctl.rc('send_to_group', group='room', data='nobody'), 0)
        self.assertEqual(ctl.rc('ungroup', group='never-existed'), 0)
        got = sync_all(c, ctl, 'm2')
        self.assertEqual(got, {x.id: [] for x in c})
        for x in c:
            self.assertEqual(x.rc('echo', data='alive'), 0)
            self.assertEqual(x.push(), 'alive')

    def test_multi_group_send_once_with_exclude(self):
        c, ctl = self.c, self.ctl
        member = {c[0].id: ['g1', 'g2', 'g3'], c[1].id: ['g1'], c[2].id: ['g2', 'g3'],
                  c[3].id: ['g3']}
        for cid, groups in member.items():
            for g in groups:
                self.assertEqual(ctl.rc('join_group', id=cid, group=g), 0)
        self.assertEqual(ctl.rc('send_to_groups', groups=['g1', 'g2', 'g3'], data='once'), 0)
        self.assertEqual(ctl.rc('send_to_groups', groups=['g3', 'g3', 'none'], data='g3 twice'), 0)
        self.assertEqual(ctl.rc('send_to_groups', groups=['g1', 'g2', 'g3'], data='not 0 and 2',
                                exclude=[c[0].id, c[2].id]), 0)
        self.assertEqual(ctl.rc('send_to_groups', groups=['g2'], data='b', flags=GW_BINARY), 0)
        got = sync_all(c, ctl, 'marker')
        text = {k: [m if isinstance(m, str) else m.decode() for m in v] for k, v in got.items()}
        self.assertEqual(text, {c[0].id: ['once', 'g3 twice', 'b'],
                                c[1].id: ['once', 'not 0 and 2'],
                                c[2].id: ['once', 'g3 twice', 'b'],
                                c[3].id: ['once', 'g3 twice', 'not 0 and 2']})
        # The WebSocket member of g2 got a binary frame.
        self.assertEqual(c[0].proto, 'websocket')
        self.assertIsInstance(got[c[0].id][2], bytes)

    def test_group_lists_complete(self):
        """GatewayWorker's getAllGroupUidList / getAllGroupClientIdList stop at the
        first member without a uid (a `break`): here every group and member is
        listed, uid "0" included."""
        c, ctl = self.c, self.ctl
        # g: first member without a uid (on B), then uids x (A) and "0" (A) and y (B).
        for cl in (c[3], c[0], c[1], c[2]):
            self.assertEqual(ctl.rc('join_group', id=cl.id, group='g'), 0)
        self.assertEqual(ctl.rc('join_group', id=c[3].id, group='h'), 0)  # no uid at all
        self.assertEqual(ctl.rc('bind_uid', id=c[0].id, uid='x'), 0)
        self.assertEqual(ctl.rc('bind_uid', id=c[1].id, uid='0'), 0)
        self.assertEqual(ctl.rc('bind_uid', id=c[2].id, uid='y'), 0)
        gul = ctl.value('get_all_group_uid_list')
        self.assertEqual(sorted(gul['g']), ['0', 'x', 'y'])
        self.assertEqual(gul.get('h', []), [])
        self.assertEqual(set(gul) - {'h'}, {'g'})
        gcl = ctl.value('get_all_group_client_id_list')
        self.assertEqual({k: sorted(v) for k, v in gcl.items()}, {'g': ids(c), 'h': [c[3].id]})
        self.assertEqual(sorted(ctl.value('get_uid_list_by_group', group='g')), ['0', 'x', 'y'])
        self.assertEqual(ctl.value('get_uid_count_by_group', group='g'), 3)
        self.assertEqual(ctl.value('get_uid_list_by_group', group='h'), [])
        self.assertEqual(ctl.value('get_uid_count_by_group', group='h'), 0)
        self.assertEqual(ctl.value('batch_get_client_count_by_group', groups=['g', 'h', 'none']),
                         {'g': 4, 'h': 1, 'none': 0})
        # uid y also on gateway A: listed once per group.
        self.assertEqual(ctl.rc('bind_uid', id=c[1].id, uid='y'), 0)
        self.assertEqual(sorted(ctl.value('get_all_group_uid_list')['g']), ['x', 'y'])
        self.assertEqual(ctl.value('get_uid_count_by_group', group='g'), 2)

    def test_sessions_by_group_and_all(self):
        c, ctl = self.c, self.ctl
        for i, cl in enumerate(c):
            self.assertEqual(ctl.rc('set_session', id=cl.id, session={'n': i}), 0)
        self.assertEqual(ctl.rc('join_group', id=c[1].id, group='s'), 0)
        self.assertEqual(ctl.rc('join_group', id=c[2].id, group='s'), 0)
        self.assertEqual(ctl.value('get_all_client_sessions'),
                         {cl.id: {'n': i} for i, cl in enumerate(c)})
        self.assertEqual(ctl.value('get_client_sessions_by_group', group='s'),
                         {c[1].id: {'n': 1}, c[2].id: {'n': 2}})
        self.assertEqual(ctl.value('get_client_sessions_by_group', group='none'), {})
        self.assertEqual(sorted(ctl.value('get_all_client_id_list')), ids(c))
        self.assertEqual(ctl.value('get_all_client_count'), 4)

    def test_closed_client_leaves_everything(self):
        c, ctl = self.c, self.ctl
        gone = c[3]
        self.assertEqual(ctl.rc('bind_uid', id=gone.id, uid='leaver'), 0)
        self.assertEqual(ctl.rc('join_group', id=gone.id, group='lg'), 0)
        self.assertEqual(ctl.rc('join_group', id=c[1].id, group='lg'), 0)
        gone.close()
        self.api.wait_event(ev='close', id=gone.id)
        eventually(lambda: ctl.value('is_online', id=gone.id) is False, 'is_online false')
        self.assertIs(ctl.value('is_uid_online', uid='leaver'), False)
        self.assertEqual(ctl.value('get_client_id_list_by_group', group='lg'), [c[1].id])
        self.assertEqual(ctl.value('get_all_client_count'), 3)
        self.assertIsNone(ctl.value('get_session', id=gone.id))
        self.assertIsNone(ctl.value('get_uid_by_client_id', id=gone.id))

    def test_send_to_all_include_exclude(self):
        c, ctl = self.c, self.ctl
        self.assertEqual(ctl.rc('send_to_all', data='include', ids=[c[1].id, c[2].id]), 0)
        self.assertEqual(ctl.rc('send_to_all', data='exclude', exclude=[c[0].id, c[3].id]), 0)
        self.assertEqual(ctl.rc('send_to_all', data='both', ids=[c[1].id, c[2].id, c[3].id],
                                exclude=[c[2].id]), 0)
        self.assertEqual(ctl.rc('send_to_all', data='nobody', ids=[]), 0)
        got = sync_all(c, ctl, 'marker')
        self.assertEqual(got, {c[0].id: [], c[1].id: ['include', 'exclude', 'both'],
                               c[2].id: ['include', 'exclude'], c[3].id: ['both']})

    def test_send_to_all_binary(self):
        c, ctl = self.c, self.ctl
        self.assertEqual(ctl.rc('send_to_all', data={'hex': 'fffe'}, flags=GW_BINARY,
                                exclude=[ctl.id]), 0)
        for x in c[1:]:
            # WebSocket clients get a binary frame; text/frame clients the bytes.
            self.assertEqual(x.push_raw(), (x.proto == 'websocket', b'\xff\xfe'))
        self.assertTrue(ctl.no_push(0.2))

    def test_send_to_client_and_current(self):
        c, ctl = self.c, self.ctl
        for target in c:
            self.assertEqual(ctl.rc('send_to_client', id=target.id, data='for ' + target.id), 0)
            self.assertEqual(target.push(), 'for ' + target.id)
        self.assertEqual(c[2].rc('send_to_current', data='me'), 0)
        self.assertEqual(c[2].push(), 'me')
        ws = [x for x in c if x.proto == 'websocket']
        for w in ws:
            self.assertEqual(ctl.rc('send_to_client', id=w.id, data={'hex': 'c0ff'},
                                    flags=GW_BINARY), 0)
            self.assertEqual(w.push(), b'\xc0\xff')

    def test_close_and_destroy_across_gateways(self):
        c = self.c
        extra_ws = self.api.client(self.api.b, 'websocket')
        extra_text = self.api.client(self.api.b, 'text')
        extra_frame = self.api.client(self.api.a, 'frame')
        ctl = self.ctl
        self.assertEqual(ctl.rc('close_client', id=extra_ws.id, data='bye', code=4000), 0)
        code, reason, before = extra_ws.conn.expect_close(5)
        self.assertEqual((code, before), (4000, [(OP_TEXT, b'bye')]))
        extra_ws.conn.send_close(4000)
        extra_bin = self.api.client(self.api.a, 'websocket')
        self.assertEqual(ctl.rc('close_client', id=extra_bin.id, data={'hex': '00ff'}, code=4001,
                                flags=GW_BINARY), 0)
        code, reason, before = extra_bin.conn.expect_close(5)
        self.assertEqual((code, before), (4001, [(OP_BINARY, b'\x00\xff')]))
        extra_bin.conn.send_close(4001)
        self.api.wait_event(ev='close', id=extra_bin.id)
        self.assertEqual(ctl.rc('close_client', id=extra_text.id, data='last'), 0)
        self.assertEqual(extra_text.push(), 'last')
        extra_text.conn.expect_eof(5)
        self.assertEqual(ctl.rc('destroy_client', id=extra_frame.id), 0)
        extra_frame.conn.expect_eof(5)
        for x in (extra_ws, extra_text, extra_frame):
            self.api.wait_event(ev='close', id=x.id)
        eventually(lambda: ctl.value('get_all_client_count') == 4, 'count back to 4')
        # close_current / destroy_current
        c[3].request('close_current', data='closing you')
        self.assertEqual(c[3].push(), 'closing you')
        self.api.wait_event(ev='close', id=c[3].id)
        c[2].request('destroy_current')
        self.api.wait_event(ev='close', id=c[2].id)
        self.assertEqual(sorted(ctl.value('get_all_client_id_list')), ids(c[:2]))


class Targeting(gwtest.TestCase):
    """send_to_uid / send_to_group / ungroup from a worker reach only the gateways
    that hold a member (the presence index); API clients send to every gateway.
    Counted with each gateway's commands_in (its statistics page)."""

    def setUp(self):
        self.api = ApiCluster(self, stats=True)
        self.ga, self.gb = self.api.gateway(self.api.a), self.api.gateway(self.api.b)
        self.a0 = self.api.client(self.api.a, 'websocket')
        self.a1 = self.api.client(self.api.a, 'text')
        self.b0 = self.api.client(self.api.b, 'websocket')
        self.assertNotEqual(self.a0.pid, self.a1.pid)  # one per worker

    def commands_on_b(self, client, ops):
        """Runs `ops` in one callback of `client`'s worker followed by a send to b0
        (the marker, which follows them on the worker's link to B); returns how many
        commands B received for them, marker excluded."""
        page = self.gb.page
        page.settle()
        before = page.get('commands_in')
        r = client.call('batch', ops=ops + [{'op': 'send_to_client', 'id': self.b0.id,
                                             'data': 'marker'}])
        self.assertEqual([x['rc'] for x in r['results']], [0] * (len(ops) + 1), r)
        self.assertEqual(self.b0.pushes_until('marker')[-1], 'marker')
        page.settle()
        return page.get('commands_in') - before - 1

    def test_uid_and_group_sends_skip_gateways_without_members(self):
        a0, a1, b0 = self.a0, self.a1, self.b0
        for op in ({'op': 'bind_uid', 'id': a0.id, 'uid': 'ua'},
                   {'op': 'join_group', 'id': a0.id, 'group': 'ga'}):
            self.assertEqual(a0.call(op['op'], **{k: v for k, v in op.items() if k != 'op'})['rc'],
                             0)
        sends = [{'op': 'send_to_uid', 'uid': 'ua', 'data': 'u'},
                 {'op': 'send_to_uids', 'uids': ['ua', 'nobody'], 'data': 'u2'},
                 {'op': 'send_to_group', 'group': 'ga', 'data': 'g'},
                 {'op': 'send_to_groups', 'groups': ['ga', 'none'], 'data': 'g2'},
                 {'op': 'send_to_uid', 'uid': 'nobody', 'data': 'x'},
                 {'op': 'ungroup', 'group': 'none'}]
        # From the worker that bound a0 ...
        self.assertEqual(self.commands_on_b(a0, sends), 0)
        self.assertEqual(a0.pushes_until('g2'), ['u', 'u2', 'g', 'g2'])
        # ... and from the other worker, once it heard of ua/ga from gateway A (its
        # answer to a1's query follows the index update on the same link).
        eventually(lambda: a1.value('get_client_id_by_uid', uid='ua') != [], 'ua seen')
        self.assertEqual(self.commands_on_b(a1, sends), 0)
        self.assertEqual(a0.pushes_until('g2'), ['u', 'u2', 'g', 'g2'])
        # Positive control: members on B: B gets exactly the sends that concern it.
        self.assertEqual(a0.rc('bind_uid', id=b0.id, uid='ub'), 0)
        self.assertEqual(a0.rc('join_group', id=b0.id, group='ga'), 0)
        n = self.commands_on_b(a0, [{'op': 'send_to_uid', 'uid': 'ub', 'data': 'to ub'},
                                    {'op': 'send_to_group', 'group': 'ga', 'data': 'to ga'},
                                    {'op': 'send_to_uid', 'uid': 'ua', 'data': 'not B'}])
        self.assertEqual(n, 2)
        self.assertEqual(b0.pushes, [])
        # The other worker learns of B's new members from B's index.
        eventually(lambda: a1.value('get_client_id_by_uid', uid='ub') == [b0.id], 'ub seen')
        n = self.commands_on_b(a1, [{'op': 'send_to_uid', 'uid': 'ub', 'data': 'to ub'},
                                    {'op': 'send_to_groups', 'groups': ['ga'], 'data': 'to ga'}])
        self.assertEqual(n, 2)
        # When B's last member leaves, B drops out again.
        self.assertEqual(a0.rc('unbind_uid', id=b0.id, uid='ub'), 0)
        self.assertEqual(a0.rc('leave_group', id=b0.id, group='ga'), 0)
        self.assertEqual(a1.value('get_client_id_by_uid', uid='ub'), [])
        self.assertEqual(a1.value('get_client_id_list_by_group', group='ga'), [a0.id])
        self.assertEqual(self.commands_on_b(a1, sends), 0)
        self.assertEqual(self.commands_on_b(a0, sends), 0)

    def test_gwctl_sends_to_every_gateway(self):
        if not os.access(GWCTL, os.X_OK):
            self.skipTest('gwctl not built')
        self.assertEqual(self.a0.rc('bind_uid', id=self.a0.id, uid='ua'), 0)
        page = self.gb.page
        page.settle()
        before = page.get('commands_in')
        rc, out, err = run_gwctl(self, ['--register', self.api.register, '--timeout', '5',
                                        'send-to-uid', 'ua', 'from gwctl'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.a0.push(), 'from gwctl')
        page.settle()
        # GatewayClient's way: no presence index outside the cluster.
        self.assertEqual(page.get('commands_in') - before, 1)


if __name__ == '__main__':
    gwtest.main()
