// Live updates without reload: an EventSource on /api/events/stream from the page's block
// cursor; on each event of interest, the page's [data-live] regions are fetched again and
// swapped in place (focus and scroll stay where they are). No build step, no library.
(function () {
  "use strict";
  var body = document.body;
  var from = body.dataset.fromBlock;
  if (!from || !window.EventSource) { return; }
  var proposal = body.dataset.proposal;
  var status = document.getElementById("live-status");
  var say = function (text) { if (status) { status.textContent = text; } };
  var pending = false;

  function refresh(note) {
    if (pending) { return; }
    pending = true;
    fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        fresh.querySelectorAll("[data-live][id]").forEach(function (region) {
          var here = document.getElementById(region.id);
          if (here && here.innerHTML !== region.innerHTML) {
            here.innerHTML = region.innerHTML;
            here.classList.remove("fresh");
            void here.offsetWidth;
            here.classList.add("fresh");
          }
        });
        say(note);
      })
      .catch(function () { say("live: could not refresh the page"); })
      .finally(function () { pending = false; });
  }

  var source = new EventSource("/api/events/stream?from_block=" + encodeURIComponent(from));
  source.addEventListener("open", function () { say("live: watching the chain"); });
  source.addEventListener("chain", function (message) {
    var event = JSON.parse(message.data);
    if (proposal && String(event.proposal_id) !== proposal) { return; }
    refresh("live: " + event.kind + (event.proposal_id ? " #" + event.proposal_id : "") + ": " + event.summary);
  });
  source.addEventListener("problem", function (message) {
    say("live: " + JSON.parse(message.data).message);
  });
  source.addEventListener("error", function () { say("live: reconnecting…"); });
})();
