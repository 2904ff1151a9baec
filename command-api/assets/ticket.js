// One ticket: the conversation (bubbles, presence, typing, read receipts,
// composer) and its properties. Comments are keyed by log position, so a
// comment that arrives both by REST and by the feed shows once.
"use strict";

(() => {
  const { $, el, api, clear } = TL;
  TL.requireSession();
  TL.topbar("");
  const me = TL.me();
  const id = document.body.dataset.ticketId;
  const room = "ticket:" + id;

  const messages = new Map(); // position -> comment
  const readBy = new Map(); // user id -> position
  const typingUsers = new Map(); // user id -> { name, timer }
  let ticket = null;
  let myRead = 0;
  let sentRead = 0;
  const feed = new Feed();

  const box = $("messages");
  const composer = $("composer");
  const text = $("composer-text");
  const send = $("send");
  const internalToggle = $("internal-toggle");

  // ---- conversation -------------------------------------------------
  function maxPosition() { let m = 0; for (const p of messages.keys()) if (p > m) m = p; return m; }

  function addComment(c) {
    if (messages.has(c.position)) return false;
    if (c.internal && !TL.can("tickets.view.internal")) return false; // the server never sends them; belt and braces
    messages.set(c.position, c);
    return true;
  }

  function bubble(c) {
    const own = c.author === me.id;
    const name = TL.userName(c.author, c.author_role);
    const cls = ["msg", own ? "own" : "other", c.internal ? "internal" : ""].join(" ").trim();
    const meta = el("div", { class: "meta" }, el("b", {}, name),
      c.author_role && c.author_role !== "customer" ? el("span", {}, TL.cap(c.author_role)) : null,
      TL.timeEl(c.at), c.internal ? el("span", { class: "note-badge" }, "Internal note") : null);
    const body = el("div", { class: "bubble" }, c.body);
    const wrap = el("div", {}, meta, body);
    if (own) {
      const seen = Array.from(readBy.entries()).some(([u, p]) => u !== me.id && p >= c.position);
      wrap.append(el("div", { class: "receipt", dataset: { receipt: seen ? "seen" : "sent" } }, seen ? "✓✓ Seen" : "✓ Sent"));
    }
    return el("div", { class: cls, dataset: { position: String(c.position), author: c.author }, id: "m-" + c.position },
      TL.avatar(c.author, name), wrap);
  }

  function description() {
    if (!ticket) return null;
    const name = TL.userName(ticket.reporter, "customer");
    return el("div", { class: "msg other description", dataset: { kind: "description" } },
      TL.avatar(ticket.reporter, name),
      el("div", {}, el("div", { class: "meta" }, el("b", {}, name), el("span", {}, "opened this ticket"), TL.timeEl(ticket.created_at)),
        el("div", { class: "bubble" }, ticket.description)));
  }

  function renderMessages() {
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    const list = Array.from(messages.values()).sort((a, b) => a.position - b.position);
    const nodes = [description()];
    let lastDay = ticket ? new Date(ticket.created_at).toDateString() : "";
    for (const c of list) {
      const day = new Date(c.at).toDateString();
      if (day !== lastDay) {
        nodes.push(el("div", { class: "day-sep" }, new Date(c.at).toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" })));
        lastDay = day;
      }
      nodes.push(bubble(c));
    }
    // Who has read up to the newest message (others only).
    const last = list[list.length - 1];
    if (last) {
      const readers = Array.from(readBy.entries()).filter(([u, p]) => u !== me.id && p >= last.position).map(([u]) => TL.userName(u));
      if (readers.length) nodes.push(el("div", { class: "receipt", id: "seen-by" }, "Seen by " + readers.join(", ")));
    }
    clear(box).append(...nodes.filter(Boolean));
    if (nearBottom || list.length <= 1) box.scrollTop = box.scrollHeight;
    markRead();
  }

  function markRead() {
    const top = maxPosition();
    if (document.hidden || top <= sentRead || top <= myRead) return;
    if (feed.send({ type: "read", room, position: top })) sentRead = top;
  }
  document.addEventListener("visibilitychange", markRead);

  // Loads every comment after what we have (REST), then re-renders.
  async function loadChat() {
    let after = maxPosition();
    let changed = false;
    for (;;) {
      const page = await api("GET", `/api/v1/tickets/${id}/chat?after=${after}&limit=500`);
      if (typeof page.last_read === "number") myRead = Math.max(myRead, page.last_read);
      for (const c of page.items) changed = addComment(c) || changed;
      if (page.next === null || page.next === undefined || page.items.length === 0) break;
      after = page.next;
    }
    if (maxPosition() > 0) feed.seen(room, maxPosition());
    return changed;
  }

  async function loadTicket() {
    ticket = await api("GET", `/api/v1/tickets/${id}`);
    renderHeader();
    renderProps();
  }

  async function refresh() {
    try {
      const [changed] = await Promise.all([loadChat(), loadTicket()]);
      if (changed) renderMessages();
    } catch (e) { handleLoadError(e); }
  }

  function handleLoadError(e) {
    if (e.status === 404) {
      clear($("main")).append(el("section", { class: "card empty" }, el("h1", {}, "Ticket not found"),
        el("p", {}, "It does not exist or you cannot see it."), el("p", {}, el("a", { class: "btn", href: "/app/tickets" }, "Back to tickets"))));
      return;
    }
    if (e.status !== 401) TL.toast("Could not refresh: " + e.message, true);
  }

  // ---- header, presence, typing ---------------------------------------
  function renderHeader() {
    document.title = `#${ticket.number} ${ticket.title} · Ticketlog`;
    $("t-title").textContent = ticket.title;
    clear($("t-sub")).append(`#${ticket.number} · ${TL.KIND_LABELS[ticket.kind] || ticket.kind} · opened `, TL.timeEl(ticket.created_at));
  }

  function renderPresence(users) {
    const p = clear($("presence"));
    const others = users.filter((u) => u.id !== me.id);
    for (const u of users) TL.learnUser(u);
    if (!others.length) { p.append(el("span", { class: "label" }, "Only you here")); return; }
    p.append(el("span", { class: "label" }, "Viewing"));
    for (const u of others) { const a = TL.avatar(u.id, u.name); a.dataset.user = u.id; a.title = `${u.name} (${u.role}) is viewing`; p.append(a); }
  }

  function renderTyping() {
    const t = clear($("typing"));
    const names = Array.from(typingUsers.values()).map((x) => x.name);
    if (!names.length) return;
    t.append(el("span", { class: "dots" }, el("span"), el("span"), el("span")), " ",
      names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`);
  }

  // ---- live feed ---------------------------------------------------------
  let ticketReload = null;
  function reloadTicketSoon() {
    clearTimeout(ticketReload);
    ticketReload = setTimeout(() => loadTicket().catch(handleLoadError), 100);
  }

  function onEvent(ev, position) {
    switch (ev.kind) {
      case "CommentPosted":
        if (addComment({ id: ev.comment_id, author: ev.actor && ev.actor.id, author_role: ev.actor && ev.actor.role, body: ev.body, internal: !!ev.internal, at: ev.at, position })) {
          const who = ev.actor && typingUsers.get(ev.actor.id);
          if (who) { clearTimeout(who.timer); typingUsers.delete(ev.actor.id); renderTyping(); }
          renderMessages();
        }
        return;
      case "ReadReceiptRecorded":
        noteRead(ev.user, ev.position);
        return;
      default:
        reloadTicketSoon();
    }
  }

  function noteRead(user, position) {
    if (!user) return;
    if (user === me.id) { myRead = Math.max(myRead, position); return; }
    if ((readBy.get(user) || 0) >= position) return;
    readBy.set(user, position);
    renderMessages();
  }

  function onFrame(f) {
    if (f.type === "presence") renderPresence(f.users || []);
    else if (f.type === "typing" && f.user && f.user.id !== me.id) {
      TL.learnUser(f.user);
      const old = typingUsers.get(f.user.id);
      if (old) clearTimeout(old.timer);
      if (f.typing) typingUsers.set(f.user.id, { name: f.user.name, timer: setTimeout(() => { typingUsers.delete(f.user.id); renderTyping(); }, 6000) });
      else typingUsers.delete(f.user.id);
      renderTyping();
    } else if (f.type === "read" && f.user) {
      TL.learnUser(f.user);
      noteRead(f.user.id, f.position);
    } else if (f.type === "error" && f.code === "not_found") {
      handleLoadError({ status: 404 });
    }
  }

  // ---- composer ------------------------------------------------------------
  const canComment = TL.can("tickets.comment") || TL.can("tickets.comment.internal");
  composer.hidden = !canComment;
  $("readonly").hidden = canComment;
  $("internal-wrap").hidden = !TL.can("tickets.comment.internal");
  let typingSent = 0;
  let typingStop = null;
  function updateSend() { send.disabled = text.value.trim().length === 0; }
  text.addEventListener("input", () => {
    updateSend();
    if (internalToggle.checked) return; // internal notes are typed unannounced
    const now = Date.now();
    if (now - typingSent > 3000 && text.value.trim()) { feed.send({ type: "typing", room, typing: true }); typingSent = now; }
    clearTimeout(typingStop);
    typingStop = setTimeout(stopTyping, 2500);
  });
  function stopTyping() {
    if (typingSent) { feed.send({ type: "typing", room, typing: false }); typingSent = 0; }
  }
  internalToggle.addEventListener("change", () => {
    // Typing an internal note is never announced (a customer in the room
    // would learn that one is being written): a public indicator stops
    // before the composer turns internal.
    if (internalToggle.checked) { clearTimeout(typingStop); stopTyping(); }
    composer.classList.toggle("internal", internalToggle.checked);
    text.placeholder = internalToggle.checked ? "Internal note — only staff see this" : "Write a reply…";
  });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); composer.requestSubmit(); }
  });
  composer.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = text.value.trim();
    if (!body) return;
    send.disabled = true;
    const internal = internalToggle.checked && TL.can("tickets.comment.internal");
    try {
      await api("POST", `/api/v1/tickets/${id}/comments`, { body, internal }, { "Idempotency-Key": TL.uuid() });
      text.value = "";
      stopTyping();
      if (await loadChat()) renderMessages();
    } catch (err) {
      TL.toast(err.status === 413 ? "That message is too long." : "Not sent: " + err.message, true);
    } finally {
      updateSend();
      text.focus();
    }
  });

  // ---- properties ----------------------------------------------------------
  async function command(method, path, body, okMessage) {
    try {
      await api(method, path, body, { "Idempotency-Key": TL.uuid() });
      if (okMessage) TL.toast(okMessage);
    } catch (err) {
      TL.toast(err.status === 409 ? "Someone changed this ticket meanwhile; refreshed." : err.message, true);
    }
    await loadTicket().catch(handleLoadError);
  }

  function select(idName, options, current, onChange) {
    const s = el("select", { id: idName }, options.map(([v, label]) => el("option", { value: v, selected: v === current }, label)));
    s.addEventListener("change", () => onChange(s.value));
    return s;
  }

  function renderProps() {
    const t = ticket;
    const manage = TL.can("tickets.manage");
    const dl = el("dl", {});
    const row = (k, ...v) => dl.append(el("dt", {}, k), el("dd", {}, ...v));

    if (manage) {
      const next = TL.TRANSITIONS[t.status] || [];
      row("Status", select("status-select", [[t.status, TL.STATUS_LABELS[t.status]], ...next.map((s) => [s, "→ " + TL.STATUS_LABELS[s]])], t.status,
        (v) => { if (v !== t.status) command("POST", `/api/v1/tickets/${id}/status`, { status: v }, "Status: " + TL.STATUS_LABELS[v]); }));
      row("Priority", select("priority-select", Object.entries(TL.PRIORITY_LABELS), t.priority,
        (v) => command("PATCH", `/api/v1/tickets/${id}`, { priority: v }, "Priority: " + TL.PRIORITY_LABELS[v])));
    } else {
      const st = TL.statusPill(t.status); st.id = "status-pill";
      row("Status", st);
      row("Priority", TL.priorityPill(t.priority));
    }

    const assignee = el("div", { id: "assignee" }, t.assignee
      ? el("span", { class: "assignee" }, TL.avatar(t.assignee, TL.userName(t.assignee), true), TL.userName(t.assignee))
      : el("span", { class: "muted" }, "Unassigned"));
    if (manage) {
      const staff = Array.from(TL.users.values()).filter((u) => ["agent", "admin", "technician"].includes(u.role));
      const actions = el("div", { class: "row-actions" });
      if (staff.length) {
        actions.append(select("assignee-select", [["", "Assign to…"], ...staff.map((u) => [u.id, `${u.name} (${u.role})`])], "",
          (v) => { if (v) command("POST", `/api/v1/tickets/${id}/assign`, { assignee_id: v }, "Assigned to " + TL.userName(v)); }));
      }
      if (t.assignee !== me.id) {
        actions.append(el("button", { class: "btn small", type: "button", id: "assign-me",
          onclick: () => command("POST", `/api/v1/tickets/${id}/assign`, { assignee_id: me.id }, "Assigned to you") }, "Assign to me"));
      }
      assignee.append(actions);
    }
    row("Assignee", assignee);
    row("Reporter", TL.userName(t.reporter, "customer"));
    row("Kind", TL.KIND_LABELS[t.kind] || t.kind);

    const loc = t.location;
    if (loc) {
      const parts = [loc.site, loc.building && "Building " + loc.building, loc.floor && "Floor " + loc.floor, loc.address].filter(Boolean);
      const lines = el("div", {}, parts.join(" · ") || "");
      if (typeof loc.lat === "number" && typeof loc.lon === "number") {
        lines.append(el("div", { class: "small muted" }, `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}`));
      }
      row("Location", lines);
    }
    if (t.device) row("Device", t.device);
    if (t.tags && t.tags.length) row("Tags", t.tags.map((g) => el("span", { class: "tag" }, g)));
    row("Dispatch", dispatchView(t));
    row("Updated", TL.timeEl(t.updated_at));
    if (t.resolved_at) row("Resolved", TL.timeEl(t.resolved_at));

    const links = el("div", { class: "links" });
    if (TL.can("audit.read")) links.append(el("a", { class: "btn small", id: "audit-link", href: `/app/tickets/${id}/audit` }, "Audit history"));
    clear($("props-body")).append(dl);
    if (links.childNodes.length) $("props-body").append(el("hr"), links);
  }

  const DISPATCH_LABELS = { requested: "Requested", accepted: "Accepted", declined: "Declined", en_route: "En route", on_site: "On site", completed: "Completed" };
  function dispatchView(t) {
    const d = t.dispatch;
    const box = el("div", { id: "dispatch" });
    if (d) {
      box.append(el("span", { class: "pill" }, DISPATCH_LABELS[d.status] || d.status), " ",
        d.technician ? TL.userName(d.technician, "technician") : "any technician");
      const extra = [];
      if (typeof d.distance_km === "number") extra.push(d.distance_km.toFixed(1) + " km");
      if (typeof d.eta_minutes === "number") extra.push("ETA " + Math.round(d.eta_minutes) + " min");
      if (extra.length) box.append(el("div", { class: "small muted" }, extra.join(" · ")));
      const at = d.last_location;
      if (at && typeof at.lat === "number" && typeof at.lon === "number") {
        const where = at.lat.toFixed(4) + ", " + at.lon.toFixed(4);
        box.append(el("div", { class: "small muted", id: "dispatch-location" }, "Last seen at ",
          el("a", { href: `https://www.openstreetmap.org/?mlat=${at.lat}&mlon=${at.lon}#map=16/${at.lat}/${at.lon}`, target: "_blank", rel: "noopener noreferrer" }, where)));
      }
    } else {
      box.append(el("span", { class: "muted" }, "None"));
    }
    const actions = el("div", { class: "row-actions" });
    const active = d && !["declined", "completed"].includes(d.status);
    if (TL.can("dispatch.manage") && !active && t.status !== "closed") {
      actions.append(el("button", { class: "btn small", type: "button", id: "dispatch-nearest",
        onclick: () => command("POST", `/api/v1/tickets/${id}/dispatches`, {}, "Dispatch requested") }, "Dispatch nearest technician"));
    }
    if (TL.can("dispatch.respond") && d && (d.technician === me.id || !d.technician)) {
      const act = (path, body, label) => el("button", { class: "btn small", type: "button", onclick: () => command("POST", `/api/v1/dispatches/${d.id}/${path}`, body, label) }, label);
      if (d.status === "requested") actions.append(act("accept", {}, "Accept"), act("decline", {}, "Decline"));
      if (d.status === "accepted") actions.append(act("status", { status: "en_route" }, "En route"));
      if (d.status === "en_route") actions.append(act("status", { status: "on_site" }, "On site"));
      if (d.status === "on_site") actions.append(act("status", { status: "completed" }, "Completed"));
    }
    if (actions.childNodes.length) box.append(actions);
    return box;
  }

  // ---- start -----------------------------------------------------------------
  (async () => {
    try {
      await loadTicket();
      await loadChat();
      renderMessages();
    } catch (e) { handleLoadError(e); return; }
    feed.join(room, {
      after: maxPosition() || null,
      onEvent, onFrame,
      // Joined (first time or after a reconnect): pick up anything the
      // replay does not cover, e.g. changes between our load and the join.
      onSubscribed: () => { refresh(); markRead(); },
    });
    feed.poll(refresh);
    TL.loadDirectory().then((ok) => { if (ok) { renderProps(); renderMessages(); } });
  })();
})();
