// The pages are plain API clients: the access token lives in sessionStorage (this tab only, gone with it),
// never in a cookie or a URL. A 401 anywhere ends the session and returns to sign-in with a message.
const KEY = "medevac.session";

export const HOME = { coordinator: "/console", admin: "/console", medic: "/field", clinician: "/clinic",
                      member: "/me" };

export function session() {
  try {
    const value = JSON.parse(sessionStorage.getItem(KEY));
    if (!value || !value.token || !value.user) return null;
    if (value.expires_at && Date.now() > value.expires_at) return null;
    return value;
  } catch (e) {
    return null;
  }
}

export function saveSession(login) {
  const value = { token: login.access_token, user: login.user,
                  expires_at: Date.now() + (login.expires_in || 0) * 1000 };
  sessionStorage.setItem(KEY, JSON.stringify(value));
  return value;
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

// Once the page is leaving (signed out), a late 401 or refused socket must not send it elsewhere.
let leaving = false;

export function signOut() {
  leaving = true;
  clearSession();
  location.assign("/?signedout=1");
}

export function expired(reason) {
  if (leaving) return;
  leaving = true;
  clearSession();
  location.assign("/?expired=" + encodeURIComponent(reason || "1"));
}

/** The session of a page that needs one of `roles`; else back to sign-in (or to the user's own page). */
export function requireSession(roles) {
  const current = session();
  if (!current) {
    if (sessionStorage.getItem(KEY)) expired("1"); // there was one: it has expired
    else location.assign("/");
    return null;
  }
  if (roles && !roles.includes(current.user.role)) return { ...current, refused: true };
  return current;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** fetch /api/v1 + path as JSON with the bearer token; throws ApiError (401: the session ends). */
export async function api(path, { method = "GET", body, headers = {}, signal, keepSessionOn401 = false } = {}) {
  const current = session();
  const options = { method, headers: { Accept: "application/json", ...headers }, signal, cache: "no-store" };
  if (current) options.headers.Authorization = "Bearer " + current.token;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  if (response.status === 304) return { notModified: true, response };
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = { message: text }; }
  }
  if (response.status === 401 && !keepSessionOn401) {
    // Only the session that sent the request ends; a request sent without one (the tab signed out or
    // cleared its session while a page was still loading) leaves the navigation under way alone.
    const now = session();
    if (current && (!now || now.token === current.token)) expired("1");
    throw new ApiError(401, data);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function hhmm(date) {
  const d = date instanceof Date ? date : new Date(date);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}
