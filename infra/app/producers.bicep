// Systems that send intents get exactly one right: add messages to scale-intents. Scoped to
// that queue, so they can neither read results nor touch the poison queue, and they hold
// nothing at all on the cluster.
param storageAccountName string
param intentsQueueName string
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
    // Producers are other systems (workload identities, pipelines); people who need to send a
    // test intent get the same role with `az role assignment create` (see README.md, "Let a producer send intents").
    principalType: 'ServicePrincipal'
  }
}]
