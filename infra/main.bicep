// Meridian — subscription-scope entry point for `azd up`.
//
// One resource group per residency boundary (everything that holds tenant data, plus the
// regional apps, search services and model accounts of that boundary) and one global
// resource group (tenant-free: shared-document storage, the `index-sync` Service Bus
// namespace, Front Door). The boundary/region/topology/model parameters mirror `config/`
// (regions.json, topology.json, deployments.json); test/infra/drift.test.ts fails when
// they disagree.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------
// Types (the shapes of config/*.json that infra consumes)
// ---------------------------------------------------------------------------------------

@description('A region of a boundary and its search index (config/regions.json).')
type regionType = {
  @description('Azure region name, e.g. eastus.')
  name: string
  @description('Search index served by this region, meridian-<region>.')
  index: string
}

@description('A residency boundary; its first region is the primary (config/regions.json).')
type boundaryType = {
  @description('Boundary name, e.g. us or eu.')
  name: string
  @minLength(1)
  regions: regionType[]
}

@description('The index-sync topic (config/topology.json topic).')
type topicType = {
  name: string
  duplicateDetectionWindowSeconds: int
  defaultMessageTimeToLiveSeconds: int
}

@description('One subscription per search index (config/topology.json subscriptions).')
type subscriptionType = {
  name: string
  region: string
  @description('Service Bus SQL filter, e.g. targetRegion = \'us\' OR targetRegion = \'all\'.')
  filter: string
  maxDeliveryCount: int
  lockDurationSeconds: int
  deadLetteringOnMessageExpiration: bool
  deadLetteringOnFilterEvaluationExceptions: bool
}

@description('A Cosmos DB container (config/topology.json containers).')
type containerType = {
  name: string
  partitionKey: string
  @description('defaultTtl in seconds; -1 = on without a default; absent = off.')
  ttl: int?
  @description('Message-body paths excluded from indexing.')
  excludedPaths: string[]?
}

@description('A model deployment (config/deployments.json) plus what only infra needs (model version, SKU).')
type modelDeploymentType = {
  region: string
  purpose: ('chat' | 'reasoning' | 'embedding')
  @description('https://<custom subdomain>.openai.azure.com — the account infra creates in that region.')
  endpoint: string
  deployment: string
  model: string
  modelVersion: string
  @description('Deployment SKU. DataZoneStandard / Standard keep processing inside the data zone / region; never GlobalStandard (residency).')
  sku: ('Standard' | 'DataZoneStandard' | 'ProvisionedManaged' | 'DataZoneProvisionedManaged')
  @description('Capacity in thousands of tokens per minute.')
  tpm: int
}

// ---------------------------------------------------------------------------------------
// Parameters (infra/main.parameters.json)
// ---------------------------------------------------------------------------------------

@minLength(1)
@maxLength(32)
@description('azd environment name; part of every resource group name.')
param environmentName string

@description('Location of the deployment record and of the global, tenant-free resources.')
param globalLocation string

@description('Object id of the deploying user/principal (azd sets AZURE_PRINCIPAL_ID). Gets Search Service Contributor so the postdeploy hook can create the indexes. Empty to skip.')
param principalId string = ''

@description('Principal type of principalId.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@description('Expected `aud` of Entra tokens (AUTH_AUDIENCE). Not a secret.')
param authAudience string

@minLength(1)
param boundaries boundaryType[]

param topic topicType

param subscriptions subscriptionType[]

@description('Cosmos DB database name (config/topology.json database).')
param database string

@minLength(1)
param containers containerType[]

param modelDeployments modelDeploymentType[]

@description('Blob containers of each boundary storage account (tenant documents; usage events parked while Cosmos DB refuses them).')
param boundaryBlobContainers string[] = ['documents', 'usage-outbox']

@description('Blob container of the global shared-documents account.')
param sharedBlobContainer string = 'shared'

@description('Storage redundancy. ZRS keeps every copy inside the region; GZRS would replicate to the Azure paired region, which may not be one of the boundary regions.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GZRS', 'Standard_RAGZRS'])
param storageSku string = 'Standard_ZRS'

@description('Cosmos DB shared (database-level) autoscale maximum RU/s per boundary account.')
@minValue(1000)
param cosmosAutoscaleMaxThroughput int = 1000

@allowed(['basic', 'standard', 'standard2', 'standard3'])
param searchSku string = 'basic'

@minValue(1)
@maxValue(12)
param searchReplicas int = 1

@description('Flex Consumption: maximum instances per regional app.')
@minValue(40)
@maxValue(1000)
param functionMaxInstances int = 100

@description('Flex Consumption: instance memory size.')
@allowed([512, 2048, 4096])
param functionInstanceMemoryMB int = 2048

