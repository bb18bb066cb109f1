// Lesson Orchestrator: everything the Function App needs, in one resource group.
//
//   storage account        AzureWebJobsStorage (durable task hub: queues, tables, blobs; Flex deployment container)
//   Service Bus            namespace + queue `lesson-generation` (the Django app sends, the starter receives)
//   Key Vault              every secret app setting, referenced from the app settings (never stored in site config)
//   Log Analytics + AI     Application Insights (workspace-based, Entra ID auth only)
//   user-assigned identity identity-based connections to storage, Service Bus, Key Vault and App Insights
//   plan + Function App    Linux, Python 3.11; Flex Consumption (FC1) or Elastic Premium (EP1..EP3) by `plan`
//
// PostgreSQL is not created: the web app owns the database; pass its DSN as `databaseUrl`.
// App settings live in the `*Settings` arrays below, one `{ name: '...' ... }` entry each: tests/infra parses
// them and checks them against the settings the code reads, so keep names literal.

targetScope = 'resourceGroup'

@description('Short lowercase prefix for resource names (3-20 chars); the Function App is `<name>-func`.')
@minLength(3)
@maxLength(20)
param name string

param location string = resourceGroup().location

@description('flex = Flex Consumption (FC1, scale to zero); premium = Elastic Premium (always-warm instances).')
@allowed([
  'flex'
  'premium'
])
param plan string = 'flex'

@description('Elastic Premium size when plan = premium.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param premiumSku string = 'EP1'

@description('Flex Consumption: upper bound of instances (also caps parallel load on PostgreSQL and AI providers).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Queue message lock; the starter only records the request and starts the orchestration.')
param serviceBusLockDuration string = 'PT1M'

@description('Deliveries before Service Bus dead-letters a message (architecture.md: nothing is retried forever).')
@minValue(1)
param serviceBusMaxDeliveryCount int = 5

@description('Keep SAS keys on the namespace: the Django web app sends with a connection string (seed guide).')
param serviceBusDisableLocalAuth bool = false

// ------------------------------------------------------------------------------------ secrets
@secure()
@description('PostgreSQL DSN, postgresql://user:password@host:5432/db?sslmode=require (required).')
param databaseUrl string

@secure()
param deepseekApiKey string = ''
@secure()
param groqApiKey string = ''
@secure()
param geminiApiKey string = ''
@secure()
param openaiApiKey string = ''
@secure()
param githubToken string = ''
@secure()
param stackexchangeKey string = ''
@secure()
param youtubeApiKey string = ''
@secure()
param completionWebhookSecret string = ''

// ------------------------------------------------------------------------------------ plain settings
param aiProviders string = 'deepseek,groq,gemini'
param deepseekBaseUrl string = 'https://api.deepseek.com'
param deepseekModel string = 'deepseek-flash'
param deepseekMaxConcurrency int = 8
param groqBaseUrl string = 'https://api.groq.com/openai/v1'
param groqModel string = 'llama-3.3-70b-versatile'
param groqMaxConcurrency int = 2
param geminiBaseUrl string = 'https://generativelanguage.googleapis.com/v1beta'
@description('Set explicitly: Gemini model ids are retired often.')
param geminiModel string = 'gemini-3.5-flash'
param geminiMaxConcurrency int = 2
@description('Any OpenAI-compatible server; empty = not configured (no localhost default in Azure).')
param openaiBaseUrl string = ''
param openaiModel string = ''
param openaiMaxConcurrency int = 2
param aiMaxAttemptsPerProvider int = 3
param aiAttemptBudget int = 8
param aiMaxRetryWaitSeconds int = 60
param aiRequestTimeoutSeconds int = 300
param githubApiUrl string = 'https://api.github.com'
param stackexchangeApiUrl string = 'https://api.stackexchange.com/2.3'
param youtubeApiUrl string = 'https://www.googleapis.com/youtube/v3'
param devtoApiUrl string = 'https://dev.to/api'
param docsSearchUrl string = 'https://developer.mozilla.org/api/v1/search'
param researchCacheTtlHours int = 24
param generationDeadlineMinutes int = 30
@description('Optional signed completion notification to the web app; needs completionWebhookSecret.')
param completionWebhookUrl string = ''

param tags object = {
  app: 'lesson-orchestrator'
}

// ------------------------------------------------------------------------------------ names
var suffix = uniqueString(resourceGroup().id, name)
var functionAppName = '${name}-func'
var storageAccountName = 'st${suffix}'
var keyVaultName = 'kv${suffix}'
var serviceBusNamespaceName = '${name}-sb-${suffix}'
var queueName = 'lesson-generation'
var deploymentContainerName = 'app-package'
var contentShareName = toLower(take('${functionAppName}-content', 63))

// Built-in role definition ids (same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// ------------------------------------------------------------------------------------ identity
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${name}-id'
  location: location
  tags: tags
}

