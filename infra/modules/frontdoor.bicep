// Front Door (Premium) endpoints, origin groups, origins and routes (deployed into
// rg-<env>-global once the regional apps exist). Routing is by host name: one endpoint and
// one origin group per boundary. A tenant's clients use their boundary's host name —
// residency is per tenant, not per client country, so no geo routing.
// Inside a boundary: priority 1 = primary region, 2 = the others (failover only inside it).

param profileName string
param wafPolicyId string
param token string
@description('Boundary names, in config order.')
param boundaryNames string[]
@description('One per regional app: {boundary, region, hostName, primary}.')
param origins array
@description('Seconds between health probes from each Front Door edge location (every probe is a function execution).')
@minValue(5)
@maxValue(255)
param probeIntervalSeconds int = 60

resource profile 'Microsoft.Cdn/profiles@2024-09-01' existing = {
  name: profileName
}

resource endpoints 'Microsoft.Cdn/profiles/afdEndpoints@2024-09-01' = [for b in boundaryNames: {
  parent: profile
  name: 'meridian-${b}-${take(token, 8)}'
  location: 'global'
  properties: {
    enabledState: 'Enabled'
  }
}]

resource originGroups 'Microsoft.Cdn/profiles/originGroups@2024-09-01' = [for b in boundaryNames: {
  parent: profile
  name: 'og-${b}'
  properties: {
    sessionAffinityState: 'Disabled'
    healthProbeSettings: {
      probePath: '/api/health'
      probeProtocol: 'Https'
      probeRequestType: 'GET'
      probeIntervalInSeconds: probeIntervalSeconds
    }
    loadBalancingSettings: {
      sampleSize: 4
      successfulSamplesRequired: 3
      additionalLatencyInMilliseconds: 50
    }
  }
}]

resource originsRes 'Microsoft.Cdn/profiles/originGroups/origins@2024-09-01' = [for o in origins: {
  parent: originGroups[indexOf(boundaryNames, o.boundary)]
  name: 'app-${o.region}'
  properties: {
    hostName: o.hostName
    originHostHeader: o.hostName
    httpPort: 80
    httpsPort: 443
    priority: o.primary ? 1 : 2
    weight: 1000
    enabledState: 'Enabled'
    enforceCertificateNameCheck: true
  }
}]

resource routes 'Microsoft.Cdn/profiles/afdEndpoints/routes@2024-09-01' = [for (b, i) in boundaryNames: {
  parent: endpoints[i]
  name: 'route-${b}'
  properties: {
    originGroup: {
      id: originGroups[i].id
    }
    supportedProtocols: [
      'Http'
      'Https'
    ]
    httpsRedirect: 'Enabled'
    forwardingProtocol: 'HttpsOnly'
    patternsToMatch: [
      '/*'
    ]
    linkToDefaultDomain: 'Enabled'
    enabledState: 'Enabled'
  }
  dependsOn: [
    originsRes
  ]
}]

resource securityPolicy 'Microsoft.Cdn/profiles/securityPolicies@2024-09-01' = {
  parent: profile
  name: 'waf'
  properties: {
    parameters: {
      type: 'WebApplicationFirewall'
      wafPolicy: {
        id: wafPolicyId
      }
      associations: [
        {
          domains: [for (b, i) in boundaryNames: {
            id: endpoints[i].id
          }]
          patternsToMatch: [
            '/*'
          ]
        }
      ]
    }
  }
}

var hostPairs = [for (b, i) in boundaryNames: '${b}=${endpoints[i].properties.hostName}']

@description('boundary=host pairs, space separated.')
output hosts string = join(hostPairs, ' ')
