// The field app's service worker: the shell is cached at install, so /field opens with no connection.
// Cache first, no revalidation: a new shell comes with a new worker (its version is the shell's hash, put
// here by the server), installed in the background on the next visit with a connection.
// The API and the socket are never cached or answered from here: they go to the network as they are.
const VERSION = "__SHELL_VERSION__";
const CACHE = `field-shell-${VERSION}`;
const SHELL = __SHELL_FILES__;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("field-shell-") && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  const path = url.pathname;
  if (!SHELL.includes(path)) return;
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    const hit = await cache.match(path);
    if (hit) return hit;
    const response = await fetch(event.request);
    if (response.ok) cache.put(path, response.clone());
    return response;
  }));
});
