// The app's storage account: Functions host state, the deployment package, the intent and
// result queues and the state table. Keys are switched off, so every caller (the host, the
// app, producers, azd) must come with an Entra identity and a data role.
param name string
param location string
param tags object
param deploymentContainerName string

// Fixed names: producers, the app code (scaler/settings.py) and the poison convention of the
// Functions host (<queue>-poison) all depend on them.
var intentsQueueName = 'scale-intents'
var poisonQueueName = '${intentsQueueName}-poison'
var resultsQueueName = 'scale-results'
var stateTableName = 'scalerstate'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Without VNet integration the Flex Consumption app, producers and azd reach storage over its public endpoint; shared keys are off, so every request needs an Entra token and a data role.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public network access stays on, access is Entra-only (allowSharedKeyAccess false, no public blob access).
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
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
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

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Schedule holds and the latest intent per pool.
resource stateTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: stateTableName
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output intentsQueueName string = intentsQueue.name
output poisonQueueName string = poisonQueue.name
output resultsQueueName string = resultsQueue.name
output stateTableName string = stateTable.name
output intentsQueueUrl string = '${storage.properties.primaryEndpoints.queue}${intentsQueue.name}'
