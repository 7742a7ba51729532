// cluster.mjs - starts a real GatewayWorker-C cluster (gw-register, gw-gateway,
// gw-businessworker) for the JavaScript client tests (clients/js/test/) and the
// browser tests (tests/e2e/). Node only, no dependencies.
//
//   import {Cluster, modulePath} from '../../../tests/e2e/lib/cluster.mjs';
//   const cl = new Cluster('echo', {module: modulePath('echo'),
//                                   gateway: {ping_interval: 1, ping_not_response_limit: 1}});
//   await cl.start();                 // free loopback ports, config in a temp dir
//   const ws = new WebSocket(cl.wsUrl);
//   ...
//   await cl.stop();                  // SIGTERM, then SIGKILL; also done at process exit
//
// Every process is a child of this Node process, in its process group, and is
// killed when the process exits (normally, on an uncaught error, on SIGINT/SIGTERM),
// so a failing test never leaves a cluster behind. Readiness is polled (log lines,
// then a real WebSocket round trip), never slept for.
//
// Environment:
//   GW_BUILD_DIR   meson build directory (default: build/ at the top of the repo)
//   GW_TEST_KEEP   keep the temporary directories (configs, logs, event files)
//   GW_TEST_DEBUG  log_level debug in every process
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BUILD_DIR = process.env.GW_BUILD_DIR
  ? path.resolve(process.env.GW_BUILD_DIR) : path.join(ROOT, 'build');
const KEEP = !!process.env.GW_TEST_KEEP;
const DEBUG = !!process.env.GW_TEST_DEBUG;

const BINARIES = {
  register: path.join('register', 'gw-register'),
  gateway: path.join('gateway', 'gw-gateway'),
  businessworker: path.join('businessworker', 'gw-businessworker'),
};

const MODULES = {
  echo: path.join('examples', 'libgw_echo.so'),
  chat: path.join('examples', 'chat', 'libgw_chat.so'),
  e2emod: path.join('tests', 'e2e', 'libgw_e2emod.so'),
};

export function binaryPath(role) {
  const p = path.join(BUILD_DIR, BINARIES[role]);
  if (!fs.existsSync(p)) throw new Error(`${p} is not built (GW_BUILD_DIR=${BUILD_DIR}): meson compile -C ${BUILD_DIR}`);
  return p;
}

/** Path of a built module: 'echo', 'chat', 'e2emod' or an absolute path. */
export function modulePath(name) {
  const p = path.isAbsolute(name) ? name : path.join(BUILD_DIR, MODULES[name]);
  if (!fs.existsSync(p)) throw new Error(`module ${p} is not built`);
  return p;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls cond() (may be async) until it returns a truthy value, which is returned;
 * throws after timeout ms naming `what`. */
export async function waitFor(cond, what, timeout = 10000, interval = 25) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

// ---- every child process, killed at exit -------------------------------------

const children = new Set();
let exitHooked = false;

function hookExit() {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const p of children) {
      try { process.kill(p.pid, 'SIGCONT'); } catch (e) { /* gone */ }
      try { process.kill(p.pid, 'SIGKILL'); } catch (e) { /* gone */ }
    }
    releasePortBlock();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => process.exit(128 + os.constants.signals[sig]));
  }
}

// ---- ports -------------------------------------------------------------------
// Ports 61000..64999: above the kernel's usual ephemeral range (32768..60999, so
// no outgoing connection takes them) and away from the Python integration tests
// (20000..32000). Each test process locks a block of 40 ports (a lock directory
// holding its pid; stale locks of dead processes are taken over), so concurrent
// test processes never pick the same ports; each port is also checked free.

const PORT_LO = 61000, PORT_HI = 65000, PORT_BLOCK = 40;
const LOCK_DIR = path.join(os.tmpdir(), 'gwjs-ports');
let block = null; // {dir, base, next}

function pidAlive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

function lockBlock() {
  fs.mkdirSync(LOCK_DIR, {recursive: true});
  const n = Math.floor((PORT_HI - PORT_LO) / PORT_BLOCK);
  const first = Math.floor(Math.random() * n);
  for (let k = 0; k < n; k++) {
    const b = (first + k) % n;
    const dir = path.join(LOCK_DIR, 'block-' + b);
    try {
      fs.mkdirSync(dir);
    } catch (e) {
      let owner = 0;
      try { owner = parseInt(fs.readFileSync(path.join(dir, 'pid'), 'utf8'), 10); } catch (e2) { /* being written */ }
      if (!owner || pidAlive(owner)) continue;
      // Stale: its owner is dead. Take it over (rename is atomic, so one winner).
      const tomb = dir + '.stale-' + process.pid;
      try { fs.renameSync(dir, tomb); fs.rmSync(tomb, {recursive: true, force: true}); } catch (e3) { continue; }
      try { fs.mkdirSync(dir); } catch (e4) { continue; }
    }
    fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
    hookExit();
    return {dir, base: PORT_LO + b * PORT_BLOCK, next: 0};
  }
  throw new Error('no free port block in ' + LOCK_DIR);
}

