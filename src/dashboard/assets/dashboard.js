// usher's dashboard: swaps in the parts of the page usher pushes over
// Server-Sent Events, and keeps "raised 2 min ago" counting. The pages are
// complete without it; every fragment arrives already escaped by usher.
'use strict';
(function () {
  const source = document.body.dataset.live;
  const state = document.getElementById('live-state');
  const KEPT = 100;

  function parse(html) {
    const template = document.createElement('template');
    template.innerHTML = html;
    return template.content;
  }

  // Replaces `old` with `fresh`, keeping the keyboard focus on the same link.
  function swap(old, fresh) {
    const focused = old.contains(document.activeElement) ? document.activeElement : null;
    const href = focused && focused.getAttribute('href');
    old.replaceWith(fresh);
    if (href) {
      const again = fresh.querySelector('[href="' + CSS.escape(href) + '"]');
      if (again) again.focus();
    }
  }

  function setHTML(id, html) {
    const node = document.getElementById(id);
    if (node && html != null) node.innerHTML = html;
  }

  function overview(update) {
    setHTML('summary', update.summary);
    const body = document.querySelector('#rooms tbody');
    if (!body) return;
    for (const [id, html] of Object.entries(update.rows || {})) {
      const fresh = parse(html).firstElementChild;
      const old = document.getElementById(id);
      if (old) swap(old, fresh); else body.append(fresh);
    }
    if (update.order) {
      const rows = update.order.map(id => document.getElementById(id)).filter(Boolean);
      const inOrder = rows.every((row, i) => body.children[i] === row);
      if (!inOrder) {
        const focused = document.activeElement;
        for (const row of rows) body.append(row);
        if (focused && body.contains(focused)) focused.focus();
      }
    }
  }

  function prepend(id, items) {
    const list = document.getElementById(id);
    if (!list || !items) return;
    for (const html of items) {
      const item = parse(html).firstElementChild;
      if (item.id && document.getElementById(item.id)) continue;
      list.prepend(item);
    }
    while (list.children.length > KEPT) list.lastElementChild.remove();
  }

  function room(update) {
    setHTML('room-header', update.header);
    setHTML('roster-rows', update.roster);
    setHTML('rules-rows', update.rules);
    prepend('timeline-list', update.timeline);
    prepend('held-list', update.held);
    tick();
  }

  function ago(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + ' s';
    if (seconds < 3600) return Math.floor(seconds / 60) + ' min';
    return Math.floor(seconds / 3600) + ' h ' + String(Math.floor(seconds % 3600 / 60)).padStart(2, '0') + ' min';
  }

  function tick() {
    const now = Date.now() / 1000;
    for (const node of document.querySelectorAll('time[data-since]')) {
      node.textContent = 'for ' + ago(now - Number(node.dataset.since));
    }
  }

  document.documentElement.classList.add('js');
  tick();
  setInterval(tick, 1000);
  if (!source || !('EventSource' in window)) return;
  const events = new EventSource(source);
  events.addEventListener('open', () => { state.textContent = 'live'; });
  events.addEventListener('error', () => { state.textContent = 'reconnecting…'; });
  events.addEventListener('overview', e => overview(JSON.parse(e.data)));
  events.addEventListener('room', e => room(JSON.parse(e.data)));
}());
