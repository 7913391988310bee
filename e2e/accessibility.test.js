// Accessibility (WCAG 2.1 AA rules of axe-core) of the main pages, and phone-sized layouts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Server, launch, PASSWORD } from './lib.js';

const require = createRequire(import.meta.url);
const axeSource = require('fs').readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let server;
let browser;
let number;
let mailId;

before(async () => {
  server = await new Server().start();
  server.user('admin@example.org', 'Ada Admin', 'admin');
  server.user('rita@example.org', 'Rita Requester', 'requester');
  const token = server.cli(['token', 'create', '--user', 'admin@example.org']);
  const rita = (await server.api('GET', '/api/v1/users?q=rita', token)).body.items[0].id;
  const t = await server.api('POST', '/api/v1/tickets', token, { subject: 'Screen flickers', requester_id: rita });
  number = t.body.number;
  await server.api('POST', `/api/v1/tickets/${t.body.id}/comments`, token, { body: 'Checking the cable.' });
  await server.api('POST', `/api/v1/tickets/${t.body.id}/comments`, token, { body: 'Cable replaced last year.', internal: true });
  server.cli(['mailbox', 'add', 'support', '--address', 'help@desk.example']);
  const mail = await server.deliver(token, 'support', 'From: Rita <rita@example.org>\r\nTo: help@desk.example\r\n' +
    'Subject: Formatted\r\nMessage-ID: <a11y@example.org>\r\nContent-Type: text/html\r\n\r\n<p><b>Bold</b> request</p>\r\n');
  mailId = mail.body.message.id;
  // A reply that proves nothing about its sender: held on the ticket, with its buttons.
  const held = await server.deliver(token, 'support', `From: Rita <rita@example.org>\r\nTo: help@desk.example\r\n` +
    `Subject: Re: [#${number}] Screen flickers\r\nMessage-ID: <a11y-held@example.org>\r\n\r\nStill flickering.\r\n`);
  assert.equal(held.body.outcome, 'held', JSON.stringify(held.body));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Signs in inside a context that lets the test inject axe (our CSP forbids foreign scripts). */
async function page(email, viewport) {
  const context = await browser.newContext({ bypassCSP: true, viewport });
  const p = await context.newPage();
  await p.goto(server.base + '/login');
  await p.getByLabel('E-mail address').fill(email);
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.waitForLoadState('load');
  return p;
}

async function violations(p) {
  await p.addScriptTag({ content: axeSource });
  const result = await p.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
  });
  return result;
}

for (const scheme of ['light', 'dark']) {
  test(`pages pass axe's WCAG 2.1 AA rules (${scheme} theme)`, async () => {
    const rita = await page('rita@example.org', { width: 1280, height: 900 });
    await rita.emulateMedia({ colorScheme: scheme });
    const admin = await page('admin@example.org', { width: 1280, height: 900 });
    await admin.emulateMedia({ colorScheme: scheme });
    const pages = [
      [rita, '/portal'], [rita, '/portal/new'], [rita, `/portal/tickets/${number}`],
      [admin, '/desk?view=open'], [admin, `/desk/tickets/${number}`], [admin, '/admin/users'],
      [admin, '/admin/groups'], [admin, '/admin/directory'], [admin, '/admin/settings'], [admin, '/admin/mail'], [admin, '/account/tokens'],
      [admin, `/desk/mail/${mailId}`],
    ];
    const found = [];
    for (const [p, path] of pages) {
      await p.goto(server.base + path);
      for (const v of await violations(p)) found.push(`${path}: ${v}`);
    }
    const login = await browser.newContext({ bypassCSP: true, colorScheme: scheme });
    const lp = await login.newPage();
    for (const path of ['/login', '/forgot', '/reset-password?token=x', '/portal/by-mail']) {
      await lp.goto(server.base + path);
      for (const v of await violations(lp)) found.push(`${path}: ${v}`);
    }
    assert.deepEqual(found, []);
    await rita.context().close();
    await admin.context().close();
    await login.close();
  });
}

test('portal and ticket pages fit a phone-sized screen', async () => {
  const rita = await page('rita@example.org', { width: 375, height: 740 });
  const admin = await page('admin@example.org', { width: 375, height: 740 });
  for (const [p, path] of [[rita, '/portal'], [rita, '/portal/new'], [rita, `/portal/tickets/${number}`], [admin, `/desk/tickets/${number}`], [admin, '/desk?view=open']]) {
    await p.goto(server.base + path);
    const overflow = await p.evaluate(() => document.scrollingElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${path} scrolls sideways by ${overflow}px`);
  }
  await rita.context().close();
  await admin.context().close();
});
