"""gw-master -d: pid file, log file fed by the children's output, SIGHUP reopen,
rotation by size, stop (with SIGKILL after stop_timeout), no orphans."""

import os
import re
import signal
import unittest

import gwtest
from gwtest import wait_for
from test_supervisor_util import (SupCluster, make_fake_bins, pid_alive, ppid_of,
                                  wait_gone)

# Fake children for tests of the master alone: they do what the test needs and then
# become `sleep` (exec: the process the master watches is the one that got
# PR_SET_PDEATHSIG).
SLEEP = 'exec sleep 1000\n'
STUBBORN = "trap '' TERM\nexec sleep 1000\n"  # ignores SIGTERM (inherited by exec)


class DaemonTest(unittest.TestCase):

    def test_daemon_pid_file_log_file_sighup_stop(self):
        c = SupCluster(self)
        r = c.start_daemon()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('GatewayWorker-C started', r.stdout)
        self.assertIn('daemon', r.stdout)
        self.assertIn('log:       %s' % c.log_file, r.stdout)
        master = c.daemon_pid
        self.assertTrue(pid_alive(master))
        self.assertNotEqual(os.getsid(master), os.getsid(0))  # detached from our session
        st = c.wait_linked()
        self.assertTrue(st['master']['daemon'])
        self.assertEqual(st['master']['pid'], master)
        pids = [p['pid'] for p in st['processes']]
        for pid in pids:
            self.assertEqual(ppid_of(pid), master)

        # The children's output reaches the log file through the master.
        c.wait_log(r'businessworker#0\[%d\] INFO GW-START' % c.procs('businessworker')[0]['pid'])
        c.wait_log(r'gateway#0\[\d+\] INFO GW-LISTEN')
        c.wait_log(r'master\[%d\] INFO GW-SUP-START master started \(daemon\)' % master)

        # A second start is refused while it runs.
        r = c.run('start', '-d')
        self.assertEqual(r.returncode, 1)
        self.assertIn('already running (pid %d' % master, r.stderr)

        # SIGHUP: the master reopens the file (an outside logrotate moved it), and the
        # children's output follows into the new file.
        moved = c.log_file + '.moved'
        os.rename(c.log_file, moved)
        os.kill(master, signal.SIGHUP)
        wait_for(lambda: os.path.exists(c.log_file), 'a new log file after SIGHUP')
        c.wait_log(r'GW-SUP-LOG log file reopened \(SIGHUP\)')
        old = c.procs('businessworker')[0]['pid']
        os.kill(old, signal.SIGKILL)
        c.wait_log(r'killed by signal SIGKILL')
        new = c.wait_status(lambda st: all(p['state'] == 'running' for p in st['processes'])
                            and c.procs('businessworker')[0]['pid'] != old,
                            'the worker restarted')
        newpid = next(p['pid'] for p in new['processes'] if p['role'] == 'businessworker')
        c.wait_log(r'businessworker#0\[%d\] INFO GW-START' % newpid)
        with open(moved) as f:
            self.assertNotIn('businessworker#0[%d]' % newpid, f.read())
        pids = [p['pid'] for p in c.status()['processes']]

        r = c.run('stop')
        self.assertEqual(r.returncode, 0, r.stderr)
        c.wait_master_exit(10)
        wait_gone(pids, 'the children', timeout=5)
        self.assertFalse(os.path.exists(c.pid_file))
        self.assertFalse(os.path.exists(c.sock))
        self.assertIn('all processes stopped', c.log())
        r = c.run('stop')
        self.assertEqual(r.returncode, 1)
        self.assertIn('not running', r.stderr)

    def test_daemon_killed_leaves_no_orphans(self):
        c = SupCluster(self, workers=2)
        r = c.start_daemon()
        self.assertEqual(r.returncode, 0, r.stderr)
        st = c.wait_running()
        pids = [p['pid'] for p in st['processes']]
        os.kill(c.daemon_pid, signal.SIGKILL)
        wait_gone([c.daemon_pid] + pids, 'the daemon and its children', timeout=5)
        # The stale pid file and socket do not prevent the next start.
        r = c.start_daemon()
        self.assertEqual(r.returncode, 0, r.stderr)
        c.wait_running()
        self.assertEqual(c.run('stop').returncode, 0)

    def test_log_rotation_by_size(self):
        # Two fake workers write 600 numbered lines each to stdout and to stderr,
        # concurrently (about 235 KB); the master must forward whole lines only and
        # rotate at 64 KiB, keeping 5 old files (enough to hold everything here).
        line = 'x' * 80
        worker = ('i=0\nwhile [ $i -lt 600 ]; do\n'
                  '  echo "fake-$4 line $i %s"\n'
                  '  echo "fake-$4 err $i %s" >&2\n'
                  '  i=$((i+1))\ndone\n'
                  'printf "fake-$4 no newline at the end"\n' % (line, line)) + SLEEP
        c = SupCluster(self, workers=2, supervisor={'log_max_size': 65536})
        c.bin_dir = make_fake_bins(os.path.join(c.dir, 'bin'), {
            'register': SLEEP, 'gateway': SLEEP, 'businessworker': worker})
        r = c.start_daemon()
        self.assertEqual(r.returncode, 0, r.stderr)
        rx = re.compile(r'^fake-(\d) (line|err) (\d+) x{80}$')

        def complete():
            return sum(1 for l in c.log().splitlines() if rx.match(l)) == 2 * 2 * 600
        wait_for(complete, 'all 2400 lines in the log files', timeout=30)
        pids = [p['pid'] for p in c.status()['processes']]
        self.assertEqual(c.run('stop').returncode, 0)
        c.wait_master_exit(15)
        wait_gone(pids, 'the fake children')

        rotated = ['%s.%d' % (c.log_file, i) for i in range(1, 6)]
        present = [p for p in rotated if os.path.exists(p)]
        self.assertGreaterEqual(len(present), 3, present)
        self.assertFalse(os.path.exists(c.log_file + '.6'))  # keeps 5
        for p in present:
            self.assertLessEqual(os.path.getsize(p), 65536, p)
        seen = {}
        for l in c.log().splitlines():
            m = rx.match(l)
            if m:
                key = (m.group(1), m.group(2))
                n = int(m.group(3))
                self.assertEqual(seen.get(key, -1) + 1, n, 'line %r out of order' % l)
                seen[key] = n
            elif l.startswith('fake-'):
                self.assertRegex(l, r'^fake-\d no newline at the end$')  # flushed at EOF
            else:
                # Nothing else but whole log lines of the master.
                self.assertRegex(l, r'^\d{4}-\d\d-\d\dT[0-9:.]+Z master\[\d+\] [A-Z]+ ')
        self.assertEqual(len(seen), 4)
        self.assertEqual(c.log().count('no newline at the end'), 2)
        self.assertIn('GW-SUP-LOG log rotated', c.log())

    def test_stop_kills_what_ignores_sigterm(self):
        c = SupCluster(self, supervisor={'stop_timeout': 1})
        c.bin_dir = make_fake_bins(os.path.join(c.dir, 'bin'), {
            'register': SLEEP, 'gateway': STUBBORN, 'businessworker': SLEEP})
        c.start()
        st = c.wait_status(lambda st: all(p['pid'] for p in st['processes']), 'all spawned')
        pids = {p['role']: p['pid'] for p in st['processes']}
        r = c.run('stop')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(c.wait_master_exit(), 0)
        wait_gone(list(pids.values()), 'the fake children')
        log = c.log()
        kill = log.index('GW-SUP-KILL gateway#0 (pid %d) did not stop within 1.0 s: SIGKILL'
                         % pids['gateway'])
        # The workers were asked to stop only once the gateways were gone.
        self.assertLess(kill, log.index('SIGTERM sent to 1 businessworker process(es)'))
        self.assertIn('businessworker#0 (pid %d) killed by signal SIGTERM'
                      % pids['businessworker'], log)


if __name__ == '__main__':
    gwtest.main()
