import { HOME, saveSession, session, clearSession } from "./api.js";

const params = new URLSearchParams(location.search);
const notice = document.getElementById("notice");
if (params.has("expired")) {
  notice.textContent = "Your session has expired or was refused: sign in again.";
  notice.hidden = false;
} else if (params.has("signedout")) {
  notice.textContent = "You are signed out.";
  notice.hidden = false;
} else {
  const current = session();
  if (current && HOME[current.user.role]) location.replace(HOME[current.user.role]);
}

const form = document.getElementById("signin");
const error = document.getElementById("error");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const response = await fetch("/api/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username: form.username.value.trim(), password: form.password.value }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      error.textContent = response.status === 429 ? "Too many attempts: wait a minute and try again."
        : (body.message || `Sign-in failed (HTTP ${response.status}).`);
      error.hidden = false;
      return;
    }
    clearSession();
    const saved = saveSession(body);
    form.password.value = "";
    location.assign(HOME[saved.user.role] || "/docs");
  } catch (e) {
    error.textContent = "The server cannot be reached: check the connection and try again.";
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});
