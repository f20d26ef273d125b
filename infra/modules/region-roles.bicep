// Least-privilege data-plane roles of one regional app identity on its boundary's resources
// (deployed into the boundary's resource group). No keys are ever listed or handed out.

@description('Object id of the regional app\'s user-assigned identity.')
param principalId string
@description('The boundary storage account (tenant documents).')
param storageName string
param cosmosName string
@description('Cosmos DB database the app may use (role scoped to it).')
param database string
param keyVaultName string
@description('This region\'s search service (index read/write).')
param ownSearchName string
@description('Every search service of the boundary, own included (read for failover).')
param boundarySearchNames string[]
@description('Every Azure OpenAI account of the boundary, own included (model failover stays inside the boundary).')
param boundaryOpenAiNames string[]

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  searchIndexDataContributor: '8ebe5a00-799e-43f5-93ac-243d3dce84a7'
  searchIndexDataReader: '1407120a-92aa-4202-b7e9-c0e197c71c8f'
  cognitiveServicesOpenAiUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}
// Cosmos DB Built-in Data Contributor (data plane, Cosmos RBAC — not an Azure RBAC role).
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageName
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosName
}

resource keyVault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource ownSearch 'Microsoft.Search/searchServices@2025-05-01' existing = {
  name: ownSearchName
}

resource boundarySearch 'Microsoft.Search/searchServices@2025-05-01' existing = [for s in boundarySearchNames: {
  name: s
}]

resource boundaryOpenAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = [for a in boundaryOpenAiNames: {
  name: a
}]

// Upload/replace/delete tenant documents and run the blob trigger. The Functions blob
// trigger documents Blob Data Owner + Queue Data Contributor (poison-blob queue) for its connection.
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
]: {
  name: guid(storage.id, principalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

// Read/write items and the change feed (leases) in database `meridian` only; with
// disableLocalAuth + disableKeyBasedMetadataWriteAccess it cannot create or drop containers.
resource cosmosRole 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmos
  name: guid(cosmos.id, principalId, cosmosDataContributor, database)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributor}'
    principalId: principalId
    scope: '${cosmos.id}/dbs/${database}'
  }
}

resource keyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Own index: the indexer upserts/deletes chunks; no index-schema rights (infra owns the schema).
resource ownSearchRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(ownSearch.id, principalId, roles.searchIndexDataContributor)
  scope: ownSearch
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.searchIndexDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Other regions' indexes of the same boundary: read only (chat/search failover).
resource failoverSearchRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (s, i) in boundarySearchNames: if (s != ownSearchName) {
  name: guid(boundarySearch[i].id, principalId, roles.searchIndexDataReader)
  scope: boundarySearch[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.searchIndexDataReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

// Call chat/reasoning/embedding deployments of every region of the boundary (inference only).
resource openAiRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (a, i) in boundaryOpenAiNames: {
  name: guid(boundaryOpenAi[i].id, principalId, roles.cognitiveServicesOpenAiUser)
  scope: boundaryOpenAi[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAiUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]
