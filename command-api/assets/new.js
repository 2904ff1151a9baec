// Open a new ticket: POST /api/v1/tickets, then go to it.
"use strict";

(() => {
  const { $, api } = TL;
  TL.requireSession();
  TL.topbar("new");
  if (!TL.can("tickets.create")) { location.replace(TL.homeFor(TL.me())); return; }
  const form = $("new-form");
  const error = $("new-error");
  const key = TL.uuid(); // one key per form: a double submit opens one ticket

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    $("new-submit").disabled = true;
    const v = (idName) => $(idName).value.trim();
    const location = {};
    for (const k of ["site", "building", "floor", "address"]) if (v("n-" + k)) location[k] = v("n-" + k);
    const body = {
      title: v("n-title"), description: v("n-description"),
      priority: $("n-priority").value, kind: $("n-kind").value,
      tags: v("n-tags") ? v("n-tags").split(",").map((t) => t.trim()).filter(Boolean) : [],
    };
    if (Object.keys(location).length) body.location = location;
    if (v("n-device")) body.device = v("n-device");
    try {
      const r = await api("POST", "/api/v1/tickets", body, { "Idempotency-Key": key });
      window.location.href = "/app/tickets/" + r.id;
    } catch (err) {
      const field = err.details && err.details.field;
      error.textContent = field ? `Please check ${field}: ${err.details.reason || err.message}` : err.message;
      error.hidden = false;
      $("new-submit").disabled = false;
    }
  });
})();
