"""Helpers of the supervisor integration tests (test_supervisor*.py); no tests here.

A SupCluster is one gw-master with its config in a temporary directory, on free
loopback ports (gwtest.free_ports), driven the way an operator does it: the
gw-master binary with start / start -d / stop / status / reload, signals, the
Prometheus endpoint. Cleanup never leaves a process behind: it SIGKILLs the master
(its children die with it, PR_SET_PDEATHSIG) and any child pid it has seen.
"""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.request

import gwtest
from gwtest import DEFAULT_TIMEOUT, wait_for

MASTER = os.path.join(gwtest.BUILD_DIR, 'supervisor', 'gw-master')
ROLES = ('register', 'gateway', 'businessworker')


def master_binary():
    if not os.access(MASTER, os.X_OK):
        raise unittest.SkipTest('%s not built (GW_BUILD_DIR=%s)' % (MASTER, gwtest.BUILD_DIR))
    return MASTER


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, ProcessLookupError):
        return False


def ppid_of(pid):
    with open('/proc/%d/stat' % pid) as f:
        return int(f.read().rsplit(')', 1)[1].split()[1])


def parse_table(text):
    """The rows of `gw-master status` as dicts (role, index, pid, state, ..., notes)."""
    lines = text.splitlines()
    head = next(i for i, l in enumerate(lines) if l.startswith('role '))
    cols = lines[head].split()
    rows = []
    for line in lines[head + 1:]:
        if not line.strip():
            break
        parts = line.split(None, len(cols))
        row = dict(zip(cols, parts))
        row['notes'] = parts[len(cols)] if len(parts) > len(cols) else ''
        rows.append(row)
    summary = next(l for l in lines[head:] if re.match(r'\d+ processes, ', l))
    return rows, summary


PROM_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
PROM_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """Parses the text exposition format strictly enough for the tests: returns
    {family: {'type': t, 'samples': [(labels dict, value)]}}; raises on any line
    that is not a comment, a TYPE/HELP line or a sample of the family declared last."""
    fams = {}
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith('# TYPE '):
            _, _, name, typ = line.split(' ', 3)
            assert typ in ('counter', 'gauge', 'untyped', 'summary', 'histogram'), line
            assert name not in fams, 'family %s declared twice (line %d)' % (name, n)
            fams[name] = {'type': typ, 'samples': []}
            current = name
            continue
        if line.startswith('#'):
            continue
        m = PROM_SAMPLE.match(line)
        assert m, 'line %d is not a Prometheus sample: %r' % (n, line)
        name = m.group(1)
        assert name == current, 'sample %s outside its family block (line %d)' % (name, n)
        labels = dict(PROM_LABEL.findall(m.group(2) or ''))
        fams[name]['samples'].append((labels, float(m.group(3))))
    return fams


def make_fake_bins(directory, scripts):
    """Writes executables gw-register, gw-gateway, gw-businessworker (shell scripts
    given by role) into directory, for tests of the master alone."""
    os.makedirs(directory, exist_ok=True)
    names = {'register': 'gw-register', 'gateway': 'gw-gateway',
             'businessworker': 'gw-businessworker'}
    for role, body in scripts.items():
        path = os.path.join(directory, names[role])
        with open(path, 'w') as f:
            f.write('#!/bin/sh\n' + body)
        os.chmod(path, stat.S_IRWXU)
    return directory


