# AWS side of federation: trust the issuer, and a role its agent runs may assume.
#
#   terraform init
#   terraform apply -var issuer_url=https://issuer.example.com -var team=platform
#   terraform output -raw role_arn
#
# The provider URL must be the tokens' iss byte for byte: https, no port, no trailing
# slash, the path if the issuer has one.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # thumbprint_list became optional in 5.81; AWS checks the JWKS host's
      # certificate against its library of trusted CAs.
      version = ">= 5.81"
    }
  }
}

variable "issuer_url" {
  description = "The issuer URL, exactly as in the tokens' iss (FEDERATION_ISSUER)."
  type        = string
  validation {
    condition     = startswith(var.issuer_url, "https://") && !endswith(var.issuer_url, "/")
    error_message = "Use the https issuer URL without a trailing slash."
  }
}

variable "team" {
  description = "The team whose runs may assume the role (sub = scoped_principal:<team>/...)."
  type        = string
}

variable "role_name" {
  type    = string
  default = "oz-agent"
}

variable "max_session_duration" {
  description = "Longest session (seconds, 3600-43200); --duration-seconds must not exceed it."
  type        = number
  default     = 3600
}

variable "session_tags" {
  description = "Allow sts:TagSession, for tokens minted with --aws-session-tag."
  type        = bool
  default     = false
}

locals {
  # Condition keys are the provider URL without its scheme: <host>[/<path>]:aud and :sub.
  issuer_host = trimprefix(var.issuer_url, "https://")
  actions = var.session_tags ? [
    "sts:AssumeRoleWithWebIdentity",
    "sts:TagSession",
  ] : ["sts:AssumeRoleWithWebIdentity"]
}

resource "aws_iam_openid_connect_provider" "federation" {
  url            = var.issuer_url
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "trust" {
  statement {
    effect  = "Allow"
    actions = local.actions

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.federation.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Never ForAllValues: here: it is true when the key is missing.
    condition {
      test     = "StringLike"
      variable = "${local.issuer_host}:sub"
      values   = ["scoped_principal:${var.team}/*"]
    }
  }
}

resource "aws_iam_role" "agent" {
  name                 = var.role_name
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
}

# What the runs may do once they have the role: attach your own policies here, e.g.
# resource "aws_iam_role_policy_attachment" "read" {
#   role       = aws_iam_role.agent.name
#   policy_arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
# }

output "role_arn" {
  value = aws_iam_role.agent.arn
}

output "provider_arn" {
  value = aws_iam_openid_connect_provider.federation.arn
}
