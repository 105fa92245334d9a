// Stands in for the person at the browser when a client opens the system browser (the
// `open` package runs xdg-open, which honours $BROWSER): headless Chromium goes to the URL,
// signs in on keylessd's page with KL_UPN / KL_PASSWORD, and waits until the client's
// loopback redirect URI has answered. Problems go to $KL_DRIVER_LOG.
import { appendFileSync } from 'node:fs';

import { chromium } from 'playwright-core';

const url = process.argv[2];
const log = (m) => process.env.KL_DRIVER_LOG && appendFileSync(process.env.KL_DRIVER_LOG, `${m}\n`);
const browser = await chromium.launch({ executablePath: process.env.KL_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  await page.goto(url);
  await page.waitForSelector('#username');
  await page.fill('#username', process.env.KL_UPN);
  await page.fill('#password', process.env.KL_PASSWORD);
  await Promise.all([page.waitForURL(/^http:\/\/(localhost|127\.0\.0\.1)[:/]/), page.click('button[type=submit]')]);
  await page.waitForLoadState('load');
  log(`signed in; landed on ${new URL(page.url()).origin}`);
} catch (e) {
  log(`driver failed: ${e.stack}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
