// Deployed into one subscription (main.bicep loops over tagReaderSubscriptionIds and sets each
// scope) only when schedules select clusters by tag: Azure Resource Graph answers the app's
// tag query with the resources its identity can read, so the identity reads the subscription.
// Reader, nothing broader: reading a cluster's tags and pools changes nothing; the scaler role
// on each allowed cluster is still what lets it write, and the allowlist still decides which.
targetScope = 'subscription'

param principalId string

// Built-in role id, checked against its name in tests/infra/test_bicep_structure.py.
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7' // Reader

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, readerRoleId)
  scope: subscription()
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output roleAssignmentId string = reader.id
