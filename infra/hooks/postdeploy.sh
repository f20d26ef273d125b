#!/usr/bin/env bash
# azd postdeploy hook (azure.yaml). Runs after every service (one per region) is deployed,
# with the Bicep outputs in the environment. Idempotent: safe to run on every `azd up`.
#
# 1. Search indexes. The index schema (infra/search/index.json) is data plane, which Bicep
#    cannot create. A Bicep deploymentScript could, but it needs a storage account with
#    shared-key access for its container, which this deployment forbids everywhere
#    (allowSharedKeyAccess: false). So the deployer creates each region's index here with
#    `az rest` (Entra token for https://search.azure.com; main.bicep gives AZURE_PRINCIPAL_ID
#    Search Service Contributor on every search service). The apps only get
#    Search Index Data Contributor/Reader and never create indexes.
#
# 2. Event Grid subscriptions for the blob triggers (`source: 'EventGrid'`). They can only be
#    created once the functions exist: the webhook is
#      https://<app host>/runtime/webhooks/blobs?functionName=Host.Functions.<fn>&code=<key>
#    where <key> is the app's `blobs_extension` system key, read with
#      az functionapp keys list -g <rg> -n <app> --query systemKeys.blobs_extension -o tsv
#    (the host creates that key the first time it starts with an EventGrid blob trigger, so
#    we poll). The key is passed straight to Event Grid (which stores the endpoint URL as a
#    secret) and never printed or written to disk.
#    Which functions: every function of the app with a `blobTrigger` binding (read with
#    `az functionapp function list`); its `connection` picks the topic (GlobalBlobStorage →
#    the global shared-documents topic; anything else → the boundary's topic) and its `path`
#    the container. Override with MERIDIAN_BLOB_FUNCTIONS="fn:connection:container ...".
#
# Requires: Azure CLI (az) logged in as the deployer, bash.
set -euo pipefail

: "${MERIDIAN_REGIONAL_APPS:?not set: run this through azd (azd up / azd deploy) so the Bicep outputs are in the environment}"
: "${MERIDIAN_GLOBAL_RESOURCE_GROUP:?not set}"
: "${MERIDIAN_GLOBAL_SYSTEM_TOPIC:?not set}"

SEARCH_API_VERSION="${SEARCH_API_VERSION:-2024-07-01}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INDEX_TEMPLATE="$HERE/../search/index.json"

log() { printf '[postdeploy] %s\n' "$*" >&2; }

retry() {
  # retry <attempts> <sleep seconds> <command...>
  local attempts="$1" pause="$2" n=1
  shift 2
  until "$@"; do
    if [ "$n" -ge "$attempts" ]; then return 1; fi
    log "  retrying in ${pause}s ($n/$attempts): $1 ..."
    sleep "$pause"
    n=$((n + 1))
  done
}

put_index() {
  local search="$1" index="$2" body
  body="$(sed "s/__INDEX_NAME__/${index}/" "$INDEX_TEMPLATE")"
  az rest --method put \
    --url "https://${search}.search.windows.net/indexes/${index}?api-version=${SEARCH_API_VERSION}" \
    --resource "https://search.azure.com" \
    --headers "Content-Type=application/json" \
    --body "$body" --output none
}

blob_key() {
  local rg="$1" app="$2" key
  key="$(az functionapp keys list -g "$rg" -n "$app" --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)"
  [ -n "$key" ] && [ "$key" != "None" ] && printf '%s' "$key"
}

blob_functions() {
  # Prints "fn connection path" lines for the app's blob-triggered functions.
  local rg="$1" app="$2"
  if [ -n "${MERIDIAN_BLOB_FUNCTIONS:-}" ]; then
    for spec in $MERIDIAN_BLOB_FUNCTIONS; do
      IFS=: read -r fn conn container <<<"$spec"
      printf '%s %s %s/{name}\n' "$fn" "$conn" "$container"
    done
    return 0
  fi
  az functionapp function list -g "$rg" -n "$app" \
    --query "[?config.bindings[?type=='blobTrigger']].[name, config.bindings[?type=='blobTrigger'] | [0].connection, config.bindings[?type=='blobTrigger'] | [0].path]" \
    -o tsv | while read -r full conn path; do
      printf '%s %s %s\n' "${full##*/}" "$conn" "$path"
    done
}

subscribe() {
  local topic_rg="$1" topic="$2" name="$3" endpoint="$4" container="$5"
  az eventgrid system-topic event-subscription create \
    --name "$name" \
    --resource-group "$topic_rg" \
    --system-topic-name "$topic" \
    --endpoint-type webhook \
    --endpoint "$endpoint" \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "/blobServices/default/containers/${container}/" \
    --max-delivery-attempts 30 \
    --event-ttl 1440 \
    --output none
}

failures=0
for entry in $MERIDIAN_REGIONAL_APPS; do
  IFS='|' read -r region boundary rg app boundary_topic search index <<<"$entry"
  log "region ${region} (boundary ${boundary}): app ${app}"

  log "  search index ${index} on ${search}"
  if ! retry 10 30 put_index "$search" "$index"; then
    log "  ERROR: could not create index ${index} (role assignment not yet effective, or an incompatible schema change: see infra/DEPLOYMENT.md)"
    failures=$((failures + 1))
  fi

  host="$(az functionapp show -g "$rg" -n "$app" --query defaultHostName -o tsv)"
  key=""
  for _ in $(seq 1 30); do
    key="$(blob_key "$rg" "$app" || true)"
    [ -n "$key" ] && break
    sleep 10
  done
  if [ -z "$key" ]; then
    log "  ERROR: no blobs_extension key on ${app}: has the host started with an EventGrid blob trigger?"
    failures=$((failures + 1))
    continue
  fi

  found=0
  while read -r fn conn path; do
    [ -z "${fn:-}" ] && continue
    found=1
    container="${path%%/*}"
    if [ "$conn" = "GlobalBlobStorage" ]; then
      topic_rg="$MERIDIAN_GLOBAL_RESOURCE_GROUP"
      topic="$MERIDIAN_GLOBAL_SYSTEM_TOPIC"
    else
      topic_rg="$rg"
      topic="$boundary_topic"
    fi
    sub_name="$(printf '%s-%s' "$fn" "$region" | tr 'A-Z_' 'a-z-' | tr -cd 'a-z0-9-' | cut -c1-64)"
    log "  event subscription ${sub_name}: ${topic} (${container}) -> ${app}/${fn}"
    endpoint="https://${host}/runtime/webhooks/blobs?functionName=Host.Functions.${fn}&code=${key}"
    if ! retry 3 20 subscribe "$topic_rg" "$topic" "$sub_name" "$endpoint" "$container"; then
      log "  ERROR: could not create event subscription ${sub_name}"
      failures=$((failures + 1))
    fi
  done < <(blob_functions "$rg" "$app")
  if [ "$found" -eq 0 ]; then
    log "  warning: ${app} has no blob-triggered function yet; nothing to subscribe"
  fi
done

if [ "$failures" -gt 0 ]; then
  log "${failures} step(s) failed"
  exit 1
fi
log "done"
