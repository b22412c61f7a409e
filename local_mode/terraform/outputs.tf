output "subnet_id" {
  description = "Subnet of the runner tasks."
  value       = aws_subnet.runners.id
}

output "security_group_id" {
  description = "Security group of the runner tasks."
  value       = aws_security_group.runners.id
}

output "fleet" {
  description = "Every output of the fleet module (local mode reads names from here)."
  value       = module.fleet
  sensitive   = true
}
