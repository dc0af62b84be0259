// Mint HS256 JWTs the way an identity provider would.

import jwt from 'jsonwebtoken';
import { JWT_SECRET } from './server.mjs';

/**
 * @param {object} o
 * @param {string} o.sub
 * @param {string} o.tenant       value of the `tenant_id` claim (omit with tenant: undefined)
 * @param {string} [o.name]
 * @param {string[]} [o.roles]
 * @param {number} [o.expIn]      seconds from now (may be negative)
 * @param {number} [o.exp]        absolute exp (seconds since epoch), overrides expIn
 * @param {string} [o.secret]
 * @param {object} [o.extra]      more claims
 */
export function mintToken({ sub, tenant, name, roles, expIn = 3600, exp, secret = JWT_SECRET, extra = {} }) {
  const claims = { sub, ...extra };
  if (tenant !== undefined) claims.tenant_id = tenant;
  if (name !== undefined) claims.name = name;
  if (roles !== undefined) claims.roles = roles;
  claims.exp = exp ?? Math.floor(Date.now() / 1000) + expIn;
  return jwt.sign(claims, secret, { algorithm: 'HS256', noTimestamp: false });
}

/** An unsigned `alg: none` token: must always be refused. */
export function mintNoneToken(claims) {
  return jwt.sign({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, '', { algorithm: 'none' });
}

export function publisher(tenant, sub = 'svc-pub', name = 'publisher') {
  return mintToken({ sub, tenant, name, roles: ['publisher'] });
}

export function service(tenant, sub = 'svc-service', name = 'service') {
  return mintToken({ sub, tenant, name, roles: ['service'] });
}

export function reader(tenant, sub, name = sub) {
  return mintToken({ sub, tenant, name });
}
