// Browser end-to-end tests: Debian's chromium (headless), driven by playwright-core,
// against a real cluster started here. Run by tests/e2e/run.sh (which installs
// chromium and playwright-core), or directly:
//   node --experimental-websocket --test tests/e2e/browser.test.mjs
//
// The heartbeat scenario of GatewayWorker: gateway ping_interval 2 s, limit 1 (a
// client silent for 2 s is closed); a page sends a heartbeat every 0.5 s with
// gatewayworker.js, served by the gateway itself (gateway.static_dir). The
// business module (e2emod.c) logs connect/message/close with timestamps.
//
// Environment: GW_BUILD_DIR (default build/), CHROMIUM (default /usr/bin/chromium),
// GW_E2E_MODULE (the e2e module .so; default $GW_BUILD_DIR/tests/e2e/libgw_e2emod.so),
// E2E_ARTIFACTS (screenshots; default tests/e2e/artifacts), GW_TEST_KEEP.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';
import {Cluster, ROOT, modulePath, sleep, waitFor, withLogs} from './lib/cluster.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.E2E_ARTIFACTS || path.join(ROOT, 'tests', 'e2e', 'artifacts'));
const PING_INTERVAL = 2; // s
const LIMIT = 1;
const DEADLINE = PING_INTERVAL * LIMIT * 1000; // ms of silence before the gateway closes a client
const SLACK = 2000; // ms, for a loaded 2-core machine

// ---- the cluster with the e2e module, serving the test page ------------------

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gwjs-e2e-'));
const webDir = path.join(work, 'web');
fs.mkdirSync(webDir);
fs.copyFileSync(path.join(ROOT, 'tests', 'e2e', 'web', 'index.html'), path.join(webDir, 'index.html'));
fs.copyFileSync(path.join(ROOT, 'clients', 'js', 'gatewayworker.js'), path.join(webDir, 'gatewayworker.js'));
const eventLog = path.join(work, 'events.jsonl');

const cluster = new Cluster('e2e', {
  module: modulePath(process.env.GW_E2E_MODULE || 'e2emod'),
  gateway: {ping_interval: PING_INTERVAL, ping_not_response_limit: LIMIT, static_dir: webDir},
  businessworker: {module_config: {event_log: eventLog}},
});

// The chat demo: the real chat module and page (examples/chat), with the library.
const chatWeb = path.join(work, 'chat-web');
fs.mkdirSync(chatWeb);
fs.copyFileSync(path.join(ROOT, 'examples', 'chat', 'web', 'index.html'), path.join(chatWeb, 'index.html'));
fs.copyFileSync(path.join(ROOT, 'clients', 'js', 'gatewayworker.js'), path.join(chatWeb, 'gatewayworker.js'));
const chat = new Cluster('chat', {
  module: modulePath('chat'),
  gateway: {ping_interval: 15, ping_not_response_limit: 1, static_dir: chatWeb},
});

/** Events of e2emod (JSON lines), optionally only those of one client / kind. */
function events(ev, id) {
  let text = '';
  try { text = fs.readFileSync(eventLog, 'utf8'); } catch (e) { return []; }
  const out = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let e;
    try { e = JSON.parse(line); } catch (err) { continue; } // a line being written
    if ((!ev || e.ev === ev) && (!id || e.id === id)) out.push(e);
  }
  return out;
}

function waitEvent(ev, id, timeout) {
  return waitFor(() => events(ev, id)[0], `on_${ev} of ${id} in the module's event log`, timeout);
}

// ---- the browser -------------------------------------------------------------

let browser = null;
let browserPid = 0;
let frozen = [];

/** The browser process and all its descendants (renderers, network service, ...). */
function processTree(root) {
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); } catch (e) { continue; }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(d));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) || []));
  return out;
}

/** The browser's main process: our child process running chromium. */
function findBrowserPid() {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (/chrom/.test(cmd.split('\0')[0])) return Number(d);
    } catch (e) { /* gone */ }
  }
  throw new Error('cannot find the browser process among the children of ' + process.pid);
}

function signalAll(pids, sig) {
  for (const pid of pids) {
    try { process.kill(pid, sig); } catch (e) { /* gone */ }
  }
}

function thaw() {
  signalAll(frozen, 'SIGCONT');
  frozen = [];
}

