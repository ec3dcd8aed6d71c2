// Drives Debian's chromium (playwright-core) through the sandbox ACS's
// 3-D Secure challenge page as a customer would: open the payment's
// next_action URL, enter a wrong code, then the one-time code the page
// shows, and land back on the merchant's return_url. Prints one JSON object
// with what the browser saw; the Rust test (tests/api/sca/browser.rs) makes
// the assertions.
//
// Env: CHALLENGE_URL (the payment's next_action.redirect_to_url), RETURN_ORIGIN
// (the origin of the merchant's return_url, a loopback page the test serves), SPKI (base64
// SHA-256 of the gateway certificate's public key: only that certificate is
// accepted), CHROMIUM (default /usr/bin/chromium).
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
  page.on("console", (m) => consoleMessages.push(m.text()));
  await page.goto(env.CHALLENGE_URL);
  result.title = await page.title();
  result.scriptCount = await page.locator("script").count();
  const code = (await page.locator("#otp").textContent()).trim();
  result.codeShown = code;

  // A wrong code first: the page comes back and counts it.
  const wrong = code === "000000" ? "111111" : "000000";
  await page.locator("#code").fill(wrong);
  await Promise.all([page.waitForLoadState("load"), page.locator("#submit").click()]);
  await page.locator("#wrong").waitFor({ timeout: 15000 });
  result.wrongMessage = await page.locator("#wrong").textContent();

  // The right code: back at the shop.
  await page.locator("#code").fill(code);
  await Promise.all([
    page.waitForURL(`${env.RETURN_ORIGIN}/**`, { timeout: 15000 }),
    page.locator("#submit").click(),
  ]);
  result.finalUrl = page.url();
  result.finalText = await page.evaluate(() => document.body.innerText);
  result.consoleMessages = consoleMessages;
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
