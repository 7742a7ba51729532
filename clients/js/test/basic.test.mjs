// The client against a real cluster (echo module): connect, echo, the queue,
// heartbeats against the gateway's deadline, close(). Run with
//   node --experimental-websocket --test clients/js/test/
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {createRequire} from 'node:module';
import {execFileSync} from 'node:child_process';
import net from 'node:net';
import {fileURLToPath} from 'node:url';
import GatewayWorkerClient from '../gatewayworker.mjs';
import {Cluster, modulePath, freePorts, sleep, withLogs} from '../../../tests/e2e/lib/cluster.mjs';
import {record} from '../../../tests/e2e/lib/record.mjs';

// ping_interval 1 s, limit 1: a client silent for 1 s is closed by the gateway.
const cluster = new Cluster('basic', {
  module: modulePath('echo'),
  gateway: {ping_interval: 1, ping_not_response_limit: 1},
});
const clients = [];
function client(options) {
  const c = new GatewayWorkerClient(cluster.wsUrl, Object.assign({minDelay: 100, maxDelay: 1000}, options));
  clients.push(c);
  return c;
}
const it = (name, fn) => test(name, () => withLogs(cluster, fn));

before(() => cluster.start());
after(async () => {
  for (const c of clients) c.close();
  await cluster.stop();
});

it('connects and echoes text and binary messages', async () => {
  const c = client({heartbeatMessage: 'hb', heartbeatInterval: 300});
  const rec = record(c);
  assert.equal(c.state, 'connecting');
  await rec.wait('open');
  assert.equal(c.state, 'open');
  assert.equal(c.send('hello'), true);
  assert.equal((await rec.wait('message', (e) => e.arg === 'hello')).arg, 'hello');
  const bytes = new Uint8Array([0, 1, 2, 250, 255]);
  c.send(bytes);
  const bin = await rec.wait('message', (e) => typeof e.arg !== 'string');
  assert.ok(bin.arg instanceof ArrayBuffer, 'binaryType arraybuffer');
  assert.deepEqual([...new Uint8Array(bin.arg)], [...bytes]);
  c.close();
  assert.equal(c.state, 'closed');
});

it('queues messages sent before the connection is open and sends them in order', async () => {
  const c = client({heartbeatMessage: 'hb', heartbeatInterval: 300});
  const rec = record(c);
  for (const m of ['q1', 'q2', 'q3']) assert.equal(c.send(m), true);
  assert.equal(c.queued, 3);
  await rec.wait('message', (e) => e.arg === 'q3');
  assert.deepEqual(rec.all('message', (e) => e.arg !== 'hb').map((e) => e.arg), ['q1', 'q2', 'q3']);
  assert.equal(c.queued, 0);
  c.close();
});

it('heartbeats keep a connection open past ping_interval x limit; a silent client is closed and reconnects', async () => {
  // Both at once: 3 s is three times the gateway's 1 s deadline.
  const beating = client({heartbeatMessage: 'hb', heartbeatInterval: 300});
  const silent = client({});
  const rb = record(beating), rs = record(silent);
  await Promise.all([rb.wait('open'), rs.wait('open')]);
  const t0 = Date.now();
  // The silent one is closed by the gateway at its deadline (1 s after open) ...
  const closed = await rs.wait('close', null, {timeout: 4000});
  const openedAt = rs.all('open')[0].t;
  assert.ok(closed.t - openedAt >= 700, `closed ${closed.t - openedAt} ms after open: before the 1 s deadline`);
  assert.ok(closed.t - openedAt <= 3500, `closed ${closed.t - openedAt} ms after open: long after the 1 s deadline`);
  assert.ok([1001, 1005, 1006].includes(closed.arg.code), 'close code ' + closed.arg.code);
  // ... and reconnects by itself, on a new connection.
  await rs.wait('reconnecting', null, {timeout: 1000});
  await rs.wait('open', null, {n: 2, timeout: 5000});
  silent.send('after reconnect');
  await rs.wait('message', (e) => e.arg === 'after reconnect');
  const left = 3000 - (Date.now() - t0);
  if (left > 0) await sleep(left);
  assert.equal(rb.count('close'), 0, 'the heartbeating client was closed: ' + rb.summary());
  assert.equal(rb.count('open'), 1);
  assert.equal(beating.state, 'open');
  assert.ok(rb.count('message', (e) => e.arg === 'hb') >= 5, 'heartbeats are echoed back');
  beating.send('still here');
  await rb.wait('message', (e) => e.arg === 'still here');
});