// ------------------------------------------------------------------------------------ storage
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  sku: {
    name: 'Standard_LRS'
  }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
    // Elastic Premium keeps its content share on Azure Files, which only takes a key-based connection.
    allowSharedKeyAccess: plan == 'premium'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (plan == 'flex') {
  parent: blobService
  name: deploymentContainerName
}

// ------------------------------------------------------------------------------------ Service Bus
resource serviceBus 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: serviceBusNamespaceName
  location: location
  tags: tags
  // Standard: duplicate detection is not available on Basic.
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: serviceBusDisableLocalAuth
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: serviceBus
  name: queueName
  properties: {
    maxDeliveryCount: serviceBusMaxDeliveryCount
    lockDuration: serviceBusLockDuration
    requiresDuplicateDetection: true
    // The web app may resend a click within minutes; the run fence handles anything older.
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    // A request nobody processed for 2 days goes to the dead-letter queue, not into the void.
    defaultMessageTimeToLive: 'P2D'
    deadLetteringOnMessageExpiration: true
    maxSizeInMegabytes: 1024
    requiresSession: false
    enablePartitioning: false
  }
}

// Send-only key for the Django web app (its AzureServiceBusConnectionString); the Function App uses its identity.
resource webAppSendRule 'Microsoft.ServiceBus/namespaces/queues/authorizationRules@2022-10-01-preview' = if (!serviceBusDisableLocalAuth) {
  parent: queue
  name: 'web-app-send'
  properties: {
    rights: [
      'Send'
    ]
  }
}

// ------------------------------------------------------------------------------------ monitoring
resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-ai'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // Telemetry only with an Entra ID token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING below).
    DisableLocalAuth: true
  }
}

// ------------------------------------------------------------------------------------ Key Vault
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
  }
}

// Secret app settings: each becomes a Key Vault secret and a Key Vault reference; an empty one is left unset.
var secretSettings = [
  { name: 'DATABASE_URL', secretName: 'database-url', value: databaseUrl }
  { name: 'DEEPSEEK_API_KEY', secretName: 'deepseek-api-key', value: deepseekApiKey }
  { name: 'GROQ_API_KEY', secretName: 'groq-api-key', value: groqApiKey }
  { name: 'GEMINI_API_KEY', secretName: 'gemini-api-key', value: geminiApiKey }
  { name: 'OPENAI_API_KEY', secretName: 'openai-api-key', value: openaiApiKey }
  { name: 'GITHUB_TOKEN', secretName: 'github-token', value: githubToken }
  { name: 'STACKEXCHANGE_KEY', secretName: 'stackexchange-key', value: stackexchangeKey }
  { name: 'YOUTUBE_API_KEY', secretName: 'youtube-api-key', value: youtubeApiKey }
  { name: 'COMPLETION_WEBHOOK_SECRET', secretName: 'completion-webhook-secret', value: completionWebhookSecret }
]

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for secret in secretSettings: if (!empty(secret.value)) {
    parent: vault
    name: secret.secretName
    properties: {
      value: secret.value
    }
  }
]

var secretAppSettings = [
  for secret in secretSettings: {
    name: secret.name
    value: empty(secret.value) ? '' : '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${secret.secretName})'
  }
]

