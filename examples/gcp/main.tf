# One-time GCP set-up for federation: a workload identity pool, an OIDC provider that
# trusts the issuer, and what the runs' principals may do (impersonate a service
# account, or use a bucket directly).
#
#   terraform init
#   terraform apply -var project_id=acme-prod -var issuer_uri=https://issuer.example.com
#
# Then, inside a run:  federation gcp-credential-config --audience "$(terraform output -raw audience)" ...

terraform {
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

variable "project_id" {
  description = "The project that holds the pool (its number goes into the audience)."
  type        = string
}

variable "issuer_uri" {
  description = "FEDERATION_ISSUER, byte for byte (https, no trailing slash)."
  type        = string
}

variable "pool_id" {
  type    = string
  default = "agents"
}

variable "provider_id" {
  type    = string
  default = "federation"
}

variable "team" {
  description = "Only tokens of runs in this team are accepted (attribute condition); empty: any."
  type        = string
  default     = "platform"
}

variable "subject" {
  description = "The sub allowed to impersonate the service account, e.g. user:<uid>."
  type        = string
}

variable "environment" {
  description = "Runs in this environment may read the bucket directly (no service account)."
  type        = string
  default     = "staging"
}

variable "bucket" {
  description = "A bucket the runs of var.environment may read; empty: no direct grant."
  type        = string
  default     = ""
}

variable "jwks_json_path" {
  description = "A private issuer's JWKS (federation publish --gcp-jwks FILE); empty: GCP fetches the issuer's discovery and JWKS."
  type        = string
  default     = ""
}

provider "google" {
  project = var.project_id
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "needed" {
  for_each           = toset(["iam.googleapis.com", "iamcredentials.googleapis.com", "sts.googleapis.com"])
  service            = each.value
  disable_on_destroy = false
}

resource "google_iam_workload_identity_pool" "agents" {
  workload_identity_pool_id = var.pool_id
  display_name              = "Agent runs"
  description               = "Tokens issued by federation for agent runs"
  depends_on                = [google_project_service.needed]
}

resource "google_iam_workload_identity_pool_provider" "federation" {
  workload_identity_pool_id          = google_iam_workload_identity_pool.agents.workload_identity_pool_id
  workload_identity_pool_provider_id = var.provider_id
  display_name                       = "federation"

  # google.subject may not exceed 127 bytes: keep the subject template short.
  attribute_mapping = {
    "google.subject"        = "assertion.sub"
    "attribute.environment" = "assertion.environment"
    "google.groups"         = "assertion.teams"
  }
  attribute_condition = var.team == "" ? null : "'${var.team}' in assertion.teams"

  oidc {
    issuer_uri = var.issuer_uri
    # Empty: the token's aud must be the provider's resource name, which is what
    # gcp-credential-config, issue-gcp-token and exchange gcp ask for.
    allowed_audiences = []
    jwks_json         = var.jwks_json_path == "" ? null : file(var.jwks_json_path)
  }
}

locals {
  pool_member_prefix = "iam.googleapis.com/${google_iam_workload_identity_pool.agents.name}"
}

# Impersonation: the run's principal may act as this service account.
resource "google_service_account" "deployer" {
  account_id   = "deployer"
  display_name = "Deployments from agent runs"
}

resource "google_service_account_iam_member" "run_may_impersonate" {
  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://${local.pool_member_prefix}/subject/${var.subject}"
}

# Direct resource access (no service account): every run of an environment.
resource "google_storage_bucket_iam_member" "environment_reads" {
  count  = var.bucket == "" ? 0 : 1
  bucket = var.bucket
  role   = "roles/storage.objectViewer"
  member = "principalSet://${local.pool_member_prefix}/attribute.environment/${var.environment}"
}

output "audience" {
  description = "--audience for gcp-credential-config and exchange gcp (project number, not id)."
  value       = "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.federation.name}"
}

output "service_account" {
  value = google_service_account.deployer.email
}

output "project_number" {
  value = data.google_project.this.number
}
