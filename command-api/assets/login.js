// Sign in: POST /api/v1/auth/token, keep the token in localStorage.
"use strict";

(() => {
  const { $, api } = TL;
  const form = $("login-form");
  const error = $("login-error");
  const submit = $("login-submit");

  for (const b of document.querySelectorAll(".demo-user")) {
    b.addEventListener("click", () => {
      $("username").value = b.dataset.username;
      $("password").value = "demo";
      $("password").focus();
    });
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    const tenant = $("tenant").value.trim();
    try {
      const r = await api("POST", "/api/v1/auth/token", {
        tenant, username: $("username").value.trim(), password: $("password").value,
      });
      TL.saveSession({ token: r.token, expires_at: r.expires_at, user: r.user, tenant });
      TL.learnUser({ id: r.user.id, name: r.user.name, role: r.user.role });
      const next = new URLSearchParams(location.search).get("next");
      // Only same-site paths: never bounce a fresh token to another origin.
      location.href = next && next.startsWith("/app/") ? next : TL.homeFor(r.user);
    } catch (err) {
      error.textContent = err.status === 401 || err.status === 404 || err.status === 400
        ? "Wrong tenant, username or password."
        : err.status === 429 ? "Too many attempts. Wait a moment and try again." : err.message;
      error.hidden = false;
      submit.disabled = false;
    }
  });
})();
