/* Blanco's conversion script: include it on every page of the shop (or at least the landing
   and thank-you pages). It keeps the attribution token of the email click that brought the
   visitor in a first-party cookie of the shop, and on the thank-you page
   blanco.conversion({order_id, amount, currency, items}) sends the order to Blanco with it.
   It reads and sends nothing else. */
(function () {
  "use strict";
  var PARAM = {{ param | tojson }};
  var COOKIE = {{ cookie | tojson }};
  var MAX_AGE = {{ max_age | tojson }};
  var PIXEL = {{ pixel | tojson }};

  function kept() {
    var found = new RegExp("(?:^|;\\s*)" + COOKIE + "=([^;]*)").exec(document.cookie);
    return found ? decodeURIComponent(found[1]) : null;
  }

  var landed = new URLSearchParams(window.location.search).get(PARAM);
  if (landed && /^[A-Za-z0-9_.-]{1,100}$/.test(landed)) {
    document.cookie = COOKIE + "=" + encodeURIComponent(landed) + "; path=/; max-age=" +
      MAX_AGE + "; SameSite=Lax" + (window.location.protocol === "https:" ? "; Secure" : "");
  }

  window.blanco = window.blanco || {};
  /* Send an order; true when a click's token was there to send it with. */
  window.blanco.conversion = function (order) {
    var token = kept();
    if (!token || !order || order.order_id === undefined) {
      return false;
    }
    var query = new URLSearchParams({
      o: String(order.order_id),
      a: String(order.amount),
      c: String(order.currency || ""),
      t: token
    });
    if (order.items && order.items.length) {
      query.set("i", order.items.map(String).join(","));
    }
    var pixel = new Image(1, 1);
    pixel.src = PIXEL + "?" + query.toString();
    return true;
  };
})();