@description('Flex Consumption always-ready instances for the HTTP group (0 = scale to zero, cold starts possible).')
@minValue(0)
param functionAlwaysReadyHttp int = 0

@description('Front Door health-probe interval. Every edge location with traffic probes every origin at this interval and each probe is a function execution: see infra/DEPLOYMENT.md (cost).')
@minValue(5)
@maxValue(255)
param frontDoorProbeIntervalSeconds int = 60

@description('Log Analytics retention in days.')
@minValue(30)
param logRetentionDays int = 30

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, environmentName))
var tags = { 'azd-env-name': environmentName, application: 'meridian' }
var boundaryNames = map(boundaries, b => b.name)

// Every region, flattened, primary first inside its boundary.
var regions = flatten(map(boundaries, b => map(b.regions, (r, i) => {
  name: r.name
  index: r.index
  boundary: b.name
  primary: i == 0
})))

// azd service per region: `api` is the first boundary's primary region, `api-<region>` the others
// (azure.yaml lists the same; test/infra checks it).
var firstRegion = regions[0].name

// Model account of a region = the custom subdomain of its deployments' endpoint in config.
var openAiNames = toObject(regions, r => r.name, r => split(replace(filter(modelDeployments, d => d.region == r.name)[0].endpoint, 'https://', ''), '.')[0])
var searchNames = toObject(regions, r => r.name, r => 'srch-${token}-${r.name}')

// Per-boundary and per-region lookups, computed once (lambdas never capture loop variables).
var boundarySearchNames = toObject(boundaries, b => b.name, b => map(b.regions, r => 'srch-${token}-${r.name}'))
var boundarySearchEndpoints = toObject(boundaries, b => b.name, b => join(map(b.regions, r => '${r.name}=https://srch-${token}-${r.name}.search.windows.net'), ','))
var boundaryOpenAiNames = toObject(boundaries, b => b.name, b => map(b.regions, r => openAiNames[r.name]))
var deploymentsByRegion = toObject(regions, r => r.name, r => filter(modelDeployments, d => d.region == r.name))
var subscriptionByRegion = toObject(subscriptions, s => s.region, s => s.name)

// ---------------------------------------------------------------------------------------
// Resource groups
// ---------------------------------------------------------------------------------------

resource globalRg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}-global'
  location: globalLocation
  tags: tags
}

resource boundaryRgs 'Microsoft.Resources/resourceGroups@2024-03-01' = [for b in boundaries: {
  name: 'rg-${environmentName}-${b.name}'
  location: b.regions[0].name
  tags: union(tags, { 'meridian-boundary': b.name })
}]

// ---------------------------------------------------------------------------------------
// Global: shared documents, index-sync bus, Front Door profile + WAF
// ---------------------------------------------------------------------------------------

module global 'modules/global.bicep' = {
  name: 'meridian-global'
  scope: globalRg
  params: {
    location: globalLocation
    tags: tags
    token: token
    topic: topic
    subscriptions: subscriptions
    sharedBlobContainer: sharedBlobContainer
    storageSku: storageSku
  }
}

// ---------------------------------------------------------------------------------------
// Per boundary: storage + Event Grid system topic, Cosmos DB, Key Vault, location policy
// ---------------------------------------------------------------------------------------

module boundaryMods 'modules/boundary.bicep' = [for (b, i) in boundaries: {
  name: 'meridian-boundary-${b.name}'
  scope: boundaryRgs[i]
  params: {
    boundary: b.name
    regionNames: map(b.regions, r => r.name)
    tags: union(tags, { 'meridian-boundary': b.name })
    token: token
    blobContainers: boundaryBlobContainers
    storageSku: storageSku
    database: database
    containers: containers
    cosmosAutoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
  }
}]

// ---------------------------------------------------------------------------------------
// Per region: identity, Flex Consumption app, monitoring, AI Search, Azure OpenAI
// ---------------------------------------------------------------------------------------

