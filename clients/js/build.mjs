// Generates gatewayworker.js (plain script: a global GatewayWorkerClient, and
// module.exports under CommonJS) from gatewayworker.mjs, the source.
//   node build.mjs          write gatewayworker.js
//   node build.mjs --check  exit 1 if gatewayworker.js is not up to date
import {readFileSync, writeFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {dirname, join} from 'node:path';

const dir = dirname(fileURLToPath(import.meta.url));
const src = readFileSync(join(dir, 'gatewayworker.mjs'), 'utf8');
const body = src
  .replace(/^export class /m, 'class ')
  .replace(/^export default GatewayWorkerClient;\n/m, '');
if (/^export /m.test(body)) throw new Error('build.mjs: unexpected export left in the source');
const out = '/* Generated from gatewayworker.mjs by build.mjs: edit the .mjs, then run node build.mjs. */\n' +
  '(function (root) {\n"use strict";\n' + body +
  '\nif (typeof module === "object" && module.exports) {\n' +
  '  module.exports = GatewayWorkerClient;\n  module.exports.default = GatewayWorkerClient;\n' +
  '  module.exports.GatewayWorkerClient = GatewayWorkerClient;\n' +
  '} else {\n  root.GatewayWorkerClient = GatewayWorkerClient;\n}\n' +
  '})(typeof self !== "undefined" ? self : globalThis);\n';
const target = join(dir, 'gatewayworker.js');
if (process.argv.includes('--check')) {
  let cur = '';
  try { cur = readFileSync(target, 'utf8'); } catch (e) { /* missing */ }
  if (cur !== out) {
    console.error('gatewayworker.js is out of date: run node clients/js/build.mjs');
    process.exit(1);
  }
} else {
  writeFileSync(target, out);
}
