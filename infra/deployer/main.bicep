// Run ONCE by a platform team (Owner, or User Access Administrator plus the right to create
// role definitions) so that the deploying pipeline can run `azd provision` without being able to
// escalate. It creates the app's resource group, the scaler role (infra/roles/scaler-role.bicep)
// and a deployments-only role, and grants the pipeline:
//   - on its subscription: starting deployments (nothing else; no Contributor, no role admin);
//   - on the app's resource group: Contributor, and Role Based Access Control Administrator
//     constrained (ABAC condition) to the data roles infra/app assigns;
//   - on each cluster's and subnet's resource group: starting deployments, and Role Based Access
//     Control Administrator constrained to the scaler role;
//   - on each subscription where schedules select clusters by tag (tagReaderSubscriptionIds,
//     usually none): starting deployments, and Role Based Access Control Administrator
//     constrained to Reader.
// Then set, in the pipeline's azd environment: AZURE_RESOURCE_GROUP=<resourceGroupName> and
// SCALER_AKS_PLATFORM_ROLE_DEFINITION_ID=<output scalerRoleDefinitionId>. Re-run this template
// when clusters or subnets are added. docs/deploying.md has the same as az commands.
targetScope = 'subscription'

@minLength(1)
@description('The azd environment the pipeline deploys (names the role and the resource group).')
param environmentName string

@minLength(1)
param location string

@minLength(36)
@description('Object id of the pipeline\'s service principal (its enterprise application, not the app registration).')
param pipelinePrincipalId string

@description('The app\'s resource group. Empty: rg-<environmentName>, as infra/main.bicep names it.')
param resourceGroupName string = ''

@minLength(1)
@description('Resource ids of every cluster the app may scale, the default one included.')
param clusterIds array

@description('Resource ids of the subnets the clusters\' pools use, when they are in a customer VNet.')
param subnetIds array = []

@description('Subscription ids where schedules select clusters by tag (the app\'s SCALER_TAG_READER_SUBSCRIPTION_IDS): the pipeline may grant Reader there, and nothing else.')
param tagReaderSubscriptionIds array = []

// Built-in roles, checked against the names in tests/infra/test_bicep_structure.py.
var contributorRoleId = 'b24988ac-6180-42a0-ab88-20f7382dd24c' // Contributor
var rbacAdministratorRoleId = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168' // Role Based Access Control Administrator
// What infra/aks/subscription-reader.bicep assigns for tag targets.
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7' // Reader
// The only roles infra/app assigns in the app's group (app/rbac.bicep, app/producers.bicep).
var appRoleIds = [
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
  'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a' // Storage Queue Data Message Sender
]
// May be deleted but never granted: the preprovision hook removes what the former built-in mode
// assigned on the clusters.
var retiredRoleIds = [
  'ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8' // Azure Kubernetes Service Contributor Role
]

var appGroupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var scopeIds = union(clusterIds, subnetIds)
var scopeGroupIds = [for id in scopeIds: toLower('/subscriptions/${split(id, '/')[2]}/resourceGroups/${split(id, '/')[4]}')]
var scopeGroups = union(scopeGroupIds, [])
var readerSubscriptionList = [for id in tagReaderSubscriptionIds: last(split(toLower(trim(id)), '/'))]
var readerSubscriptions = union(readerSubscriptionList, [])
var readerScopes = [for id in readerSubscriptions: '/subscriptions/${id}']

resource appGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: appGroupName
  location: location
  tags: {
    'azd-env-name': environmentName
  }
}

module scalerRole '../roles/scaler-role.bicep' = {
  name: 'scaler-role-${uniqueString(environmentName)}'
  params: {
    environmentName: environmentName
    clusterIds: clusterIds
    subnetIds: subnetIds
  }
}

// Starting (and reading) deployments is all the pipeline may do at these scopes; what a
// deployment then creates is checked against the pipeline's own rights, resource by resource.
resource deploymentsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'aks-pool-scaler-deployments')
  properties: {
    roleName: 'AKS pool scaler deployments ${environmentName} ${uniqueString(subscription().id, environmentName)}'
    description: 'Start and read ARM deployments; nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Resources/deployments/*'
          'Microsoft.Resources/subscriptions/resourceGroups/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: union([subscription().id], scopeGroups, readerScopes)
  }
}

resource subscriptionDeployments 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, pipelinePrincipalId, 'aks-pool-scaler-deployments')
  properties: {
    roleDefinitionId: deploymentsRole.id
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
  }
}

module appGroupAccess 'group-access.bicep' = {
  name: 'scaler-deployer-app-${uniqueString(environmentName)}'
  scope: appGroup
  params: {
    principalId: pipelinePrincipalId
    grantableRoleIds: appRoleIds
    deletableRoleIds: appRoleIds
    extraRoleIds: [
      contributorRoleId
    ]
    rbacAdministratorRoleId: rbacAdministratorRoleId
  }
}

module clusterGroupAccess 'group-access.bicep' = [for groupId in scopeGroups: {
  name: 'scaler-deployer-${uniqueString(groupId, environmentName)}'
  scope: resourceGroup(split(groupId, '/')[2], split(groupId, '/')[4])
  params: {
    principalId: pipelinePrincipalId
    grantableRoleIds: [
      scalerRole.outputs.roleDefinitionGuid
    ]
    deletableRoleIds: concat([scalerRole.outputs.roleDefinitionGuid], retiredRoleIds)
    extraRoleIds: [
      deploymentsRole.name
    ]
    rbacAdministratorRoleId: rbacAdministratorRoleId
  }
}]

module readerSubscriptionAccess 'subscription-access.bicep' = [for subscriptionId in readerSubscriptions: {
  name: 'scaler-deployer-reader-${uniqueString(subscriptionId, environmentName)}'
  scope: subscription(subscriptionId)
  params: {
    principalId: pipelinePrincipalId
    grantableRoleIds: [
      readerRoleId
    ]
    deploymentsRoleGuid: deploymentsRole.name
    rbacAdministratorRoleId: rbacAdministratorRoleId
  }
}]

output scalerRoleDefinitionId string = scalerRole.outputs.roleDefinitionId
output resourceGroupName string = appGroup.name