it('heartbeatMessage may be a function', async () => {
  let n = 0;
  const c = client({heartbeatMessage: () => 'beat' + ++n, heartbeatInterval: 100});
  const rec = record(c);
  await rec.wait('message', (e) => e.arg === 'beat3');
  c.close();
});

it('the queue is bounded: send() returns false beyond maxQueue', async () => {
  const port = await freePorts(1); // nothing listens there
  const c = new GatewayWorkerClient(`ws://127.0.0.1:${port}`, {maxQueue: 3, minDelay: 50, maxDelay: 100});
  clients.push(c);
  const rec = record(c);
  assert.equal(c.send('a'), true);
  assert.equal(c.send('b'), true);
  assert.equal(c.send('c'), true);
  assert.equal(c.send('d'), false);
  assert.equal(c.queued, 3);
  await rec.wait('reconnecting', null, {n: 2});
  assert.equal(c.state === 'reconnecting' || c.state === 'connecting', true, c.state);
  assert.equal(c.send('e'), false, 'still full while reconnecting');
  assert.equal(rec.count('open'), 0);
  c.close();
  assert.equal(c.queued, 0, 'close() drops the queue');
  assert.equal(c.send('f'), false, 'send after close()');
});

it('close() stops everything: no reconnection, no heartbeat, no more events', async () => {
  // An open client.
  const a = client({heartbeatMessage: 'hb', heartbeatInterval: 100, deadTimeout: 300});
  const ra = record(a);
  await ra.wait('open');
  a.close();
  assert.equal(a.state, 'closed');
  // A client waiting to reconnect (nothing listens on its port).
  const port = await freePorts(1);
  const b = new GatewayWorkerClient(`ws://127.0.0.1:${port}`, {minDelay: 100, maxDelay: 100});
  clients.push(b);
  const rb = record(b);
  await rb.wait('reconnecting');
  b.close();
  assert.equal(b.state, 'closed');
  const na = ra.events.length, nb = rb.events.length;
  await sleep(1200);
  // a may still report the close of its socket (once); nothing else.
  const laterA = ra.events.slice(na).map((e) => e.name);
  assert.ok(laterA.every((n) => n === 'close') && laterA.length <= 1, 'events after close(): ' + laterA);
  assert.deepEqual(rb.events.slice(nb).map((e) => e.name), [], 'events after close()');
  assert.equal(a.send('x'), false);
  assert.deepEqual(Object.keys(a._timers), [], 'timers left: ' + Object.keys(a._timers));
  assert.deepEqual(Object.keys(b._timers), [], 'timers left: ' + Object.keys(b._timers));
});

it('a close() from inside an event listener is honoured', async () => {
  const port = await freePorts(1);
  const c = new GatewayWorkerClient(`ws://127.0.0.1:${port}`, {minDelay: 50});
  clients.push(c);
  const rec = record(c);
  c.on('reconnecting', () => c.close());
  await rec.wait('reconnecting');
  await sleep(300);
  assert.equal(rec.count('reconnecting'), 1);
  assert.equal(c.state, 'closed');
});

it('reconnect: false gives up after the first close', async () => {
  const port = await freePorts(1);
  const c = new GatewayWorkerClient(`ws://127.0.0.1:${port}`, {reconnect: false});
  clients.push(c);
  const rec = record(c);
  await rec.wait('close');
  await sleep(300);
  assert.equal(rec.count('reconnecting'), 0);
  assert.equal(c.state, 'closed');
  assert.equal(c.send('x'), false, 'send() after the client gave up');
});

