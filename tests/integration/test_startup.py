"""Start-up failures: configuration errors exit 2 naming file, key and reason;
invalid business modules make gw-businessworker exit non-zero naming the file and
the missing symbol; a taken port is reported."""

import json
import os
import shutil
import socket
import tempfile

import gwtest

ROLES = ('register', 'gateway', 'businessworker')


class ConfigErrors(gwtest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='gwtest-config-')
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, text, name='bad.json'):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        return path

    def run_all(self, path, must_contain):
        for role in ROLES:
            with self.subTest(role=role):
                rc, out = gwtest.run_to_exit(role, path)
                self.assertEqual(rc, 2, out)
                for s in must_contain:
                    self.assertIn(s, out)
                self.assert_clean(out)

    def assert_clean(self, out):
        gwtest.assert_no_sanitizer_report(self, out)

    def base(self):
        module = gwtest.module_path('testmod')
        return {'cluster': {'run_dir': self.dir},
                'businessworker': {'module': module}}

    def test_unknown_key(self):
        conf = self.base()
        conf['gateway'] = {'pong': 1}
        path = self.write(conf)
        self.run_all(path, [path, 'gateway.pong', 'unknown key'])

    def test_unknown_key_in_each_section(self):
        for section in ('cluster', 'register', 'businessworker', 'supervisor'):
            conf = self.base()
            conf.setdefault(section, {})['no_such_key'] = True
            path = self.write(conf, 'bad-%s.json' % section)
            rc, out = gwtest.run_to_exit('gateway', path)
            self.assertEqual(rc, 2, out)
            self.assertIn('%s: %s.no_such_key: unknown key' % (path, section), out)

    def test_unknown_section(self):
        conf = self.base()
        conf['gatway'] = {}
        path = self.write(conf)
        self.run_all(path, [path, 'gatway'])

    def test_out_of_range(self):
        conf = self.base()
        conf['gateway'] = {'ping_interval': -1}
        path = self.write(conf)
        self.run_all(path, [path, 'gateway.ping_interval', 'must be >= 0'])

    def test_wrong_type(self):
        conf = self.base()
        conf['gateway'] = {'count': 'one'}
        path = self.write(conf)
        self.run_all(path, [path, 'gateway.count'])

    def test_bad_listener_url(self):
        conf = self.base()
        conf['gateway'] = {'listen': ['ws://0.0.0.0:8282']}
        path = self.write(conf)
        self.run_all(path, [path, 'gateway.listen[0]', 'scheme'])

    def test_whole_config_check(self):
        conf = self.base()
        conf['gateway'] = {'ping_interval': 0, 'ping_not_response_limit': 1}
        path = self.write(conf)
        self.run_all(path, [path, 'ping_not_response_limit'])

    def test_malformed_json(self):
        path = self.write('{\n  "gateway": {\n    "count": 1,\n  }\n}\n')
        self.run_all(path, [path + ':4:'])

    def test_duplicate_key(self):
        path = self.write('{"gateway": {"count": 1, "count": 2}}')
        self.run_all(path, [path, 'duplicate'])

    def test_missing_file(self):
        path = os.path.join(self.dir, 'does-not-exist.json')
        self.run_all(path, [path])

    def test_bad_index(self):
        path = self.write(self.base(), 'good.json')
        for role in ROLES:
            rc, out = gwtest.run_to_exit(role, path, index=0, extra_args=['--index', '256'])
            self.assertEqual(rc, 2, out)
            self.assertIn('--index', out)

    def test_print_config_masks_secret(self):
        conf = self.base()
        conf['cluster']['secret_key'] = 'very-secret-value'
        path = self.write(conf, 'good.json')
        rc, out = gwtest.run_to_exit('gateway', path, extra_args=['--print-config'])
        self.assertEqual(rc, 0, out)
        self.assertNotIn('very-secret-value', out)
        self.assertIn('ping_interval', out)


