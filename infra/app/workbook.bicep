// An Azure Monitor workbook over the app's outcome telemetry (scaler/telemetry.py): pool changes
// and outcomes per day, failures, deferred and poisoned intents, 429s, node-hours saved. Its
// queries (workbook.json) read `traces` rows of the Application Insights component, whose
// customDimensions carry the names tests/infra/test_monitoring_infra.py imports from the app.
param location string
param tags object
param applicationInsightsName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; derived, so a re-deployment updates the same one.
  name: guid(resourceGroup().id, applicationInsights.id, 'aks-pool-scaler-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'AKS pool scaler'
    category: 'workbook'
    sourceId: applicationInsights.id
    // The queries run against this component when the workbook is opened from anywhere.
    serializedData: replace(loadTextContent('workbook.json'), '__APPLICATION_INSIGHTS_ID__', applicationInsights.id)
  }
}

output id string = workbook.id
output name string = workbook.name
