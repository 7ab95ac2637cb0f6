// Who may call each route of the console API, by method and path pattern: one table, read by the console when it
// mounts a route and by the tests that try every route as every role.

/** The console's roles, each a part of the work (README, Console API). */
export const roles = ['admin', 'operator', 'auditor', 'analyst'] as const;
export type Role = (typeof roles)[number];

/**
 * `public`: anyone (health, the CRL and the hub's certificates, signing in); `signed-in`: any user, for their own session and tokens (and the
 * API's description); otherwise the roles listed. The operator token of the loopback listener holds every role.
 */
export type Access = 'public' | 'signed-in' | readonly Role[];

const operator: Access = ['operator'];
const auditor: Access = ['auditor'];
const admin: Access = ['admin'];
const analyst: Access = ['analyst'];
/** Statistics: the analysts', and the operators' and auditors' who watch the traffic. */
const statistics: Access = ['analyst', 'operator', 'auditor'];

export const routeAccess: Record<string, Access> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /pki/crl': 'public',
  'GET /pki/hub-sign.pem': 'public',
  'GET /pki/hub-enc.pem': 'public',
  // The console's page and its scripts: what they show comes from the routes below, each held to its roles.
  'GET /': 'public',
  'GET /console/:asset': 'public',
  'POST /api/session': 'public',
  'POST /api/session/certificate': 'public',
  'GET /api/session': 'signed-in',
  'DELETE /api/session': 'signed-in',
  'GET /api/openapi.json': 'signed-in',
  // Users and their tokens: an admin's, except a user's own tokens and password, which are theirs (checked in the route).
  'GET /api/users': admin,
  'GET /api/users/:user': admin,
  'PUT /api/users/:user': admin,
  'GET /api/users/:user/history': admin,
  'PUT /api/users/:user/roles': admin,
  'POST /api/users/:user/disable': admin,
  'POST /api/users/:user/enable': admin,
  'POST /api/users/:user/certificates': admin,
  'PUT /api/users/:user/password': 'signed-in',
  'GET /api/users/:user/tokens': 'signed-in',
  'POST /api/users/:user/tokens': 'signed-in',
  'DELETE /api/users/:user/tokens/:token': 'signed-in',
  'GET /api/settings': admin,
  'GET /api/settings/runtime': admin,
  'PUT /api/settings/runtime/:name': admin,
  'GET /api/settings/runtime/:name/history': admin,
  // Trading partners, services, the query catalogue, topics, channels and resends: the operators'.
  'GET /api/partners': operator,
  'GET /api/partners/:partner': operator,
  'PUT /api/partners/:partner': operator,
  'DELETE /api/partners/:partner': operator,
  'GET /api/partners/:partner/history': operator,
  'POST /api/partners/:partner/test': operator,
  'GET /api/partners/:partner/ssh-keys': operator,
  'POST /api/partners/:partner/ssh-keys': operator,
  'DELETE /api/partners/:partner/ssh-keys/:fingerprint': operator,
  'GET /api/services': operator,
  'PUT /api/services/:service': operator,
  'GET /api/services/:service/history': operator,
  'GET /api/topics': operator,
  'GET /api/topics/:topic': operator,
  'PUT /api/topics/:topic': operator,
  'DELETE /api/topics/:topic': operator,
  'GET /api/topics/:topic/history': operator,
  'GET /api/channels': operator,
  'GET /api/channels/:channel': operator,
  'PUT /api/channels/:channel': operator,
  'DELETE /api/channels/:channel': operator,
  'GET /api/channels/:channel/history': operator,
  'PUT /api/channels/:channel/requesters/:partner': operator,
  'DELETE /api/channels/:channel/requesters/:partner': operator,
  'POST /api/channels/:channel/resend': operator,
  'GET /api/catalogue': operator,
  'GET /api/catalogue/:dataset': operator,
  'PUT /api/catalogue/:dataset': operator,
  'DELETE /api/catalogue/:dataset': operator,
  'GET /api/catalogue/:dataset/history': operator,
  'GET /api/dlq': operator,
  'POST /api/dlq/:seq/resend': operator,
  'POST /api/dlq/preview': operator,
  'POST /api/dlq/resend': operator,
  // Reading messages: operators (to resend) and auditors (to check).
  'POST /api/messages/stages': ['operator', 'auditor'],
  'GET /api/messages': ['operator', 'auditor'],
  'GET /api/messages/:messageId/timeline': ['operator', 'auditor'],
  // Evidence, its time-stamping and its bundles: the auditors'.
  'GET /api/evidence': auditor,
  'GET /api/evidence/stamping': auditor,
  'GET /api/evidence/bundle/:messageId': auditor,
  'GET /api/evidence/bundle/:messageId/verify': auditor,
  'GET /api/audit': auditor,
  'GET /api/audit/verify': auditor,
  'GET /api/alerts': ['operator', 'auditor'],
  'GET /api/alerts/rules': ['operator', 'auditor'],
  'GET /api/overview': ['operator', 'auditor', 'analyst'],
  'GET /api/stats/traffic': statistics,
  'GET /api/stats/trend': statistics,
  'GET /api/stats/top-talkers': statistics,
  'GET /api/stats/latency': statistics,
  'GET /api/stats/errors': statistics,
  // The SQL sandbox and the shared dashboard: the analysts'.
  'POST /api/analysis/query': analyst,
  'GET /api/analysis/panels': analyst,
  'PUT /api/analysis/panels/:panel': analyst,
  'DELETE /api/analysis/panels/:panel': analyst,
};

/**
 * The access of a route. A route missing from the table (added to the operator API without a line here) is the
 * admins' alone until it gets one: nothing is opened by omission.
 */
export function accessOf(method: string, pattern: string): { access: Access; declared: boolean } {
  const access = routeAccess[`${method} ${pattern}`];
  return access === undefined ? { access: admin, declared: false } : { access, declared: true };
}

/** The role `roles` may call a route under (the first of the route's roles it holds), or undefined when none. */
export function allowedRole(access: Access, held: readonly Role[]): string | undefined {
  if (access === 'public') return 'public';
  if (access === 'signed-in') return held[0];
  return access.find((role) => held.includes(role));
}
