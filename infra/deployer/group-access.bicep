// The pipeline's rights in one resource group: some plain roles (extraRoleIds), and Role Based
// Access Control Administrator with a condition, so it can grant only grantableRoleIds and remove
// only deletableRoleIds. It cannot grant itself (or anyone) Owner, User Access Administrator or
// any other role; this is Microsoft's "Constrain roles" condition.
param principalId string
param grantableRoleIds array
param deletableRoleIds array
param extraRoleIds array
param rbacAdministratorRoleId string

var condition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(grantableRoleIds, ', ')}})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(deletableRoleIds, ', ')}}))'

resource constrainedRbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, rbacAdministratorRoleId)
  scope: resourceGroup()
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rbacAdministratorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    condition: condition
    conditionVersion: '2.0'
  }
}

resource extra 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in extraRoleIds: {
  name: guid(resourceGroup().id, principalId, roleId)
  scope: resourceGroup()
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]
