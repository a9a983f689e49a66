// Systems that send intents get exactly one right: add messages to scale-intents. Scoped to
// that queue, so they can neither read results nor touch the poison queue, and they hold
// nothing at all on the cluster.
param storageAccountName string
param intentsQueueName string
@description('Object ids: no spaces, empty entries or duplicates (main.bicep cleans the list).')
param principalIds array

var storageQueueDataMessageSenderRoleId = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a' // Storage Queue Data Message Sender

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource queueService 'queueServices' existing = {
    name: 'default'

    resource intentsQueue 'queues' existing = {
      name: intentsQueueName
    }
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in principalIds: {
  name: guid(storage::queueService::intentsQueue.id, principalId, storageQueueDataMessageSenderRoleId)
  scope: storage::queueService::intentsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSenderRoleId)
    principalId: principalId
    // No principalType: producers may be service principals, managed identities, users or
    // groups, and Resource Manager works the type out itself. (principalType only helps for a
    // principal created seconds earlier, which a producer never is.)
  }
}]
