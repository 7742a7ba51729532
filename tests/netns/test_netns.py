"""GatewayWorker-C on separate network hosts (issue 7): network namespaces joined
by veth pairs and a bridge, one supervisor per host started with
`scripts/start_all.sh start -d --config FILE`, the configurations of
config/examples/ (docs/DEPLOY.md) adapted to the namespaces' addresses.

    host A 10.77.0.1  config/examples/host1.json  register, 2 business workers
    host B 10.77.0.2  config/examples/host2.json  register, 2 gateways, 2 workers
    host C 10.77.0.3  config/examples/host3.json  2 gateways, 2 workers
    host D 10.77.0.4  host3.json with D's lan_ip  (DEPLOY.md, "Adding a host")
    host F 10.77.0.6  host1.json without register (added while the registers are down)
    clients 10.77.0.100 (their own namespace, like the load balancer's side)

The adaptation changes only what must differ here: addresses (10.0.0.N -> 10.77.0.N),
run_dir, the business module (tests/netns/nsmod.c, which says which host's worker
answered) and static_dir. Timings, counts, ports and the secret are the examples'.

Run: meson test -C build --suite netns -v   (root; exit 77 = skipped, with the reason)
     or GW_BUILD_DIR=build python3 tests/netns/test_netns.py -v [MultiHost.test_1_...]
GW_NSMOD=PATH the module (default BUILD/tests/netns/libgw_nsmod.so); GW_TEST_KEEP=1
keeps the work directory (configs, logs, events.log); GW_TEST_DEBUG=1 logs at debug
level and prints every host's log. Failures print every host's log.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402
from netlab import pump, wait_for  # noqa: E402

ROOT = netlab.ROOT
BUILD_DIR = os.path.abspath(os.environ.get('GW_BUILD_DIR') or os.path.join(ROOT, 'build'))
NSMOD = os.environ.get('GW_NSMOD') or os.path.join(BUILD_DIR, 'tests', 'netns', 'libgw_nsmod.so')
EXAMPLES = os.path.join(ROOT, 'config', 'examples')
KEEP = bool(os.environ.get('GW_TEST_KEEP'))

ADDR = {'A': 1, 'B': 2, 'C': 3, 'D': 4, 'F': 6}
GW_EUNREACHABLE = 4
MARGIN = 2.0  # seconds beyond node_timeout for detection (a loaded 2-core machine)


def adapt(example, host, event_log, lan_ip=None, overrides=None):
    """A config/examples file with the namespace addresses, its own run_dir and the
    suite's module; everything else as in the example."""
    with open(os.path.join(EXAMPLES, example)) as f:
        text = f.read()
    text = re.sub(r'\b10\.0\.0\.(\d+)\b',
                  lambda m: '%s.%s' % (netlab.SUBNET, m.group(1)), text)
    conf = json.loads(text)
    if lan_ip:
        conf['cluster']['lan_ip'] = lan_ip
    conf['cluster']['run_dir'] = os.path.join(host.dir, 'run')
    if os.environ.get('GW_TEST_DEBUG'):
        conf['cluster']['log_level'] = 'debug'
    bw = conf['businessworker']
    if bw.get('count', 1) > 0:
        bw['module'] = NSMOD
        bw['module_config'] = {'host': host.name, 'event_log': event_log}
    gw = conf.get('gateway', {})
    if 'static_dir' in gw:
        web = os.path.join(BUILD_DIR, 'examples', 'chat', 'web')
        gw['static_dir'] = web if os.path.isdir(web) else ''
    for section, values in (overrides or {}).items():
        conf.setdefault(section, {}).update(values)
    return conf


class Chat:
    """A connected client and what the test learnt about it."""

    def __init__(self, ws, gw_host):
        self.ws = ws
        self.gw_host = gw_host
        self.id = None
        self.host = None  # host of the worker it is bound to
        self.worker = None
        self.other = []  # messages that were not acks


