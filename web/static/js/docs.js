// /docs: Swagger UI (vendored) over the app's own OpenAPI document; no CDN, no validator badge (it would call
// validator.swagger.io), and "Try it out" sends the bearer token of the signed-in user when there is one.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var token = null;
  try { token = (JSON.parse(sessionStorage.getItem("medevac.session")) || {}).token || null; } catch (e) { token = null; }
  var ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
  if (token) ui.preauthorizeApiKey("bearerAuth", token);
});
