// Inline reply: "Reply" under a reply opens the thread's reply form right below that reply instead
// of going to the sub-thread page. An enhancement only: without JavaScript the link leads to that
// page, whose form does the same.
(function () {
  "use strict";
  var form = document.getElementById("respond");
  if (!form || !form.hasAttribute("data-reply-to-label")) { return; }
  var home = document.createComment("reply form");
  form.parentNode.insertBefore(home, form);
  var label = form.querySelector("label[for=reply-body]");
  var body = form.querySelector("#reply-body");
  var parent = form.querySelector("input[name=parent_id]");
  if (!parent) {
    parent = document.createElement("input");
    parent.type = "hidden";
    parent.name = "parent_id";
    parent.value = "";
    form.insertBefore(parent, label);
  }
  var cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "link";
  cancel.textContent = form.getAttribute("data-cancel-label");
  cancel.hidden = !parent.value;
  form.appendChild(cancel);

  function moveUnder(item) {
    var author = item.querySelector(".reply-meta strong");
    parent.value = item.id.replace("reply-", "");
    label.textContent = form.getAttribute("data-reply-to-label").replace("{name}", author ? author.textContent : "");
    item.appendChild(form);
    cancel.hidden = false;
    body.focus();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a.reply-to");
    var item = link && link.closest("li.reply");
    if (!item) { return; }
    event.preventDefault();
    moveUnder(item);
  });

  cancel.addEventListener("click", function () {
    var item = form.closest("li.reply");
    parent.value = "";
    label.textContent = form.getAttribute("data-top-label");
    home.parentNode.insertBefore(form, home.nextSibling);
    cancel.hidden = true;
    var link = item && item.querySelector("a.reply-to");
    (link || body).focus();
  });
}());
