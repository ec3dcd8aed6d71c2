// Drives Debian's chromium (playwright-core) through the hosted card fields
// page embedded in a merchant page on another origin. Prints one JSON object
// with what the parent page saw; the Rust test makes the assertions.
//
// Env: PARENT_URL, FOREIGN_URL (a page on an unregistered origin framing the
// page anyway), GATEWAY_ORIGIN, CARD_NUMBER, SPKI (base64 SHA-256 of the
// gateway certificate's public key: only that certificate is accepted),
// CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const env = process.env;
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", `--ignore-certificate-errors-spki-list=${env.SPKI}`,
  ],
});
const result = {};
try {
  const page = await browser.newPage();
  const consoleMessages = [];
  const parentRequests = [];
  let tokenRequests = 0;
  page.on("console", (m) => consoleMessages.push(m.text()));
  page.on("request", (r) => {
    if (r.frame() === page.mainFrame()) {
      parentRequests.push({ url: r.url(), body: r.postData() || "", headers: JSON.stringify(r.headers()) });
    }
    if (r.url().endsWith("/v1/tokens")) tokenRequests += 1;
  });
  await page.goto(env.PARENT_URL);
  const frame = page.frameLocator("#pw");
  await frame.locator("#card-number").waitFor({ timeout: 15000 });

  // Inline validation: a number failing Luhn is caught before any request.
  await frame.locator("#card-number").pressSequentially("4242 4242 4242 4241");
  await frame.locator("#card-expiry").pressSequentially("12 / 34");
  await frame.locator("#card-cvc").pressSequentially("123");
  await frame.locator("#submit").click();
  result.invalidNumberError = await frame.locator("#card-number-error").textContent();
  result.invalidAriaInvalid = await frame.locator("#card-number").getAttribute("aria-invalid");
  result.requestsAfterInvalid = tokenRequests;

  // A valid card is typed and submitted.
  await frame.locator("#card-number").fill("");
  await frame.locator("#card-number").pressSequentially(env.CARD_NUMBER);
  result.brandLabel = await frame.locator("#card-brand").textContent();
  await frame.locator("#card-name").pressSequentially("Grace Hopper");
  await frame.locator("#submit").click();
  await page.waitForFunction(() => window.received.length > 0, null, { timeout: 15000 });
  result.received = await page.evaluate(() => window.received);
  result.parentHtml = await page.content();
  result.parentText = await page.evaluate(() => document.body.innerText);
  result.consoleMessages = consoleMessages;
  result.parentRequests = parentRequests;
  result.tokenRequests = tokenRequests;
  result.iframeNumberAfter = await frame.locator("#card-number").inputValue();

  // An unregistered origin framing the page (claiming a registered origin) gets nothing.
  const foreign = await browser.newPage();
  await foreign.goto(env.FOREIGN_URL);
  await foreign.waitForTimeout(1500);
  result.foreignFieldCount = await foreign.frameLocator("#pw").locator("#card-number").count();
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