class MultiHost(unittest.TestCase):
    lab = None

    # ------------------------------------------------------------------ set-up

    @classmethod
    def setUpClass(cls):
        for path in (NSMOD, os.path.join(BUILD_DIR, 'supervisor', 'gw-master')):
            if not os.path.exists(path):
                raise unittest.SkipTest('%s is not built (GW_BUILD_DIR=%s)' % (path, BUILD_DIR))
        netlab.remove_stale()
        cls.dir = tempfile.mkdtemp(prefix='gwnt-')
        cls.events_path = os.path.join(cls.dir, 'events.log')
        cls.lab = netlab.Lab(cls.dir, BUILD_DIR)
        cls.clients = []
        cls.late = []
        try:
            cls._set_up()
        except BaseException:
            cls._tear_down(failed=True)
            raise

    @classmethod
    def _set_up(cls):
        t0 = time.monotonic()
        lab = cls.lab
        lab.create()
        h = {n: lab.add_host(n, ADDR[n]) for n in 'ABCD'}
        cls.A, cls.B, cls.C, cls.D = h['A'], h['B'], h['C'], h['D']
        cls.A.write_config(adapt('host1.json', cls.A, cls.events_path))
        cls.B.write_config(adapt('host2.json', cls.B, cls.events_path))
        cls.C.write_config(adapt('host3.json', cls.C, cls.events_path))
        cls.D.write_config(adapt('host3.json', cls.D, cls.events_path, lan_ip=cls.D.ip))
        cls.node_timeout = cls.A.conf['cluster']['node_timeout']
        for host in (cls.A, cls.B, cls.C, cls.D):  # the register hosts first
            host.start()
        cls.gw_hosts = [cls.B, cls.C, cls.D]
        cls.wk_hosts = [cls.A, cls.B, cls.C, cls.D]
        cls.wait_mesh(cls.gw_hosts, cls.wk_hosts, timeout=30)
        netlab.log('4 hosts up and meshed in %.1f s (workdir %s)' % (time.monotonic() - t0,
                                                                      cls.dir))

    @classmethod
    def tearDownClass(cls):
        cls._tear_down(failed=False)

    @classmethod
    def _tear_down(cls, failed):
        for c in cls.clients:
            c.ws.close()
        nginx = getattr(cls, 'nginx', None)
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        if cls.late:
            netlab.log('%d acks arrived after their stream had ended (events delivered late by '
                       'a host whose link came back), from hosts %s'
                       % (len(cls.late), sorted({x[2] for x in cls.late})))
        if cls.lab is None:
            return
        failed = failed or getattr(cls, 'failed', False)
        if failed or os.environ.get('GW_TEST_DEBUG'):
            for host in cls.lab.hosts.values():
                sys.stderr.write('\n===== host %s (%s) log %s =====\n%s' % (
                    host.name, host.ip, host.log_path, host.log()[-20000:]))
        cls.lab.destroy()
        cls.lab = None
        if not KEEP and not failed:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def run(self, result=None):
        result = super().run(result)
        if result is not None and (result.failures or result.errors):
            type(self).failed = True
        return result

    # ------------------------------------------------------------------ helpers

    @classmethod
    def expected_counts(cls, gw_hosts, wk_hosts):
        ngw = sum(h.count('gateway') for h in gw_hosts)
        nwk = sum(h.count('businessworker') for h in wk_hosts)
        return ngw, nwk

    @classmethod
    def mesh_state(cls, gw_hosts, wk_hosts):
        """[(host, process name, what it sees, what it should see)] of every
        gateway and worker of the given hosts."""
        ngw, nwk = cls.expected_counts(gw_hosts, wk_hosts)
        out = []
        for host in set(gw_hosts) | set(wk_hosts):
            for p in host.procs():
                st = p.get('stats', {})
                if p['role'] == 'gateway' and host in gw_hosts:
                    out.append((host.name, p['name'], st.get('workers'), nwk))
                elif p['role'] == 'businessworker' and host in wk_hosts:
                    out.append((host.name, p['name'], st.get('gateways'), ngw))
        return out

    @classmethod
    def wait_mesh(cls, gw_hosts, wk_hosts, timeout=20, pump_fn=None):
        """Until every gateway sees every worker and every worker every gateway."""
        last = []

        def meshed():
            last[:] = cls.mesh_state(gw_hosts, wk_hosts)
            return last and all(seen == want for _, _, seen, want in last)
        try:
            wait_for(meshed, 'the full mesh', timeout, interval=0.3, pump=pump_fn)
        except AssertionError:
            raise AssertionError('not meshed after %.0f s: %r' % (timeout, last))

    def pump(self, t=0.05):
        pump([c.ws for c in self.clients], t)

    def connect(self, host):
        c = Chat(host.ws(), host)
        self.clients.append(c)
        info = json.loads(self.expect(c, lambda m: m.startswith('{'), send='who'))
        c.id, c.host, c.worker = info['id'], info['host'], info['worker']
        return c

    def expect(self, c, pred, send=None, timeout=10):
        """Sends `send` (if any), then waits for a message of c matching pred
        (removed from its inbox and returned)."""
        if send is not None:
            c.ws.send(send)

        def find():
            for i, m in enumerate(c.ws.inbox):
                if pred(m):
                    return c.ws.inbox.pop(i)
            return None
        return wait_for(find, 'a reply to %r on %s' % (send, c.gw_host.name), timeout,
                        pump=self.pump)

    def settle(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(0.05)

    def clear_inboxes(self):
        self.settle(0.3)
        for c in self.clients:
            c.ws.inbox.clear()

    def events(self, **match):
        try:
            with open(self.events_path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if all(e.get(k) == v for k, v in match.items()):
                out.append(e)
        return out

    def stat_sum(self, hosts, role, name):
        return sum(p.get('stats', {}).get(name, 0) for h in hosts for p in h.procs(role))

    def log_offsets(self):
        return {h.name: h.log_size() for h in self.lab.hosts.values()}

    def log_since(self, offsets, pattern):
        rx = re.compile(pattern)
        out = []
        for h in self.lab.hosts.values():
            out += [(h.name, line) for line in h.log_lines_since(offsets.get(h.name, 0))
                    if rx.search(line)]
        return out

    def stream(self, clients, duration, action=None, interval=0.05, drain=3.0):
        """Sends seq:1, seq:2, ... to each client every `interval` for `duration`
        seconds (calling action(elapsed) between rounds), then waits up to `drain`
        seconds for the acks. Returns {client: [(n, host, t_sent, t_acked)]} and
        {client: {n: t_sent}}."""
        sent = {c: {} for c in clients}
        acks = {c: [] for c in clients}
        type(self).streams = getattr(self, 'streams', 0) + 1
        sid = '%d' % self.streams
        t0 = time.monotonic()
        n = 0
        next_round = t0

        def collect():
            now = time.monotonic()
            for c in clients:
                keep = []
                for m in c.ws.inbox:
                    if m.startswith('ack:'):
                        _, tag, host, _ = m.split(':', 3)
                        s_id, k = tag.split('.')
                        if s_id == sid:
                            acks[c].append((int(k), host, sent[c].get(int(k)), now))
                        else:  # an ack of an earlier stream, delivered late
                            self.late.append((s_id, int(k), host, c.id))
                    else:
                        keep.append(m)
                c.ws.inbox[:] = keep
        while True:
            now = time.monotonic()
            if now - t0 >= duration:
                break
            if now >= next_round:
                n += 1
                for c in clients:
                    sent[c][n] = time.monotonic()
                    c.ws.send('seq:%s.%d' % (sid, n))
                next_round += interval
            if action:
                action(now - t0)
            self.pump(0.01)
            collect()
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            self.pump(0.02)
            collect()
            if all(len(acks[c]) >= n for c in clients):
                break
        return acks, sent

    def assert_no_loss(self, acks, sent, clients, what):
        for c in clients:
            got = [k for k, _, _, _ in acks[c]]
            want = sorted(sent[c])
            self.assertEqual(got, want, '%s: client %s on %s (worker on %s): %d sent, %d acked, '
                             'missing %s, order %s' % (
                                 what, c.id, c.gw_host.name, c.host, len(want), len(got),
                                 sorted(set(want) - set(got))[:10], got[:20]))

    def assert_undisturbed(self, offsets, what, t_mono):
        """No peer left anyone's view and no worker ran on_close since."""
        downs = self.log_since(offsets, r'GW-PEER-DOWN|GW-GATEWAY-LOST')
        self.assertEqual(downs, [], '%s: peers dropped' % what)
        closes = [e for e in self.events(ev='close') if e['t'] >= t_mono]
        self.assertEqual(closes, [], '%s: on_close ran for connected clients' % what)

    def register_pid(self, host):
        pid = host.pid_of('register')
        self.assertIsNotNone(pid, 'no register on host %s' % host.name)
        return pid

    # ------------------------------------------------------------------ tests

    def test_1_chat_across_hosts(self):
        """Clients on gateways of B and C chat (a group) through workers of every host,
        including A (no gateway) and D; D's own clients are in the room too."""
        by_host = {}
        gw_cycle = [self.B, self.C]
        i = 0
        while (len(self.clients) < 16 or by_host.get('A', 0) < 2 or by_host.get('D', 0) < 2):
            self.assertLess(len(self.clients), 64, 'workers of A and D never chosen: %r' % by_host)
            c = self.connect(gw_cycle[i % 2])
            i += 1
            by_host[c.host] = by_host.get(c.host, 0) + 1
        type(self).chat = list(self.clients)
        # Clients of D's gateways: some bound to D's own workers, some elsewhere.
        dcl = []
        while not (len(dcl) >= 3 and {c.host == 'D' for c in dcl} == {True, False}):
            self.assertLess(len(dcl), 24, 'clients of D all bound to one side')
            dcl.append(self.connect(self.D))
        type(self).dclients = dcl
        netlab.log('chat clients bound to workers of hosts %r' % by_host)
        self.assertTrue(set(by_host) <= set('ABCD'))
        room = self.chat + self.dclients
        for c in room:
            self.expect(c, lambda m: m.startswith('ok:join'), send='join:room')
        # A join reaches the other workers' presence index asynchronously (an IDX
        # frame from the member's gateway); a group send racing it from another
        # worker can skip that gateway. That race is reported (issue 7); here the
        # index is given time to propagate.
        self.settle(0.5)
        for k in range(1, 4):
            for c in self.chat:
                c.ws.send('say:room:%d' % k)
        want = {c.id: ['%d' % k for k in range(1, 4)] for c in self.chat}

        def complete():
            for c in room:
                got = {}
                for m in c.ws.inbox:
                    if m.startswith('msg:'):
                        _, sender, k = m.split(':', 2)
                        got.setdefault(sender, []).append(k)
                if got != want:
                    return False
            return True
        try:
            wait_for(complete, 'every chat line at every member, in order per sender', 20,
                     pump=self.pump)
        except AssertionError:
            missing = []
            for c in room:
                got = {}
                for m in c.ws.inbox:
                    if m.startswith('msg:'):
                        _, sender, k = m.split(':', 2)
                        got.setdefault(sender, []).append(k)
                for sender, lines in want.items():
                    if got.get(sender) != lines:
                        sc = next(x for x in room if x.id == sender)
                        missing.append('member %s (gw %s, worker %s) from %s (gw %s, worker '
                                       '%s): %r' % (c.id, c.gw_host.name, c.host, sender,
                                                    sc.gw_host.name, sc.host, got.get(sender)))
            raise AssertionError('chat lines missing: %d pairs, e.g.\n  %s' % (
                len(missing), '\n  '.join(missing[:20])))
        self.settle(0.3)
        self.assertTrue(complete(), 'duplicates arrived after the lines')
        self.clear_inboxes()

    def test_2_sends_across_hosts(self):
        """A worker on one host reaches clients of gateways on other hosts: to a
        client, a uid, a group and everyone; uid and group sends go only to the
        gateways that hold members."""
        b1, b2 = self.connect(self.B), self.connect(self.B)
        c1, c2 = self.connect(self.C), self.connect(self.C)
        d1 = self.connect(self.D)
        self.clear_inboxes()
        # client to client, across gateways (and, mostly, across worker hosts)
        self.assertEqual(self.expect(b1, lambda m: m.startswith('rc:'),
                                     send='tocid:%s:p2p-from-b1' % c1.id).split(':')[1], '0')
        self.expect(c1, lambda m: m == 'p2p-from-b1')
        self.assertEqual(self.expect(d1, lambda m: m.startswith('rc:'),
                                     send='tocid:%s:p2p-from-d1' % b2.id).split(':')[1], '0')
        self.expect(b2, lambda m: m == 'p2p-from-d1')
        # uid: one user with a tab on B and one on C
        self.expect(c1, lambda m: m.startswith('ok:uid'), send='uid:alice')
        self.expect(b2, lambda m: m.startswith('ok:uid'), send='uid:alice')
        self.expect(c2, lambda m: m.startswith('ok:join'), send='join:only-b')  # then leave
        self.expect(b1, lambda m: m.startswith('ok:join'), send='join:g-bc')
        self.expect(c2, lambda m: m.startswith('ok:join'), send='join:g-bc')
        self.settle(0.6)  # statistics pages are refreshed every 250 ms
        d_before = self.stat_sum([self.D], 'gateway', 'commands_in')
        self.expect(d1, lambda m: m.startswith('rc:0'), send='touid:alice:hi-alice')
        self.expect(d1, lambda m: m.startswith('rc:0'), send='togroup:g-bc:hi-g-bc')
        self.settle(0.8)
        d_after = self.stat_sum([self.D], 'gateway', 'commands_in')
        # D's gateways got the two rc replies to d1 and nothing else: no uid/group
        # frame went to a gateway without members.
        self.assertEqual(d_after - d_before, 2, 'uid/group sends reached gateways of D, '
                         'which hold no member')
        self.assertEqual([m for m in c1.ws.inbox if m.startswith('hi-')], ['hi-alice'])
        self.assertEqual([m for m in b2.ws.inbox if m.startswith('hi-')], ['hi-alice'])
        self.assertEqual([m for m in b1.ws.inbox if m.startswith('hi-')], ['hi-g-bc'])
        self.assertEqual([m for m in c2.ws.inbox if m.startswith('hi-')], ['hi-g-bc'])
        self.assertEqual([m for m in d1.ws.inbox if m.startswith('hi-')], [])
        # everyone, from a worker that is (for most bindings) on another host
        self.expect(c2, lambda m: m.startswith('rc:0'), send='toall:hi-all')
        for c in self.clients:
            self.expect(c, lambda m: m == 'hi-all', timeout=10)
        self.settle(0.5)
        for c in self.clients:
            self.assertNotIn('hi-all', c.ws.inbox, 'send_to_all delivered twice to %s' % c.id)
        for c in (b1, b2, c1, c2, d1):
            c.ws.close()
            self.clients.remove(c)
        self.clear_inboxes()

    def test_3_one_register_lost(self):
        """One register stopped (SIGSTOP: no answer, no roster) for 2 x node_timeout,
        resumed, then the other killed and restarted by its supervisor: no peer
        leaves any view, no client notices."""
        clients = self.chat
        pid_a = self.register_pid(self.A)
        offsets, t_mono = self.log_offsets(), time.monotonic()
        os.kill(pid_a, signal.SIGSTOP)
        try:
            acks, sent = self.stream(clients, 2 * self.node_timeout + 0.5)
        finally:
            os.kill(pid_a, signal.SIGCONT)
        self.assert_no_loss(acks, sent, clients, 'register of A stopped')
        acks, sent = self.stream(clients, 2.0)
        self.assert_no_loss(acks, sent, clients, 'register of A resumed')
        self.assert_undisturbed(offsets, 'register of A stopped and resumed', t_mono)

        pid_b = self.register_pid(self.B)
        offsets, t_mono = self.log_offsets(), time.monotonic()
        os.kill(pid_b, signal.SIGKILL)
        acks, sent = self.stream(clients, self.node_timeout + 1.5)
        self.assert_no_loss(acks, sent, clients, 'register of B killed')
        wait_for(lambda: self.register_pid(self.B) not in (None, pid_b),
                 'the supervisor of B to restart its register', 10, pump=self.pump)
        self.assert_undisturbed(offsets, 'register of B killed and restarted', t_mono)
        ngw, nwk = self.expected_counts(self.gw_hosts, self.wk_hosts)
        wait_for(lambda: self.B.procs('register')[0]['stats'].get('nodes') == ngw + nwk,
                 'the new register of B to know every node', 10, pump=self.pump)
        self.clear_inboxes()

    def test_4_host_link_cut(self):
        """Host D's cable pulled: its workers' clients are re-bound within
        node_timeout + margin, no event of any other client is lost, commands to D's
        gateways are refused and counted; the link back: D rejoins by itself."""
        clients = self.chat
        on_d = [c for c in clients if c.host == 'D']
        others = [c for c in clients if c.host != 'D']
        self.assertTrue(on_d and others)
        rest = [self.A, self.B, self.C]
        errors_before = self.stat_sum(rest, 'businessworker', 'send_errors')
        offsets = self.log_offsets()
        cut = {}

        def cut_link(elapsed):
            if not cut and elapsed >= 0.5:
                cut['wall'], cut['mono'] = time.time(), time.monotonic()
                self.lab.cut(self.D)
        try:
            acks, sent = self.stream(clients, 0.5 + self.node_timeout + 3.5, action=cut_link)
            # Nothing of the clients on workers of A, B and C was lost.
            self.assert_no_loss(acks, sent, others, 'link of D cut')
            # The gateways of B and C dropped D's workers within the bound.
            downs = [(h, netlab.log_time(line) - cut['wall'])
                     for h, line in self.log_since(offsets, r'GW-PEER-DOWN businessworker '
                                                   + re.escape(self.D.ip) + ':')]
            ngw_bc = self.B.count('gateway') + self.C.count('gateway')
            want = ngw_bc * self.D.count('businessworker')
            self.assertEqual(len([d for h, d in downs if h in 'BC']), want, downs)
            worst = max(d for _, d in downs)
            netlab.log('D lost: gateways dropped its workers %.2f..%.2f s after the cut '
                       '(node_timeout %.1f s)' % (min(d for _, d in downs), worst,
                                                  self.node_timeout))
            self.assertLessEqual(worst, self.node_timeout + MARGIN)
            # Every client of D's workers answered by a worker of another host, from
            # a message sent within the bound on, and nothing after that lost.
            for c in on_d:
                first = next((i for i, a in enumerate(acks[c]) if a[1] != 'D'), None)
                self.assertIsNotNone(first, 'client %s never re-bound: %r' % (c.id, acks[c][-5:]))
                n0, host, t_sent, _ = acks[c][first]
                self.assertLessEqual(t_sent - cut['mono'], self.node_timeout + MARGIN,
                                     'client %s re-bound late' % c.id)
                after = [a[0] for a in acks[c][first:]]
                self.assertEqual(after, list(range(n0, max(sent[c]) + 1)),
                                 'client %s lost messages after re-binding' % c.id)
                self.assertEqual({a[1] for a in acks[c][first:]} & {'D'}, set())
                c.host = host
            netlab.log('%d clients of D re-bound after %.2f..%.2f s' % (
                len(on_d), min(acks[c][next(i for i, a in enumerate(acks[c]) if a[1] != 'D')][2]
                               - cut['mono'] for c in on_d),
                max(acks[c][next(i for i, a in enumerate(acks[c]) if a[1] != 'D')][2]
                    - cut['mono'] for c in on_d)))
            # Commands to D's gateway are refused (GW_EUNREACHABLE) and counted.
            target = self.dclients[0]
            sender = others[0]
            rc = self.expect(sender, lambda m: m.startswith('rc:'),
                             send='tocid:%s:to-lost-host' % target.id)
            self.assertEqual(rc.split(':')[1], str(GW_EUNREACHABLE), rc)
            self.settle(0.6)
            self.assertGreater(self.stat_sum(rest, 'businessworker', 'send_errors'),
                               errors_before, 'the refused command was not counted')
            # The workers of the other hosts ran on_close for the clients they had of
            # D's gateways (gone with their host); D's own workers, cut off, did not.
            for c in self.dclients:
                closes = {e['host'] for e in self.events(ev='close', id=c.id)}
                self.assertEqual(closes, set() if c.host == 'D' else {c.host},
                                 'on_close for %s (bound to a worker of %s)' % (c.id, c.host))
            # The chat goes on among the hosts that are left.
            self.clear_inboxes()
            others[0].ws.send('say:room:after-cut')
            for c in self.chat:
                self.expect(c, lambda m: m == 'msg:%s:after-cut' % others[0].id)
        finally:
            t_restore = time.monotonic()
            self.lab.restore(self.D)
        # D rejoins without anyone doing anything.
        self.wait_mesh(self.gw_hosts, self.wk_hosts, timeout=40, pump_fn=self.pump)
        netlab.log('D back in every view %.1f s after the link came back'
                   % (time.monotonic() - t_restore))
        fresh = self.connect(self.D)
        self.assertIn(fresh.host, 'ABCD')
        tries = 0
        while True:
            c = self.connect([self.B, self.C][tries % 2])
            if c.host == 'D':
                break
            tries += 1
            self.assertLess(tries, 40, 'no new client of B or C was bound to a worker of D')
        self.assertTrue(self.expect(c, lambda m: m.startswith('ack:0.1:D'), send='seq:0.1'))
        self.clear_inboxes()

    def test_4b_clients_of_a_returning_gateway(self):
        """A gateway that was cut off and comes back keeps its clients, while the
        workers of the other hosts ran on_close for the ones bound to them when that
        gateway left the roster. When such a client speaks again, its worker runs
        on_connect first (docs/DESIGN.md): no events after on_close without a new
        on_connect. Runs after test_4."""
        stale = [c for c in self.dclients if not c.ws.closed and c.host != 'D']
        self.assertTrue(stale, 'no client of D bound to another host survived the cut')
        zombies = []
        for c in stale:
            closed_by = {e['host'] for e in self.events(ev='close', id=c.id)}
            self.assertIn(c.host, closed_by)
            try:
                r = self.expect(c, lambda m: m.startswith('ack:'), send='seq:0.9', timeout=5)
            except (AssertionError, OSError):
                continue  # closed or not served: consistent
            if not self.events(ev='connect', id=c.id)[1:]:
                zombies.append((c.id, r))
        self.assertEqual(zombies, [], 'events after on_close without a new on_connect')

    def test_5_all_registers_down(self):
        """Both registers stopped: traffic between gateways and workers goes on; a
        new worker host started meanwhile joins once one register is back, and the
        return of the registers disturbs nobody."""
        clients = self.chat
        regs = [(h, self.register_pid(h)) for h in (self.A, self.B)]
        offsets, t_mono = self.log_offsets(), time.monotonic()
        for _, pid in regs:
            os.kill(pid, signal.SIGSTOP)
        try:
            acks, sent = self.stream(clients, self.node_timeout + 2.0)
            self.assert_no_loss(acks, sent, clients, 'all registers stopped')
            # A new host, started now, cannot join yet.
            F = self.lab.add_host('F', ADDR['F'])
            F.write_config(adapt('host1.json', F, self.events_path, lan_ip=F.ip,
                                 overrides={'register': {'count': 0}}))
            F.start()
            self.settle(self.node_timeout)
            st = self.mesh_state(self.gw_hosts, self.wk_hosts)
            self.assertTrue(all(seen == want for _, _, seen, want in st),
                            'a new worker host joined while no register was up? %r' % st)
            # One register back (killed while stopped: its supervisor restarts it).
            host_a, pid_a = regs[0]
            os.kill(pid_a, signal.SIGKILL)
            back = {}

            def until_joined(elapsed):
                if not back and elapsed > 0.3 and int(elapsed * 10) % 5 == 0:
                    st = self.mesh_state(self.gw_hosts, self.wk_hosts + [F])
                    if all(seen == want for _, _, seen, want in st):
                        back['t'] = elapsed
            acks, sent = self.stream(clients, 8.0, action=until_joined)
            self.assert_no_loss(acks, sent, clients, 'one register back')
            self.wait_mesh(self.gw_hosts, self.wk_hosts + [F], timeout=20, pump_fn=self.pump)
            netlab.log('new host F joined %s after one register came back'
                       % ('%.1f s' % back['t'] if back else 'later than 8 s'))
        finally:
            for _, pid in regs:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        self.assert_undisturbed(offsets, 'registers stopped and back', t_mono)
        acks, sent = self.stream(clients, 2.0)
        self.assert_no_loss(acks, sent, clients, 'both registers back')
        self.assert_undisturbed(offsets, 'both registers back', t_mono)
        # F's workers serve clients.
        tries = 0
        while True:
            c = self.connect([self.B, self.C][tries % 2])
            if c.host == 'F':
                break
            tries += 1
            self.assertLess(tries, 40, 'no new client was bound to a worker of F')
        F = self.lab.hosts['F']
        F.stop()
        self.wait_mesh(self.gw_hosts, self.wk_hosts, timeout=20, pump_fn=self.pump)

    def test_6_nginx_in_front(self):
        """The nginx configuration of docs/DEPLOY.md (addresses changed) in front of
        the gateways of B and C, in the clients' namespace: WebSocket clients through
        it reach both gateway hosts and chat."""
        nginx = shutil.which('nginx') or ('/usr/sbin/nginx' if os.path.exists('/usr/sbin/nginx')
                                          else None)
        if nginx is None:
            self.skipTest('nginx is not installed (apt-get install nginx-light)')
        d = os.path.join(self.dir, 'nginx')
        for sub in ('body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        conf = os.path.join(d, 'nginx.conf')
        with open(conf, 'w') as f:
            f.write(NGINX_WRAPPER % {'dir': d, 'block': deploy_nginx_block()})
        rc, out = netlab.run(['ip', 'netns', 'exec', self.lab.client_ns, nginx, '-t', '-c', conf,
                              '-p', d], check=False)
        self.assertEqual(rc, 0, 'nginx -t refused the DEPLOY.md block: %s' % out)
        with open(os.path.join(d, 'stderr.log'), 'wb') as log:
            type(self).nginx = subprocess.Popen(
                ['ip', 'netns', 'exec', self.lab.client_ns, nginx, '-c', conf, '-p', d],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def lb_client():
            try:
                ws = netlab.Ws(self.lab.client_ns, '127.0.0.1', 80, raw_host='chat.example.com')
            except OSError:
                return None
            c = Chat(ws, self.B)
            self.clients.append(c)
            info = json.loads(self.expect(c, lambda m: m.startswith('{'), send='who'))
            c.id, c.host = info['id'], info['host']
            return c
        via = [wait_for(lb_client, 'nginx to accept and proxy a WebSocket', 10)]
        via += [lb_client() for _ in range(7)]
        gw_ips = {'%d.%d.%d.%d' % tuple(bytes.fromhex(c.id[:8])) for c in via}
        self.assertEqual(gw_ips, {self.B.ip, self.C.ip},
                         'least_conn should spread the clients over both gateway hosts')
        for c in via:
            self.expect(c, lambda m: m.startswith('ok:join'), send='join:lb')
        self.settle(0.5)  # presence propagation, as in test_1
        via[0].ws.send('say:lb:through-nginx')
        for c in via:
            self.expect(c, lambda m: m == 'msg:%s:through-nginx' % via[0].id)
        for c in via:
            c.ws.close()
            self.clients.remove(c)


NGINX_WRAPPER = """daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 512; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
%(block)s
}
"""


def deploy_nginx_block():
    """The nginx block of docs/DEPLOY.md, with the namespace addresses."""
    with open(os.path.join(ROOT, 'docs', 'DEPLOY.md')) as f:
        doc = f.read()
    m = re.search(r'```nginx\n(.*?)```', doc, re.S)
    if not m:
        raise AssertionError('no ```nginx block in docs/DEPLOY.md')
    return re.sub(r'\b10\.0\.0\.(\d+)\b', lambda x: '%s.%s' % (netlab.SUBNET, x.group(1)),
                  m.group(1))


def _on_signal(signum, frame):
    # meson's timeout (SIGTERM) or Ctrl-C: remove the namespaces before dying.
    sys.stderr.write('test_netns: signal %d: cleaning up\n' % signum)
    try:
        MultiHost._tear_down(failed=True)
    finally:
        os._exit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    try:
        netlab.preflight()
    except netlab.Unavailable as e:
        print('SKIP: the network-namespace suite needs root and iproute2: %s' % e)
        sys.exit(77)
    prog = unittest.main(verbosity=2, exit=False)
    r = prog.result
    xfail = len(r.expectedFailures)
    if xfail:
        print('%d expected failure(s): known bugs, see the docstrings' % xfail)
    print('%d passed, %d failed, %d skipped' % (
        r.testsRun - len(r.failures) - len(r.errors) - len(r.skipped) - xfail
        - len(r.unexpectedSuccesses),
        len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses), len(r.skipped)))
    if r.testsRun and len(r.skipped) == r.testsRun:
        sys.exit(77)
    sys.exit(0 if r.wasSuccessful() else 1)


if __name__ == '__main__':
    main()
