"""The documentation names every configuration key the code knows, and no key the
code does not know (README.md's table and docs/CONFIG.md), so neither can drift."""

import json
import os
import re
import subprocess
import tempfile
import unittest

import gwtest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def effective_keys():
    """section.key for every key of --print-config (the loader's own table)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'c.json')
        with open(path, 'w') as f:
            json.dump({'businessworker': {'count': 0}}, f)
        out = subprocess.run([os.path.join(gwtest.BUILD_DIR, 'register', 'gw-register'),
                              '--config', path, '--print-config'],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    cfg = json.loads(out)
    return {'%s.%s' % (s, k) for s, keys in cfg.items() for k in keys}


class ConfigDocs(unittest.TestCase):

    def test_readme_table_matches_the_loader(self):
        with open(os.path.join(ROOT, 'README.md')) as f:
            text = f.read()
        documented = set(re.findall(r'^\| (\w+\.\w+) \| ', text, re.M))
        self.assertEqual(documented, effective_keys())

    def test_config_md_matches_the_loader(self):
        with open(os.path.join(ROOT, 'docs', 'CONFIG.md')) as f:
            text = f.read()
        documented = set()
        section = None
        for line in text.splitlines():
            m = re.match(r'^## `(\w+)`', line)
            if m:
                section = m.group(1)
                continue
            m = re.match(r'^\| `(\w+)` \|', line)
            if section and m:
                documented.add('%s.%s' % (section, m.group(1)))
        self.assertEqual(documented, effective_keys())


if __name__ == '__main__':
    gwtest.main()
