// The supervisor's view of the audit trail: filters, a page at a time, and what the node
// can verify of the chain on each page.
import { getJson, queryString } from './api.js';
import { t } from './i18n.js';
import { format, fromInput } from './time.js';
import { setLive, showError, status } from './ui.js';

const $ = (id) => document.getElementById(id);
let filter;

export function initAudit() {
  $('audit-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const from = fromInput($('audit-from').value);
    const to = fromInput($('audit-to').value);
    filter = {
      case: $('audit-case').value.trim(),
      user: $('audit-user').value.trim(),
      kind: $('audit-kind').value,
      from: Number.isNaN(from) ? undefined : from,
      to: Number.isNaN(to) ? undefined : to,
      limit: 50,
    };
    if (!filter.case && !filter.user) {
      status('audit-status', () => t('audit_need_filter'));
      $('audit-status').classList.add('error');
      return;
    }
    await load(undefined);
  });
  $('audit-next').addEventListener('click', () => load($('audit-next').dataset.cursor));
}

async function load(cursor) {
  status('audit-status', () => t('searching'));
  try {
    const answer = await getJson(`v1/audit?${queryString({ ...filter, cursor }, false)}`, { audited: true });
    const body = $('audit-table').tBodies[0];
    const rows = answer.records.map((record) => {
      const row = document.createElement('tr');
      const e = record; // the entry's fields are flattened into the record
      for (const text of [`${record.node_id} #${record.seq}`, format(e.at_ms), `${e.user} (${e.role})`, e.kind, e.case_id, e.reason, String(e.result_count)]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      row.title = e.parameters_json;
      return row;
    });
    if (cursor) body.append(...rows);
    else body.replaceChildren(...rows);
    const rowsShown = body.rows.length;
    status('audit-status', () => (answer.records.length || cursor
      ? t('audit_summary', { n: rowsShown, audit: `${answer.audit.node_id} #${answer.audit.seq}` })
      : t('audit_empty')));
    const chain = answer.chain;
    const line = $('chain-status');
    setLive('chain-status', () => (chain.intact
      ? t('chain_ok', { records: chain.records_checked, links: chain.links_checked })
      : t('chain_bad', { altered: chain.altered.join(', ') || '-', links: chain.broken_links.join(', ') || '-' })));
    line.classList.toggle('error', !chain.intact);
    $('audit-next').hidden = !answer.next_cursor;
    $('audit-next').dataset.cursor = answer.next_cursor || '';
  } catch (error) {
    showError('audit-status', error);
  }
}
