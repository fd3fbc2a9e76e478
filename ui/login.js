// The login form: POSTs the master key as JSON (never a form post, which
// another site could forge) and goes to the app once the cookie is set.
'use strict';
document.getElementById('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = document.getElementById('password');
  const err = document.getElementById('error');
  err.hidden = true;
  let r;
  try {
    r = await fetch('/ui/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: input.value }),
      credentials: 'same-origin',
    });
  } catch (e) {
    r = null;
  }
  input.value = '';
  if (r && r.ok) {
    location.replace('/ui');
    return;
  }
  let msg = 'The gateway did not answer.';
  if (r) {
    const body = await r.json().catch(() => null);
    msg = r.status === 401 ? 'Wrong master key.' : (body && body.error && body.error.message) || `HTTP ${r.status}`;
  }
  err.textContent = msg;
  err.hidden = false;
});
