/**
 * Durable instance ids encode their home region (DESIGN.md "Regions and residency"):
 * `<region>-<32 hex>`, optionally followed by `:<suffix>` for instances derived from another
 * (a session's evaluation is `<session id>:evaluation`).
 */
const INSTANCE_ID = /^([a-z][a-z0-9]*)-[0-9a-f]{32}(?::[a-z0-9-]{1,40})?$/;

export function instanceIdFor(region: string, hex32: string): string {
  if (!/^[a-z][a-z0-9]*$/.test(region) || !/^[0-9a-f]{32}$/.test(hex32)) throw new RangeError('bad region or id');
  return `${region}-${hex32}`;
}

/** The home region of a well-formed instance id; undefined for anything else. */
export function homeRegionOf(instanceId: string): string | undefined {
  return INSTANCE_ID.exec(instanceId)?.[1];
}

export type InstanceRoute = { kind: 'here' } | { kind: 'redirect'; region: string } | { kind: 'not_found' };

/**
 * Where a request for `instanceId` is served (API.md: 307 to the instance's home region):
 * - here, when its home region is one this process serves (all regions of a boundary share
 *   the process's task hub under `npm start`; in Azure each regional app serves its own);
 * - a redirect, when its home is another region of the same boundary;
 * - not found, for a malformed id or a region of another boundary (never redirected across).
 */
export function routeInstance(
  instanceId: string,
  here: { servedRegions: readonly string[]; boundary: string; boundaryOf: (region: string) => string | undefined },
): InstanceRoute {
  const home = homeRegionOf(instanceId);
  if (home === undefined) return { kind: 'not_found' };
  if (here.servedRegions.includes(home)) return { kind: 'here' };
  if (here.boundaryOf(home) === here.boundary) return { kind: 'redirect', region: home };
  return { kind: 'not_found' };
}
