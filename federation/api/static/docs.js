// Starts Swagger UI on the API reference page. The page allows no inline script (its
// Content-Security-Policy), so the document's URL comes from a data attribute.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // No validator badge: it would send the document to another origin.
    validatorUrl: null,
    // A key pasted into "Authorize" stays in this tab, never in the browser's storage.
    persistAuthorization: false,
  });
});
