// The live feed client: one WebSocket, rooms re-joined after every
// reconnect with `after` = the last position seen, so nothing is missed;
// pages drop anything at or below a position they already have, so
// nothing shows twice. While the socket is down, pages refresh by polling.
"use strict";

class Feed {
  constructor() {
    this.rooms = new Map(); // room -> { last, onEvent, onFrame, onSubscribed }
    this.ws = null;
    this.attempt = 0;
    this.everOpen = false;
    this.timer = null;
    this.pollTimer = null;
    this.pollers = [];
    this.lastFrameAt = 0;
    this.closedByUs = false;
    this.state = "reconnecting";
    this.BACKOFF_MS_MIN = 500;
    this.BACKOFF_MS_MAX = 15000;
    this.POLL_MS = 5000;
    this.PING_MS = 25000;
    this.SILENCE_MS_MAX = 65000;
    setInterval(() => this.keepAlive(), this.PING_MS);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && !this.isOpen()) this.connectNow();
    });
    window.addEventListener("online", () => this.connectNow());
  }

  // Joins a room. `after`: the last position the page already has (or null).
  join(room, opts) {
    this.rooms.set(room, {
      last: typeof opts.after === "number" ? opts.after : null,
      onEvent: opts.onEvent || (() => {}),
      onFrame: opts.onFrame || (() => {}),
      onSubscribed: opts.onSubscribed || (() => {}),
    });
    if (this.isOpen()) this.subscribe(room);
    else if (!this.ws) this.connect();
  }

  // Raises a room's resume point (e.g. after a REST refresh found newer items).
  // Only while the socket is down: live events arrive in order and must not
  // be skipped because a REST load ran ahead of them.
  seen(room, position) {
    if (this.isOpen()) return;
    const r = this.rooms.get(room);
    if (r && (r.last === null || position > r.last)) r.last = position;
  }

  // Registers a refresh run while the socket is down.
  poll(fn) { this.pollers.push(fn); }

  isOpen() { return this.ws && this.ws.readyState === WebSocket.OPEN; }

  send(frame) {
    if (!this.isOpen()) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  subscribe(room) {
    const r = this.rooms.get(room);
    const frame = { type: "subscribe", room };
    if (r && r.last !== null) frame.after = r.last;
    this.send(frame);
  }

  setState(state) {
    this.state = state;
    TL.setConnection(state);
    if (state === "live") this.stopPolling(); else this.startPolling();
  }

  connectNow() {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.ws) { this.attempt = 0; this.connect(); }
  }

  connect() {
    const s = TL.session();
    if (!s) { TL.logout(); return; }
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/ws`, ["bearer", s.token]);
    } catch (_) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.everOpen = true;
      this.lastFrameAt = Date.now();
      this.setState("live");
      for (const room of this.rooms.keys()) this.subscribe(room);
    };
    ws.onmessage = (m) => {
      this.lastFrameAt = Date.now();
      let f;
      try { f = JSON.parse(m.data); } catch (_) { return; }
      this.dispatch(f);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (e.code === 4001) { TL.logout(); return; }
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  scheduleReconnect() {
    this.attempt += 1;
    // After a couple of failures say so honestly: we are polling meanwhile.
    this.setState(this.attempt > 2 ? "polling" : "reconnecting");
    const base = Math.min(this.BACKOFF_MS_MAX, this.BACKOFF_MS_MIN * 2 ** (this.attempt - 1));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }

  keepAlive() {
    if (!this.isOpen()) return;
    if (Date.now() - this.lastFrameAt > this.SILENCE_MS_MAX) { this.ws.close(); return; }
    this.send({ type: "ping" });
  }

  startPolling() {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => { for (const p of this.pollers) p(); }, this.POLL_MS);
  }
  stopPolling() { clearInterval(this.pollTimer); this.pollTimer = null; }

  dispatch(f) {
    const r = f.room ? this.rooms.get(f.room) : null;
    switch (f.type) {
      case "event":
        if (!r) return;
        // Positions strictly increase per room; anything not newer is a replay we have.
        if (r.last !== null && f.position <= r.last) return;
        r.last = f.position;
        r.onEvent(f.event, f.position);
        return;
      case "subscribed":
        if (r) r.onSubscribed(f.position);
        return;
      case "pong":
        return;
      default:
        if (r) r.onFrame(f);
        else if (f.type === "error") console.warn("feed error", f.code, f.message);
    }
  }
}
