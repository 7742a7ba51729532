"""Sessions across 2 gateways x 2 workers (issue 3, item 3): set replaces, update
merges at the gateway (RFC 7396), so two workers updating different keys of one
client lose nothing; the module sees the current session with every event, a
change made in a callback is visible to the client's next event even when that
event was already on its way, a query in the same callback sees it too, and
on_close sees the last session, read-only."""

import json
import struct

import gwtest
from gwtest import OP_TEXT
from test_api_util import (ApiCluster, GW_EREADONLY, GW_OK, eventually, next_seq)


def pipeline(client, reqs):
    """Sends every request in one write (so that the gateway forwards them to the
    worker together, before any session write-back can come back); returns their
    seqs."""
    seqs, raw = [], b''
    for r in reqs:
        seq = next_seq()
        body = json.dumps(dict(r, seq=seq)).encode()
        seqs.append(seq)
        if client.proto == 'websocket':
            raw += gwtest.ws_frame(OP_TEXT, body)
        elif client.proto == 'text':
            raw += body + b'\n'
        else:
            raw += struct.pack('>I', len(body) + 4) + body
    client.conn.send_raw(raw)
    return seqs


class Sessions(gwtest.TestCase):

    def setUp(self):
        self.api = ApiCluster(self)
        self.c = self.api.spread(2)
        self.ctl = self.c[0]

    def test_set_replaces_update_merges(self):
        ctl = self.ctl
        for t in self.c:
            with self.subTest(target=t.id):
                self.assertEqual(t.call('session_get')['session'], {})
                self.assertEqual(ctl.rc('set_session', id=t.id,
                                        session={'a': 1, 'b': {'x': 1, 'z': 0}, 'k': 'v'}), 0)
                self.assertEqual(ctl.rc('update_session', id=t.id,
                                        patch={'a': None, 'b': {'y': 2, 'z': None}, 'c': [1, 2]}),
                                 0)
                want = {'b': {'x': 1, 'y': 2}, 'k': 'v', 'c': [1, 2]}
                self.assertEqual(ctl.value('get_session', id=t.id), want)
                # The client's own next event sees it (its worker may be the other one).
                self.assertEqual(t.call('session_get')['session'], want)
                self.assertEqual(ctl.rc('set_session', id=t.id, session={'only': True}), 0)
                self.assertEqual(ctl.value('get_session', id=t.id), {'only': True})
                self.assertEqual(t.call('session_get')['session'], {'only': True})
                self.assertEqual(ctl.rc('set_session', id=t.id, session={}), 0)
                self.assertEqual(ctl.value('get_session', id=t.id), {})
                self.assertEqual(t.call('session_get')['session'], {})

    def test_unicode_and_nesting(self):
        t = self.c[3]
        s = {'ключ': 'значение', 'emoji': '\U0001F600', 'deep': {'a': {'b': {'c': [None, 1.5]}}},
             'q': '"quoted"\n'}
        self.assertEqual(self.ctl.rc('set_session', id=t.id, session=s), 0)
        self.assertEqual(self.ctl.value('get_session', id=t.id), s)
        self.assertEqual(t.call('session_get')['session'], s)

    def test_concurrent_updates_from_two_workers(self):
        target = self.c[3]  # gateway B
        writers = [x for x in self.c[:3] if x.pid != self.c[0].pid][:1] + [self.c[0]]
        self.assertEqual(len({w.pid for w in writers}), 2)
        n, rounds = 50, 4
        pending = []
        for r in range(rounds):
            for i, w in enumerate(writers):
                prefix = 'w%d_r%d_' % (i, r)
                pending.append((w, w.request('update_many', id=target.id, prefix=prefix, n=n)))
            # The target changes its own session meanwhile (written back as a patch
            # of the keys it changed only).
            pending.append((target, target.request('session_put', set={'own%d' % r: r})))
        for w, seq in pending:
            self.assertEqual(w.reply(seq)['rc'], 0)
        want = {'own%d' % r: r for r in range(rounds)}
        for r in range(rounds):
            for i in range(2):
                want.update({'w%d_r%d_%d' % (i, r, k): k for k in range(n)})

        def complete():
            s = self.ctl.value('get_session', id=target.id)
            return s if len(s) == len(want) else None
        self.assertEqual(eventually(complete, 'every key at the gateway'), want)
        self.assertEqual(target.call('session_get')['session'], want)

    def test_change_visible_to_next_event_already_on_its_way(self):
        for t in self.c:
            with self.subTest(client=t.id, proto=t.proto):
                reqs = []
                for i in range(20):
                    put = {'n': i, 'gone': None if i % 2 else i}
                    reqs.append({'op': 'session_put', 'set': put})
                    reqs.append({'op': 'session_get'})
                seqs = pipeline(t, reqs)
                for i in range(20):
                    self.assertEqual(t.reply(seqs[2 * i])['rc'], 0)
                    s = t.reply(seqs[2 * i + 1])['session']
                    want = {'n': i} if i % 2 else {'n': i, 'gone': i}
                    self.assertEqual(s, want, 'event %d saw %r' % (i, s))
                # The log shows the same: each get saw the put before it.
                ev = self.api.wait_event(ev='message', id=t.id, seq=seqs[-1])
                self.assertEqual(ev['session'], {'n': 19})

    def test_session_functions_on_the_current_client_in_order(self):
        t = self.c[2]
        seqs = pipeline(t, [
            {'op': 'set_session', 'id': 'self', 'session': {'a': 1}},
            {'op': 'session_get'},
            {'op': 'update_session', 'id': 'self', 'patch': {'b': 2}},
            {'op': 'session_get'},
            {'op': 'batch', 'ops': [{'op': 'session_put', 'set': {'c': 3}},
                                    {'op': 'set_session', 'id': 'self', 'session': {'d': 4}},
                                    {'op': 'update_session', 'id': 'self', 'patch': {'e': 5}},
                                    {'op': 'session_get'}]},
            {'op': 'session_get'},
        ])
        r = [t.reply(s) for s in seqs]
        self.assertEqual([r[0]['rc'], r[2]['rc']], [GW_OK, GW_OK])
        self.assertEqual(r[1]['session'], {'a': 1})
        self.assertEqual(r[3]['session'], {'a': 1, 'b': 2})
        self.assertEqual([x['rc'] for x in r[4]['results']], [0, 0, 0, 0])
        self.assertEqual(r[4]['results'][3]['session'], {'d': 4, 'e': 5})
        self.assertEqual(r[5]['session'], {'d': 4, 'e': 5})
        self.assertEqual(self.ctl.value('get_session', id=t.id), {'d': 4, 'e': 5})

    def test_session_object_stays_valid_during_the_callback(self):
        """README: the json_t * of gw_session() is valid until the end of the
        callback; gw_set_session / gw_update_session on the current client must
        not free it under the module."""
        t = self.c[1]
        self.assertEqual(t.rc('session_put', set={'old': 1}), 0)
        for merge, want in ((False, {'new': 1, 'held': True}),
                            (True, {'new': 1, 'held': True, 'more': 2})):
            with self.subTest(merge=merge):
                r = t.call('session_hold', session={'more': 2} if merge else {'new': 1},
                           merge=merge)
                self.assertEqual(r['rc'], 0)
                self.assertTrue(r['same'], r)
                self.assertEqual(t.call('session_get')['session'], want)
                self.assertEqual(self.ctl.value('get_session', id=t.id), want)

    def test_query_in_the_callback_sees_its_changes(self):
        for t in (self.c[1], self.c[3]):
            for mode in ('wait', 'async'):
                with self.subTest(client=t.id, mode=mode):
                    sub = 'sub%d' % next_seq()
                    r = t.call('batch', ops=[
                        {'op': 'session_put', 'set': {'mode': mode}},
                        {'op': 'q', 'q': 'get_session', 'id': 'self', 'mode': mode, 'seq': sub},
                        {'op': 'session_put', 'set': {'later': 1}}])
                    if mode == 'wait':
                        q = r['results'][1]
                    else:
                        self.assertIsNone(r['results'][1])
                        q = t.reply(sub)  # from the query's callback
                    self.assertEqual(q['result'], {'mode': mode}, q)
                    self.assertEqual(t.call('session_get')['session'], {'mode': mode, 'later': 1})
                    t.call('session_put', set={'later': None})

    def test_session_in_on_close_read_only(self):
        t = self.c[3]
        self.assertEqual(t.rc('session_put', set={'name': 'ann'}), 0)
        # The last change just before the connection goes: on_close sees it too.
        pipeline(t, [{'op': 'session_put', 'set': {'last': 'words'}}])
        t.close()
        ev = self.api.wait_event(ev='close', id=t.id)
        self.assertEqual(ev['session'], {'name': 'ann', 'last': 'words'})
        self.assertEqual((ev['rc_set'], ev['rc_update']), (GW_EREADONLY, GW_EREADONLY))
        # A client closed by the server: same.
        u = self.c[1]
        self.assertEqual(self.ctl.rc('set_session', id=u.id, session={'who': 'u'}), 0)
        eventually(lambda: self.ctl.value('get_session', id=u.id) == {'who': 'u'}, 'session set')
        self.assertEqual(self.ctl.rc('close_client', id=u.id), 0)
        ev = self.api.wait_event(ev='close', id=u.id)
        self.assertEqual(ev['session'], {'who': 'u'})
        self.assertEqual((ev['rc_set'], ev['rc_update']), (GW_EREADONLY, GW_EREADONLY))
        # Exactly one close each, and the changes tried in on_close went nowhere.
        self.assertEqual(len(self.api.events(ev='close', id=t.id)), 1)
        self.assertEqual(len(self.api.events(ev='close', id=u.id)), 1)
        sessions = self.ctl.value('get_all_client_sessions')
        self.assertEqual(sorted(sessions), sorted([self.c[0].id, self.c[2].id]))
        for s in sessions.values():
            self.assertNotIn('changed_in_close', s)

    def test_session_sent_with_every_event_kind(self):
        t = self.c[2]
        self.assertEqual(self.ctl.rc('set_session', id=t.id, session={'x': 1}), 0)
        eventually(lambda: t.call('session_get')['session'] == {'x': 1}, 'session at t')
        ev = self.api.wait_event(ev='connect', id=t.id)
        self.assertEqual(ev['session'], {})
        t.close()
        self.assertEqual(self.api.wait_event(ev='close', id=t.id)['session'], {'x': 1})


if __name__ == '__main__':
    gwtest.main()
