// The pipeline's rights in a subscription where the app gets Reader for tag targets
// (infra/aks/subscription-reader.bicep): starting deployments there (the nested deployment that
// assigns Reader), and Role Based Access Control Administrator constrained to grant and remove
// only grantableRoleIds (Reader). Deployed by infra/deployer/main.bicep, once per subscription.
targetScope = 'subscription'

param principalId string
param grantableRoleIds array
@description('GUID of the deployments-only custom role infra/deployer/main.bicep creates.')
param deploymentsRoleGuid string
param rbacAdministratorRoleId string

var condition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(grantableRoleIds, ', ')}})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(grantableRoleIds, ', ')}}))'

// Named as infra/deployer/main.bicep names the same grant in the pipeline's own subscription,
// so listing that subscription here too renews it instead of colliding with it.
resource deployments 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, 'aks-pool-scaler-deployments')
  scope: subscription()
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', deploymentsRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource constrainedRbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, rbacAdministratorRoleId)
  scope: subscription()
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rbacAdministratorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    condition: condition
    conditionVersion: '2.0'
  }
}
