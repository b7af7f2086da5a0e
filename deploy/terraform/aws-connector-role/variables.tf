variable "external_id" {
  description = "The external ID the connector's AssumeRole must present (BATON_EXTERNAL_ID)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_+=,.@:/-]{2,1224}$", var.external_id))
    error_message = "external_id must be 2 to 1224 characters of letters, digits and _+=,.@:/-."
  }
}

variable "trusted_principal_arn" {
  description = "Who may assume the role: ConductorOne's service role, or the role your self-hosted host runs as."
  type        = string
  default     = "arn:aws:iam::765656841499:role/ConductorOneService"
}

variable "role_name" {
  description = "Name of the connector's role (BATON_ROLE_ARN ends with it)."
  type        = string
  default     = "ConductorOneIntegration"
}

variable "permissions_policy_json" {
  description = "The role's permissions: the permissions_policy that `host policy` prints for your settings. Empty: policy.json (Organizations, Identity Center and provisioning on)."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
