// Hosted card fields: runs inside the gateway's own origin, in an iframe on the
// merchant's page. The card goes straight to the gateway with the publishable
// key; only the token (and brand, last four) is handed to the parent page, by
// postMessage, to the one registered origin the page was opened for.
(function () {
  "use strict";
  var body = document.body;
  var key = body.getAttribute("data-key");
  var mode = body.getAttribute("data-mode");
  if (mode === "test") { document.getElementById("test-mode").hidden = false; }
  var parentOrigin = body.getAttribute("data-parent-origin");
  var form = document.getElementById("card-form");
  var number = document.getElementById("card-number");
  var expiry = document.getElementById("card-expiry");
  var cvc = document.getElementById("card-cvc");
  var name = document.getElementById("card-name");
  var brandLabel = document.getElementById("card-brand");
  var submit = document.getElementById("submit");

  var BRANDS = [
    { id: "amex", label: "American Express", re: /^3[47]/, lengths: [15], cvc: 4 },
    { id: "diners", label: "Diners Club", re: /^3(0[0-5]|[689])/, lengths: [14, 15, 16, 17, 18, 19], cvc: 3 },
    { id: "jcb", label: "JCB", re: /^35(2[89]|[3-8])/, lengths: [16, 17, 18, 19], cvc: 3 },
    { id: "visa", label: "Visa", re: /^4/, lengths: [13, 16, 19], cvc: 3 },
    { id: "mastercard", label: "Mastercard", re: /^(5[1-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720)/, lengths: [16], cvc: 3 },
    { id: "discover", label: "Discover", re: /^(6011|64[4-9]|65|622(12[6-9]|1[3-9]|[2-8]|9[01]|92[0-5]))/, lengths: [16, 17, 18, 19], cvc: 3 },
    { id: "unionpay", label: "UnionPay", re: /^62/, lengths: [16, 17, 18, 19], cvc: 3 },
    { id: "maestro", label: "Maestro", re: /^(5[06-8]|6)/, lengths: [12, 13, 14, 15, 16, 17, 18, 19], cvc: 3 }
  ];

  function digits(s) { return s.replace(/[\s-]/g, ""); }
  function brandOf(d) {
    for (var i = 0; i < BRANDS.length; i++) { if (BRANDS[i].re.test(d)) { return BRANDS[i]; } }
    return null;
  }
  function luhn(d) {
    var sum = 0, dbl = false;
    for (var i = d.length - 1; i >= 0; i--) {
      var n = d.charCodeAt(i) - 48;
      if (dbl) { n *= 2; if (n > 9) { n -= 9; } }
      sum += n; dbl = !dbl;
    }
    return sum % 10 === 0;
  }
  function setError(input, id, message) {
    document.getElementById(id).textContent = message || "";
    input.setAttribute("aria-invalid", message ? "true" : "false");
    return !message;
  }
  function checkNumber() {
    var d = digits(number.value);
    var brand = brandOf(d);
    brandLabel.textContent = brand ? brand.label : "";
    if (!/^\d+$/.test(d)) { return setError(number, "card-number-error", "Enter the card number using digits only."); }
    if (!brand || brand.lengths.indexOf(d.length) < 0 || !luhn(d)) {
      return setError(number, "card-number-error", "This card number is not valid.");
    }
    return setError(number, "card-number-error", "");
  }
  function parsedExpiry() {
    var m = /^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/.exec(expiry.value);
    if (!m) { return null; }
    var month = parseInt(m[1], 10), year = parseInt(m[2], 10);
    if (year < 100) { year += 2000; }
    return { month: month, year: year };
  }
  function checkExpiry() {
    var e = parsedExpiry();
    var now = new Date();
    if (!e || e.month < 1 || e.month > 12) { return setError(expiry, "card-expiry-error", "Enter the expiry as MM / YY."); }
    if (e.year < now.getFullYear() || (e.year === now.getFullYear() && e.month < now.getMonth() + 1)) {
      return setError(expiry, "card-expiry-error", "This card has expired.");
    }
    return setError(expiry, "card-expiry-error", "");
  }
  function checkCvc() {
    var brand = brandOf(digits(number.value));
    var len = brand ? brand.cvc : 3;
    if (!new RegExp("^\\d{" + len + "}$").test(cvc.value)) {
      return setError(cvc, "card-cvc-error", "Enter the " + len + "-digit security code.");
    }
    return setError(cvc, "card-cvc-error", "");
  }
  function tell(message) {
    if (window.parent && window.parent !== window) { window.parent.postMessage(message, parentOrigin); }
  }

  number.addEventListener("input", function () { brandLabel.textContent = (brandOf(digits(number.value)) || {}).label || ""; });
  number.addEventListener("blur", checkNumber);
  expiry.addEventListener("blur", checkExpiry);
  cvc.addEventListener("blur", checkCvc);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var ok = [checkNumber(), checkExpiry(), checkCvc()].every(Boolean);
    if (!ok) { return; }
    var e = parsedExpiry();
    var card = { number: digits(number.value), exp_month: e.month, exp_year: e.year, cvc: cvc.value };
    if (name.value.trim()) { card.name = name.value.trim(); }
    submit.disabled = true;
    document.getElementById("form-error").textContent = "";
    fetch("/v1/tokens", {
      method: "POST",
      headers: { "Authorization": "Bearer " + key, "Content-Type": "application/json" },
      body: JSON.stringify({ card: card }),
      credentials: "omit",
      referrerPolicy: "no-referrer"
    }).then(function (response) {
      return response.json().then(function (json) { return { ok: response.ok, json: json }; });
    }).then(function (result) {
      submit.disabled = false;
      if (result.ok) {
        form.reset();
        brandLabel.textContent = "";
        tell({ type: "paywarden:token", token: result.json.id, livemode: result.json.livemode === true, card: { brand: result.json.card.brand, last4: result.json.card.last4 } });
      } else {
        var err = result.json.error || {};
        document.getElementById("form-error").textContent = err.message || "The card could not be saved.";
        tell({ type: "paywarden:error", code: err.code || "unknown" });
      }
    }, function () {
      submit.disabled = false;
      document.getElementById("form-error").textContent = "Network error; please try again.";
      tell({ type: "paywarden:error", code: "network_error" });
    });
  });
}());
