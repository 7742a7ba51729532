"""gw-master in the foreground: start, status, stop, Ctrl-C, restarts after a crash,
busy detection, and no orphan when the master itself is killed."""

import os
import re
import signal
import subprocess
import time
import unittest

import gwtest
from gwtest import wait_for
from test_supervisor_util import (ROLES, SupCluster, parse_table, pid_alive, ppid_of,
                                  wait_gone)


class ForegroundTest(unittest.TestCase):

    def started(self, **kw):
        c = SupCluster(self, **kw)
        c.start()
        return c, c.wait_linked()

    def test_start_status_stop(self):
        c = SupCluster(self)
        r = c.run('status')
        self.assertEqual(r.returncode, 1)
        self.assertIn('not running', r.stderr)

        c.start()
        st = c.wait_linked()
        self.assertEqual(st['master']['pid'], c.popen.pid)
        self.assertEqual(st['master']['state'], 'running')
        self.assertFalse(st['master']['daemon'])
        procs = st['processes']
        self.assertEqual(sorted(p['role'] for p in procs), sorted(ROLES))
        for p in procs:
            self.assertEqual(p['index'], 0)
            self.assertTrue(pid_alive(p['pid']), p)
            self.assertEqual(ppid_of(p['pid']), c.popen.pid, p)
            self.assertEqual(p['restarts'], 0)
            self.assertFalse(p['busy'])
            self.assertGreater(p['rss'], 0)
        pids = {p['role']: p['pid'] for p in procs}

        # The operator's table says the same.
        r = c.run('status')
        self.assertEqual(r.returncode, 0, r.stderr)
        rows, summary = parse_table(r.stdout)
        self.assertEqual(summary, '3 processes, 3 running, 0 busy')
        self.assertEqual({row['role']: int(row['pid']) for row in rows}, pids)
        for row in rows:
            self.assertEqual(row['state'], 'running')
            self.assertEqual(row['restarts'], '0')
            self.assertRegex(row['rss'], r'^\d+\.\dM$')
        self.assertIn('master pid %d' % c.popen.pid, r.stdout)

        # The start banner tells where clients connect.
        wait_for(lambda: 'GatewayWorker-C started' in c.stdout(), 'the start banner')
        self.assertIn('ws://127.0.0.1:%d/' % c.ws_port, c.stdout())

        # The cluster it runs works, and status sees the client.
        ws = c.client()
        ws.send('echo:hello')
        self.assertEqual(ws.recv(), 'hello')
        c.wait_status(lambda st: any(p['role'] == 'gateway' and p['connections'] == 1 and
                                     p['msgs_in'] >= 1 for p in st['processes']),
                      'the gateway to count the client and its message')

        stop = subprocess.Popen(c.argv('stop'), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # Graceful: the gateway closes the client with a close frame (going away),
        # and the client answers it as a browser does.
        with self.assertRaises(gwtest.WsClosed) as cm:
            ws.recv(timeout=10)
        self.assertEqual(cm.exception.code, 1001)
        ws.send_close(1001)
        ws.close()
        out, err = stop.communicate(timeout=60)
        self.assertEqual(stop.returncode, 0, err)
        self.assertIn('stopped', out)
        self.assertEqual(c.wait_master_exit(), 0)
        wait_gone(list(pids.values()), 'the children', timeout=5)
        self.assertFalse(os.path.exists(c.pid_file))
        self.assertFalse(os.path.exists(c.sock))
        # In order: gateways, then workers, then the register.
        log = c.log()
        order = [log.index('%s#0 (pid %d) exited with status 0' % (role, pids[role]))
                 for role in ('gateway', 'businessworker', 'register')]
        self.assertEqual(order, sorted(order), log)
        self.assertIn('all processes stopped', log)
        r = c.run('status')
        self.assertEqual(r.returncode, 1)

    def test_ctrl_c_stops_everything(self):
        c, st = self.started(workers=2)
        pids = [p['pid'] for p in st['processes']]
        self.assertEqual(len(pids), 4)
        # A terminal's Ctrl-C: SIGINT to the whole foreground process group.
        os.killpg(c.popen.pid, signal.SIGINT)
        self.assertEqual(c.wait_master_exit(), 0)
        wait_gone(pids, 'the children', timeout=5)
        self.assertFalse(os.path.exists(c.pid_file))

    def test_second_master_is_refused(self):
        c, st = self.started()
        r = c.run('start', timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn('already running (pid %d' % c.popen.pid, r.stderr)
        # The first one is unharmed.
        self.assertEqual([p['pid'] for p in c.status()['processes']],
                         [p['pid'] for p in st['processes']])

    def test_killed_children_are_restarted(self):
        c, st = self.started()
        for role in ('businessworker', 'gateway', 'register'):
            old = next(p['pid'] for p in c.procs(role))
            os.kill(old, signal.SIGKILL)
            new = c.wait_status(
                lambda st: any(p['role'] == role and p['pid'] not in (None, old) and
                               p['state'] == 'running' and p['restarts'] == 1
                               for p in st['processes']),
                '%s to be restarted' % role)
            p = next(p for p in new['processes'] if p['role'] == role)
            self.assertEqual(ppid_of(p['pid']), c.popen.pid)
            self.assertEqual(p['last_exit'], 'killed by signal SIGKILL')
            c.wait_log(r'WARN GW-CHILD-EXIT %s#0 \(pid %d\) killed by signal SIGKILL after '
                       r'[0-9.]+ s; restarting it now' % (role, old))
        # And the cluster works again with all three replaced.
        c.wait_linked()
        ws = c.client()
        ws.send('echo:again')
        self.assertEqual(ws.recv(), 'again')

    def test_busy_child_is_flagged_and_status_still_answers(self):
        c, st = self.started()
        pid = next(p['pid'] for p in st['processes'] if p['role'] == 'businessworker')
        os.kill(pid, signal.SIGSTOP)
        try:
            c.wait_status(lambda st: any(p['pid'] == pid and p['busy']
                                         for p in st['processes']),
                          'the stopped worker to show as busy', timeout=15)
            t0 = time.monotonic()
            r = c.run('status')
            self.assertLess(time.monotonic() - t0, 5)
            rows, summary = parse_table(r.stdout)
            row = next(row for row in rows if row['role'] == 'businessworker')
            self.assertIn('[busy]', row['notes'])
            self.assertEqual(summary, '3 processes, 3 running, 1 busy')
        finally:
            os.kill(pid, signal.SIGCONT)
        c.wait_status(lambda st: not any(p['busy'] for p in st['processes']),
                      'busy to clear after SIGCONT')
        self.assertEqual(c.procs('businessworker')[0]['pid'], pid)  # not restarted

    def test_master_killed_leaves_no_orphans(self):
        c, st = self.started(workers=2, gateways=2)
        pids = [p['pid'] for p in st['processes']]
        self.assertEqual(len(pids), 5)
        os.kill(c.popen.pid, signal.SIGKILL)
        c.popen.wait(10)
        wait_gone(pids, 'the children of the killed master', timeout=5)

    def test_bad_config_and_missing_binaries(self):
        c = SupCluster(self)
        c.conf['supervisor']['stop_timout'] = 1
        c.write()
        r = c.run('start', timeout=20)
        self.assertEqual(r.returncode, 2)
        self.assertIn('supervisor.stop_timout: unknown key', r.stderr)
        del c.conf['supervisor']['stop_timout']
        c.write()
        c.bin_dir = os.path.join(c.dir, 'nothing-here')
        r = c.run('start', timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r'cannot find the executable gw-register')
        self.assertFalse(os.path.exists(c.sock))


if __name__ == '__main__':
    gwtest.main()