module regionMods 'modules/region.bicep' = [for r in regions: {
  name: 'meridian-region-${r.name}'
  scope: boundaryRgs[indexOf(boundaryNames, r.boundary)]
  params: {
    region: r.name
    boundary: r.boundary
    indexName: r.index
    tags: union(tags, { 'meridian-boundary': r.boundary, 'meridian-region': r.name })
    serviceName: r.name == firstRegion ? 'api' : 'api-${r.name}'
    token: token
    searchName: searchNames[r.name]
    boundarySearchEndpoints: boundarySearchEndpoints[r.boundary]
    searchSku: searchSku
    searchReplicas: searchReplicas
    openAiName: openAiNames[r.name]
    modelDeployments: deploymentsByRegion[r.name]
    cosmosEndpoint: boundaryMods[indexOf(boundaryNames, r.boundary)].outputs.cosmosEndpoint
    blobEndpoint: boundaryMods[indexOf(boundaryNames, r.boundary)].outputs.blobEndpoint
    queueEndpoint: boundaryMods[indexOf(boundaryNames, r.boundary)].outputs.queueEndpoint
    keyVaultUri: boundaryMods[indexOf(boundaryNames, r.boundary)].outputs.keyVaultUri
    globalBlobEndpoint: global.outputs.blobEndpoint
    globalQueueEndpoint: global.outputs.queueEndpoint
    serviceBusFqdn: global.outputs.serviceBusFqdn
    frontDoorId: global.outputs.frontDoorId
    authAudience: authAudience
    maxInstances: functionMaxInstances
    instanceMemoryMB: functionInstanceMemoryMB
    alwaysReadyHttp: functionAlwaysReadyHttp
    logRetentionDays: logRetentionDays
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}]

// Data-plane roles inside the boundary (storage, Cosmos, Key Vault, search and models of every
// region of the same boundary — failover stays inside the boundary).
module regionRoles 'modules/region-roles.bicep' = [for (r, i) in regions: {
  name: 'meridian-roles-${r.name}'
  scope: boundaryRgs[indexOf(boundaryNames, r.boundary)]
  params: {
    principalId: regionMods[i].outputs.principalId
    storageName: boundaryMods[indexOf(boundaryNames, r.boundary)].outputs.storageName
    cosmosName: boundaryMods[indexOf(boundaryNames, r.boundary)].outputs.cosmosName
    database: database
    keyVaultName: boundaryMods[indexOf(boundaryNames, r.boundary)].outputs.keyVaultName
    ownSearchName: searchNames[r.name]
    boundarySearchNames: boundarySearchNames[r.boundary]
    boundaryOpenAiNames: boundaryOpenAiNames[r.boundary]
  }
  dependsOn: [
    regionMods
  ]
}]

// Data-plane roles on the global, tenant-free resources.
module globalRoles 'modules/global-roles.bicep' = [for (r, i) in regions: {
  name: 'meridian-global-roles-${r.name}'
  scope: globalRg
  params: {
    principalId: regionMods[i].outputs.principalId
    storageName: global.outputs.storageName
    serviceBusName: global.outputs.serviceBusName
    topicName: topic.name
    subscriptionName: subscriptionByRegion[r.name]
  }
}]

// ---------------------------------------------------------------------------------------
// Front Door: one endpoint + origin group per boundary, origins = that boundary's apps
// ---------------------------------------------------------------------------------------

module frontDoor 'modules/frontdoor.bicep' = {
  name: 'meridian-frontdoor'
  scope: globalRg
  params: {
    profileName: global.outputs.frontDoorProfileName
    wafPolicyId: global.outputs.wafPolicyId
    token: token
    boundaryNames: boundaryNames
    probeIntervalSeconds: frontDoorProbeIntervalSeconds
    origins: [for (r, i) in regions: {
      boundary: r.boundary
      region: r.name
      hostName: regionMods[i].outputs.defaultHostName
      primary: r.primary
    }]
  }
}

// ---------------------------------------------------------------------------------------
// Outputs (azd writes them to .azure/<env>/.env; infra/hooks/postdeploy.sh reads them)
// ---------------------------------------------------------------------------------------

output AZURE_LOCATION string = globalLocation
output AZURE_TENANT_ID string = tenant().tenantId
output MERIDIAN_GLOBAL_RESOURCE_GROUP string = globalRg.name
output MERIDIAN_GLOBAL_STORAGE_ACCOUNT string = global.outputs.storageName
output MERIDIAN_GLOBAL_SYSTEM_TOPIC string = global.outputs.systemTopicName
output MERIDIAN_SERVICEBUS_NAMESPACE string = global.outputs.serviceBusFqdn
output MERIDIAN_SHARED_CONTAINER string = sharedBlobContainer
output MERIDIAN_BOUNDARY_CONTAINERS string = join(boundaryBlobContainers, ' ')

// One entry per region: region|boundary|resourceGroup|app|boundarySystemTopic|searchService|index
var regionalApps = [for (r, i) in regions: join([
  r.name
  r.boundary
  boundaryRgs[indexOf(boundaryNames, r.boundary)].name
  regionMods[i].outputs.appName
  boundaryMods[indexOf(boundaryNames, r.boundary)].outputs.systemTopicName
  searchNames[r.name]
  r.index
], '|')]

@description('One entry per region, space separated: region|boundary|resourceGroup|app|boundarySystemTopic|searchService|index')
output MERIDIAN_REGIONAL_APPS string = join(regionalApps, ' ')

@description('Front Door host name per boundary, space separated: boundary=host')
output MERIDIAN_FRONT_DOOR_HOSTS string = frontDoor.outputs.hosts
