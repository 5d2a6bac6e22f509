// A screenshot of MLflow's UI in a real headless browser: how the README's picture of the runs
// table was taken, and how to check what a link of `make ui` opens.
//
// Not part of the Python install. A browser that installs without a download from Google's
// CDN (unreachable from some machines) is the Chromium build packed in the npm package
// @sparticuz/chromium, driven by puppeteer-core; in a scratch folder:
//
//   npm install @sparticuz/chromium@153 puppeteer-core@24
//   make ui &                                      # prints the links
//   NODE_PATH=$PWD/node_modules LANG=en_US.UTF-8 node bench/ui_screenshot.cjs \
//       'http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning&viewStateShareKey=warmup-runs' \
//       runs.png
//
// LANG matters: with a POSIX locale (en-US@posix) MLflow's UI fails with "Invalid language
// tag". Options: WIDTH and HEIGHT (pixels, default 1500 x 820), WAIT (ms after the page is
// idle, default 6000). The assistant side panel, when MLflow opens it, is closed first.
const chromiumModule = require("@sparticuz/chromium");
const chromium = chromiumModule.default || chromiumModule;
const puppeteer = require("puppeteer-core");

async function main() {
  const [url, out] = process.argv.slice(2);
  if (!url || !out) {
    console.error("usage: node bench/ui_screenshot.cjs URL OUT.png");
    process.exit(2);
  }
  const browser = await puppeteer.launch({
    args: [...chromium.args, "--lang=en-US"],
    executablePath: await chromium.executablePath(),
    headless: "shell",
    defaultViewport: {
      width: Number(process.env.WIDTH || 1500),
      height: Number(process.env.HEIGHT || 820),
    },
  });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e}`));
    await page.goto(url, { waitUntil: "networkidle0", timeout: 120000 });
    await new Promise((r) => setTimeout(r, Number(process.env.WAIT || 6000)));
    const close = await page.$('[data-component-id="mlflow.assistant.chat_panel.close"]');
    if (close) {
      await close.click();
      await new Promise((r) => setTimeout(r, 1500));
    }
    await page.screenshot({ path: out });
    console.log(`${out}: ${await page.title()} (${page.url()})`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
