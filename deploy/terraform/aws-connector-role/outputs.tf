output "role_arn" {
  description = "Set BATON_ROLE_ARN to this."
  value       = aws_iam_role.connector.arn
}