it('uses options.WebSocket when given (e.g. the ws package)', async () => {
  let made = 0;
  class Counting extends WebSocket {
    constructor(url, protocols) { super(url, protocols); made++; }
  }
  const c = client({WebSocket: Counting, heartbeatMessage: 'hb', heartbeatInterval: 300});
  const rec = record(c);
  await rec.wait('open');
  c.send('via option');
  await rec.wait('message', (e) => e.arg === 'via option');
  assert.equal(made, 1);
  c.close();
});

it('deadTimeout bounds a handshake that never gets an answer; no unhandled error events (ws package semantics)', async () => {
  // A server that accepts TCP connections and never answers: a frozen gateway,
  // as far as the client can tell.
  const sockets = new Set();
  const srv = net.createServer((s) => { sockets.add(s); s.on('error', () => {}); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  // The ws package is an EventEmitter: an 'error' without a listener throws. Same here,
  // recorded instead of thrown.
  const unhandled = [];
  class StrictErrors extends WebSocket {
    #user = null;
    constructor(url, protocols) {
      super(url, protocols);
      super.onerror = (e) => (this.#user ? this.#user.call(this, e) : unhandled.push(e.message || 'error'));
    }
    get onerror() { return this.#user; }
    set onerror(fn) { this.#user = fn; }
  }
  const c = new GatewayWorkerClient(`ws://127.0.0.1:${srv.address().port}`,
    {WebSocket: StrictErrors, deadTimeout: 300, minDelay: 50, maxDelay: 100});
  clients.push(c);
  const rec = record(c);
  try {
    const r3 = await rec.wait('reconnecting', null, {n: 3, timeout: 5000});
    assert.equal(r3.arg.attempt, 3);
    assert.ok(rec.all('close').every((e) => e.arg.code === 4000), rec.summary());
    assert.equal(rec.count('open'), 0);
    c.close();
    await sleep(100);
    assert.deepEqual(unhandled, [], 'error events without a listener');
  } finally {
    c.close();
    for (const s of sockets) s.destroy();
    srv.close();
  }
});

it('rejects unknown options and events', () => {
  assert.throws(() => new GatewayWorkerClient('ws://127.0.0.1:1', {heartbeat: 5}), /unknown option heartbeat/);
  const c = new GatewayWorkerClient('ws://127.0.0.1:1', {reconnect: false});
  assert.throws(() => c.on('opened', () => {}), /unknown event opened/);
  c.close();
});

it('a throwing listener does not break the client (the error is reported asynchronously)', async () => {
  // In a child process: the test runner fails a test on any uncaught exception.
  const lib = new URL('../gatewayworker.mjs', import.meta.url).href;
  const script = `
    import C from ${JSON.stringify(lib)};
    const seen = [];
    process.on('uncaughtException', (e) => seen.push(e.message));
    const c = new C(${JSON.stringify(cluster.wsUrl)}, {heartbeatMessage: 'hb', heartbeatInterval: 300});
    c.on('message', () => { throw new Error('listener bug'); });
    c.on('message', (d) => {
      if (d === 'two') setTimeout(() => { c.close(); console.log(JSON.stringify(seen)); }, 50);
    });
    c.on('open', () => { c.send('one'); c.send('two'); });
    setTimeout(() => { console.log('timeout'); process.exit(2); }, 8000).unref();`;
  const out = execFileSync(process.execPath, ['--experimental-websocket', '--input-type=module', '-e', script],
    {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15000});
  const seen = JSON.parse(out.trim().split('\n').pop());
  assert.ok(seen.filter((m) => m === 'listener bug').length >= 2, out);
});

test('gatewayworker.js (plain script) is generated from the .mjs and works under require()', () => {
  const dir = fileURLToPath(new URL('..', import.meta.url));
  execFileSync(process.execPath, [dir + 'build.mjs', '--check'], {stdio: 'pipe'});
  const require = createRequire(import.meta.url);
  const Cjs = require('../gatewayworker.js');
  assert.equal(typeof Cjs, 'function');
  assert.equal(Cjs.GatewayWorkerClient, Cjs);
  assert.equal(Cjs.VERSION, GatewayWorkerClient.VERSION);
  assert.deepEqual(Object.keys(Cjs.DEFAULTS), Object.keys(GatewayWorkerClient.DEFAULTS));
});
