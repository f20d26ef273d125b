/**
 * infra/hooks/postdeploy.sh against a fake `az` (no network, no Azure): it must create each
 * region's search index, read the blobs_extension key, and subscribe every blob-triggered
 * function to the right Event Grid system topic (boundary topic for tenant documents, global
 * topic for shared documents) with the documented webhook URL — without printing the key.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './bicep';

const FAKE_AZ = `#!/usr/bin/env bash
{ printf '%s' "$*" | tr '\\n' ' '; echo; } >> "$AZ_LOG"
app=""; prev=""
for a in "$@"; do [ "$prev" = "-n" ] && app="$a"; prev="$a"; done
case "$1 $2" in
  "rest --method") exit 0 ;;
esac
case "$1 $2 $3" in
  "functionapp show -g") echo "$app.azurewebsites.net" ;;
  "functionapp keys list") echo "KEY-$app" ;;
  "functionapp function list")
    printf '%s/ingestDocument\\tBlobStorage\\tdocuments/{name}\\n' "$app"
    printf '%s/ingestShared\\tGlobalBlobStorage\\tshared/{name}\\n' "$app" ;;
  "eventgrid system-topic event-subscription") exit 0 ;;
  *) echo "fake az: unexpected: $*" >&2; exit 2 ;;
esac
`;

describe('infra/hooks/postdeploy.sh', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'meridian-hook-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'az'), FAKE_AZ);
  chmodSync(path.join(dir, 'az'), 0o755);
  const log = path.join(dir, 'az.log');

  const run = spawnSync('bash', [path.join(REPO_ROOT, 'infra/hooks/postdeploy.sh')], {
    encoding: 'utf8',
    env: {
      PATH: `${dir}:${process.env['PATH'] ?? ''}`,
      AZ_LOG: log,
      MERIDIAN_REGIONAL_APPS: [
        'eastus|us|rg-t-us|func-x-eastus|evgt-stus|srch-x-eastus|meridian-eastus',
        'westeurope|eu|rg-t-eu|func-x-westeurope|evgt-steu|srch-x-westeurope|meridian-westeurope',
      ].join(' '),
      MERIDIAN_GLOBAL_RESOURCE_GROUP: 'rg-t-global',
      MERIDIAN_GLOBAL_SYSTEM_TOPIC: 'evgt-stglobal',
    },
  });
  const calls = (): string[] => readFileSync(log, 'utf8').trim().split('\n');

  it('succeeds', () => {
    expect(run.stderr).not.toContain('ERROR');
    expect(run.status).toBe(0);
  });

  it("creates each region's index on its own search service with an Entra token", () => {
    const puts = calls().filter((c) => c.startsWith('rest '));
    expect(puts).toHaveLength(2);
    expect(puts[0]).toContain('--url https://srch-x-eastus.search.windows.net/indexes/meridian-eastus?api-version=');
    expect(puts[0]).toContain('--resource https://search.azure.com');
    expect(puts[0]).toContain('"name": "meridian-eastus"');
    expect(puts[1]).toContain('https://srch-x-westeurope.search.windows.net/indexes/meridian-westeurope?');
  });

  it('subscribes tenant-document triggers to the boundary topic and shared ones to the global topic', () => {
    const subs = calls().filter((c) => c.startsWith('eventgrid '));
    expect(subs).toHaveLength(4);
    const eastDocs = subs.find((c) => c.includes('--name ingestdocument-eastus'));
    expect(eastDocs).toContain('--resource-group rg-t-us --system-topic-name evgt-stus');
    expect(eastDocs).toContain(
      '--endpoint https://func-x-eastus.azurewebsites.net/runtime/webhooks/blobs?functionName=Host.Functions.ingestDocument&code=KEY-func-x-eastus',
    );
    expect(eastDocs).toContain('--included-event-types Microsoft.Storage.BlobCreated');
    expect(eastDocs).toContain('--subject-begins-with /blobServices/default/containers/documents/');
    const euShared = subs.find((c) => c.includes('--name ingestshared-westeurope'));
    expect(euShared).toContain('--resource-group rg-t-global --system-topic-name evgt-stglobal');
    expect(euShared).toContain('functionName=Host.Functions.ingestShared&code=KEY-func-x-westeurope');
    expect(euShared).toContain('--subject-begins-with /blobServices/default/containers/shared/');
  });

  it('never prints the blobs_extension key', () => {
    expect(run.stdout + run.stderr).not.toContain('KEY-');
  });

  it('refuses to run outside azd (no Bicep outputs)', () => {
    const bare = spawnSync('bash', [path.join(REPO_ROOT, 'infra/hooks/postdeploy.sh')], {
      encoding: 'utf8',
      env: { PATH: `${dir}:${process.env['PATH'] ?? ''}`, AZ_LOG: log },
    });
    expect(bare.status).not.toBe(0);
    expect(bare.stderr).toContain('MERIDIAN_REGIONAL_APPS');
  });
});
