// Typesets the formulas of a walkthrough page with the KaTeX copy that ships inside the site
// (nothing is loaded from the internet). When done, <html data-math="done" data-math-errors="N">
// tells readers and the browser tests that the page is ready.
document.addEventListener("DOMContentLoaded", function () {
  var root = document.documentElement;
  var main = document.querySelector("main");
  if (!main || typeof renderMathInElement !== "function") {
    root.dataset.math = "unavailable";
    return;
  }
  renderMathInElement(main, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
    ],
    // code, printed output and the grader's HTML tables are shown exactly as they are
    ignoredTags: ["script", "noscript", "style", "textarea", "pre", "code", "option"],
    ignoredClasses: ["jp-RenderedHTML", "no-math"],
    throwOnError: false,
    strict: "ignore",
  });
  root.dataset.mathErrors = String(main.querySelectorAll(".katex-error").length);
  root.dataset.math = "done";
});
