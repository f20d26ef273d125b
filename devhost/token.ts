/**
 * `npm run token -- --tenant <id> --user <id> [--role admin|auditor|platform-admin]...
 *  [--expires-in <seconds>]` prints a local-mode HS256 token alone on stdout.
 */
import { SignJWT } from 'jose';
import { parseArgs } from 'node:util';
import { DEV_TOKEN_AUDIENCE, DEV_TOKEN_ISSUER } from '../src/adapters/local/dev-token-verifier';
import { isRole } from '../src/domain/tenancy';
import { LOCAL_DEV_SECRET, modeOf } from '../src/config';

export async function mintDevToken(options: {
  tenant: string;
  user: string;
  roles?: string[];
  expiresInSeconds?: number;
  secret?: string;
  now?: number;
}): Promise<string> {
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  return new SignJWT({ tid: options.tenant, roles: options.roles ?? [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.user)
    .setIssuer(DEV_TOKEN_ISSUER)
    .setAudience(DEV_TOKEN_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresInSeconds ?? 3600))
    .sign(new TextEncoder().encode(options.secret ?? LOCAL_DEV_SECRET));
}

async function cli(): Promise<void> {
  if (modeOf(process.env) === 'azure') {
    process.stderr.write('npm run token works in local mode only; Azure uses Entra ID tokens.\n');
    process.exit(2);
  }
  const { values } = parseArgs({
    options: {
      tenant: { type: 'string' },
      user: { type: 'string' },
      role: { type: 'string', multiple: true },
      'expires-in': { type: 'string' },
    },
    strict: true,
  });
  const roles = values.role ?? [];
  const bad = roles.filter((r) => !isRole(r));
  const expires = values['expires-in'] === undefined ? 3600 : Number(values['expires-in']);
  if (!values.tenant || !values.user || bad.length || !Number.isInteger(expires)) {
    process.stderr.write(
      'usage: npm run token -- --tenant <id> --user <id> [--role admin|auditor|platform-admin]... [--expires-in <seconds>]\n' +
        (bad.length ? `unknown role(s): ${bad.join(', ')}\n` : ''),
    );
    process.exit(2);
  }
  const token = await mintDevToken({
    tenant: values.tenant,
    user: values.user,
    roles,
    expiresInSeconds: expires,
    ...(process.env['AUTH_DEV_SECRET'] ? { secret: process.env['AUTH_DEV_SECRET'] } : {}),
  });
  process.stdout.write(`${token}\n`);
}

if (require.main === module) void cli();