function releasePortBlock() {
  if (block) {
    try { fs.rmSync(block.dir, {recursive: true, force: true}); } catch (e) { /* ignore */ }
    block = null;
  }
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({port, host: '0.0.0.0', exclusive: true}, () => srv.close(() => resolve(true)));
  });
}

/** First of n consecutive free TCP ports. */
export async function freePorts(n = 1) {
  for (;;) {
    if (!block) block = lockBlock();
    while (block.next + n <= PORT_BLOCK) {
      const start = block.base + block.next;
      let ok = true;
      for (let i = 0; i < n && ok; i++) ok = await portFree(start + i);
      if (ok) {
        block.next += n;
        return start;
      }
      block.next++;
    }
    releasePortBlock(); // used up: take another block
  }
}

// ---- processes ------------------------------------------------------------------

class Proc {
  constructor(cluster, role, index) {
    this.cluster = cluster;
    this.role = role;
    this.index = index;
    this.generation = ++cluster.nprocs;
    this.name = `${role}#${index}`;
    this.logPath = path.join(cluster.dir, `${String(this.generation).padStart(2, '0')}-${role}-${index}.log`);
    this.exited = null; // {code, signal} once exited
  }

  start() {
    const fd = fs.openSync(this.logPath, 'a');
    this.child = spawn(binaryPath(this.role), ['--config', this.cluster.configPath, '--index', String(this.index)],
      {stdio: ['ignore', fd, fd], cwd: this.cluster.dir});
    fs.closeSync(fd);
    this.pid = this.child.pid;
    children.add(this.child);
    hookExit();
    this.exitPromise = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = {code, signal};
        children.delete(this.child);
        resolve(this.exited);
      });
    });
    return this;
  }

  get alive() { return this.exited === null; }

  log() {
    try { return fs.readFileSync(this.logPath, 'utf8'); } catch (e) { return ''; }
  }

  async waitLog(re, timeout = 15000) {
    return waitFor(() => {
      const m = this.log().match(re);
      if (m) return m;
      if (!this.alive) throw new Error(`${this.name} exited (${JSON.stringify(this.exited)}) while waiting for ${re}; its log:\n${this.log()}`);
      return null;
    }, `${re} in the log of ${this.name}`, timeout);
  }

  signal(sig) {
    if (!this.alive) return;
    try { process.kill(this.pid, sig); } catch (e) { /* gone */ }
  }

  /** SIGKILL and wait for the exit. */
  async kill() {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exitPromise;
  }

  /** SIGTERM (after SIGCONT, in case it is stopped); SIGKILL after grace ms. */
  async stop(grace = 5000) {
    if (!this.alive) return this.exited;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), grace);
    const r = await this.exitPromise;
    clearTimeout(t);
    return r;
  }
}

function merge(dst, src) {
  for (const [k, v] of Object.entries(src || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v) && dst[k] && typeof dst[k] === 'object') merge(dst[k], v);
    else dst[k] = v;
  }
  return dst;
}

/**
 * One register, one gateway (WebSocket listener on 127.0.0.1) and one business
 * worker, configured in a temporary directory.
 *
 * options: module (path of the .so, required), gateway / businessworker / cluster
 * (merged into the config sections), probe (false: no WebSocket round trip in
 * start()).
 */
