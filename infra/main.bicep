// Entry point for `azd provision` / `az deployment sub create`.
//
// Subscription scope because the deployment touches two resource groups: the app's own
// (created here) and the existing AKS cluster's (only a role assignment goes there, so the
// identity can scale that one cluster and nothing else in its subscription).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds resource names so several environments can share a subscription.')
param environmentName string

@minLength(1)
@description('Region of the app. Must offer the Flex Consumption plan; the cluster may live elsewhere.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group for the app. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@minLength(1)
@description('Name of the existing AKS cluster whose node pools the app scales.')
param aksClusterName string

@minLength(1)
@description('Resource group of that cluster.')
param aksResourceGroupName string

@description('Subscription of that cluster. Empty: the deployment subscription.')
param aksSubscriptionId string = ''

@allowed([
  'custom'
  'builtin'
])
@description('custom: a role with only the cluster read and pool read/write actions (default). builtin: Azure Kubernetes Service Contributor Role.')
param aksRoleMode string = 'custom'

// A string rather than an array so azd can fill it from one environment variable.
@description('Comma-separated object ids of service principals allowed to enqueue intents (Storage Queue Data Message Sender on scale-intents only).')
param producerPrincipalIds string = ''

@description('NCRONTAB schedule of the timer trigger (six fields, seconds first).')
param timerSchedule string = '0 */5 * * * *'

@description('container/blob in the app storage account holding the schedule (read on every run, so it changes without a redeploy). Empty: the schedule.toml deployed with the code.')
param scheduleBlob string = ''

@description('Comma-separated resourceGroup/cluster entries intents may target. Empty: only the cluster above. Clusters other than that one also need their own role assignment.')
param allowedClusters string = ''

@minValue(1)
@description('Largest node count or maxCount an intent may ask for.')
param maxNodeCount int = 100

@minValue(1)
@description('Attempts for an intent that meets transient failures before it is parked in scale-intents-poison.')
param maxAttempts int = 8

@minValue(1)
@description('First retry delay in seconds; doubles per attempt.')
param retryBaseSeconds int = 15

@minValue(1)
@description('Longest delay between two attempts, in seconds.')
param retryMaxSeconds int = 900

@allowed([
  512
  2048
  4096
])
@description('Memory per Flex Consumption instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
// Scaling one cluster gains nothing from many parallel instances: ARM serialises writes to
// a pool and throttles per subscription, so the default stays small.
@description('Upper bound on Flex Consumption instances.')
param maximumInstanceCount int = 10

var tags = {
  'azd-env-name': environmentName
}
// Deterministic, so re-deploys update the same resources instead of creating new ones.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var clusterSubscriptionId = empty(aksSubscriptionId) ? subscription().subscriptionId : aksSubscriptionId
var producerIds = empty(trim(producerPrincipalIds)) ? [] : split(replace(producerPrincipalIds, ' ', ''), ',')
var functionAppName = 'func-scaler-${resourceToken}'
// Flex Consumption reads its package from this container; one container per app.
var deploymentContainerName = 'app-package-${take(resourceToken, 12)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-scaler-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stscaler${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-scaler-${resourceToken}'
    applicationInsightsName: 'appi-scaler-${resourceToken}'
    location: location
    tags: tags
  }
}

module appRbac 'app/rbac.bicep' = {
  name: 'app-rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module producers 'app/producers.bicep' = {
  name: 'producers'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    intentsQueueName: storage.outputs.intentsQueueName
    principalIds: producerIds
  }
}

// Only this module touches the cluster's resource group, and only with a role assignment.
module clusterAccess 'aks/cluster-access.bicep' = {
  name: 'cluster-access-${resourceToken}'
  scope: resourceGroup(clusterSubscriptionId, aksResourceGroupName)
  params: {
    clusterName: aksClusterName
    principalId: identity.outputs.principalId
    roleMode: aksRoleMode
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-scaler-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    clusterSubscriptionId: clusterSubscriptionId
    clusterResourceGroupName: aksResourceGroupName
    clusterName: aksClusterName
    allowedClusters: allowedClusters
    timerSchedule: timerSchedule
    scheduleBlob: scheduleBlob
    maxNodeCount: maxNodeCount
    maxAttempts: maxAttempts
    retryBaseSeconds: retryBaseSeconds
    retryMaxSeconds: retryMaxSeconds
  }
  // The host starts as soon as the site exists; without its data roles it would fail its
  // first storage calls and back off, and without the cluster role the first intents would
  // be refused.
  dependsOn: [
    appRbac
    clusterAccess
  ]
}

// azd stores every output in the environment (.azure/<env>/.env). The identity's ids are not
// called AZURE_CLIENT_ID: in CI that variable names the deploying principal.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SCALER_IDENTITY_CLIENT_ID string = identity.outputs.clientId
// Needed to remove the role assignment on the cluster, which lives outside the app's group.
output SCALER_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output SCALER_INTENTS_QUEUE_URL string = storage.outputs.intentsQueueUrl
output SCALER_AKS_ROLE_DEFINITION_ID string = clusterAccess.outputs.roleDefinitionId
