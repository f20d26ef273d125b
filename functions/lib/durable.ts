/**
 * The function layer's side of Durable Functions: the `Orchestrations` port over the real
 * `DurableClient`, and the 307 rule for instance routes (API.md: session and evaluation routes
 * may answer 307 to the instance's home region of the same boundary).
 */
import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { Deps } from '../../src/composition';
import { AppError } from '../../src/domain/errors';
import { routeInstance } from '../../src/domain/instance-ids';
import type { Orchestrations } from '../../src/ports/orchestrations';

export const durableClientInput = df.input.durableClient();

export function orchestrationsOf(context: InvocationContext): Orchestrations {
  const client = df.getClient(context);
  return {
    async start(name, instanceId, input) {
      await client.startNew(name, { instanceId, input });
    },
    async raise(instanceId, event, data) {
      await client.raiseEvent(instanceId, event, data);
    },
  };
}

/**
 * Undefined when this process serves the instance's home region; a 307 to that region's app
 * when it is another region of this boundary (its base URL from MERIDIAN_REGION_URLS);
 * otherwise the instance is not found here (malformed id, or another boundary's).
 * @throws AppError not_found, or unavailable when the home region's URL is not configured.
 */
export function redirectToHome(deps: Deps, instanceId: string, url: string): HttpResponseInit | undefined {
  const route = routeInstance(instanceId, {
    servedRegions: deps.config.servedRegions,
    boundary: deps.config.boundary,
    boundaryOf: (r) => deps.config.regions.find((x) => x.name === r)?.boundary,
  });
  if (route.kind === 'here') return undefined;
  if (route.kind === 'not_found') throw new AppError('not_found', 'No such instance.');
  const base = deps.config.regionUrls[route.region];
  if (!base) throw new AppError('unavailable', `The instance lives in ${route.region}, which is not reachable from here.`);
  const u = new URL(url);
  return { status: 307, headers: { location: `${base}${u.pathname}${u.search}` } };
}
