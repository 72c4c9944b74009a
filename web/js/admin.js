// 管理 (administration view): users, API keys and the audit trail, for the roles that may (users:admin,
// audit:read — the admin). Each part loads when it is shown, so nobody else ever asks the API for it.
import { createApiKeys } from './apikeys.js';
import { createAudit } from './audit.js';
import { can, onPrincipalChange } from './auth.js';
import { $, $$ } from './dom.js';
import { createUsers } from './users.js';

/** The permission each part of the view needs (also data-requires on its tab in index.html). */
const NEEDS = { users: 'users:admin', keys: 'users:admin', audit: 'audit:read' };

export function createAdmin(root) {
  const parts = {
    users: createUsers($('[data-admin-panel="users"]', root)),
    keys: createApiKeys($('[data-admin-panel="keys"]', root)),
    audit: createAudit($('[data-admin-panel="audit"]', root)),
  };
  let current = null;
  let visible = false;

  const allowed = (name) => Boolean(name && can(NEEDS[name]));
  const firstAllowed = () => Object.keys(NEEDS).find(allowed) || null;

  function select(name) {
    current = allowed(name) ? name : firstAllowed();
    for (const b of $$('[data-admin-tab]', root)) b.setAttribute('aria-selected', String(b.dataset.adminTab === current));
    for (const p of $$('[data-admin-panel]', root)) p.hidden = p.dataset.adminPanel !== current;
    if (visible && current) parts[current].shown();
  }

  for (const b of $$('[data-admin-tab]', root)) {
    b.addEventListener('click', () => {
      if (b.dataset.adminTab !== current) select(b.dataset.adminTab);
    });
  }
  onPrincipalChange(() => {
    if (current && !allowed(current)) select(current);
  });

  return {
    /** The view is shown: (re)load the selected part. */
    shown() {
      visible = true;
      select(current);
    },
    hidden() {
      visible = false;
    },
    select,
  };
}
