// The Function App on a Flex Consumption plan: Linux, Python 3.11, scale to zero. It runs
// as the user-assigned identity only, for every dependency, so no key or connection string
// with a secret exists anywhere in its configuration.
param name string
param planName string
param location string
param tags object

param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string

param instanceMemoryMB int
param maximumInstanceCount int

// The default cluster and the policy knobs the app reads (scaler/settings.py).
param clusterSubscriptionId string
param clusterResourceGroupName string
param clusterName string
param allowedClusters string
param timerSchedule string
param scheduleBlob string
param maxNodeCount int
param maxAttempts int
param retryBaseSeconds int
param retryMaxSeconds int
param maxLease string
param maxClockSkew string
param coalesceSeconds int
param coalesceMaxSeconds int
param operationSeconds int
param excludeTag string
param profileTag string
// The Event Grid topic's endpoint; empty: no events.
param eventGridEndpoint string = ''
param noticeMinutes int = 15
param fleetListMinClusters int = 3

// Private network mode: outbound traffic (storage over its private endpoints) leaves through
// this subnet, which must be delegated to Microsoft.App/environments. Empty: no VNet integration.
param virtualNetworkSubnetId string = ''

// environment() follows the cloud the deployment runs in (public, sovereign), so the app
// talks to the matching Resource Manager; the app expects no trailing slash.
var resourceManager = environment().resourceManager
var armEndpoint = endsWith(resourceManager, '/') ? substring(resourceManager, 0, length(resourceManager) - 1) : resourceManager

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions; the app is stateless and intents wait in the queue during an outage.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // Linux
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: No HTTP triggers; the public endpoint is kept for code deployment (azd / one-deploy from CI), which needs an Entra token.
  // checkov:skip=CKV_AZURE_17: No HTTP-triggered functions to protect; Azure's own client-certificate policy also excludes function apps.
  // checkov:skip=CKV_AZURE_212: Worker count is an App Service plan setting; Flex Consumption scales instances per trigger, and the queue keeps intents during restarts.
  // checkov:skip=CKV_AZURE_78: Flex Consumption rejects siteConfig.ftpsState; FTP stays off through the ftp basicPublishingCredentialsPolicies (allow false) below.
  // checkov:skip=CKV_AZURE_213: Health check probes an HTTP path; this app serves no HTTP and Flex Consumption replaces failing instances itself.
  name: name
  location: location
  // azd finds the app to deploy `scaler` to by this tag.
  tags: union(tags, {
    'azd-service-name': 'scaler'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    // No siteConfig.ftpsState: Flex Consumption rejects it ("Site.SiteConfig.FtpsState ... for
    // Flex Consumption sites is invalid") where that platform check has rolled out. FTP is off
    // through the ftp publishing-credentials policy below instead.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      // Every setting the app reads must be here: tests/infra/test_bicep_structure.py
      // compares these names with scaler.settings.SETTINGS.
      appSettings: [
        // Identity-based host storage: no AzureWebJobsStorage connection string exists.
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        // The connection string only says where telemetry goes; with local auth disabled on
        // the component, the authentication string makes the SDK send the identity's token.
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // OpenTelemetry (host.json telemetryMode): the Python worker tells the host that the
        // app exports its own logs, which scaler/telemetry.py sets up with the identity above.
        {
          name: 'PYTHON_ENABLE_OPENTELEMETRY'
          value: 'true'
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'AZURE_SUBSCRIPTION_ID'
          value: clusterSubscriptionId
        }
        {
          name: 'SCALER_RESOURCE_GROUP'
          value: clusterResourceGroupName
        }
        {
          name: 'SCALER_CLUSTER'
          value: clusterName
        }
        {
          name: 'SCALER_ALLOWED_CLUSTERS'
          value: allowedClusters
        }
        {
          name: 'SCALER_MAX_COUNT'
          value: string(maxNodeCount)
        }
        {
          name: 'SCALER_ARM_ENDPOINT'
          value: armEndpoint
        }
        {
          name: 'SCALER_ARM_SCOPE'
          value: '${armEndpoint}/.default'
        }
        {
          name: 'SCALER_MAX_ATTEMPTS'
          value: string(maxAttempts)
        }
        {
          name: 'SCALER_RETRY_BASE_SECONDS'
          value: string(retryBaseSeconds)
        }
        {
          name: 'SCALER_RETRY_MAX_SECONDS'
          value: string(retryMaxSeconds)
        }
        {
          name: 'SCALER_MAX_LEASE'
          value: maxLease
        }
        {
          name: 'SCALER_MAX_CLOCK_SKEW'
          value: maxClockSkew
        }
        {
          name: 'SCALER_COALESCE_SECONDS'
          value: string(coalesceSeconds)
        }
        {
          name: 'SCALER_COALESCE_MAX_SECONDS'
          value: string(coalesceMaxSeconds)
        }
        {
          name: 'SCALER_OPERATION_SECONDS'
          value: string(operationSeconds)
        }
        {
          name: 'SCALER_EXCLUDE_TAG'
          value: excludeTag
        }
        {
          name: 'SCALER_PROFILE_TAG'
          value: profileTag
        }
        {
          name: 'SCALER_EVENTGRID_ENDPOINT'
          value: eventGridEndpoint
        }
        {
          name: 'SCALER_NOTICE_MINUTES'
          value: string(noticeMinutes)
        }
        {
          name: 'SCALER_FLEET_LIST_MIN_CLUSTERS'
          value: string(fleetListMinClusters)
        }
        {
          name: 'SCALER_TIMER_SCHEDULE'
          value: timerSchedule
        }
        {
          // Deployed beside function_app.py; SCALER_SCHEDULE_BLOB overrides it when set.
          name: 'SCALER_SCHEDULE_FILE'
          value: 'schedule.toml'
        }
        {
          name: 'SCALER_SCHEDULE_BLOB'
          value: scheduleBlob
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

}

// Publishing with a user name and password (FTP, Kudu basic auth) is off: azd and the
// GitHub workflow deploy with Entra tokens.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
