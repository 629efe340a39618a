/* Site behaviour of "Self-Attention, Answered" (loaded on every page by book/_ext/course_site.py). */
"use strict";

/* Navigation buttons on phones and tablets (pydata-sphinx-theme 0.17, issue #2451).
   The theme wires only the first `.primary-toggle` / `.secondary-toggle` of the page (the one in
   its own header, hidden under sphinx-book-theme); the visible buttons in the article header never
   get a listener, so below 960 px nothing opens the chapter list or the page contents. Each other
   button of the same kind now forwards its click to the wired one: a dialog on narrow screens, the
   collapsing sidebar on wide ones, exactly as the theme intends. Harmless once upstream is fixed:
   the capture listener stops the button's own handler, so only one handler ever runs. */
function forwardSidebarToggles() {
  for (const kind of ["primary-toggle", "secondary-toggle"]) {
    const buttons = Array.from(document.getElementsByClassName(kind));
    const wired = buttons[0];
    for (const button of buttons.slice(1)) {
      button.addEventListener(
        "click",
        (event) => {
          event.preventDefault();
          event.stopImmediatePropagation();
          wired.click();
        },
        true,
      );
    }
  }
}

/* A solution's title reads "Solution to Exercise 2.1 (...)" and links to the exercise: clicking it
   jumped away instead of opening the solution. The link keeps its text; the click now only opens
   or closes the solution, as a click on the title's toggle button does. */
function solutionTitlesOpenSolutions() {
  document.addEventListener(
    "click",
    (event) => {
      const link = event.target.closest(".solution.dropdown > .admonition-title a");
      if (!link) return;
      event.preventDefault(); // no jump to the exercise
      event.stopPropagation(); // sphinx-togglebutton ignores clicks on a link: press its button
      const button = link.closest(".admonition-title").querySelector(".toggle-button");
      if (button) button.click();
    },
    true,
  );
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => {
    forwardSidebarToggles();
    solutionTitlesOpenSolutions();
  });
} else {
  forwardSidebarToggles();
  solutionTitlesOpenSolutions();
}
