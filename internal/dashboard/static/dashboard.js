// estd admin dashboard: optional enhancements. Every page works without
// this script; it adds a tooltip to the bar charts (hover or keyboard) and
// a confirmation before forms marked with data-confirm are sent.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("figure.chart").forEach(function (fig) {
    var tip = fig.querySelector(".tip");
    var bars = fig.querySelectorAll("rect.bar");
    if (!tip || bars.length === 0) {
      return;
    }
    var show = function (bar) {
      bars.forEach(function (b) { b.classList.remove("active"); });
      bar.classList.add("active");
      var n = Number(bar.dataset.count);
      tip.textContent = bar.dataset.label + ": " + n + (n === 1 ? " certificate" : " certificates");
      tip.hidden = false;
    };
    var hide = function () {
      bars.forEach(function (b) { b.classList.remove("active"); });
      tip.hidden = true;
    };
    bars.forEach(function (bar) {
      bar.setAttribute("tabindex", "0");
      bar.addEventListener("mouseenter", function () { show(bar); });
      bar.addEventListener("focus", function () { show(bar); });
      bar.addEventListener("mouseleave", hide);
      bar.addEventListener("blur", hide);
    });
    fig.classList.add("interactive");
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.dataset.confirm)) {
        ev.preventDefault();
      }
    });
  });
});
