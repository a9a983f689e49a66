// The app's storage account: Functions host state, the deployment package, the intent and
// result queues and the state table. Keys are switched off, so every caller (the host, the
// app, producers, azd) must come with an Entra identity and a data role.
param name string
param location string
param tags object
param deploymentContainerName string

@description('Container of SCALER_SCHEDULE_BLOB (its part before the first /). Empty: no schedule blob, no container.')
param scheduleContainerName string = ''

// Private network mode: public access off, one private endpoint per service the app uses. The
// VNet, its subnets and the private DNS zones belong to the platform team (docs/deploying.md).
@description('true: publicNetworkAccess Disabled and private endpoints for blob, queue and table.')
param privateNetwork bool = false

@description('Subnet for the private endpoints (private network mode).')
param privateEndpointSubnetId string = ''

@description('Resource group id holding the privatelink.{blob,queue,table}.<storage suffix> private DNS zones. Empty: DNS records are left to the platform (for example an Azure Policy that adds them).')
param privateDnsZoneResourceGroupId string = ''

// Fixed names: producers, the app code (scaler/settings.py) and the poison convention of the
// Functions host (<queue>-poison) all depend on them.
var intentsQueueName = 'scale-intents'
var poisonQueueName = '${intentsQueueName}-poison'
var resultsQueueName = 'scale-results'
// One message per cluster to reconcile (the app writes them, its queue trigger reads them).
var reconcileQueueName = 'scale-reconcile'
var reconcilePoisonQueueName = '${reconcileQueueName}-poison'
var stateTableName = 'scalerstate'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Public mode (the default) only: the app, producers and azd reach storage over its public endpoint with Entra tokens (shared keys off); privateNetwork=true sets defaultAction Deny.
  // checkov:skip=CKV_AZURE_59: Public mode (the default) only, as for CKV_AZURE_35; privateNetwork=true sets publicNetworkAccess Disabled and adds private endpoints.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateNetwork ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: privateNetwork ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Where SCALER_SCHEDULE_BLOB points: created here so the first upload has somewhere to go (the
// app only reads it). The app's Storage Blob Data Owner on the account covers it.
resource scheduleContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (!empty(scheduleContainerName)) {
  parent: blobService
  name: empty(scheduleContainerName) ? 'unused' : scheduleContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource intentsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: intentsQueueName
}

// Created up front (the host would create it on first failure) so operators can watch and
// grant access to it from day one.
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: poisonQueueName
}

resource resultsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: resultsQueueName
}

// The Functions host never creates a trigger's queue, and sending to a missing queue fails
// (QueueNotFound): without it no intent would ever be reconciled in Azure.
resource reconcileQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: reconcileQueueName
}

// Like scale-intents-poison: there from day one, so operators can watch it.
resource reconcilePoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: reconcilePoisonQueueName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Schedule holds and the latest intent per pool.
resource stateTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: stateTableName
}

// Private network mode: one endpoint per storage service the Functions host and the app use
// (blob: host locks and the deployment package; queue: intents and results; table: state).
var privateServices = privateNetwork ? [
  'blob'
  'queue'
  'table'
] : []

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for service in privateServices: {
  name: 'pe-${name}-${service}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: '${name}-${service}'
        properties: {
          privateLinkServiceId: storage.id
          groupIds: [
            service
          ]
        }
      }
    ]
  }
}]

// Same order as privateServices, so index i is that service's endpoint.
var dnsZoneServices = empty(privateDnsZoneResourceGroupId) ? [] : privateServices

resource privateDnsZoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (service, i) in dnsZoneServices: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: service
        properties: {
          privateDnsZoneId: '${privateDnsZoneResourceGroupId}/providers/Microsoft.Network/privateDnsZones/privatelink.${service}.${environment().suffixes.storage}'
        }
      }
    ]
  }
}]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output intentsQueueName string = intentsQueue.name
output poisonQueueName string = poisonQueue.name
output resultsQueueName string = resultsQueue.name
output reconcileQueueName string = reconcileQueue.name
output reconcilePoisonQueueName string = reconcilePoisonQueue.name
output stateTableName string = stateTable.name
output intentsQueueUrl string = '${storage.properties.primaryEndpoints.queue}${intentsQueue.name}'
