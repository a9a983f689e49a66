// The custom role the app's identity holds on each cluster (and on the node subnets of pools in
// a customer VNet). Deployed on its own, BEFORE infra/main.bicep assigns it: a role definition
// and an assignment of it in the same deployment race on replication (RoleDefinitionDoesNotExist
// on a first provision). azd's preprovision hook (infra/hooks/scaler_hooks.py) deploys this
// template and waits until the role is readable; a platform team can deploy it once instead and
// give the pipeline only the right to assign it (docs/deploying.md).
targetScope = 'subscription'

@minLength(1)
@description('azd environment name: one role per environment, so tearing an environment down never removes a role another one still uses.')
param environmentName string

@minLength(1)
@description('Resource ids of every cluster the app may scale (any subscription and resource group of this tenant).')
param clusterIds array

@description('Resource ids of the subnets the clusters\' pools use (vnetSubnetID, podSubnetID), when they are in a customer VNet.')
param subnetIds array = []

// The app reads the cluster and its agent pools and writes agent pools (count, autoscaler
// min/max, power state). It never aborts an operation (a busy pool is retried later) and never
// polls operation status (writes use polling=False; the pool's provisioningState, covered by
// agentPools/read, tells the same story), so neither action is granted. Nothing else: no
// cluster write (networking, identity, versions), no pool delete, no credentials
// (listClusterUserCredential would open the Kubernetes API).
//
// subnets/join/action: the app writes a pool back as it read it, vnetSubnetID included, and
// Resource Manager checks join on every subnet such a request names (a linked access check), so
// without it a pool in a customer VNet answers LinkedAuthorizationFailed (403). It takes effect
// only where the role is assigned: on the subnets listed in subnetIds, never on a whole VNet.
var scalerActions = [
  'Microsoft.ContainerService/managedClusters/read'
  'Microsoft.ContainerService/managedClusters/agentPools/read'
  'Microsoft.ContainerService/managedClusters/agentPools/write'
  'Microsoft.Network/virtualNetworks/subnets/join/action'
]

// Stable across re-deploys; infra/main.bicep derives the same name to assign it.
var roleGuid = guid(subscription().id, environmentName, 'aks-pool-scaler')

// Every resource group holding a cluster or subnet of the lists: the role can be assigned there
// and nowhere else. Re-running with a longer list widens it; nobody edits it by hand.
var scopeIds = union(clusterIds, subnetIds)
var scopeGroups = [for id in scopeIds: toLower('/subscriptions/${split(id, '/')[2]}/resourceGroups/${split(id, '/')[4]}')]
var assignableScopes = union(scopeGroups, [])

resource scalerRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: roleGuid
  properties: {
    // Role names are unique per tenant, hence the environment and a hash.
    roleName: 'AKS pool scaler ${environmentName} ${uniqueString(subscription().id, environmentName)}'
    description: 'Read managed clusters, read and write their agent pools, join the subnets those pools already use. Assigned on single clusters and subnets.'
    type: 'CustomRole'
    permissions: [
      {
        actions: scalerActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output roleDefinitionId string = scalerRole.id
output roleDefinitionGuid string = roleGuid
