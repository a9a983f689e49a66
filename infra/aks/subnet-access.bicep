// Deployed into the resource group of a customer VNet that AKS node (or pod) subnets live in.
// The app writes a pool back with its vnetSubnetID, and Resource Manager checks
// Microsoft.Network/virtualNetworks/subnets/join/action on that subnet for the caller; the same
// custom role, assigned on the subnet alone, grants exactly that join (its AKS actions have
// nothing to act on under a subnet).
param virtualNetworkName string
param subnetName string
param principalId string

@minLength(36)
@maxLength(36)
param roleDefinitionGuid string

resource virtualNetwork 'Microsoft.Network/virtualNetworks@2024-05-01' existing = {
  name: virtualNetworkName

  resource subnet 'subnets' existing = {
    name: subnetName
  }
}

resource joinAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(virtualNetwork::subnet.id, principalId, roleDefinitionGuid)
  scope: virtualNetwork::subnet
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output roleAssignmentId string = joinAssignment.id
