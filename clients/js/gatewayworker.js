/* Generated from gatewayworker.mjs by build.mjs: edit the .mjs, then run node build.mjs. */
(function (root) {
"use strict";
/*
 * gatewayworker.js - a small browser and Node client for GatewayWorker-C.
 *
 * A WebSocket that stays connected: heartbeats that keep the gateway's
 * ping_interval deadline, automatic reconnection with capped exponential
 * backoff and jitter (reset once a connection has been stable), a bounded queue
 * of messages sent while disconnected, and detection of a dead server (no data
 * for deadTimeout ms). No dependencies.
 *
 *   import GatewayWorkerClient from './gatewayworker.mjs';   // or <script src="gatewayworker.js">
 *   const client = new GatewayWorkerClient('ws://localhost:8282', {
 *     heartbeatMessage: '{"type":"ping"}', heartbeatInterval: 5000 });
 *   client.on('message', (data) => console.log(data));
 *   client.send('hello');
 *
 * This file is the source; gatewayworker.js (plain script, also require()-able)
 * is generated from it by `node build.mjs`.
 */

const DEFAULTS = {
  heartbeatMessage: null,   // string (or function returning one) sent every heartbeatInterval
  heartbeatInterval: 0,     // ms between heartbeats while open; 0 = none
  reconnect: true,          // reconnect after an unexpected close
  minDelay: 500,            // first reconnect delay (ms)
  maxDelay: 30000,          // reconnect delay cap (ms)
  factor: 2,                // delay growth per failed attempt
  jitter: 0.5,              // each delay is reduced by up to this fraction, at random
  stableAfter: 10000,       // ms a connection must last before the backoff starts over
  maxQueue: 100,            // messages kept while not connected (send() returns false beyond)
  deadTimeout: 0,           // ms without any data from the server -> reconnect; 0 = off
  protocols: undefined,     // WebSocket subprotocols
  binaryType: 'arraybuffer',
  WebSocket: null,          // WebSocket constructor (default: the global one)
};

const EVENTS = ['open', 'message', 'close', 'error', 'reconnecting'];

class GatewayWorkerClient {
  /**
   * @param {string} url  ws:// or wss:// address of a gateway
   * @param {object} [options]  see DEFAULTS
   */
  constructor(url, options = {}) {
    for (const key of Object.keys(options)) {
      if (!(key in DEFAULTS)) throw new TypeError('GatewayWorkerClient: unknown option ' + key);
    }
    this.url = url;
    this.options = Object.assign({}, DEFAULTS, options);
    this._WS = this.options.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
    if (!this._WS) throw new Error('GatewayWorkerClient: no WebSocket implementation (pass options.WebSocket)');
    this._handlers = {};
    for (const e of EVENTS) this._handlers[e] = [];
    this._queue = [];
    this._ws = null;
    this._attempt = 0;
    this._stopped = false;
    this._timers = {};
    this._connect();
  }

  /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
  get state() {
    if (this._stopped) return 'closed';
    if (this._ws && this._ws.readyState === 1) return 'open';
    if (this._timers.retry) return 'reconnecting';
    return 'connecting';
  }

  /** Messages waiting for the connection. */
  get queued() { return this._queue.length; }

  /** Adds a listener: open(), message(data, event), close({code, reason, wasClean}),
   * error(event), reconnecting({attempt, delay}). Returns this. */
  on(event, fn) {
    if (!this._handlers[event]) throw new TypeError('GatewayWorkerClient: unknown event ' + event);
    this._handlers[event].push(fn);
    return this;
  }

  off(event, fn) {
    const list = this._handlers[event] || [];
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  /** Sends now when connected; otherwise queues (up to maxQueue). Returns false
   * when the message was dropped (queue full, or the client was closed). */
  send(data) {
    if (this._stopped) return false;
    if (this._ws && this._ws.readyState === 1) {
      this._ws.send(data);
      return true;
    }
    if (this._queue.length >= this.options.maxQueue) return false;
    this._queue.push(data);
    return true;
  }

  /** Closes for good: no reconnection, queued messages dropped. */
  close(code = 1000, reason = '') {
    this._stopped = true;
    this._queue = [];
    this._clearTimers();
    if (this._ws) {
      const ws = this._ws;
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(code, reason);
    }
  }

  _emit(event, ...args) {
    for (const fn of this._handlers[event].slice()) {
      try {
        fn.apply(this, args);
      } catch (err) {
        setTimeout(() => { throw err; }, 0); // report, but keep the client running
      }
    }
  }

  _clearTimers() {
    for (const k of Object.keys(this._timers)) {
      clearTimeout(this._timers[k]);
      clearInterval(this._timers[k]);
    }
    this._timers = {};
  }

  _armDeadTimer() {
    if (!this.options.deadTimeout) return;
    clearTimeout(this._timers.dead);
    this._timers.dead = setTimeout(() => this._onDead(), this.options.deadTimeout);
  }

  _connect() {
    delete this._timers.retry;
    let ws;
    try {
      ws = new this._WS(this.url, this.options.protocols);
    } catch (err) {
      this._emit('error', err);
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    let opened = false;
    try { ws.binaryType = this.options.binaryType; } catch (err) { /* not supported */ }
    // deadTimeout also bounds the handshake: a server that accepts the TCP
    // connection but never answers (frozen, or a half-open path) is retried.
    this._armDeadTimer();
    ws.onopen = () => {
      if (ws !== this._ws) return;
      opened = true;
      this._armDeadTimer();
      const o = this.options;
      if (o.heartbeatInterval > 0 && o.heartbeatMessage != null) {
        this._timers.beat = setInterval(() => {
          if (ws.readyState !== 1) return;
          const m = typeof o.heartbeatMessage === 'function' ? o.heartbeatMessage() : o.heartbeatMessage;
          ws.send(m);
        }, o.heartbeatInterval);
      }
      this._timers.stable = setTimeout(() => { this._attempt = 0; }, o.stableAfter);
      const queue = this._queue;
      this._queue = [];
      for (const m of queue) ws.send(m);
      this._emit('open');
    };
    ws.onmessage = (e) => {
      if (ws !== this._ws) return;
      this._armDeadTimer();
      this._emit('message', e.data, e);
    };
    ws.onerror = (e) => {
      if (ws !== this._ws) return;
      this._emit('error', e);
      // A connection that failed before opening is over. Browsers and the ws
      // package follow this error with 'close'; the built-in WebSocket of Node 20
      // (undici) does not, which would leave the client waiting forever.
      if (!opened && ws === this._ws) {
        this._abandon(ws);
        this._closed({code: 1006, reason: '', wasClean: false});
      }
    };
    ws.onclose = (e) => {
      if (ws !== this._ws) return;
      this._closed({code: e.code, reason: e.reason, wasClean: e.wasClean});
    };
  }

  _closed(info) {
    this._ws = null;
    clearInterval(this._timers.beat);
    clearTimeout(this._timers.stable);
    clearTimeout(this._timers.dead);
    delete this._timers.beat;
    delete this._timers.stable;
    delete this._timers.dead;
    this._emit('close', info);
    this._scheduleReconnect();
  }

  /* No data for deadTimeout: the server or the path to it is gone, even if the
   * browser has not noticed (a half-open TCP connection can take minutes). */
  _onDead() {
    const ws = this._ws;
    if (!ws) return;
    this._abandon(ws, 4000, 'no data from the server');
    this._closed({code: 4000, reason: 'no data from the server', wasClean: false});
  }

  /* Stops listening to a socket and closes it. Its handlers become no-ops rather
   * than null: the ws package throws on an 'error' event without a listener (and
   * close() on a connecting ws socket emits one). */
  _abandon(ws, code, reason) {
    const noop = () => {};
    ws.onmessage = ws.onerror = ws.onclose = noop;
    ws.onopen = () => { try { ws.close(); } catch (err) { /* closing */ } };
    try { ws.close(code, reason); } catch (err) { /* already closing or closed */ }
  }

  _scheduleReconnect() {
    if (!this.options.reconnect) this._stopped = true; // gave up: state 'closed', send() false
    if (this._stopped) return;
    const o = this.options;
    const base = Math.min(o.maxDelay, o.minDelay * Math.pow(o.factor, this._attempt));
    const delay = Math.round(base * (1 - o.jitter * Math.random()));
    this._attempt++;
    this._emit('reconnecting', {attempt: this._attempt, delay});
    if (this._stopped) return; // a listener may have closed the client
    this._timers.retry = setTimeout(() => this._connect(), delay);
  }
}

GatewayWorkerClient.VERSION = '0.1.0';
GatewayWorkerClient.DEFAULTS = DEFAULTS;


if (typeof module === "object" && module.exports) {
  module.exports = GatewayWorkerClient;
  module.exports.default = GatewayWorkerClient;
  module.exports.GatewayWorkerClient = GatewayWorkerClient;
} else {
  root.GatewayWorkerClient = GatewayWorkerClient;
}
})(typeof self !== "undefined" ? self : globalThis);
