// The console's pages, in the order the navigation lists them. Each names the route it reads first: the user sees a
// page only when their roles may call that route.
import type { Page } from '../page.ts';
import { accessPage } from './access.ts';
import { auditPage, settingsPage, usersPage } from './admin.ts';
import { evidencePage } from './evidence.ts';
import { alertsPage, analysisPage, overviewPage, statisticsPage } from './insight.ts';
import { messagesPage } from './messages.ts';
import { partnersPage } from './partners.ts';

export const pages: Page[] = [
  overviewPage, messagesPage, partnersPage, accessPage, evidencePage, statisticsPage, analysisPage, alertsPage, settingsPage, auditPage, usersPage,
];
