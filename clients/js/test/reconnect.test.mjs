// Reconnection against a real cluster whose gateway is killed and restarted:
// exponential backoff with jitter, capped; the queue delivered after reconnect;
// the backoff starts over only after a stable connection.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import GatewayWorkerClient from '../gatewayworker.mjs';
import {Cluster, modulePath, sleep, withLogs} from '../../../tests/e2e/lib/cluster.mjs';
import {record} from '../../../tests/e2e/lib/record.mjs';

const cluster = new Cluster('reconnect', {module: modulePath('echo')});
let client = null;

before(() => cluster.start());
after(async () => {
  if (client) client.close();
  await cluster.stop();
});

const OPTS = {minDelay: 200, maxDelay: 1000, factor: 2, jitter: 0.5, stableAfter: 5000};
const base = (attempt) => Math.min(OPTS.maxDelay, OPTS.minDelay * OPTS.factor ** (attempt - 1));

test('backoff grows and is capped; queued messages are delivered after reconnect; stable connections reset it', (t) =>
  withLogs(cluster, async () => {
    client = new GatewayWorkerClient(cluster.wsUrl, OPTS);
    const rec = record(client);
    await rec.wait('open');

    // ---- 1. the gateway dies: reconnecting, with growing delays up to the cap
    let mark = rec.events.length;
    await cluster.killGateway();
    const closed = await rec.wait('close', null, {from: mark});
    assert.equal(closed.arg.wasClean, false);
    for (const m of ['q1', 'q2', 'q3']) assert.equal(client.send(m), true, 'queued while down');
    assert.equal(client.queued, 3);
    await rec.wait('reconnecting', null, {from: mark, n: 7, timeout: 15000});
    const tries = rec.events.slice(mark).filter((e) => e.name === 'reconnecting').slice(0, 7);
    const delays = tries.map((e) => e.arg.delay);
    tries.forEach((e, i) => {
      const b = base(i + 1);
      assert.equal(e.arg.attempt, i + 1);
      assert.ok(e.arg.delay <= b && e.arg.delay >= b * (1 - OPTS.jitter) - 1,
        `attempt ${i + 1}: delay ${e.arg.delay} outside [${b * (1 - OPTS.jitter)}, ${b}] (delays ${delays})`);
    });
    assert.ok(delays.every((d) => d <= OPTS.maxDelay), 'capped: ' + delays);
    assert.ok(delays[0] <= 200 && delays[3] >= 500 && delays[6] >= 500, 'grows: ' + delays);
    // The measured gaps between attempts follow the announced delays (generous
    // upper slack: a refused connection on a loaded machine takes a moment).
    const gaps = tries.slice(1).map((e, i) => e.t - tries[i].t);
    gaps.forEach((g, i) => {
      assert.ok(g >= delays[i] - 5, `gap ${g} ms before attempt ${i + 2} < its delay ${delays[i]} ms`);
      assert.ok(g <= delays[i] + 1500, `gap ${g} ms before attempt ${i + 2} >> its delay ${delays[i]} ms`);
    });
    assert.ok(gaps.slice(3).reduce((a, b) => a + b, 0) / 3 > gaps[0], 'measured gaps grow: ' + gaps);
    assert.equal(rec.count('open'), 1);
    t.diagnostic(`backoff delays (ms): ${delays.join(' ')}; measured gaps: ${gaps.join(' ')}`);

    // ---- 2. the gateway comes back: reconnected, queue flushed in order
    mark = rec.events.length;
    await cluster.restartGateway();
    const opened = await rec.wait('open', null, {from: mark, timeout: 10000});
    await rec.wait('message', (e) => e.arg === 'q3', {from: mark, timeout: 10000});
    assert.deepEqual(rec.events.slice(mark).filter((e) => e.name === 'message').map((e) => e.arg),
      ['q1', 'q2', 'q3']);
    assert.equal(client.queued, 0);
    const attemptsSoFar = rec.last('reconnecting').arg.attempt;

    // ---- 3. dropped again before stableAfter: the backoff goes on from where it was
    mark = rec.events.length;
    await cluster.killGateway();
    const upFor = Date.now() - opened.t;
    const r1 = await rec.wait('reconnecting', null, {from: mark});
    if (upFor < OPTS.stableAfter - 500) {
      assert.equal(r1.arg.attempt, attemptsSoFar + 1, 'an unstable connection keeps the backoff');
      assert.ok(r1.arg.delay >= OPTS.maxDelay * (1 - OPTS.jitter), 'still at the cap: ' + r1.arg.delay);
    } else {
      t.diagnostic(`skipped the unstable-connection check: the restart took ${upFor} ms`);
    }

    // ---- 4. up for longer than stableAfter: the next failure starts from minDelay
    mark = rec.events.length;
    await cluster.restartGateway();
    const opened2 = await rec.wait('open', null, {from: mark, timeout: 10000});
    const wait = OPTS.stableAfter + 300 - (Date.now() - opened2.t);
    if (wait > 0) await sleep(wait);
    assert.equal(rec.count('close', (e) => e.t > opened2.t), 0, 'the connection stayed up');
    mark = rec.events.length;
    await cluster.killGateway();
    const r2 = await rec.wait('reconnecting', null, {from: mark});
    assert.equal(r2.arg.attempt, 1, 'backoff reset after a stable connection');
    assert.ok(r2.arg.delay <= OPTS.minDelay, 'first delay again: ' + r2.arg.delay);

    // ---- 5. and it reconnects once more
    mark = rec.events.length;
    await cluster.restartGateway();
    await rec.wait('open', null, {from: mark, timeout: 10000});
    client.send('back');
    await rec.wait('message', (e) => e.arg === 'back', {from: mark});
    client.close();
  }));
