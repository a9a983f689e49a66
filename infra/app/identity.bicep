// The one identity the app uses for everything: ARM (AKS), host and trigger storage, the
// deployment package and Application Insights. User-assigned rather than system-assigned so
// its role assignments exist before the app starts and survive the app being re-created.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
