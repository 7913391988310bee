// Ferrodesk: keyboard shortcuts. Pages work without this script; it only adds speed.
// j/k move in lists, o or Enter opens, r reply, n note, a assign to me, / search, ? help.
(function () {
  'use strict';
  var rows = function () { return Array.prototype.slice.call(document.querySelectorAll('table.list tbody tr')); };
  var current = -1;
  function select(i) {
    var all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (r, n) { r.classList.toggle('selected', n === current); });
    var link = all[current].querySelector('td a');
    if (link) link.focus();
  }
  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  function compose(kind) {
    var radio = document.querySelector('input[name=kind][value=' + kind + ']');
    var box = document.getElementById('composer') || document.getElementById('reply');
    if (radio) radio.checked = true;
    if (box) { box.focus(); box.scrollIntoView({ block: 'center' }); }
  }
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    var help = document.getElementById('shortcuts');
    switch (e.key) {
      case 'j': select(current + 1); break;
      case 'k': select(current - 1); break;
      case 'o':
        if (current >= 0) { var l = rows()[current].querySelector('td a'); if (l) l.click(); }
        break;
      case 'r': compose('reply'); break;
      case 'n': compose('note'); break;
      case 'a':
        var assign = document.getElementById('assign-me');
        if (assign) assign.requestSubmit();
        break;
      case '/':
        var q = document.getElementById('search-q');
        if (q) q.focus();
        break;
      case '?':
        if (help) { if (help.open) help.close(); else help.showModal(); }
        break;
      default: return;
    }
    e.preventDefault();
  });

  // The new-request form: only the custom fields of the chosen type (the server checks anyway).
  function showFieldsFor(type) {
    document.querySelectorAll('.field[data-types]').forEach(function (f) {
      var types = f.getAttribute('data-types');
      var applies = !types || types.split(' ').indexOf(type) >= 0;
      f.hidden = !applies;
      f.querySelectorAll('input, select, textarea').forEach(function (i) { i.disabled = !applies; });
    });
  }
  var typeChoice = document.querySelectorAll('input[name=type]');
  typeChoice.forEach(function (r) {
    r.addEventListener('change', function () { if (r.checked) showFieldsFor(r.value); });
    if (r.checked) showFieldsFor(r.value);
  });

  // Live updates: when someone else changes this ticket, refresh its conversation, status and
  // history in place (a message being typed is left alone) and say so. The properties form keeps
  // the version it was loaded with, so a stale save is refused by the server with a message.
  var live = document.querySelector('[data-live]');
  if (live && window.EventSource) {
    var seen = Number(live.getAttribute('data-version'));
    var source = new EventSource(live.getAttribute('data-live'));
    source.addEventListener('changed', function (e) {
      var version = Number(e.data);
      if (version && version <= seen) return;
      if (version) seen = version;
      fetch(location.pathname, { credentials: 'same-origin' }).then(function (r) { return r.text(); }).then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html');
        ['.timeline', '.meta', '.history'].forEach(function (sel) {
          var old = document.querySelector(sel), now = fresh.querySelector(sel);
          if (old && now) old.replaceWith(now);
        });
        var note = document.getElementById('live');
        if (note) {
          note.hidden = false;
          note.textContent = 'This ticket was just changed by someone else. The conversation below is up to date; reload the page before you change its properties.';
        }
      });
    });
    window.addEventListener('pagehide', function () { source.close(); });
  }
})();
