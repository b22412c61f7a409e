terraform {
  required_version = ">= 1.5"

  # The state path is given at init time (-backend-config=path=...): local mode keeps it
  # under .local/terraform, next to the moto server whose in-memory state it describes.
  backend "local" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}
