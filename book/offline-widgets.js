// Loaded on pages that show widgets, after require.js and before the widget manager
// (@jupyter-widgets/html-manager's embed-amd.js). It makes the manager find everything on this
// site instead of a CDN:
//  * `anywidget` (the module named by every anywidget model) resolves to the copy served here;
//  * the manager's own assets (icon fonts) resolve next to the manager's script;
//  * the manager's fallback "CDN" is a folder of this site, so a module that is missing fails
//    with a local 404 rather than a request to another host.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script.src.replace(/[?#].*$/, "").replace(/[^/]*$/, ""); // .../_static/offline/
  window.__jupyter_widgets_assets_path__ = base + "html-manager/";
  script.setAttribute("data-jupyter-widgets-cdn", base + "npm/");
  window.require.config({
    paths: {
      anywidget: base + "npm/anywidget/dist/index",
      "@jupyter-widgets/html-manager/dist": base + "html-manager",
    },
  });
})();
