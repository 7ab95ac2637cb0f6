// What the signed-in user's roles allow, judged by the same route table the server enforces (access.ts).
import { accessOf, allowedRole } from '../access.ts';
import type { Role } from '../access.ts';

/** Whether `roles` may call `route` ("METHOD /pattern"). */
export function may(route: string, roles: readonly Role[]): boolean {
  const [method = '', pattern = ''] = route.split(' ');
  return allowedRole(accessOf(method, pattern).access, roles) !== undefined;
}
