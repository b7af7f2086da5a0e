# The connector's IAM role: trusted by one principal with the external ID, allowed exactly
# what `host policy` prints. Create it in the Organization's management account when
# Organizations support is on.

resource "aws_iam_role" "connector" {
  name        = var.role_name
  description = "Read access (and, when enabled, provisioning) for the baton AWS connector"
  assume_role_policy = templatefile("${path.module}/trust.json.tftpl", {
    trusted_principal_arn = var.trusted_principal_arn
    external_id           = var.external_id
  })
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy" "connector" {
  name   = "BatonConnectorPermissions"
  role   = aws_iam_role.connector.id
  policy = var.permissions_policy_json != "" ? var.permissions_policy_json : file("${path.module}/policy.json")
}
