// One region (deployed into its boundary's resource group): the regional Function App on
// Flex Consumption (Node 20) serving this region, its user-assigned identity, host storage,
// monitoring, the Azure AI Search service (index meridian-<region>, created by the postdeploy
// hook) and the Azure OpenAI account with the chat / reasoning / embedding deployments.
// Data-plane roles on the boundary's stores: region-roles.bicep; on global ones: global-roles.bicep.

@description('Azure region, e.g. eastus. The app serves this region (MERIDIAN_SERVED_REGIONS).')
param region string
param boundary string
@description('Search index of this region, meridian-<region>.')
param indexName string
param tags object
@description('azd service name of this app (azure.yaml).')
param serviceName string
param token string

param searchName string
@description('region=endpoint pairs of every search service of the boundary (failover inside the boundary).')
param boundarySearchEndpoints string
param searchSku string
param searchReplicas int

@description('Custom subdomain of the Azure OpenAI account (from config/deployments.json endpoints).')
param openAiName string
@description('Deployments of this region: {purpose, deployment, model, modelVersion, sku, tpm, endpoint}.')
param modelDeployments array

param cosmosEndpoint string
param blobEndpoint string
param queueEndpoint string
param keyVaultUri string
param globalBlobEndpoint string
param globalQueueEndpoint string
@description('Fully qualified Service Bus namespace, e.g. sb-x.servicebus.windows.net.')
param serviceBusFqdn string
@description('Front Door profile id (X-Azure-FDID); the app accepts traffic only from this profile.')
param frontDoorId string
param authAudience string

param maxInstances int
param instanceMemoryMB int
param alwaysReadyHttp int
param logRetentionDays int

param deployerPrincipalId string
param deployerPrincipalType string

var appName = 'func-${token}-${region}'
var hostStorageName = take('sth${take(token, 8)}${region}', 24)
var deploymentContainer = 'app-package'
var taskHub = 'meridian${replace(region, '-', '')}'

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  searchServiceContributor: '7ca78c08-252a-4471-8644-bb5ff32d4ba0'
}

// ---------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${token}-${region}'
  location: region
  tags: tags
}

// ---------------------------------------------------------------------------------------
// Monitoring (Entra-authenticated ingestion only)
// ---------------------------------------------------------------------------------------

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${token}-${region}'
  location: region
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${token}-${region}'
  location: region
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------------------
// Host storage: Flex deployment package, AzureWebJobsStorage, Durable task hub
// ---------------------------------------------------------------------------------------

resource hostStorage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: hostStorageName
  location: region
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource hostBlob 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: hostStorage
  name: 'default'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: hostBlob
  name: deploymentContainer
}

// The Functions host (leases, timers, blob receipts) and the Durable task hub (queues,
// tables, blobs) run on this account: Blob Data Owner + Queue + Table Data Contributor.
resource hostStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]: {
  name: guid(hostStorage.id, identity.id, roleId)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

// ---------------------------------------------------------------------------------------
// Function App (Flex Consumption, Node 20)
// ---------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${token}-${region}'
  location: region
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: region
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // Only this Front Door profile (health probes included) and Event Grid (blob-trigger
      // webhooks) reach the app; the scm site (azd deploy) keeps Entra-authenticated access.
      ipSecurityRestrictionsDefaultAction: 'Deny'
      ipSecurityRestrictions: [
        {
          name: 'front-door'
          priority: 100
          action: 'Allow'
          tag: 'ServiceTag'
          ipAddress: 'AzureFrontDoor.Backend'
          headers: {
            'x-azure-fdid': [
              frontDoorId
            ]
          }
        }
        {
          name: 'event-grid'
          priority: 200
          action: 'Allow'
          tag: 'ServiceTag'
          ipAddress: 'AzureEventGrid'
        }
      ]
      scmIpSecurityRestrictionsUseMain: false
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: union({
        maximumInstanceCount: maxInstances
        instanceMemoryMB: instanceMemoryMB
      }, alwaysReadyHttp > 0 ? {
        alwaysReady: [
          {
            name: 'http'
            instanceCount: alwaysReadyHttp
          }
        ]
      } : {})
      runtime: {
        name: 'node'
        version: '20'
      }
    }
  }
  dependsOn: [
    packageContainer
  ]
}

// No publishing passwords: deployment is Entra-authenticated only.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

