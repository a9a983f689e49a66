// Deployed into one cluster's resource group (main.bicep loops over the clusters and sets each
// scope) so that the app's identity gets rights on that cluster and on nothing else there.
param clusterName string
param principalId string

@minLength(36)
@maxLength(36)
@description('GUID of the role to assign: the role infra/roles/scaler-role.bicep created (or a platform team did).')
param roleDefinitionGuid string

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: clusterName
}

// The role definition is created before this deployment (infra/roles), never in it: creating
// and assigning it in one deployment fails intermittently while the definition replicates.
resource scalerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, principalId, roleDefinitionGuid)
  scope: cluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output roleAssignmentId string = scalerAssignment.id
