// The console API as a browser or a script reaches it: over HTTPS on the hub's console port, checked against the hub
// CA as `localhost`, with a cookie jar, a CSRF token, an API token or a client certificate; and one user per role.
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { roles, type Role } from '../../dashboards/users.ts';
import type { HubProcess } from '../../app/hub-process.ts';

/** A cookie jar of one browser: what the console set, sent back as a browser would. */
export type Jar = Map<string, string>;

export interface Answer { status: number; headers: IncomingHttpHeaders; body: any; text: string }

export interface ConsoleRequest { body?: unknown; jar?: Jar; csrf?: string; bearer?: string; cert?: string; key?: string; headers?: Record<string, string> }

/** One request to the console's HTTPS port on a connection of its own; a JSON answer parsed, any other kept as text. */
export function consoleRequest(hub: HubProcess, method: string, path: string, options: ConsoleRequest = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.jar?.size) headers.cookie = [...options.jar].map(([name, value]) => `${name}=${value}`).join('; ');
  if (options.csrf) headers['x-csrf-token'] = options.csrf;
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
  const ca = readFileSync(join(hub.dataDir, 'pki', 'ca', 'cert.pem'), 'utf8');
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: hub.consolePort, servername: 'localhost', method, path, headers, ca, agent: false,
      ...(options.cert ? { cert: options.cert, key: options.key } : {}),
    }, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        for (const line of res.headers['set-cookie'] ?? []) {
          const [pair] = line.split(';');
          const [name, value = ''] = pair!.split('=');
          if (/Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(line) || value === '') options.jar?.delete(name!); else options.jar?.set(name!, value);
        }
        let body: unknown = text;
        try { body = JSON.parse(text); } catch { /* kept as text */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on('error', reject);
    req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
  });
}

export const testPassword = (role: string) => `${role}-password-for-tests`;
export const userOf: Record<Role, string> = { admin: 'ada', operator: 'oscar', auditor: 'audrey', analyst: 'anna' };

/**
 * One user per role (the admin already made, or made here with the operator token), each with a password and an API
 * token; returns the tokens by role.
 */
export async function roleTokens(hub: HubProcess): Promise<Record<Role, string>> {
  const tokens = {} as Record<Role, string>;
  for (const role of roles) {
    if (!(await hub.admin('GET', `/api/users/${userOf[role]}`)).body?.name) {
      const made = await hub.admin('PUT', `/api/users/${userOf[role]}`, { roles: [role], password: testPassword(role) });
      if (made.status !== 200) throw new Error(`user ${userOf[role]}: ${JSON.stringify(made.body)}`);
    }
    const token = await hub.admin('POST', `/api/users/${userOf[role]}/tokens`, { label: 'tests' });
    if (token.status !== 200) throw new Error(`token of ${userOf[role]}: ${JSON.stringify(token.body)}`);
    tokens[role] = token.body.token;
  }
  return tokens;
}
