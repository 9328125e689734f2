// Copy buttons: a button with data-copy-target="<id>" copies that element's text. The buttons
// are hidden until this script shows them, so a page without JavaScript offers none (its
// secret selects itself with one click instead, by CSS).
(function () {
  "use strict";
  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    var status = document.querySelector(".copy-status");
    if (!target || !navigator.clipboard) {
      return;
    }
    navigator.clipboard.writeText(target.textContent.trim()).then(function () {
      button.textContent = "Copied";
      if (status) {
        status.textContent = "The key is copied to the clipboard.";
      }
    }, function () {
      if (status) {
        status.textContent = "Copying failed: select the key and copy it yourself.";
      }
    });
  }
  var buttons = document.querySelectorAll("[data-copy-target]");
  for (var i = 0; i < buttons.length; i++) {
    if (navigator.clipboard) {
      buttons[i].hidden = false;
      buttons[i].addEventListener("click", function (event) { copy(event.currentTarget); });
    }
  }
})();