class BadModules(gwtest.TestCase):

    def worker_exit(self, module):
        cl = self.cluster()
        host = cl.add_host(module=None, businessworker={'module': module})
        rc, out = gwtest.run_to_exit('businessworker', host.path)
        self.assertNotEqual(rc, 0, out)
        self.assertGreater(rc, 0, 'exit, not a crash: %s' % out)
        gwtest.assert_no_sanitizer_report(self, out)
        return out

    def test_module_without_abi(self):
        path = gwtest.module_path('noabi')
        out = self.worker_exit(path)
        self.assertIn(path, out)
        self.assertIn('gw_module_abi_version', out)

    def test_module_without_on_message(self):
        path = gwtest.module_path('nomsg')
        out = self.worker_exit(path)
        self.assertIn(path, out)
        self.assertIn('on_message', out)

    def test_module_with_other_abi(self):
        path = gwtest.module_path('badabi')
        out = self.worker_exit(path)
        self.assertIn(path, out)
        self.assertIn('ABI', out)
        self.assertIn('1001', out)  # the ABI the module was built for

    def test_module_file_missing(self):
        path = os.path.join(tempfile.gettempdir(), 'no-such-module-%d.so' % os.getpid())
        out = self.worker_exit(path)
        self.assertIn(path, out)

    def test_module_not_a_library(self):
        cl = self.cluster()
        path = os.path.join(cl.dir, 'not-a-module.so')
        with open(path, 'w') as f:
            f.write('this is not an ELF file\n')
        out = self.worker_exit(path)
        self.assertIn(path, out)

    def test_refused_worker_never_joins(self):
        """A worker with a refused module exits before it joins the cluster."""
        cl = self.cluster()
        host = cl.add_host(register=True, workers=1, module='nomsg')
        cl.start_register(host)
        cl.start_gateway(host)
        p = cl.start_worker(host, 0, wait=False)
        p.expect_exit = True
        gwtest.wait_for(lambda: not p.alive(), 'the worker with a bad module to exit')
        self.assertNotEqual(p.popen.returncode, 0)
        self.assertNotIn('GW-NODE-JOIN businessworker', host.register.log())


class TakenPorts(gwtest.TestCase):

    def test_listener_port_taken(self):
        cl = self.cluster()
        host = cl.add_host(register=True, workers=0, module=None, listen=('text',))
        ip, port = host.listeners['text']
        blocker = socket.socket()
        blocker.bind((ip, port))
        blocker.listen()
        self.addCleanup(blocker.close)
        rc, out = gwtest.run_to_exit('gateway', host.path)
        self.assertNotEqual(rc, 0, out)
        self.assertGreater(rc, 0, out)
        self.assertIn('text://%s:%d' % (ip, port), out)
        gwtest.assert_no_sanitizer_report(self, out)

    def test_inbox_port_taken(self):
        cl = self.cluster()
        host = cl.add_host(register=True, workers=1, listen=('text',))
        blocker = socket.socket()
        blocker.bind(('127.0.0.1', host.worker_start))
        blocker.listen()
        self.addCleanup(blocker.close)
        rc, out = gwtest.run_to_exit('businessworker', host.path)
        self.assertGreater(rc, 0, out)
        self.assertIn(str(host.worker_start), out)
        gwtest.assert_no_sanitizer_report(self, out)

    def test_register_port_taken(self):
        cl = self.cluster()
        host = cl.add_host(register=True, workers=0, module=None, listen=())
        blocker = socket.socket()
        blocker.bind(('127.0.0.1', cl.register_port))
        blocker.listen()
        self.addCleanup(blocker.close)
        rc, out = gwtest.run_to_exit('register', host.path)
        self.assertGreater(rc, 0, out)
        self.assertIn('127.0.0.1:%d' % cl.register_port, out)
        gwtest.assert_no_sanitizer_report(self, out)


if __name__ == '__main__':
    gwtest.main()
