# One-time Entra set-up: an app registration that trusts federation's tokens for one
# subject, and (optionally) a role for it. Apply with rights to create applications.
#
#   terraform init
#   terraform apply -var issuer=https://federation.example.com -var subject=user:u1 \
#     -var subscription_id=<subscription> -var role_scope=/subscriptions/<subscription>/resourceGroups/<group>

terraform {
  required_version = ">= 1.5"
  required_providers {
    azuread = {
      source  = "hashicorp/azuread"
      version = "~> 3.0"
    }
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }
}

variable "issuer" {
  description = "The issuer URL exactly as federation's tokens carry it in iss (FEDERATION_ISSUER): https, no trailing slash."
  type        = string

  validation {
    condition     = startswith(var.issuer, "https://") && !endswith(var.issuer, "/")
    error_message = "Entra compares the issuer byte for byte: an https URL without a trailing slash."
  }
}

variable "subject" {
  description = "The exact sub of the run's tokens, case-sensitive: user:<uid>, service_account:<uid>, or what --subject-template renders (e.g. teams:<team>/environment:<env>)."
  type        = string
}

variable "subscription_id" {
  description = "Subscription of the role assignment."
  type        = string
}

variable "role_scope" {
  description = "What the runs may act on, e.g. a resource group id. Empty: no role assignment."
  type        = string
  default     = ""
}

variable "role" {
  description = "The built-in role the runs get on role_scope."
  type        = string
  default     = "Reader"
}

provider "azuread" {}

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
}

data "azuread_client_config" "current" {}

resource "azuread_application" "runs" {
  display_name = "federation-runs"
  owners       = [data.azuread_client_config.current.object_id]
}

resource "azuread_service_principal" "runs" {
  client_id = azuread_application.runs.client_id
  owners    = [data.azuread_client_config.current.object_id]
}

# One credential per subject (at most 20 per app): Entra has no wildcards.
resource "azuread_application_federated_identity_credential" "runs" {
  application_id = azuread_application.runs.id
  display_name   = "federation-runs"
  description    = "Tokens of federation runs for ${var.subject}"
  audiences      = ["api://AzureADTokenExchange"]
  issuer         = var.issuer
  subject        = var.subject
}

resource "azurerm_role_assignment" "runs" {
  count                = var.role_scope == "" ? 0 : 1
  scope                = var.role_scope
  role_definition_name = var.role
  principal_id         = azuread_service_principal.runs.object_id
}

output "tenant_id" {
  value = data.azuread_client_config.current.tenant_id
}

output "client_id" {
  description = "--client-id (AZURE_CLIENT_ID) of `federation exchange azure`."
  value       = azuread_application.runs.client_id
}
