// Entry point for `azd provision` / `az deployment sub create`.
//
// Subscription scope because the deployment touches several resource groups: the app's own
// (created here) and those of the existing AKS clusters (and of their subnets, when pools use a
// customer VNet); only role assignments go there, so the identity can scale those clusters and
// nothing else. The role it assigns is created beforehand by infra/roles/scaler-role.bicep
// (azd's preprovision hook, infra/hooks/scaler_hooks.py), never in this deployment.
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

// More clusters, in any subscription and resource group of the tenant. azd fills an array
// parameter from a JSON value: azd env set SCALER_AKS_CLUSTER_IDS '["/subscriptions/…"]'.
@description('Resource ids of further clusters the app may scale; the cluster above is always included. Each gets the scaler role, and together they make SCALER_ALLOWED_CLUSTERS.')
param aksClusterIds array = []

@description('Resource ids of the subnets the clusters\' pools use (vnetSubnetID and podSubnetID) when they are in a customer VNet: the app needs join on them to write those pools.')
param aksSubnetIds array = []

// There is no built-in mode any more: no built-in role is limited to agent pools (the
// Azure Kubernetes Service Contributor Role is managedClusters/*: admin credentials, run
// command, delete). A platform team may create the custom role itself and pass its id here.
@description('Id of the scaler role when a platform team created it (infra/roles/scaler-role.bicep). Empty: the role the preprovision hook deployed for this environment.')
param aksPlatformRoleDefinitionId string = ''

// A string rather than an array so that the long-standing variable keeps working; spaces,
// empty entries (a trailing comma) and duplicates are dropped.
@description('Comma-separated object ids of principals (service principals, managed identities, users or groups) allowed to enqueue intents (Storage Queue Data Message Sender on scale-intents only).')
param producerPrincipalIds string = ''

@description('NCRONTAB schedule of the timer trigger (six fields, seconds first).')
param timerSchedule string = '0 */5 * * * *'

@description('container/blob in the app storage account holding the schedule (read on every run, so it changes without a redeploy); the container is created. Empty: the schedule.toml deployed with the code.')
param scheduleBlob string = ''

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

@description('Longest lease an intent may ask for (ISO-8601 duration).')
param maxLease string = 'P1D'

@description('How far in the future an intent\'s issued_at may be (ISO-8601 duration).')
param maxClockSkew string = 'PT5M'

@minValue(0)
@description('Quiet period in seconds before a cluster is reconciled after an intent.')
param coalesceSeconds int = 2

@minValue(0)
@description('Longest an intent waits for a burst to end, in seconds.')
param coalesceMaxSeconds int = 30

@minValue(1)
@description('How long a started pool operation is given before it is looked at again, in seconds.')
param operationSeconds int = 120

@description('Agent-pool tag (name=value) that keeps the scaler off a pool.')
param excludeTag string = 'scaler=off'

@description('Agent-pool tag whose value picks a profile of the schedule file.')
param profileTag string = 'scaler-schedule'

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

// Private network mode (off by default). The platform team provides the VNet, both subnets and,
// unless a policy manages DNS records, the privatelink DNS zones (docs/deploying.md).
@description('true: the app joins appSubnetId, storage gets private endpoints and public network access off.')
param privateNetwork bool = false

@description('Subnet delegated to Microsoft.App/environments for the Function App\'s VNet integration (private network mode).')
param appSubnetId string = ''

@description('Subnet for the storage private endpoints (private network mode).')
param privateEndpointSubnetId string = ''

@description('Resource group id of the privatelink.{blob,queue,table} private DNS zones. Empty: records are left to the platform.')
param privateDnsZoneResourceGroupId string = ''

// Events (off by default): outcomes, pool changes and upcoming scheduled capacity cuts as
// CloudEvents to an Event Grid topic (docs/deploying.md says how to subscribe).
@description('true: create an Event Grid topic (local auth off) and publish CloudEvents to it.')
param eventsEnabled bool = false

@minValue(0)
@maxValue(1440)
@description('Minutes ahead a scheduled stop, scale-down or lower autoscaler bound is announced (0: never).')
param noticeMinutes int = 15

@minValue(0)
@description('A timer tick reads a subscription\'s pools with one paged LIST managedClusters when it reconciles at least this many clusters there (0: never list).')
param fleetListMinClusters int = 3

// Tag targets (off by default): schedule entries that select clusters by tag are resolved through
// Azure Resource Graph, which only returns what the app's identity can read. Reader on each
// subscription listed here; a management group cannot be targeted from this subscription-scoped
// deployment (an ARM limitation), see docs/fleet-infra.md for the one command instead.
@description('Subscription ids (or /subscriptions/<id>) where schedules select clusters by tag: the app identity gets Reader there. Empty: no Reader anywhere.')
param tagReaderSubscriptionIds array = []

// Dashboard and alerts (docs in the README, "Dashboard and alerts").
@description('E-mail address the alerts (poison queue, rejected schedule, repeated pool failures) are sent to. Empty: the alert rules are still deployed and show in Azure Monitor, with no action group.')
param alertEmail string = ''

