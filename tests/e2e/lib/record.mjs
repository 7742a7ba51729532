// record.mjs - records the events of a GatewayWorkerClient for assertions.
//
//   const rec = record(client);
//   await rec.wait('open');                              // first 'open'
//   await rec.wait('message', (e) => e.data === 'hi');   // a matching event
//   rec.count('close'); rec.all('reconnecting');
import {waitFor} from './cluster.mjs';

const EVENTS = ['open', 'message', 'close', 'error', 'reconnecting'];

export function record(client) {
  const events = [];
  for (const name of EVENTS) {
    client.on(name, (arg) => {
      const e = {name, t: Date.now(), arg};
      if (name === 'message') e.data = typeof arg === 'string' ? arg : Buffer.from(arg).toString('latin1');
      events.push(e);
    });
  }
  const rec = {
    events,
    all: (name, pred) => events.filter((e) => e.name === name && (!pred || pred(e))),
    count: (name, pred) => rec.all(name, pred).length,
    last: (name) => rec.all(name).at(-1),
    /** Waits for the n-th (1-based) event `name` matching pred, counting from event
     * index `from`; returns it. */
    wait: (name, pred, {timeout = 10000, n = 1, from = 0} = {}) =>
      waitFor(() => {
        const hits = events.slice(from).filter((e) => e.name === name && (!pred || pred(e)));
        return hits.length >= n ? hits[n - 1] : null;
      }, `event '${name}'${n > 1 ? ' #' + n : ''} of the client (got: ${rec.summary()})`, timeout, 10),
    summary: () => events.slice(-20).map((e) => e.name + (e.name === 'close' ? '(' + e.arg.code + ')' :
      e.name === 'reconnecting' ? '(' + e.arg.attempt + ',' + e.arg.delay + ')' : '')).join(' '),
  };
  return rec;
}