// ------------------------------------------------------------------------------------ role assignments
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [
    roles.storageBlobDataOwner
    roles.storageQueueDataContributor
    roles.storageTableDataContributor
  ]: {
    name: guid(storage.id, identity.id, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// Receiver for the trigger; Sender for `lessonctl retry` / an output binding on the same identity.
resource serviceBusRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [
    roles.serviceBusDataReceiver
    roles.serviceBusDataSender
  ]: {
    name: guid(serviceBus.id, identity.id, role)
    scope: serviceBus
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource monitoringRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ------------------------------------------------------------------------------------ app settings
// Host connections, identity-based: the `__credential`/`__clientId` suffixes select the user-assigned identity.
var connectionSettings = [
  { name: 'AzureWebJobsStorage__accountName', value: storage.name }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
  { name: 'AzureServiceBusConnectionString__fullyQualifiedNamespace', value: '${serviceBus.name}.servicebus.windows.net' }
  { name: 'AzureServiceBusConnectionString__credential', value: 'managedidentity' }
  { name: 'AzureServiceBusConnectionString__clientId', value: identity.properties.clientId }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.properties.ConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD' }
]

// The app's own settings (architecture.md §3 and the AI/research knobs the code reads), secrets excluded.
var applicationSettings = [
  { name: 'AI_PROVIDERS', value: aiProviders }
  { name: 'DEEPSEEK_BASE_URL', value: deepseekBaseUrl }
  { name: 'DEEPSEEK_MODEL', value: deepseekModel }
  { name: 'DEEPSEEK_MAX_CONCURRENCY', value: string(deepseekMaxConcurrency) }
  { name: 'GROQ_BASE_URL', value: groqBaseUrl }
  { name: 'GROQ_MODEL', value: groqModel }
  { name: 'GROQ_MAX_CONCURRENCY', value: string(groqMaxConcurrency) }
  { name: 'GEMINI_BASE_URL', value: geminiBaseUrl }
  { name: 'GEMINI_MODEL', value: geminiModel }
  { name: 'GEMINI_MAX_CONCURRENCY', value: string(geminiMaxConcurrency) }
  { name: 'OPENAI_BASE_URL', value: openaiBaseUrl }
  { name: 'OPENAI_MODEL', value: openaiModel }
  { name: 'OPENAI_MAX_CONCURRENCY', value: string(openaiMaxConcurrency) }
  { name: 'AI_MAX_ATTEMPTS_PER_PROVIDER', value: string(aiMaxAttemptsPerProvider) }
  { name: 'AI_ATTEMPT_BUDGET', value: string(aiAttemptBudget) }
  { name: 'AI_MAX_RETRY_WAIT_SECONDS', value: string(aiMaxRetryWaitSeconds) }
  { name: 'AI_REQUEST_TIMEOUT_SECONDS', value: string(aiRequestTimeoutSeconds) }
  { name: 'GITHUB_API_URL', value: githubApiUrl }
  { name: 'STACKEXCHANGE_API_URL', value: stackexchangeApiUrl }
  { name: 'YOUTUBE_API_URL', value: youtubeApiUrl }
  { name: 'DEVTO_API_URL', value: devtoApiUrl }
  { name: 'DOCS_SEARCH_URL', value: docsSearchUrl }
  { name: 'RESEARCH_CACHE_TTL_HOURS', value: string(researchCacheTtlHours) }
  { name: 'GENERATION_DEADLINE_MINUTES', value: string(generationDeadlineMinutes) }
  { name: 'COMPLETION_WEBHOOK_URL', value: completionWebhookUrl }
]

// Flex Consumption takes runtime and deployment from functionAppConfig and rejects FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_CONTENT*, WEBSITE_RUN_FROM_PACKAGE and SCM_DO_BUILD_DURING_DEPLOYMENT.
var flexSettings = []

// Elastic Premium: runtime by app setting, content on an Azure Files share, remote (Oryx) build of
// requirements.txt. Not ENABLE_ORYX_BUILD: `config-zip --build-remote true` deletes it on every deploy.
var premiumSettings = plan == 'premium' ? [
  { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
  { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
  { name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING', value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${storage.listKeys().keys[0].value}' }
  { name: 'WEBSITE_CONTENTSHARE', value: contentShareName }
  { name: 'SCM_DO_BUILD_DURING_DEPLOYMENT', value: 'true' }
] : []

var appSettings = concat(connectionSettings, applicationSettings, secretAppSettings, plan == 'flex' ? flexSettings : premiumSettings)

// ------------------------------------------------------------------------------------ plan + app
resource hostingPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${name}-plan'
  location: location
  tags: tags
  kind: plan == 'flex' ? 'functionapp' : 'elastic'
  sku: plan == 'flex' ? {
    name: 'FC1'
    tier: 'FlexConsumption'
  } : {
    name: premiumSku
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: plan == 'premium' ? 20 : null
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: hostingPlan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: plan == 'flex' ? {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    } : null
    siteConfig: {
      linuxFxVersion: plan == 'premium' ? 'Python|3.11' : null
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      // Premium: the runtime itself reports Service Bus / durable queue lengths to the scale controller,
      // which cannot read them with the app's managed identity.
      functionsRuntimeScaleMonitoringEnabled: plan == 'premium'
      appSettings: appSettings
    }
  }
  dependsOn: [
    // Key Vault references and identity-based connections resolve at start-up: grant access first.
    storageRoles
    serviceBusRoles
    vaultRole
    monitoringRole
    secrets
    deploymentContainer
  ]
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output serviceBusNamespace string = '${serviceBus.name}.servicebus.windows.net'
output queueName string = queue.name
output webAppSendRuleName string = serviceBusDisableLocalAuth ? '' : webAppSendRule.name
output keyVaultName string = vault.name
output storageAccountName string = storage.name
output applicationInsightsName string = appInsights.name
output identityClientId string = identity.properties.clientId
