// The console API as the pages call it: JSON in and out with the session cookie, the session's CSRF token on every
// change, the reason of a change in x-swx-reason, and a refusal turned into an ApiError carrying the problem's code.

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, detail: string, readonly route: string) {
    super(detail);
  }

  /** The route is not on this hub at all (not a missing record): the page says which one it needs. */
  get missingRoute(): boolean {
    return this.status === 404 && this.message.endsWith('is not served here');
  }
}

let csrfToken = '';
export function useCsrfToken(token: string): void { csrfToken = token; }

export interface Call { reason?: string; raw?: boolean }

export async function request(method: string, path: string, body?: unknown, call: Call = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  if (call.reason) headers['x-swx-reason'] = encodeURIComponent(call.reason);
  const response = await fetch(path, { method, headers, credentials: 'same-origin', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  if (!response.ok) {
    let problem: { code?: string; detail?: string } = {};
    try { problem = await response.json() as typeof problem; } catch { /* not JSON: the status says it */ }
    throw new ApiError(response.status, problem.code ?? `HTTP_${response.status}`, problem.detail ?? response.statusText, `${method} ${path.split('?')[0]}`);
  }
  return response;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown, call: Call = {}): Promise<T> {
  return await (await request(method, path, body, call)).json() as T;
}

/** A list route's page: its rows and the cursor of the next (x-next-cursor, or `next` in the body). */
export async function listPage<T>(path: string): Promise<{ rows: T[]; next?: string }> {
  const response = await request('GET', path);
  const body = await response.json() as T[] | { rows: T[]; next?: string };
  if (Array.isArray(body)) {
    const next = response.headers.get('x-next-cursor');
    return { rows: body, ...(next ? { next } : {}) };
  }
  return body;
}

/** A query string of the values given (empty ones left out). */
export function query(values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(name, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}
