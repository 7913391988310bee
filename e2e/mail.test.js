// An e-mail as its sender formatted it, in real Chromium: the sandboxed frame runs none of the
// mail's code, shows its inline image, and loads no remote image until the agent asks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Server, launch, signIn, shot } from './lib.js';

let server;
let browser;
let canary;
const hits = [];

before(async () => {
  // Stands in for a tracking pixel's host: counts who fetches from it.
  canary = http.createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'image/gif' });
    res.end(Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64'));
  });
  await new Promise((r) => canary.listen(0, '127.0.0.1', r));
  server = await new Server().start();
  server.user('ada@example.org', 'Ada Admin', 'admin');
  server.cli(['mailbox', 'add', 'support', '--address', 'help@desk.example']);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  canary?.close();
});

test('a formatted e-mail runs no code and loads remote images only on request', async () => {
  const token = server.cli(['token', 'create', '--user', 'ada@example.org']);
  const pixel = `http://127.0.0.1:${canary.address().port}/pixel.gif`;
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
  const raw = [
    'From: Ann <ann@customer.example>', 'To: help@desk.example', 'Subject: Newsletter-style request',
    'Message-ID: <e2e-html@customer.example>', 'MIME-Version: 1.0', 'Content-Type: multipart/related; boundary=RR', '',
    '--RR', 'Content-Type: text/html; charset=utf-8', '',
    `<p><b>Bold</b> words <img alt="logo" src="cid:logo@customer.example"> <img alt="pixel" src="${pixel}">` +
      '<script>alert(1)</script><img alt="x" src="x" onerror="alert(2)"><svg onload="alert(3)"></svg></p>',
    '--RR', 'Content-Type: image/png; name=logo.png', 'Content-ID: <logo@customer.example>', 'Content-Transfer-Encoding: base64', '',
    png, '--RR--', '',
  ].join('\r\n');
  const delivered = await server.deliver(token, 'support', raw);
  assert.equal(delivered.status, 201, JSON.stringify(delivered.body));

  const page = await signIn(browser, server, 'ada@example.org');
  await page.goto(`${server.base}/desk/mail/${delivered.body.message.id}`);
  const frame = page.frames().find((f) => f.url().includes('/body'));
  assert.ok(frame, 'the mail is shown in a frame');
  await frame.waitForLoadState('load');
  assert.equal(await frame.locator('b').textContent(), 'Bold');
  // The inline image comes from the stored message.
  const logoWidth = await frame.locator('img[alt="logo"]').evaluate((img) => img.naturalWidth);
  assert.equal(logoWidth, 1);
  assert.equal(await frame.locator('img[alt="pixel"][src]').count(), 0, 'the remote image has no source');
  await page.waitForTimeout(300);
  assert.deepEqual(hits, [], 'nothing fetched the remote image');

  await page.getByRole('link', { name: 'Show remote images' }).click();
  await page.waitForLoadState('load');
  const shown = page.frames().find((f) => f.url().includes('/body?images=1'));
  assert.ok(shown);
  await shown.waitForLoadState('load');
  for (let i = 0; i < 50 && hits.length === 0; i++) await page.waitForTimeout(100);
  assert.deepEqual(hits, ['/pixel.gif'], 'the browser, not the server, fetched it once asked');
  assert.deepEqual(page.dialogs, [], 'no script of the mail ran');
  await page.context().close();
});

test('a reply that proves nothing is held on its ticket until an agent accepts it', async () => {
  const token = server.cli(['token', 'create', '--user', 'ada@example.org']);
  const opened = await server.deliver(token, 'support', [
    'From: Ann <ann@customer.example>', 'To: help@desk.example', 'Subject: Laptop will not charge',
    'Message-ID: <e2e-held-1@customer.example>', '', 'The charging light stays off.', '',
  ].join('\r\n'));
  assert.equal(opened.body.outcome, 'opened', JSON.stringify(opened.body));
  const number = (await server.api('GET', `/api/v1/tickets/${opened.body.message.ticket_id}`, token)).body.number;
  // Anyone can write Ann's address and the ticket's number: that alone is held, not her reply.
  const held = await server.deliver(token, 'support', [
    'From: Ann <ann@customer.example>', 'To: help@desk.example', `Subject: Re: [#${number}] Laptop will not charge`,
    'Message-ID: <e2e-held-2@customer.example>', '', 'Tried another socket, same.', '',
  ].join('\r\n'));
  assert.equal(held.body.outcome, 'held', JSON.stringify(held.body));

  const page = await signIn(browser, server, 'ada@example.org');
  await page.goto(`${server.base}/desk/tickets/${number}`);
  const bar = page.getByRole('group', { name: 'Unverified e-mail' });
  await bar.waitFor();
  assert.match(await bar.textContent(), /Unverified sender/);
  const note = page.locator('article.held');
  assert.match(await note.textContent(), /Unverified message claiming to be Ann <ann@customer.example>/);
  await shot(page, 'held-mail');
  await bar.getByRole('button', { name: 'Accept as their reply' }).click();
  await page.waitForLoadState('load');
  // Now it is Ann's public reply, and the note says who accepted it.
  const reply = page.locator('article.public', { hasText: 'Tried another socket, same.' });
  await reply.waitFor();
  assert.match(await reply.locator('header').textContent(), /Ann/);
  assert.match(await page.getByRole('group', { name: 'Unverified e-mail' }).textContent(), /Accepted as the sender's reply by Ada Admin/);
  assert.equal(await page.getByRole('button', { name: 'Accept as their reply' }).count(), 0);
  await page.context().close();
});