// App settings: endpoints and identity-based connections only — no keys, no connection
// strings with secrets, never AUTH_DEV_SECRET (a set AUTH_DEV_SECRET is a start-up error).
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: {
    // Meridian (src/config.ts)
    MERIDIAN_SERVED_REGIONS: region
    MERIDIAN_TASK_HUB: taskHub
    COSMOS_ENDPOINT: cosmosEndpoint
    SERVICEBUS_NAMESPACE: serviceBusFqdn
    SEARCH_ENDPOINT: 'https://${search.name}.search.windows.net'
    MERIDIAN_SEARCH_ENDPOINTS: boundarySearchEndpoints
    MERIDIAN_BLOB_URL: blobEndpoint
    MERIDIAN_GLOBAL_BLOB_URL: globalBlobEndpoint
    MERIDIAN_KEY_VAULT_URL: keyVaultUri
    AUTH_AUDIENCE: authAudience
    AUTH_JWKS_URL: 'https://login.microsoftonline.com/common/discovery/v2.0/keys'
    LOG_LEVEL: 'info'

    // DefaultAzureCredential picks the user-assigned identity.
    AZURE_CLIENT_ID: identity.properties.clientId

    // Functions host + Durable task hub storage (identity-based).
    AzureWebJobsStorage__accountName: hostStorage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId

    // serviceBusTopic trigger (this region's subscription of index-sync).
    ServiceBusConnection__fullyQualifiedNamespace: serviceBusFqdn
    ServiceBusConnection__credential: 'managedidentity'
    ServiceBusConnection__clientId: identity.properties.clientId

    // cosmosDB triggers (change feed: usage ledger, audit) with the leases container.
    CosmosDBConnection__accountEndpoint: cosmosEndpoint
    CosmosDBConnection__credential: 'managedidentity'
    CosmosDBConnection__clientId: identity.properties.clientId

    // Blob trigger on the boundary's tenant documents (source: EventGrid).
    BlobStorage__blobServiceUri: blobEndpoint
    BlobStorage__queueServiceUri: queueEndpoint
    BlobStorage__credential: 'managedidentity'
    BlobStorage__clientId: identity.properties.clientId

    // Blob trigger on the global shared documents (source: EventGrid).
    GlobalBlobStorage__blobServiceUri: globalBlobEndpoint
    GlobalBlobStorage__queueServiceUri: globalQueueEndpoint
    GlobalBlobStorage__credential: 'managedidentity'
    GlobalBlobStorage__clientId: identity.properties.clientId

    // Telemetry with Entra auth (the component has local auth disabled).
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  }
  dependsOn: [
    hostStorageRoles
    metricsPublisher
  ]
}

// ---------------------------------------------------------------------------------------
// Azure AI Search (index meridian-<region> is created by infra/hooks/postdeploy.sh)
// ---------------------------------------------------------------------------------------

resource search 'Microsoft.Search/searchServices@2025-05-01' = {
  name: searchName
  location: region
  tags: union(tags, {
    'meridian-index': indexName
  })
  sku: {
    name: searchSku
  }
  properties: {
    replicaCount: searchReplicas
    partitionCount: 1
    hostingMode: 'default'
    publicNetworkAccess: 'enabled'
    disableLocalAuth: true
    semanticSearch: 'disabled'
  }
}

// The deployer creates/updates the index schema in the postdeploy hook (data plane, RBAC).
resource deployerSearch 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(search.id, deployerPrincipalId, roles.searchServiceContributor)
  scope: search
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.searchServiceContributor)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// ---------------------------------------------------------------------------------------
// Azure OpenAI: chat, reasoning and embedding deployments with their TPM capacity
// ---------------------------------------------------------------------------------------

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: openAiName
  location: region
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: openAiName
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

// Deployments of one account must be created one at a time.
@batchSize(1)
resource deployments 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = [for d in modelDeployments: {
  parent: openAi
  name: d.deployment
  sku: {
    name: d.sku
    capacity: d.tpm
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: d.model
      version: d.modelVersion
    }
    versionUpgradeOption: 'OnceNewDefaultVersionAvailable'
    raiPolicyName: 'Microsoft.DefaultV2'
  }
}]

output appName string = app.name
output defaultHostName string = app.properties.defaultHostName
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
output searchName string = search.name
output openAiEndpoint string = openAi.properties.endpoint
output boundary string = boundary
