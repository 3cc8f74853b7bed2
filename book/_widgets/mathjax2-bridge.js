// The widget renderer (@jupyter-widgets/html-manager 1.x) typesets widget labels with the
// MathJax 2 API, `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`; this book loads
// MathJax 3 (from _static/mathjax). Once MathJax 3 has replaced `window.MathJax` (its script
// is deferred, so it runs before DOMContentLoaded and before the widgets render on `load`),
// give it the one MathJax 2 call the renderer makes.
(function () {
  function install() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || typeof mj.typesetPromise !== "function") {
      return;
    }
    mj.Hub = {
      Queue: function (job) {
        var element = job && job[2];
        if (!element) {
          return;
        }
        var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
        ready.then(function () {
          return mj.typesetPromise([element]);
        }).catch(function (err) {
          console.warn("MathJax could not typeset a widget label:", err);
        });
      },
    };
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", install);
  } else {
    install();
  }
})();