class SupCluster:
    def __init__(self, tc, registers=1, gateways=1, workers=1, module='testmod',
                 supervisor=None, cluster=None, businessworker=None, bin_dir=None):
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix='gwsup-')
        self.run_dir = os.path.join(self.dir, 'run')
        self.bin_dir = bin_dir
        self.reg_port = gwtest.free_ports(2)
        self.ws_port = gwtest.free_ports(1)
        self.metrics_port = gwtest.free_ports(1)
        self.events_path = os.path.join(self.dir, 'events.log')
        self.conf = {
            'cluster': {
                'lan_ip': '127.0.0.1',
                'registers': ['127.0.0.1:%d' % self.reg_port],
                'heartbeat_interval': 0.2,
                'node_timeout': 1.0,
                'log_level': 'debug' if gwtest.DEBUG else 'info',
                'run_dir': 'run',
            },
            'register': {'count': registers, 'listen': '127.0.0.1:%d' % self.reg_port,
                         'publish_interval': 0.5},
            'gateway': {'count': gateways, 'listen': ['websocket://127.0.0.1:%d' % self.ws_port],
                        'start_port': gwtest.free_ports(max(gateways, 1))},
            'businessworker': {'count': workers,
                               'module': gwtest.module_path(module) if module else '',
                               'start_port': gwtest.free_ports(max(workers, 1)),
                               'module_config': {'event_log': self.events_path}},
            'supervisor': {'stop_timeout': 5, 'restart_backoff_max': 2,
                           'metrics_listen': '127.0.0.1:%d' % self.metrics_port},
        }
        for section, extra in (('supervisor', supervisor), ('cluster', cluster),
                               ('businessworker', businessworker)):
            gwtest.deep_merge(self.conf[section], extra)
        self.path = os.path.join(self.dir, 'gatewayworker.json')
        self.write()
        self.popen = None
        self.daemon_pid = None
        self.seen_pids = set()
        self._out = self._err = None
        tc.addCleanup(self.cleanup)

    # ---- files ----

    def write(self):
        with open(self.path, 'w') as f:
            json.dump(self.conf, f, indent=1)

    @property
    def pid_file(self):
        return os.path.join(self.run_dir, 'gatewayworker.pid')

    @property
    def log_file(self):
        return os.path.join(self.run_dir, 'gatewayworker.log')

    @property
    def sock(self):
        return os.path.join(self.run_dir, 'gatewayworker.sock')

    def log(self):
        """Everything the master and its children logged (foreground: the master's
        stderr; daemon: the log file and its rotated predecessors, oldest first)."""
        paths = []
        if self.popen is not None:
            paths.append(os.path.join(self.dir, 'master.err'))
        else:
            for i in range(9, 0, -1):
                paths.append('%s.%d' % (self.log_file, i))
            paths.append(self.log_file)
        text = ''
        for p in paths:
            try:
                with open(p, 'rb') as f:
                    text += f.read().decode('utf-8', 'replace')
            except FileNotFoundError:
                pass
        return text

    def stdout(self):
        with open(os.path.join(self.dir, 'master.out'), 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log()), '%r in the master log' % pattern, timeout)

    # ---- running ----

    def argv(self, *args):
        a = [master_binary(), '--config', self.path]
        if self.bin_dir:
            a += ['--bin-dir', self.bin_dir]
        return a + list(args)

    def start(self):
        """Foreground master in its own session (like a terminal's job)."""
        self._out = open(os.path.join(self.dir, 'master.out'), 'wb')
        self._err = open(os.path.join(self.dir, 'master.err'), 'wb')
        self.popen = subprocess.Popen(self.argv('start'), stdin=subprocess.DEVNULL,
                                      stdout=self._out, stderr=self._err,
                                      start_new_session=True, env=gwtest.proc_env())
        return self

    def start_daemon(self):
        r = self.run('start', '-d', timeout=60)
        if r.returncode == 0:
            with open(self.pid_file) as f:
                self.daemon_pid = int(f.read())
        return r

    @property
    def master_pid(self):
        return self.popen.pid if self.popen is not None else self.daemon_pid

    def run(self, *args, timeout=60):
        return subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, env=gwtest.proc_env())

    def check_master(self):
        if self.popen is not None and self.popen.poll() is not None:
            raise AssertionError('the master exited (%s); its log:\n%s'
                                 % (gwtest.describe_rc(self.popen.returncode), self.log()))

    def status(self):
        r = self.run('status', '--json', timeout=20)
        if r.returncode != 0:
            raise AssertionError('status failed (%d): %s' % (r.returncode, r.stderr))
        st = json.loads(r.stdout)
        for p in st['processes']:
            if p['pid']:
                self.seen_pids.add(p['pid'])
        return st

    def procs(self, role=None):
        return [p for p in self.status()['processes'] if role is None or p['role'] == role]

    def wait_status(self, pred, what, timeout=20):
        def cond():
            self.check_master()
            if not os.path.exists(self.sock):
                return None  # still starting
            st = self.status()
            return st if pred(st) else None
        return wait_for(cond, what, timeout, interval=0.1)

    def wait_running(self, timeout=20):
        return self.wait_status(
            lambda st: all(p['state'] == 'running' for p in st['processes']),
            'every process running', timeout)

    def wait_linked(self, timeout=20):
        """Running, and every worker linked to every gateway in both directions: each
        worker knows every gateway and each gateway can route to every worker (the two
        learn of each other from different roster publications, so one side alone is
        not enough: a gateway that has not yet seen a worker routes all new clients to
        the others)."""
        ng = self.conf['gateway']['count']
        nw = self.conf['businessworker']['count']
        return self.wait_status(
            lambda st: all(p['state'] == 'running' for p in st['processes']) and all(
                p['connections'] == ng for p in st['processes'] if p['role'] == 'businessworker')
            and all(p['stats'].get('workers') == nw for p in st['processes']
                    if p['role'] == 'gateway'),
            'every worker linked to the gateways', timeout)

    def metrics(self, path='/metrics'):
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (self.metrics_port, path),
                                    timeout=10) as r:
            return r.status, r.headers.get('Content-Type'), r.read().decode()

    def client(self):
        ws = gwtest.WsClient('127.0.0.1', self.ws_port)
        self.tc.addCleanup(ws.close)
        return ws

    def wait_master_exit(self, timeout=30):
        if self.popen is not None:
            return self.popen.wait(timeout)
        wait_for(lambda: not pid_alive(self.daemon_pid), 'the daemon master to exit', timeout)
        return None

    def cleanup(self):
        if self.master_pid and pid_alive(self.master_pid):
            os.kill(self.master_pid, signal.SIGKILL)
        if self.popen is not None:
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.seen_pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for f in (self._out, self._err):
            if f is not None:
                f.close()
        text = self.log()
        result = getattr(getattr(self.tc, '_outcome', None), 'result', None)
        failed = result is not None and any(
            t is self.tc for t, _ in list(result.errors) + list(result.failures))
        if gwtest.DEBUG or failed:
            print('\n==== master log (%s) ====\n%s' % (self.dir, text[-20000:]))
        for marker in gwtest.SANITIZER_MARKERS:
            if marker in text:
                self.tc.fail('a sanitizer report in the log: %r' % marker)
        if not gwtest.KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_gone(pids, what, timeout=10):
    wait_for(lambda: not any(pid_alive(p) for p in pids),
             '%s to be gone (alive: %s)' % (what, [p for p in pids if pid_alive(p)]), timeout)


def now():
    return time.monotonic()
