// Global, tenant-free resources (deployed into rg-<env>-global):
// - shared-documents storage account + Event Grid system topic (every regional app's
//   shared-container blob trigger subscribes to it; subscriptions made by the postdeploy hook)
// - Service Bus namespace with topic index-sync and one SQL-filtered subscription per index
// - Front Door Premium profile + WAF policy (endpoints/origins in frontdoor.bicep, once the apps exist)

param location string
param tags object
param token string

@description('config/topology.json topic: {name, duplicateDetectionWindowSeconds, defaultMessageTimeToLiveSeconds}.')
param topic object

@description('config/topology.json subscriptions: {name, region, filter, maxDeliveryCount, lockDurationSeconds, deadLettering...}.')
param subscriptions array

param sharedBlobContainer string
param storageSku string

var storageName = take('st${token}global', 24)

// ---------------------------------------------------------------------------------------
// Shared documents (platform operators only; no tenant data)
// ---------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: storageName
  location: location
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
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource sharedContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: sharedBlobContainer
  properties: {
    publicAccess: 'None'
  }
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-${storageName}'
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// ---------------------------------------------------------------------------------------
// Service Bus: topic index-sync, one subscription per search index
// ---------------------------------------------------------------------------------------

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb-${token}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource indexSync 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: serviceBus
  name: topic.name
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT${topic.duplicateDetectionWindowSeconds}S'
    defaultMessageTimeToLive: 'PT${topic.defaultMessageTimeToLiveSeconds}S'
    enableBatchedOperations: true
    supportOrdering: false
  }
}

resource indexSubscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = [for s in subscriptions: {
  parent: indexSync
  name: s.name
  properties: {
    maxDeliveryCount: s.maxDeliveryCount
    lockDuration: 'PT${s.lockDurationSeconds}S'
    defaultMessageTimeToLive: 'PT${topic.defaultMessageTimeToLiveSeconds}S'
    deadLetteringOnMessageExpiration: s.deadLetteringOnMessageExpiration
    deadLetteringOnFilterEvaluationExceptions: s.deadLetteringOnFilterEvaluationExceptions
    enableBatchedOperations: true
  }
}]

// Replaces the subscription's `$Default` TrueFilter rule: a second rule would be OR-ed with
// it and the subscription would receive every boundary's messages.
resource indexFilters 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2024-01-01' = [for (s, i) in subscriptions: {
  parent: indexSubscriptions[i]
  name: '$Default'
  properties: {
    filterType: 'SqlFilter'
    sqlFilter: {
      sqlExpression: s.filter
    }
  }
}]

// ---------------------------------------------------------------------------------------
// Front Door Premium profile + WAF policy
// ---------------------------------------------------------------------------------------

resource frontDoor 'Microsoft.Cdn/profiles@2024-09-01' = {
  name: 'afd-${token}'
  location: 'global'
  tags: tags
  sku: {
    name: 'Premium_AzureFrontDoor'
  }
  properties: {
    originResponseTimeoutSeconds: 120
  }
}

resource waf 'Microsoft.Network/FrontDoorWebApplicationFirewallPolicies@2024-02-01' = {
  name: 'waf${token}'
  location: 'global'
  tags: tags
  sku: {
    name: 'Premium_AzureFrontDoor'
  }
  properties: {
    policySettings: {
      enabledState: 'Enabled'
      mode: 'Prevention'
      requestBodyCheck: 'Enabled'
      customBlockResponseStatusCode: 403
    }
    customRules: {
      rules: [
        {
          // Coarse per-client-IP flood guard in front of the app's per-user rate limit.
          name: 'RateLimitPerIp'
          priority: 100
          enabledState: 'Enabled'
          ruleType: 'RateLimitRule'
          rateLimitDurationInMinutes: 1
          rateLimitThreshold: 2000
          action: 'Block'
          matchConditions: [
            {
              matchVariable: 'RequestUri'
              operator: 'RegEx'
              negateCondition: false
              matchValue: [
                '.*'
              ]
            }
          ]
        }
      ]
    }
    managedRules: {
      managedRuleSets: [
        {
          ruleSetType: 'Microsoft_DefaultRuleSet'
          ruleSetVersion: '2.1'
          ruleSetAction: 'Block'
        }
        {
          ruleSetType: 'Microsoft_BotManagerRuleSet'
          ruleSetVersion: '1.1'
        }
      ]
    }
  }
}

output storageName string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output systemTopicName string = systemTopic.name
output serviceBusName string = serviceBus.name
// serviceBusEndpoint is https://<name>.servicebus.windows.net:443/ — keep the host only.
output serviceBusFqdn string = split(replace(serviceBus.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
output frontDoorProfileName string = frontDoor.name
output frontDoorId string = frontDoor.properties.frontDoorId
output wafPolicyId string = waf.id
