// Deployed into the existing cluster's resource group (main.bicep sets the scope) so that
// the app's identity gets rights on that one cluster and on nothing else in the subscription.
param clusterName string
param principalId string

@allowed([
  'custom'
  'builtin'
])
param roleMode string = 'custom'

// builtin mode: Microsoft maintains this role and has changed it over time. Older definitions
// (managedClusters read/write only) did not cover agentPools/write; newer ones grant far more
// than the app needs. Check `az role definition list --name "<role>"` before choosing it.
var aksContributorRoleId = 'ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8' // Azure Kubernetes Service Contributor Role

// The app reads the cluster and its agent pools and writes agent pools (count, autoscaler
// min/max, power state). It never aborts an operation (a busy pool is retried later) and never
// polls operation status (writes use polling=False; the pool's provisioningState, covered by
// agentPools/read, tells the same story), so neither action is granted. Nothing else: no
// cluster write (networking, identity, versions), no pool delete, no credentials
// (listClusterUserCredential would open the Kubernetes API).
var scalerActions = [
  'Microsoft.ContainerService/managedClusters/read'
  'Microsoft.ContainerService/managedClusters/agentPools/read'
  'Microsoft.ContainerService/managedClusters/agentPools/write'
]

// Stable across re-deploys, and one per resource group: several environments scaling
// clusters in the same group share the definition instead of using up the tenant's quota.
var customRoleName = guid(subscription().id, resourceGroup().id, 'aks-pool-scaler')
var roleDefinitionGuid = (roleMode == 'custom') ? customRoleName : aksContributorRoleId

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: clusterName
}

resource scalerRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (roleMode == 'custom') {
  name: customRoleName
  properties: {
    // Role names are unique per tenant, hence the group and a hash of its id.
    roleName: 'AKS pool scaler ${resourceGroup().name} ${uniqueString(resourceGroup().id)}'
    description: 'Read a managed cluster, and read and write its agent pools. Meant to be assigned on a single cluster.'
    type: 'CustomRole'
    permissions: [
      {
        actions: scalerActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    // Microsoft advises against resource-level assignable scopes (they use up the tenant's
    // custom-role quota); access is decided by the assignment below, which is on the cluster.
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource scalerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, principalId, roleDefinitionGuid)
  scope: cluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
  dependsOn: [
    scalerRole
  ]
}

output roleDefinitionId string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
output roleAssignmentId string = scalerAssignment.id
