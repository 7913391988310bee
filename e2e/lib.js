// Shared harness of the browser tests: a real `ferrodesk serve` on 127.0.0.1 with a fresh
// SQLite data folder, users made with the real CLI, and Debian's headless Chromium.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.FERRODESK_BIN || join(here, '..', 'target', 'debug', 'ferrodesk');
export const SCREENSHOTS = join(here, '..', 'docs', 'screenshots');
export const PASSWORD = 'e2e passphrase 2026';

export class Server {
  async start() {
    this.dir = mkdtempSync(join(tmpdir(), 'ferrodesk-e2e-'));
    this.proc = spawn(BIN, ['--data-dir', this.dir, 'serve', '--listen', '127.0.0.1:0'], {
      env: { ...process.env, FERRODESK_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.base = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('server did not start: ' + out)), 20000);
      this.proc.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
        if (m) { clearTimeout(timer); resolve(m[1].replace('127.0.0.1', 'localhost')); }
      });
      this.proc.on('exit', (code) => reject(new Error('server exited ' + code + ': ' + out)));
    });
    return this;
  }

  cli(args, input) {
    return execFileSync(BIN, ['--data-dir', this.dir, ...args], { input, env: { ...process.env, FERRODESK_LOG: 'error' } }).toString().trim();
  }

  /** Creates a user with the e2e password; returns nothing. */
  user(email, name, role) {
    this.cli(['user', 'create', '--email', email, '--name', name, '--role', role, '--password-stdin'], PASSWORD + '\n');
  }

  async api(method, path, token, body) {
    const resp = await fetch(this.base + path, {
      method,
      headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await resp.text();
    return { status: resp.status, body: text ? JSON.parse(text) : null };
  }

  /** Delivers a raw e-mail through the relay endpoint (the mailbox must exist); the JSON answer. */
  async deliver(token, mailbox, raw) {
    const resp = await fetch(`${this.base}/api/v1/mail/inbound?mailbox=${mailbox}`, {
      method: 'POST',
      headers: { authorization: 'Bearer ' + token, 'content-type': 'message/rfc822' },
      body: raw,
    });
    return { status: resp.status, body: await resp.json() };
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      await new Promise((r) => this.proc.on('exit', r));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** A new browser context signed in as `email`, with a dialog trap for injected scripts. */
export async function signIn(browser, server, email, viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.dialogs = [];
  page.on('dialog', async (d) => { page.dialogs.push(d.message()); await d.dismiss(); });
  await page.goto(server.base + '/login');
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState('load');
  return page;
}

export async function shot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name + '.png') });
}
