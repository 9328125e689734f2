// Copy buttons, an enhancement: without JavaScript they stay hidden and the text they copy stays
// on the page to select. A button names what it copies with data-copy="<element id>" (an input's
// value, or an element's text) and may say what was copied with data-copied="<sentence>"; the
// sentence goes to the page's .copy-status region if it has one, else to a hidden one.
(function () {
  "use strict";
  var status = document.querySelector(".copy-status");
  if (!status) {
    status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    document.body.appendChild(status);
  }

  function fallback(source) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var label = button.textContent;
    var copied = button.getAttribute("data-copied") || "Copied to the clipboard.";
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = ("value" in source ? source.value : source.textContent).trim();
      var done = function () {
        button.textContent = "Copied";
        status.textContent = copied;
        setTimeout(function () { button.textContent = label; }, 2000);
      };
      var failed = function () {
        status.textContent = "Copying failed: select the text and copy it yourself.";
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {
          if (fallback(source)) done(); else failed();
        });
      } else if (fallback(source)) {
        done();
      } else {
        failed();
      }
    });
  });
})();
