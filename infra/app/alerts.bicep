// Alert rules over the app's outcome telemetry (scaler/telemetry.py) in Application Insights,
// and the action group that e-mails them.
//
//   poison          an intent parked in scale-intents-poison (the app's own `poisoned` outcome),
//                   or any message the Functions host moved to a `-poison` queue
//                   (scale-intents-poison, scale-reconcile-poison) after maxDequeueCount
//   schedule        the timer rejected the schedule file (problem code InvalidSchedule)
//   pool failures   failureThreshold or more failures for one cluster+pool within an hour:
//                   writes Resource Manager refused, deferrals other than a busy pool, and
//                   refusals of schedule and reconcile changes (a refused intent is the
//                   producer's to fix; its outcome says why)
//
// Log search alerts, not metric alerts: Azure Storage's QueueMessageCount covers every queue of
// the account at once (no per-queue dimension) and is refreshed daily. The rules run with no
// identity of their own (the default): Azure Monitor runs the query with the access of whoever
// deployed the rule, which needs no role assignment here. The rules are deployed with or without
// an e-mail address: fired alerts show in Azure Monitor either way; with alertEmail they also
// go to an action group that e-mails that address.
param location string
param tags object
param applicationInsightsName string
@description('Suffix of the rule and action group names (the environment\'s resource token).')
param nameSuffix string

@description('E-mail address (a person or a distribution list) the alerts are sent to. Empty: no action group; the alerts only show in Azure Monitor.')
param alertEmail string = ''

@minValue(1)
@description('Failures for one cluster+pool within an hour that raise the pool failures alert.')
param failureThreshold int = 3

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-scaler-${nameSuffix}'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'aks-scaler'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroupIds = empty(alertEmail) ? [] : [
  actionGroup.id
]

resource poisonAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-scaler-poison-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AKS pool scaler: a message in a poison queue'
    description: 'An intent was parked in scale-intents-poison (retries spent), or the Functions host moved a message to scale-intents-poison or scale-reconcile-poison. Look at the queue and the outcome on scale-results.'
    severity: 1
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
traces
| where (tostring(customDimensions["record"]) == "outcome" and tostring(customDimensions["outcome"]) == "poisoned")
    or (message has "MaxDequeueCount" and message has "-poison")
| project timestamp, message, intent_id = tostring(customDimensions["intent_id"]), cluster = tostring(customDimensions["cluster"])
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

resource scheduleAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-scaler-schedule-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AKS pool scaler: schedule rejected'
    description: 'The timer could not use the schedule file (InvalidSchedule): no pool follows the schedule until it is fixed. The alert detail names the line.'
    severity: 1
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
traces
| where tostring(customDimensions["record"]) == "outcome"
    and tostring(customDimensions["source"]) == "timer"
    and tostring(customDimensions["problem_code"]) == "InvalidSchedule"
| project timestamp, detail = tostring(customDimensions["detail"])
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

resource poolFailuresAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-scaler-pool-failures-${nameSuffix}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'AKS pool scaler: repeated failures for one pool'
    description: 'One cluster+pool failed ${failureThreshold} times or more within an hour (refused writes, deferrals other than a busy pool, refused schedule or reconcile changes). One alert per pool.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
traces
| where tostring(customDimensions["record"]) == "pool"
| extend cluster = tostring(customDimensions["cluster"]),
    pool = tostring(customDimensions["pool"]),
    source = tostring(customDimensions["source"]),
    result = tostring(customDimensions["result"]),
    problem_code = tostring(customDimensions["problem_code"])
| where result == "failed"
    or (result == "deferred" and problem_code !in ("PoolBusy", "Throttled", "SubscriptionRequestsThrottled", "TooManyRequests"))
    or (result == "refused" and source != "queue")
| project timestamp, cluster, pool, result, problem_code
'''
          timeAggregation: 'Count'
          operator: 'GreaterThanOrEqual'
          threshold: failureThreshold
          dimensions: [
            {
              name: 'cluster'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'pool'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

output actionGroupId string = empty(alertEmail) ? '' : actionGroup.id
output alertRuleIds array = [
  poisonAlert.id
  scheduleAlert.id
  poolFailuresAlert.id
]
