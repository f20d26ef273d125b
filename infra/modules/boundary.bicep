// One residency boundary (deployed into rg-<env>-<boundary>): the tenant-data stores.
// - storage account for tenant documents + Event Grid system topic (drives the blob triggers)
// - Cosmos DB account: single write region (the primary), automatic failover only to the
//   boundary's other regions, Session consistency, database + every container of API.md
// - Key Vault (RBAC only)
// - Azure Policy: the resource group may hold resources only in the boundary's regions

@description('Boundary name, e.g. us.')
param boundary string

@description('Regions of the boundary, primary first.')
@minLength(1)
param regionNames string[]

param tags object
param token string
param blobContainers string[]
param storageSku string

@description('Cosmos DB database name.')
param database string

@description('Containers of config/topology.json: {name, partitionKey, ttl?, excludedPaths?}.')
param containers array

param cosmosAutoscaleMaxThroughput int

var primary = regionNames[0]
var storageName = take('st${token}${boundary}', 24)
var cosmosName = take('cosmos-${token}-${boundary}', 44)
var keyVaultName = take('kv${token}${boundary}', 24)

// Built-in policy definition "Allowed locations".
var allowedLocationsPolicyId = '/providers/Microsoft.Authorization/policyDefinitions/e56962a6-4747-49cd-b67b-bf8b01975c4c'

// ---------------------------------------------------------------------------------------
// Storage (tenant documents)
// ---------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: storageName
  location: primary
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource blobContainersRes 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = [for c in blobContainers: {
  parent: blobService
  name: c
  properties: {
    publicAccess: 'None'
  }
}]

// The blob triggers (source: 'EventGrid') of every regional app of this boundary subscribe to
// this topic; the subscriptions are created by infra/hooks/postdeploy.sh once the functions
// exist (the webhook needs the function's blobs_extension key).
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-${storageName}'
  location: primary
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// ---------------------------------------------------------------------------------------
// Cosmos DB
// ---------------------------------------------------------------------------------------

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: cosmosName
  location: primary
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    // Single write region (the primary); read replicas and failover targets are the other
    // regions of this boundary only — never a region of another boundary.
    locations: [for (r, i) in regionNames: {
      locationName: r
      failoverPriority: i
      isZoneRedundant: false
    }]
    enableAutomaticFailover: true
    enableMultipleWriteLocations: false
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    backupPolicy: {
      type: 'Continuous'
      continuousModeProperties: {
        tier: 'Continuous7Days'
      }
    }
  }
}

resource cosmosDb 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: cosmos
  name: database
  properties: {
    resource: {
      id: database
    }
    options: {
      autoscaleSettings: {
        maxThroughput: cosmosAutoscaleMaxThroughput
      }
    }
  }
}

resource cosmosContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [for c in containers: {
  parent: cosmosDb
  name: c.name
  properties: {
    // defaultTtl only when the container has one (-1 = on, per-item ttl); absent = TTL off.
    resource: union({
      id: c.name
      partitionKey: {
        paths: [
          c.partitionKey
        ]
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          {
            path: '/*'
          }
        ]
        // Message bodies (answers, transcripts, chat messages) are never queried: not indexed.
        excludedPaths: concat([
          {
            path: '/"_etag"/?'
          }
        ], map(c.?excludedPaths ?? [], p => {
          path: p
        }))
      }
    }, c.?ttl == null ? {} : {
      defaultTtl: c.ttl
    })
  }
}]

// ---------------------------------------------------------------------------------------
// Key Vault (RBAC authorization; apps get Key Vault Secrets User, no access policies)
// ---------------------------------------------------------------------------------------

resource keyVault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: keyVaultName
  location: primary
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

// ---------------------------------------------------------------------------------------
// Residency guard rail: only the boundary's regions in this resource group
// ---------------------------------------------------------------------------------------

resource allowedLocations 'Microsoft.Authorization/policyAssignments@2024-04-01' = {
  name: 'meridian-allowed-locations-${boundary}'
  properties: {
    displayName: 'Meridian ${boundary}: allowed locations (${join(regionNames, ', ')})'
    description: 'Residency boundary ${boundary}: resources of this resource group may only be created in the boundary regions.'
    policyDefinitionId: allowedLocationsPolicyId
    enforcementMode: 'Default'
    parameters: {
      listOfAllowedLocations: {
        value: regionNames
      }
    }
    nonComplianceMessages: [
      {
        message: 'Residency boundary ${boundary} allows only ${join(regionNames, ', ')}.'
      }
    ]
  }
}

output storageName string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output systemTopicName string = systemTopic.name
output cosmosName string = cosmos.name
output cosmosEndpoint string = cosmos.properties.documentEndpoint
output keyVaultName string = keyVault.name
output keyVaultUri string = keyVault.properties.vaultUri
output containerNames array = [for (c, i) in containers: cosmosContainers[i].name]
