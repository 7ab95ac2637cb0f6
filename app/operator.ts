// The operator API as its clients call it (`swx partner …`, the demo): JSON in and out with the bearer token; a
// refusal becomes an error carrying its SWX_* code and detail.

export type Operator = (method: string, path: string, body?: unknown) => Promise<unknown>;

export function operatorApi(url: string, token: string): Operator {
  return async (method, path, body) => {
    const response = await fetch(new URL(path, url), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).catch((error: Error) => { throw new Error(`cannot reach the hub's operator API at ${url} (${error.message}); is the hub running? set SWX_ADMIN_URL`); });
    const answer = await response.json() as Record<string, unknown>;
    if (!response.ok) throw new Error(`${answer.code ?? response.status}: ${answer.detail ?? JSON.stringify(answer)}`);
    return answer;
  };
}
