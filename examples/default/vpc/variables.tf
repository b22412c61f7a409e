variable "name" {
  description = "Name tag of the VPC and its parts."
  type        = string
}

variable "cidr" {
  description = "CIDR block of the VPC (a /16: each public subnet gets a /24)."
  type        = string
}

variable "az_count" {
  description = "Number of availability zones, one public subnet each."
  type        = number
  default     = 2
}
