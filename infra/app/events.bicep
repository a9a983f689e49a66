// Optional (main.bicep's eventsEnabled): an Event Grid topic the app publishes its CloudEvents
// to (outcomes, pool changes, upcoming scheduled capacity cuts; see docs/deploying.md), with
// keys and SAS tokens off, and the app's identity allowed to send to this topic only.
param name string
param location string
param tags object
param principalId string

// Built-in role id, checked against its name in tests/infra/test_bicep_structure.py.
var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_191: A topic identity is only for delivering to Azure resources with identity-based auth; subscribers here are webhooks and Logic App triggers, and the app keeps its one user-assigned identity.
  // checkov:skip=CKV_AZURE_193: The app reaches the topic over its public endpoint with an Entra token only (local auth is off); subscribers (webhooks, Logic Apps) are pushed to, not pulled from.
  name: name
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    // Entra only: no aeg-sas-key, no SAS token.
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

resource dataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, eventGridDataSenderRoleId)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output name string = topic.name
output endpoint string = topic.properties.endpoint
