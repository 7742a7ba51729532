// Dead-server detection: the gateway is frozen with SIGSTOP (its TCP connections
// stay open, nothing is answered). A client that expects data (echoed heartbeats,
// or the gateway's ping_data) notices within deadTimeout, closes with code 4000
// and reconnects; one without deadTimeout notices nothing.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import GatewayWorkerClient from '../gatewayworker.mjs';
import {Cluster, modulePath, sleep, withLogs} from '../../../tests/e2e/lib/cluster.mjs';
import {record} from '../../../tests/e2e/lib/record.mjs';

// ping_data "ping" after every 0.5 s of client silence; nobody is closed for silence.
const cluster = new Cluster('dead', {
  module: modulePath('echo'),
  gateway: {ping_interval: 0.5, ping_not_response_limit: 0, ping_data: 'ping'},
});
const clients = [];

before(() => cluster.start());
after(async () => {
  for (const c of clients) c.close();
  await cluster.stop(); // SIGCONTs the gateway first, in case a test failed while it was stopped
});

const DEAD = 1500;
const SLACK = 1500;

test('no data for deadTimeout -> close 4000 and reconnect; blind without deadTimeout', (t) =>
  withLogs(cluster, async () => {
    const mk = (o) => {
      const c = new GatewayWorkerClient(cluster.wsUrl, Object.assign({minDelay: 100, maxDelay: 400}, o));
      clients.push(c);
      return c;
    };
    // A: heartbeats that the echo module answers. B: silent, kept alive by the
    // gateway's ping_data. C: silent and without deadTimeout.
    const a = mk({heartbeatMessage: 'hb', heartbeatInterval: 250, deadTimeout: DEAD});
    const b = mk({deadTimeout: DEAD});
    const c = mk({});
    const ra = record(a), rb = record(b), rc = record(c);
    await Promise.all([ra.wait('open'), rb.wait('open'), rc.wait('open')]);

    // Healthy for 2.5 s (longer than deadTimeout): nobody gives up.
    await sleep(2500);
    for (const [n, r] of [['A', ra], ['B', rb], ['C', rc]]) {
      assert.equal(r.count('close'), 0, `${n} closed while the server was alive: ${r.summary()}`);
    }
    assert.ok(rb.count('message', (e) => e.arg === 'ping') >= 2, 'B receives ping_data: ' + rb.summary());

    // Freeze the gateway.
    const marks = [ra.events.length, rb.events.length, rc.events.length];
    const t0 = Date.now();
    cluster.gateway.signal('SIGSTOP');
    try {
      for (const [n, r, m] of [['A', ra, marks[0]], ['B', rb, marks[1]]]) {
        const closed = await r.wait('close', null, {from: m, timeout: DEAD + SLACK + 2000});
        const after = closed.t - t0;
        assert.equal(closed.arg.code, 4000, `${n}: close code`);
        assert.ok(after <= DEAD + SLACK, `${n}: closed ${after} ms after SIGSTOP (deadTimeout ${DEAD})`);
        assert.ok(after >= DEAD - 1000, `${n}: closed ${after} ms after SIGSTOP: before deadTimeout ${DEAD}`);
        const rec = await r.wait('reconnecting', null, {from: m, timeout: 500});
        assert.equal(rec.arg.attempt, 1);
        t.diagnostic(`${n}: close 4000 ${after} ms after SIGSTOP`);
      }
      // The frozen gateway's kernel still completes TCP handshakes, but nothing
      // answers the WebSocket upgrade: deadTimeout bounds that attempt too.
      const r2 = await ra.wait('reconnecting', null, {from: marks[0], n: 2, timeout: DEAD + 400 + SLACK + 2000});
      assert.equal(r2.arg.attempt, 2);
      assert.equal(a.state === 'reconnecting' || a.state === 'connecting', true);
      // C has no way to know.
      assert.equal(rc.count('close', (e) => e.t > t0), 0);
      assert.equal(c.state, 'open');
    } finally {
      cluster.gateway.signal('SIGCONT');
    }
    const t1 = Date.now();

    // Back: A and B reconnect by themselves (each on a new connection) and work.
    const [oa, ob] = await Promise.all([
      ra.wait('open', null, {from: marks[0], timeout: 10000}),
      rb.wait('open', null, {from: marks[1], timeout: 10000}),
    ]);
    t.diagnostic(`reopened ${oa.t - t1} / ${ob.t - t1} ms after SIGCONT`);
    a.send('A again');
    b.send('B again');
    c.send('C again');
    await ra.wait('message', (e) => e.arg === 'A again', {from: marks[0]});
    await rb.wait('message', (e) => e.arg === 'B again', {from: marks[1]});
    await rc.wait('message', (e) => e.arg === 'C again', {from: marks[2]});
    assert.equal(ra.count('open'), 2);
    assert.equal(rb.count('open'), 2);
    assert.equal(rc.count('open'), 1);
  }));
