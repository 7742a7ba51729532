#!/usr/bin/env node
// The Node reference of bench/run.sh (issue #5): a plain `ws` WebSocket server, written
// the way a Node user would. Every message is sent back to its sender, except messages
// starting with the broadcast prefix ("B:"), which go to every other client, as
// bench/bcast_module.c (gw_send_to_all) and bench/echo-server.c do.
//
//   node echo-server.js [--port 8282] [--host 127.0.0.1] [--prefix B:]
//
// Prints "listening ws HOST:PORT" on stdout when ready; SIGINT/SIGTERM stop it.
'use strict';

const { WebSocketServer } = require('ws');

const opts = { port: 8282, host: '127.0.0.1', prefix: 'B:' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--port') opts.port = Number(argv[++i]);
  else if (a === '--host') opts.host = argv[++i];
  else if (a === '--prefix') opts.prefix = argv[++i];
  else if (a === '-h' || a === '--help') {
    process.stdout.write('usage: node echo-server.js [--port P] [--host IP] [--prefix STR]\n');
    process.exit(0);
  } else {
    process.stderr.write(`echo-server.js: unknown argument ${a}\n`);
    process.exit(2);
  }
}

const prefix = Buffer.from(opts.prefix);
const wss = new WebSocketServer({
  host: opts.host,
  port: opts.port,
  backlog: 4096,
  perMessageDeflate: false,
  clientTracking: true,
  maxPayload: 1 << 20,
});

let messages = 0;
let deliveries = 0;

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    messages++;
    if (prefix.length && data.length >= prefix.length &&
        data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0) {
      for (const c of wss.clients) {
        if (c !== ws && c.readyState === 1) {
          c.send(data, { binary: isBinary });
          deliveries++;
        }
      }
      return;
    }
    ws.send(data, { binary: isBinary });
  });
});

wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`listening ws ${a.address}:${a.port}\n`);
});

wss.on('error', (err) => {
  process.stderr.write(`echo-server.js: ${err.message}\n`);
  process.exit(1);
});

function stop() {
  process.stderr.write(`echo-server.js: ${messages} messages, ${deliveries} broadcast deliveries\n`);
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
