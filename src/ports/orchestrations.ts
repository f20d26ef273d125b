/**
 * Durable orchestrations as use cases see them. The function layer adapts the Durable
 * Functions client (`df.getClient(context)`) to it per invocation; tests pass a fake.
 * Inputs and events carry ids and numbers only, never document or transcript text (DESIGN.md).
 */
export interface Orchestrations {
  /**
   * Starts orchestrator `name` as `instanceId` with `input`.
   * @throws when the instance exists and is running, or the host is unreachable.
   */
  start(name: string, instanceId: string, input: unknown): Promise<void>;
  /**
   * Raises external event `event` on a running instance. Resolves once the host has queued
   * it (it does not wait for the orchestrator to replay).
   * @throws when the instance is absent or finished, or the host is unreachable.
   */
  raise(instanceId: string, event: string, data: unknown): Promise<void>;
}
