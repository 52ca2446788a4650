// Drives a real VS Code (code-server) in a real browser (Chromium through playwright-core):
// open the folder (trusting it), open a file with a torch.load finding, see it in the Problems
// panel, apply its quick fix, save with ckptlint.fixAll on, and check the file on disk.
//
//   node scripts/e2e.mjs URL FOLDER SHOTS_DIR EXPECTED_FILE
//
// Run by scripts/test-in-code-server.sh, which starts code-server on 127.0.0.1 with the
// extension installed and writes the folder. Exit code 0: every step passed.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [url, folder, shots, expectedFile] = process.argv.slice(2);
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const file = path.join(folder, 'train.py');
const expected = fs.readFileSync(expectedFile, 'utf-8');
const profile = fs.mkdtempSync(path.join(shots, '.chromium-'));
let step = 0;

function log(msg) {
    console.log(`e2e: ${msg}`);
}

async function shot(page, name) {
    step += 1;
    const out = path.join(shots, `${String(step).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: out });
    log(`screenshot ${out}`);
}

async function command(page, name) {
    // the command palette, as a user types it (F1 is not taken by the browser)
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${name}`);
    await page.locator('.quick-input-list .monaco-list-row').first().waitFor();
    await page.waitForTimeout(300);
    await page.keyboard.press('Enter');
}

// a fresh profile (--user-data-dir) each run: playwright takes it as launchPersistentContext's
const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
const page = browser.pages()[0] ?? await browser.newPage();
try {
    page.setDefaultTimeout(60000);
    await page.goto(url);
    await page.locator('.monaco-workbench').waitFor();
    log('workbench rendered');

    // the folder-trust dialog comes first: trust the folder (ckptlint starts only then)
    const trust = page.getByRole('button', { name: /Yes, I trust the authors/ });
    await trust.waitFor({ timeout: 30000 });
    await shot(page, 'trust-dialog');
    await trust.click();
    log('folder trusted');

    await command(page, 'Go to File');
    await page.keyboard.type('train.py');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'train.py' }).first().waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.monaco-editor .view-lines', { hasText: 'torch.load' }).first().waitFor();
    log('train.py open');

    await command(page, 'View: Show Problems');  // workbench.actions.view.problems
    const problem = page.locator('.markers-panel .monaco-list-row', { hasText: 'CKPT002' });
    await problem.first().waitFor({ timeout: 90000 });
    await page.locator('.markers-panel .monaco-list-row', { hasText: 'CKPT009' }).first().waitFor();
    await shot(page, 'problems-panel');
    log('CKPT002 and CKPT009 in the Problems panel');

    // the quick fix of the torch.load finding, from the lightbulb menu at the finding
    await problem.first().click();
    await page.waitForTimeout(500);
    await command(page, 'Quick Fix...');
    const fix = page.locator('.action-widget .monaco-list-row', { hasText: 'CKPT002' }).filter({ hasText: 'weights_only' });
    await fix.first().waitFor();
    await shot(page, 'quick-fix-menu');
    // the menu takes keys, not clicks (a pointer block covers it until the mouse moves)
    for (let i = 0; i < 5 && !(await fix.first().evaluate((el) => el.classList.contains('focused'))); i++) {
        await page.keyboard.press('ArrowDown');
    }
    await page.keyboard.press('Enter');
    await page.locator('.monaco-editor .view-lines', { hasText: 'weights_only=True' }).first().waitFor();
    log('quick fix applied');

    // save: ckptlint.fixAll applies the remaining safe fix (CKPT009) before the file is written
    await page.locator('.monaco-editor textarea').first().focus();
    await page.keyboard.press('Control+S');
    const deadline = Date.now() + 60000;
    let onDisk = '';
    while (Date.now() < deadline) {
        onDisk = fs.readFileSync(file, 'utf-8');
        if (onDisk === expected) {
            break;
        }
        await page.waitForTimeout(250);
    }
    await page.locator('.markers-panel .monaco-list-row', { hasText: 'CKPT009' }).first().waitFor({ state: 'detached' });
    await page.locator('.tab.active.dirty').waitFor({ state: 'detached' });
    await page.locator('.monaco-editor .view-lines', { hasText: 'weights_only=True' }).first().waitFor();
    await shot(page, 'saved');
    if (onDisk !== expected) {
        throw new Error(`the file on disk is not what ckptlint check --fix gives:\n--- on disk\n${onDisk}\n--- expected\n${expected}`);
    }
    log('saved file matches ckptlint check --fix');
} catch (err) {
    failed = true;
    console.error(`e2e: FAILED: ${err.stack || err}`);
    try {
        await shot(page, 'failure');
    } catch {
        // the page may be gone
    }
} finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