export class Cluster {
  constructor(name, options) {
    this.name = name;
    this.options = options;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `gwjs-${name}-`));
    this.configPath = path.join(this.dir, 'gatewayworker.json');
    this.nprocs = 0;
    this.procs = [];
    this.gateway = this.register = this.worker = null;
  }

  async configure() {
    const o = this.options;
    const reg = await freePorts(2); // announcements on P, roster on P + 1
    this.wsPort = await freePorts(1);
    const gwInbox = await freePorts(1);
    const bwInbox = await freePorts(1);
    this.wsUrl = `ws://127.0.0.1:${this.wsPort}`;
    this.httpUrl = `http://127.0.0.1:${this.wsPort}`;
    this.conf = {
      cluster: {
        registers: [`127.0.0.1:${reg}`],
        heartbeat_interval: 0.2,
        node_timeout: 1.0,
        log_level: DEBUG ? 'debug' : 'info',
        run_dir: path.join(this.dir, 'run'),
      },
      register: {count: 1, listen: `127.0.0.1:${reg}`, publish_interval: 0.5},
      gateway: {count: 1, listen: [`websocket://127.0.0.1:${this.wsPort}`], start_port: gwInbox},
      businessworker: {count: 1, start_port: bwInbox, module: o.module},
    };
    merge(this.conf.cluster, o.cluster);
    merge(this.conf.gateway, o.gateway);
    merge(this.conf.businessworker, o.businessworker);
    fs.mkdirSync(this.conf.cluster.run_dir, {recursive: true});
    fs.writeFileSync(this.configPath, JSON.stringify(this.conf, null, 2));
  }

  _proc(role) {
    const p = new Proc(this, role, 0).start();
    this.procs.push(p);
    return p;
  }

  async start() {
    if (!this.conf) await this.configure();
    try {
      this.register = this._proc('register');
      await this.register.waitLog(/GW-START register listening/);
      this.gateway = this._proc('gateway');
      await this.gateway.waitLog(/GW-START gateway 0 started/);
      this.worker = this._proc('businessworker');
      await this.worker.waitLog(/GW-START business worker 0/);
      await this.waitReady();
    } catch (e) {
      e.message += '\n' + this.logs();
      throw e;
    }
    return this;
  }

  gatewayAddr() { return `127.0.0.1:${this.conf.gateway.start_port}`; }
  workerAddr() { return `127.0.0.1:${this.conf.businessworker.start_port}`; }

  /** Gateway and worker saw each other join, and a WebSocket client gets an answer. */
  async waitReady(timeout = 20000) {
    const esc = (s) => s.replace(/[.]/g, '\\.');
    const gw = this.gateway, bw = this.worker;
    const upRe = (role, addr, pid) => new RegExp(`GW-PEER-(UP|DOWN) ${role} ${esc(addr)} (joined \\(pid ${pid}\\)|left)`, 'g');
    // The last word about the peer must be "joined" (with its current pid).
    const lastIsUp = (p, role, addr, pid) => {
      const all = [...p.log().matchAll(upRe(role, addr, pid))];
      if (!p.alive) throw new Error(`${p.name} exited while waiting for readiness:\n${p.log()}`);
      return all.length > 0 && all[all.length - 1][1] === 'UP';
    };
    await waitFor(() => lastIsUp(gw, 'businessworker', this.workerAddr(), bw.pid) &&
                        lastIsUp(bw, 'gateway', this.gatewayAddr(), gw.pid),
    'gateway and worker to see each other', timeout);
    if (this.options.probe !== false) await waitFor(() => this.probe(), 'a WebSocket round trip', timeout, 200);
  }

  /** One WebSocket connection: sends "probe" and resolves true at the first
   * message back (echo, welcome, ...), false after 2 s or on error. */
  probe(ms = 2000) {
    if (typeof WebSocket === 'undefined') throw new Error('no global WebSocket: run node with --experimental-websocket');
    return new Promise((resolve) => {
      let done = false;
      const ws = new WebSocket(this.wsUrl);
      const finish = (v) => {
        if (done) return;
        done = true;
        clearTimeout(t);
        try { ws.close(); } catch (e) { /* ignore */ }
        resolve(v);
      };
      const t = setTimeout(() => finish(false), ms);
      ws.onopen = () => ws.send('probe');
      ws.onmessage = () => finish(true);
      ws.onerror = () => finish(false);
      ws.onclose = () => finish(false);
    });
  }

  /** Kills the gateway (SIGKILL) and waits for its exit. */
  async killGateway() {
    await this.gateway.kill();
  }

  /** Starts a new gateway process with the same config and waits until ready. */
  async restartGateway() {
    if (this.gateway.alive) await this.gateway.kill();
    this.gateway = this._proc('gateway');
    await this.gateway.waitLog(/GW-START gateway 0 started/);
    await this.waitReady();
  }

  logs(maxPerProc = 6000) {
    let out = `--- logs of cluster ${this.name} (${this.dir}) ---\n`;
    for (const p of this.procs) {
      let text = p.log();
      if (text.length > maxPerProc) text = '...' + text.slice(-maxPerProc);
      out += `===== ${p.name} pid ${p.pid} ${p.alive ? 'running' : JSON.stringify(p.exited)} =====\n${text}\n`;
    }
    return out;
  }

  /** Stops every process (workers first); removes the directory unless GW_TEST_KEEP
   * or `keep`. Returns problems (processes that died on their own) as strings. */
  async stop({keep = false} = {}) {
    const order = {businessworker: 0, gateway: 1, register: 2};
    const procs = this.procs.slice().sort((a, b) => order[a.role] - order[b.role]);
    for (const p of procs) await p.stop();
    if (!KEEP && !keep) fs.rmSync(this.dir, {recursive: true, force: true});
  }
}

/** Runs fn(); on failure appends the cluster logs to the error. */
export async function withLogs(cluster, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e && typeof e === 'object') {
      try { e.message = String(e.message) + '\n' + cluster.logs(); } catch (e2) { /* read-only */ }
    }
    throw e;
  }
}