var tags = {
  'azd-env-name': environmentName
}
// Deterministic, so re-deploys update the same resources instead of creating new ones.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var clusterSubscriptionId = empty(aksSubscriptionId) ? subscription().subscriptionId : aksSubscriptionId
// Spaces and empty entries (a trailing, leading or doubled comma) are dropped before the split,
// union() drops duplicates, and ids compare in lower case. String functions and for-expressions
// rather than filter()/map(): checkov's Bicep parser does not read lambdas.
var producerText = replace(replace(replace(replace(producerPrincipalIds, ' ', ''), ',,', ','), ',,', ','), ',,', ',')
var producerTrimmedStart = startsWith(producerText, ',') ? substring(producerText, 1) : producerText
var producerTrimmed = endsWith(producerTrimmedStart, ',') ? substring(producerTrimmedStart, 0, length(producerTrimmedStart) - 1) : producerTrimmedStart
var producerIdList = [for id in (empty(producerTrimmed) ? [] : split(producerTrimmed, ',')): toLower(id)]
var producerIds = union(producerIdList, [])
var defaultClusterId = '/subscriptions/${clusterSubscriptionId}/resourceGroups/${aksResourceGroupName}/providers/Microsoft.ContainerService/managedClusters/${aksClusterName}'
var extraClusterIds = [for id in aksClusterIds: toLower(trim(id))]
var clusterIds = union([toLower(defaultClusterId)], extraClusterIds)
var subnetIdList = [for id in aksSubnetIds: toLower(trim(id))]
var subnetIds = union(subnetIdList, [])
var tagReaderSubscriptionList = [for id in tagReaderSubscriptionIds: last(split(toLower(trim(id)), '/'))]
var tagReaderSubscriptions = union(tagReaderSubscriptionList, [])
var tagReaderScopes = [for id in tagReaderSubscriptions: '/subscriptions/${id}']
// The same name infra/roles/scaler-role.bicep gives the role it creates for this environment.
var roleDefinitionGuid = empty(aksPlatformRoleDefinitionId) ? guid(subscription().id, environmentName, 'aks-pool-scaler') : last(split(aksPlatformRoleDefinitionId, '/'))
// Intents may target exactly the clusters the identity holds the role on.
var allowedClusterEntries = [for id in clusterIds: '${split(id, '/')[2]}/${split(id, '/')[4]}/${split(id, '/')[8]}']
var allowedClusters = join(allowedClusterEntries, ',')
var scheduleContainerName = empty(scheduleBlob) ? '' : split(scheduleBlob, '/')[0]
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
    scheduleContainerName: scheduleContainerName
    privateNetwork: privateNetwork
    privateEndpointSubnetId: privateEndpointSubnetId
    privateDnsZoneResourceGroupId: privateDnsZoneResourceGroupId
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

// Only these modules touch the clusters' (and subnets') resource groups, and only with a role
// assignment each. A cluster or subnet dropped from the lists keeps its assignment until the
// preprovision hook removes it (incremental deployments never delete).
module clusterAccess 'aks/cluster-access.bicep' = [for clusterId in clusterIds: {
  name: 'cluster-access-${uniqueString(clusterId, resourceToken)}'
  scope: resourceGroup(split(clusterId, '/')[2], split(clusterId, '/')[4])
  params: {
    clusterName: split(clusterId, '/')[8]
    principalId: identity.outputs.principalId
    roleDefinitionGuid: roleDefinitionGuid
  }
}]

module subnetAccess 'aks/subnet-access.bicep' = [for subnetId in subnetIds: {
  name: 'subnet-access-${uniqueString(subnetId, resourceToken)}'
  scope: resourceGroup(split(subnetId, '/')[2], split(subnetId, '/')[4])
  params: {
    virtualNetworkName: split(subnetId, '/')[8]
    subnetName: split(subnetId, '/')[10]
    principalId: identity.outputs.principalId
    roleDefinitionGuid: roleDefinitionGuid
  }
}]

// Reader where tag targets are looked up, and nowhere else (off while the list is empty).
// The preprovision hook refuses entries that are not subscription ids before this runs.
module tagReaders 'aks/subscription-reader.bicep' = [for subscriptionId in tagReaderSubscriptions: {
  name: 'tag-reader-${uniqueString(subscriptionId, resourceToken)}'
  scope: subscription(subscriptionId)
  params: {
    principalId: identity.outputs.principalId
  }
}]

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    nameSuffix: resourceToken
    alertEmail: alertEmail
  }
}

module events 'app/events.bicep' = if (eventsEnabled) {
  name: 'events'
  scope: rg
  params: {
    name: 'evgt-scaler-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
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
    maxLease: maxLease
    maxClockSkew: maxClockSkew
    coalesceSeconds: coalesceSeconds
    coalesceMaxSeconds: coalesceMaxSeconds
    operationSeconds: operationSeconds
    excludeTag: excludeTag
    profileTag: profileTag
    eventGridEndpoint: eventsEnabled ? events.outputs.endpoint : ''
    noticeMinutes: noticeMinutes
    fleetListMinClusters: fleetListMinClusters
    virtualNetworkSubnetId: privateNetwork ? appSubnetId : ''
  }
  // The host starts as soon as the site exists; without its data roles it would fail its
  // first storage calls and back off, and without the cluster role the first intents would
  // be refused.
  dependsOn: [
    appRbac
    clusterAccess
    subnetAccess
    tagReaders
    events
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
// The role assigned on the clusters and subnets, and where: azd's predown hook removes exactly
// these assignments (and, when this environment created it, the role) before azd down.
output SCALER_AKS_ROLE_DEFINITION_ID string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
output SCALER_AKS_ACCESS_SCOPES string = join(concat(clusterIds, subnetIds), ',')
output SCALER_EVENTGRID_TOPIC_ID string = eventsEnabled ? events.outputs.id : ''
// Where the identity holds Reader for tag targets: the hooks remove it when a subscription
// leaves the list (preprovision) and before azd down (predown).
output SCALER_TAG_READER_SCOPES string = join(tagReaderScopes, ',')
output SCALER_WORKBOOK_ID string = workbook.outputs.id
output SCALER_ALERT_ACTION_GROUP_ID string = alerts.outputs.actionGroupId