process.on('exit', () => {
  thaw();
  if (browserPid) signalAll(processTree(browserPid), 'SIGKILL');
});

async function newPage(url) {
  const context = await browser.newContext({viewport: {width: 1000, height: 700}});
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('# page error:', err.message));
  await page.goto(url);
  return page;
}

/** Waits until the page has a client_id (other than `not`); returns it. */
async function clientId(page, not = null, timeout = 10000) {
  const h = await page.waitForFunction((old) => window.gw && window.gw.clientId && window.gw.clientId !== old ?
    window.gw.clientId : null, not, {timeout, polling: 50});
  return h.jsonValue();
}

const it = (name, cl, fn) => test(name, {timeout: 90000}, (t) => withLogs(cl, () => fn(t)));

before(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (tests/e2e/run.sh does)`);
  await Promise.all([cluster.start(), chat.start()]);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // A fresh profile (--user-data-dir) is made by playwright for each launch.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
  browserPid = findBrowserPid();
});

after(async () => {
  thaw();
  if (browser) {
    const closing = browser.close().catch(() => {});
    await Promise.race([closing, sleep(10000)]);
    if (browserPid) signalAll(processTree(browserPid), 'SIGKILL');
  }
  await Promise.all([cluster.stop(), chat.stop()]);
  if (!process.env.GW_TEST_KEEP) fs.rmSync(work, {recursive: true, force: true});
});

// ---- the scenarios -----------------------------------------------------------

let beating = null; // the page of scenario 1, closed in scenario 2

it('a page with a 0.5 s heartbeat stays connected for 3 x ping_interval; a silent one is closed at the deadline',
  cluster, async (t) => {
    const [pageHb, pageSilent] = await Promise.all([
      newPage(`${cluster.httpUrl}/index.html?hb=500`),
      newPage(`${cluster.httpUrl}/index.html`),
    ]);
    beating = pageHb;
    const [id, silentId] = await Promise.all([clientId(pageHb), clientId(pageSilent)]);
    const t0 = Date.now();
    assert.ok(events('connect', id).length === 1, 'on_connect of the page');
    await sleep(3 * PING_INTERVAL * 1000);

    // The heartbeating page: never closed, one connection, heartbeats seen by the module.
    assert.deepEqual(events('close', id), [], 'on_close of the heartbeating page');
    const st = await pageHb.evaluate(() => ({opens: gw.opens, closes: gw.closes.length, ids: gw.ids, state: client.state}));
    assert.deepEqual(st, {opens: 1, closes: 0, ids: [id], state: 'open'});
    const hbs = events('message', id).filter((e) => e.msg === 'hb' && e.t >= t0);
    assert.ok(hbs.length >= 8, `${hbs.length} heartbeats in ${3 * PING_INTERVAL} s`);

    // The silent page (control): closed at the deadline, then reconnected by the
    // library with a new client_id.
    const connect = events('connect', silentId)[0];
    const closed = await waitEvent('close', silentId, 1000);
    const after = closed.t - connect.t;
    assert.ok(after >= DEADLINE - 500 && after <= DEADLINE + SLACK, `silent page closed ${after} ms after connecting`);
    const newId = await clientId(pageSilent, silentId);
    assert.notEqual(newId, silentId);
    t.diagnostic(`silent page closed ${Math.round(after)} ms after connect, reconnected as ${newId}; ` +
      `${hbs.length} heartbeats from the beating page in ${3 * PING_INTERVAL} s`);
    await pageSilent.context().close();
  });

it('closing the page -> on_close promptly', cluster, async (t) => {
  assert.ok(beating, 'needs the page of the previous test');
  const id = await clientId(beating);
  const t0 = Date.now();
  await beating.context().close();
  const closed = await waitEvent('close', id, 3000 + SLACK);
  const after = closed.t - t0;
  assert.ok(after <= 3000, `on_close ${after} ms after the page was closed`);
  t.diagnostic(`on_close ${Math.round(after)} ms after the page was closed`);
});

it('a frozen browser (SIGSTOP) -> on_close at the heartbeat deadline; after SIGCONT the page reconnects with a new client_id',
  cluster, async (t) => {
    const page = await newPage(`${cluster.httpUrl}/index.html?hb=500`);
    const id = await clientId(page);
    await waitFor(() => events('message', id).length >= 2, 'two heartbeats of the page', 5000);

    // Freeze the whole browser: TCP stays open, nothing is sent.
    const tStop = Date.now();
    frozen = processTree(browserPid);
    const nFrozen = frozen.length;
    signalAll(frozen, 'SIGSTOP');
    let closed, last;
    try {
      closed = await waitEvent('close', id, DEADLINE + SLACK + 3000);
      last = events('message', id).filter((e) => e.t <= closed.t).at(-1);
    } finally {
      thaw();
    }
    const tCont = Date.now();
    const sinceLast = closed.t - last.t;
    assert.ok(sinceLast <= DEADLINE + SLACK, `on_close ${sinceLast} ms after the last message (deadline ${DEADLINE} ms)`);
    assert.ok(sinceLast >= DEADLINE - 500, `on_close ${sinceLast} ms after the last message: before the deadline`);
    assert.ok(closed.t - tStop <= DEADLINE + SLACK, `on_close ${closed.t - tStop} ms after SIGSTOP`);

    // Thawed: the page learns that its connection is gone and reconnects by itself.
    const newId = await clientId(page, id, 20000);
    assert.notEqual(newId, id);
    const reconnected = events('connect', newId)[0];
    assert.ok(reconnected && reconnected.t >= tCont - 50, 'on_connect of the new client after SIGCONT');
    const st = await page.evaluate(() => ({opens: gw.opens, ids: gw.ids, state: client.state}));
    assert.equal(st.state, 'open');
    assert.deepEqual(st.ids, [id, newId]);
    await waitFor(() => events('message', newId).length >= 2, 'heartbeats on the new connection', 5000);
    fs.mkdirSync(ARTIFACTS, {recursive: true});
    await page.screenshot({path: path.join(ARTIFACTS, 'e2e-page-after-freeze.png')});
    t.diagnostic(`froze ${nFrozen} browser processes; on_close ${Math.round(sinceLast)} ms after the last ` +
      `message (${Math.round(closed.t - tStop)} ms after SIGSTOP); new client_id ${Math.round(reconnected.t - tCont)} ms after SIGCONT`);
    await page.context().close();
  });

it('chat demo: two pages exchange messages (screenshot in tests/e2e/artifacts/chat.png)', chat, async (t) => {
  const [alice, bob] = await Promise.all([newPage(`${chat.httpUrl}/`), newPage(`${chat.httpUrl}/`)]);
  const login = async (page, name) => {
    await page.waitForFunction(() => /connected/.test(document.getElementById('status').textContent) &&
      !/dis/.test(document.getElementById('status').textContent));
    assert.equal(await page.isVisible('#say-form'), false, 'the say form is hidden before login');
    await page.fill('#name', name);
    await page.fill('#room', 'lobby');
    await page.click('#login-form button');
    await page.waitForSelector('#say-form', {state: 'visible'});
    assert.equal(await page.isVisible('#login-form'), false, 'the login form is hidden after login');
  };
  await login(alice, 'alice');
  await login(bob, 'bob');
  // Both see both in the room.
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => document.querySelectorAll('#users li').length === 2, null, {timeout: 10000});
  }
  const say = async (page, text) => {
    await page.fill('#content', text);
    await page.click('#say-form button');
  };
  const sees = (page, text) => page.waitForFunction((s) => document.getElementById('log').textContent.includes(s),
    text, {timeout: 10000});
  await say(alice, 'Hello Bob, from Alice');
  await sees(bob, 'alice: Hello Bob, from Alice');
  await say(bob, 'Hi Alice! Bob here.');
  await sees(alice, 'bob: Hi Alice! Bob here.');
  // A private message: click bob in alice's user list.
  await alice.click('#users li:has-text("bob")');
  await say(alice, 'this one is private');
  await sees(bob, 'alice → bob: this one is private');
  await alice.click('#to-clear');
  await sees(alice, 'alice → bob: this one is private');
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  const shot = path.join(ARTIFACTS, 'chat.png');
  await alice.screenshot({path: shot});
  await bob.screenshot({path: path.join(ARTIFACTS, 'chat-bob.png')});
  assert.ok(fs.statSync(shot).size > 5000, 'screenshot written');
  // Bob leaves: alice is told.
  await bob.context().close();
  await sees(alice, 'bob left');
  await alice.context().close();
  t.diagnostic('screenshots: ' + shot + ', ' + path.join(ARTIFACTS, 'chat-bob.png'));
});
