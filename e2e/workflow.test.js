// The service desk's main flows in a real browser (issue: web UI).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, signIn, shot } from './lib.js';

let server;
let browser;
let adminToken;

before(async () => {
  server = await new Server().start();
  server.user('admin@example.org', 'Ada Admin', 'admin');
  server.user('agent@example.org', 'Aldo Agent', 'agent');
  server.user('agent2@example.org', 'Beth Agent', 'agent');
  server.user('rita@example.org', 'Rita Requester', 'requester');
  server.user('bob@example.org', 'Bob Requester', 'requester');
  adminToken = server.cli(['token', 'create', '--user', 'admin@example.org']);
  const group = await server.api('POST', '/api/v1/groups', adminToken, { name: 'Service Desk L1' });
  const users = await server.api('GET', '/api/v1/users?role=agent', adminToken);
  for (const u of users.body.items) {
    await server.api('POST', `/api/v1/groups/${group.body.id}/members`, adminToken, { user_id: u.id });
  }
  const hw = await server.api('POST', '/api/v1/categories', adminToken, { name: 'Hardware' });
  await server.api('POST', '/api/v1/categories', adminToken, { name: 'Laptop', parent_id: hw.body.id });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('requester submits, agent assigns and replies, requester sees the reply and confirms', async () => {
  const rita = await signIn(browser, server, 'rita@example.org');
  assert.match(rita.url(), /\/portal$/, 'requesters land in the portal');
  await shot(rita, 'portal-home');
  await rita.getByRole('link', { name: 'New request' }).first().click();
  await rita.getByLabel('Something is broken').check();
  await rita.getByLabel('Category').selectOption({ label: '— Laptop' });
  await rita.getByLabel('Subject').fill('Laptop will not charge');
  await rita.getByLabel('Describe it').fill('The charging light stays off since this morning.');
  await rita.getByLabel("I can't work").check();
  await rita.setInputFiles('#files', { name: 'photo.txt', mimeType: 'text/plain', buffer: Buffer.from('charger photo') });
  await shot(rita, 'new-request');
  await rita.getByRole('button', { name: 'Send request' }).click();
  await rita.waitForURL(/\/portal\/tickets\/\d+\?created=1/);
  const number = rita.url().match(/tickets\/(\d+)/)[1];
  assert.match(await rita.getByRole('status').innerText(), new RegExp(`#${number}`), 'the number is shown at once');

  const agent = await signIn(browser, server, 'agent@example.org');
  assert.match(agent.url(), /\/desk$/, 'agents land in the workspace');
  await agent.getByRole('link', { name: /Unassigned in my groups/ }).click();
  const row = agent.getByRole('row', { name: /Laptop will not charge/ });
  await assert.doesNotReject(row.waitFor());
  await shot(agent, 'agent-queue');
  await row.getByRole('link').click();
  await agent.getByRole('button', { name: 'Assign to me' }).click();
  await agent.getByLabel('Message').fill('I will bring you a spare charger in ten minutes.');
  await agent.getByRole('button', { name: 'Send' }).click();
  await agent.getByLabel('Internal note').check();
  await agent.getByLabel('Message').fill('Charger stock is low — order more.');
  await agent.getByRole('button', { name: 'Send' }).click();
  assert.equal(await agent.locator('.msg.internal').count(), 1, 'the note is marked internal');
  assert.match(await agent.locator('#ticket-status').innerText(), /open/);
  await shot(agent, 'ticket-page');

  await rita.goto(`${server.base}/portal/tickets/${number}`);
  const page = await rita.content();
  assert.match(page, /spare charger/, 'the public reply reaches the portal');
  assert.doesNotMatch(page, /Charger stock is low/, 'the internal note never does');
  assert.match(page, /photo\.txt/);

  await agent.getByLabel('Resolution note').fill('Replaced the charger.');
  await agent.getByRole('button', { name: 'Resolve' }).click();
  await rita.reload();
  assert.match(await rita.locator('#ticket-status').innerText(), /Resolved/);
  await rita.getByRole('button', { name: 'Yes, it is solved' }).click();
  assert.match(await rita.locator('#ticket-status').innerText(), /Closed/);
  assert.doesNotMatch(await rita.content(), /Charger stock is low/);
  await rita.context().close();
  await agent.context().close();
});

test("a requester opening another requester's ticket gets not found", async () => {
  const resp = await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Rita only', requester_id: (await server.api('GET', '/api/v1/users?q=rita', adminToken)).body.items[0].id });
  const bob = await signIn(browser, server, 'bob@example.org');
  const r = await bob.goto(`${server.base}/portal/tickets/${resp.body.number}`);
  assert.equal(r.status(), 404);
  assert.match(await bob.content(), /could not find/);
  assert.doesNotMatch(await bob.content(), /Rita only/);
  const desk = await bob.goto(`${server.base}/desk`);
  assert.equal(desk.status(), 403, 'requesters have no workspace');
  await bob.context().close();
});

test('a request can be submitted with the keyboard alone', async () => {
  const rita = await signIn(browser, server, 'rita@example.org');
  await rita.goto(server.base + '/portal/new');
  const focusById = async (id) => {
    for (let i = 0; i < 40; i++) {
      if (await rita.evaluate(() => document.activeElement?.id) === id) return;
      await rita.keyboard.press('Tab');
    }
    throw new Error('could not reach #' + id + ' with Tab');
  };
  await focusById('subject');
  await rita.keyboard.type('Keyboard only request');
  await rita.keyboard.press('Tab');
  await rita.keyboard.type('Typed without a mouse.');
  for (let i = 0; i < 40; i++) {
    const label = await rita.evaluate(() => document.activeElement?.textContent || '');
    if (label.includes('Send request')) break;
    await rita.keyboard.press('Tab');
  }
  await rita.keyboard.press('Enter');
  await rita.waitForURL(/created=1/);
  assert.match(await rita.content(), /Keyboard only request/);
  await rita.context().close();
});

test('HTML and script in a subject and body show as text everywhere', async () => {
  const evil = `<img src=x onerror=alert(1)><script>alert(2)</script> VPN`;
  const rita = await signIn(browser, server, 'rita@example.org');
  await rita.goto(server.base + '/portal/new');
  await rita.getByLabel('Subject').fill(evil);
  await rita.getByLabel('Describe it').fill(`"><svg onload=alert(3)>`);
  await rita.getByRole('button', { name: 'Send request' }).click();
  await rita.waitForURL(/created=1/);
  assert.equal(await rita.locator('h1').innerText().then((t) => t.includes('<script>alert(2)</script>')), true);
  await rita.goto(server.base + '/portal');
  assert.match(await rita.locator('table').innerText(), /<img src=x onerror=alert\(1\)>/);
  const agent = await signIn(browser, server, 'agent@example.org');
  await agent.goto(server.base + '/desk?view=open');
  await agent.getByRole('link', { name: /onerror/ }).click();
  assert.match(await agent.title(), /<script>alert\(2\)<\/script>/, 'even the title is text');
  assert.deepEqual(rita.dialogs, []);
  assert.deepEqual(agent.dialogs, [], 'no injected script ran');
  assert.equal(await agent.locator('img[src=x]').count(), 0);
  await rita.context().close();
  await agent.context().close();
});

test('two agents editing one ticket: the second gets the conflict message, nothing is overwritten', async () => {
  const t = await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Shared printer offline' });
  const a = await signIn(browser, server, 'agent@example.org');
  const b = await signIn(browser, server, 'agent2@example.org');
  for (const p of [a, b]) await p.goto(`${server.base}/desk/tickets/${t.body.number}`);
  await a.getByLabel('Priority').selectOption('critical');
  await a.getByRole('button', { name: 'Save properties' }).click();
  assert.match(await a.locator('#ticket-priority').innerText(), /critical/);
  await b.getByLabel('Status').selectOption('pending');
  const resp = await Promise.all([b.waitForNavigation(), b.getByRole('button', { name: 'Save properties' }).click()]);
  assert.equal(resp[0].status(), 412);
  assert.match(await b.content(), /Someone else changed this ticket/);
  const now = await server.api('GET', `/api/v1/tickets/${t.body.id}`, adminToken);
  assert.equal(now.body.priority, 'critical');
  assert.equal(now.body.status, 'new', "the stale edit did not land");
  await a.context().close();
  await b.context().close();
});

test('keyboard shortcuts: j/k move, o opens, n writes a note, a assigns, ? shows help', async () => {
  await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Keyboard ticket one' });
  await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Keyboard ticket two' });
  const agent = await signIn(browser, server, 'agent@example.org');
  await agent.goto(server.base + '/desk?view=unassigned&sort=number');
  await agent.keyboard.press('j');
  await agent.keyboard.press('j');
  await agent.keyboard.press('k');
  assert.equal(await agent.locator('tr.selected').count(), 1);
  const selected = await agent.locator('tr.selected a').first().innerText();
  await agent.keyboard.press('o');
  await agent.waitForURL(/\/desk\/tickets\//);
  assert.equal(await agent.locator('h1').innerText().then((h) => h.includes(selected)), true, 'o opens the selected ticket');
  await agent.keyboard.press('n');
  assert.equal(await agent.getByLabel('Internal note').isChecked(), true);
  assert.equal(await agent.evaluate(() => document.activeElement?.id), 'composer');
  await agent.keyboard.press('Escape');
  await agent.locator('h1').click();
  await agent.keyboard.press('a');
  await agent.waitForLoadState('load');
  await agent.waitForSelector('#assign-me', { state: 'detached' });
  await agent.keyboard.press('?');
  assert.equal(await agent.locator('#shortcuts').evaluate((d) => d.open), true);
  await agent.keyboard.press('Escape');
  await agent.keyboard.press('/');
  assert.equal(await agent.evaluate(() => document.activeElement?.id), 'search-q');
  await agent.context().close();
});

test('search results mark the words that matched', async () => {
  await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Docking station flickers', description: 'The docking station at desk 4 flickers when the fan starts.' });
  const agent = await signIn(browser, server, 'agent@example.org');
  await agent.getByRole('searchbox', { name: 'Search tickets' }).fill('docking');
  await agent.keyboard.press('Enter');
  await agent.waitForURL(/q=docking/);
  const marks = await agent.locator('mark').allInnerTexts();
  assert.ok(marks.includes('Docking') && marks.includes('docking'), JSON.stringify(marks));
  await agent.context().close();
});

test('admins manage people, groups, the directory, the priority matrix and tokens', async () => {
  const admin = await signIn(browser, server, 'admin@example.org');
  await admin.goto(server.base + '/admin/users');
  await admin.getByLabel('Name', { exact: true }).fill('Nina New');
  await admin.getByLabel('E-mail address').fill('nina@example.org');
  await admin.getByLabel('Role', { exact: true }).selectOption('agent');
  await admin.getByRole('button', { name: 'Add' }).click();
  const row = admin.getByRole('row', { name: /Nina New/ });
  await row.getByLabel('Role of Nina New').selectOption('supervisor');
  await row.getByRole('button', { name: 'Set', exact: true }).click();
  assert.equal(await admin.getByLabel('Role of Nina New').inputValue(), 'supervisor');
  await admin.getByRole('row', { name: /Nina New/ }).getByRole('button', { name: 'Deactivate' }).click();
  assert.match(await admin.getByRole('row', { name: /Nina New/ }).innerText(), /deactivated/);
  await shot(admin, 'admin-people');

  await admin.goto(server.base + '/admin/groups');
  await admin.getByLabel('Name').fill('Network L3');
  await admin.getByLabel('Support level').selectOption('l3');
  await admin.getByRole('button', { name: 'Create group' }).click();
  const card = admin.locator('section.card', { hasText: 'Network L3' });
  await card.getByLabel('Add member').selectOption({ label: 'Beth Agent' });
  await card.getByRole('button', { name: 'Add' }).click();
  assert.match(await admin.locator('section.card', { hasText: 'Network L3' }).innerText(), /Beth Agent/);

  await admin.goto(server.base + '/admin/directory');
  await admin.locator('#org-name').fill('Finance');
  await admin.getByRole('button', { name: 'Add organisation' }).click();
  await admin.getByLabel('Name of Finance').fill('Finance & Controlling');
  await admin.locator('li', { has: admin.getByLabel('Name of Finance') }).getByLabel('shares tickets').check();
  await admin.locator('li', { has: admin.getByLabel('Name of Finance') }).getByRole('button', { name: 'Save' }).click();
  const orgs = await server.api('GET', '/api/v1/organisations', adminToken);
  assert.deepEqual(orgs.body.items.map((o) => [o.name, o.shares_tickets]), [['Finance & Controlling', true]]);
  await admin.getByLabel('Label', { exact: true }).fill('Asset tag');
  await admin.getByLabel('Key (a-z, 0-9, _)').fill('asset_tag');
  await admin.getByRole('button', { name: 'Add field' }).click();
  assert.match(await admin.content(), /asset_tag/);

  await admin.goto(server.base + '/admin/settings');
  await admin.getByLabel('Priority for low impact and low urgency').selectOption('low');
  await admin.getByRole('button', { name: 'Save settings' }).click();
  const settings = await server.api('GET', '/api/v1/settings', adminToken);
  assert.equal(settings.body.priority_matrix.cells[0][0], 'low', 'the matrix change is in force');

  await admin.goto(server.base + '/account/tokens');
  await admin.getByLabel('Name of the new token').fill('ci');
  await admin.getByRole('button', { name: 'Create token' }).click();
  const secret = await admin.locator('#new-token').innerText();
  assert.match(secret, /^fdk_/);
  assert.doesNotMatch(admin.url(), /fdk_/, 'the secret is never put in a URL');
  assert.equal((await server.api('GET', '/api/v1/users/me', secret)).status, 200);
  await admin.getByRole('row', { name: /^ci/ }).getByRole('button', { name: 'Revoke' }).click();
  assert.equal((await server.api('GET', '/api/v1/users/me', secret)).status, 401, 'revoked at once');

  // Admins see everyone's tokens and can revoke any of them.
  const agentToken = server.cli(['token', 'create', '--user', 'agent2@example.org', '--name', 'beths-script']);
  await admin.goto(server.base + '/admin/tokens');
  await admin.getByRole('row', { name: /Beth Agent.*beths-script/ }).getByRole('button', { name: 'Revoke' }).click();
  assert.equal((await server.api('GET', '/api/v1/users/me', agentToken)).status, 401);

  const agent = await signIn(browser, server, 'agent@example.org');
  const denied = await agent.goto(server.base + '/admin/users');
  assert.equal(denied.status(), 403, 'agents are not admins');
  await admin.context().close();
  await agent.context().close();
});

test('an agent watching a ticket sees another agent\'s reply without reloading', async () => {
  const t = await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Live update check' });
  const watcher = await signIn(browser, server, 'agent2@example.org');
  const writer = await signIn(browser, server, 'agent@example.org');
  await watcher.goto(`${server.base}/desk/tickets/${t.body.number}`);
  await watcher.getByLabel('Message').fill('half-typed text stays');
  await writer.goto(`${server.base}/desk/tickets/${t.body.number}`);
  await writer.getByLabel('Message').fill('Rebooted the print server.');
  await writer.getByRole('button', { name: 'Send' }).click();
  await watcher.locator('.timeline', { hasText: 'Rebooted the print server.' }).waitFor({ timeout: 10000 });
  assert.match(await watcher.locator('#live').innerText(), /changed by someone else/);
  assert.equal(await watcher.getByLabel('Message').inputValue(), 'half-typed text stays', 'a message being typed is kept');
  await watcher.context().close();
  await writer.context().close();
});

test('bulk actions change every checked ticket, and merge duplicates', async () => {
  const made = [];
  for (const s of ['Bulk VPN one', 'Bulk VPN two', 'Bulk VPN three']) {
    made.push((await server.api('POST', '/api/v1/tickets', adminToken, { subject: s })).body);
  }
  const agent = await signIn(browser, server, 'agent@example.org');
  await agent.goto(server.base + '/desk?q=bulk');
  for (const t of made) await agent.getByLabel(`Select #${t.number}`).check();
  await agent.getByLabel('With the checked tickets').selectOption('priority:critical');
  await agent.getByRole('button', { name: 'Apply to checked' }).click();
  assert.match(await agent.getByRole('status').innerText(), /Changed 3 ticket/);
  for (const t of made) {
    assert.equal((await server.api('GET', `/api/v1/tickets/${t.id}`, adminToken)).body.priority, 'critical');
  }
  await agent.getByLabel(`Select #${made[0].number}`).check();
  await agent.getByLabel(`Select #${made[2].number}`).check();
  await agent.getByLabel('With the checked tickets').selectOption('merge');
  await agent.getByRole('button', { name: 'Apply to checked' }).click();
  const dup = (await server.api('GET', `/api/v1/tickets/${made[2].id}`, adminToken)).body;
  assert.equal(dup.merged_into, made[0].id, 'merged into the lowest number');
  assert.equal(dup.status, 'closed');
  await agent.context().close();
});

test('filters use the API\'s filters and can be saved as personal views with counts', async () => {
  await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Filter target', impact: 'high', urgency: 'high', tags: ['vip'] });
  await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Filter bystander', tags: ['vip'] });
  const agent = await signIn(browser, server, 'agent@example.org');
  await agent.getByText('Filter', { exact: true }).click();
  await agent.getByLabel('Priority').selectOption('critical');
  await agent.getByLabel('Tag', { exact: true }).fill('vip');
  await agent.getByRole('button', { name: 'Apply filter' }).click();
  const subjects = await agent.locator('table.queue tbody td:nth-child(3)').allInnerTexts();
  assert.deepEqual(subjects.map((s) => s.trim()), ['Filter target']);
  await agent.getByLabel('Save this filter as').fill('VIP fires');
  await agent.getByRole('button', { name: 'Save' }).click();
  const tab = agent.getByRole('link', { name: /VIP fires/ });
  assert.match(await tab.innerText(), /VIP fires\s+1/);
  await agent.goto(server.base + '/desk');
  await agent.getByRole('link', { name: /VIP fires/ }).click();
  assert.deepEqual((await agent.locator('table.queue tbody td:nth-child(3)').allInnerTexts()).map((s) => s.trim()), ['Filter target']);
  await agent.context().close();
});

test('the ticket page logs time, links tickets, edits category and custom fields, and merges', async () => {
  await server.api('POST', '/api/v1/custom-fields', adminToken, { key: 'asset', label: 'Asset number', kind: 'text' });
  const main = (await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Tools main' })).body;
  const other = (await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Tools other' })).body;
  const dup = (await server.api('POST', '/api/v1/tickets', adminToken, { subject: 'Tools duplicate' })).body;
  const agent = await signIn(browser, server, 'agent@example.org');
  await agent.goto(`${server.base}/desk/tickets/${main.number}`);
  await agent.getByLabel('Minutes').fill('25');
  await agent.getByLabel('Note', { exact: true }).fill('diagnosis');
  await agent.getByRole('button', { name: 'Log time' }).click();
  assert.match(await agent.locator('#time-title').innerText(), /25 min/);
  await agent.getByLabel('Link ticket number').fill(String(other.number));
  await agent.getByRole('button', { name: 'Link', exact: true }).click();
  assert.match(await agent.locator('section', { hasText: 'Linked tickets' }).innerText(), /Tools other/);
  await agent.getByLabel('Category').selectOption({ label: 'Hardware' });
  await agent.getByLabel('Asset number').fill('LAP-7');
  await agent.getByRole('button', { name: 'Save properties' }).click();
  const saved = (await server.api('GET', `/api/v1/tickets/${main.id}`, adminToken)).body;
  assert.equal(saved.custom_fields.asset, 'LAP-7');
  assert.ok(saved.category_id);
  await agent.goto(`${server.base}/desk/tickets/${dup.number}`);
  await agent.getByLabel('Merge into ticket number').fill(String(main.number));
  await agent.getByRole('button', { name: 'Merge' }).click();
  await agent.waitForURL(new RegExp(`/desk/tickets/${main.number}$`));
  assert.equal((await server.api('GET', `/api/v1/tickets/${dup.id}`, adminToken)).body.merged_into, main.id);
  await agent.context().close();
});

test('the new-request form shows the custom fields of the chosen type', async () => {
  await server.api('POST', '/api/v1/custom-fields', adminToken, { key: 'os_name', label: 'Operating system', kind: 'select', options: ['linux', 'windows'], ticket_types: ['incident'] });
  await server.api('POST', '/api/v1/custom-fields', adminToken, { key: 'cost_centre', label: 'Cost centre', kind: 'text', ticket_types: ['service_request'] });
  const rita = await signIn(browser, server, 'rita@example.org');
  await rita.goto(server.base + '/portal/new');
  assert.equal(await rita.getByLabel('Operating system').isVisible(), true);
  assert.equal(await rita.getByLabel('Cost centre').isVisible(), false);
  await rita.getByLabel('I need something (access, equipment, software)').check();
  assert.equal(await rita.getByLabel('Operating system').isVisible(), false);
  await rita.getByLabel('Cost centre').fill('CC-42');
  await rita.getByLabel('Subject').fill('New monitor');
  await rita.getByRole('button', { name: 'Send request' }).click();
  await rita.waitForURL(/created=1/);
  const number = rita.url().match(/tickets\/(\d+)/)[1];
  const t = await server.api('GET', `/api/v1/tickets/${number}`, adminToken);
  assert.deepEqual(t.body.custom_fields, { cost_centre: 'CC-42' });
  assert.equal(t.body.type, 'service_request');
  assert.equal(t.body.channel, 'web');
  await rita.context().close();
});
