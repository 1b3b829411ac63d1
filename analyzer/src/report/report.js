"use strict";
(function () {
  var edges = Array.prototype.slice.call(document.querySelectorAll("g[data-edge]"));
  var nodes = Array.prototype.slice.call(document.querySelectorAll("g[data-node]"));
  function highlight(id) {
    var near = {};
    if (id !== null) near[id] = true;
    edges.forEach(function (e) {
      var on = id === null || e.getAttribute("data-from") === id || e.getAttribute("data-to") === id;
      e.classList.toggle("dim", !on);
      e.classList.toggle("hl", on && id !== null);
      if (on && id !== null) {
        near[e.getAttribute("data-from")] = true;
        near[e.getAttribute("data-to")] = true;
      }
    });
    nodes.forEach(function (n) {
      n.classList.toggle("dim", id !== null && !near[n.getAttribute("data-node")]);
    });
  }
  nodes.forEach(function (n) {
    n.addEventListener("mouseenter", function () { highlight(n.getAttribute("data-node")); });
    n.addEventListener("mouseleave", function () { highlight(null); });
  });
})();
