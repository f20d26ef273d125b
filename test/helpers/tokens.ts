import { mintDevToken } from '../../devhost/token';

export { mintDevToken };

export async function bearer(
  tenant: string,
  user = 'user-1',
  roles: string[] = [],
  extra: { expiresInSeconds?: number; secret?: string; now?: number } = {},
) {
  return `Bearer ${await mintDevToken({ tenant, user, roles, ...extra })}`;
}
