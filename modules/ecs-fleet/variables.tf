variable "name_prefix" {
  description = "Prefix of every resource name: the cluster is `<prefix>`, task definition families `<prefix>-<class>`, the ECR repository `<prefix>-runner` (docs/CONTRACTS.md)."
  type        = string
  default     = "runner-fleet"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix)) && !strcontains(var.name_prefix, "--")
    error_message = "name_prefix must be 3-24 characters: lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit."
  }
}

variable "runner_class_sizes" {
  description = "Runner classes: class name => { cpu (ECS units), memory (MiB), architecture, ephemeral_storage_gib, docker, capacity_strategy }, one task definition each (the root module's runner_class_sizes)."
  type = map(object({
    cpu                   = number
    memory                = number
    architecture          = optional(string, "x86_64")
    ephemeral_storage_gib = optional(number)
    docker                = optional(bool, false)
    capacity_strategy     = optional(string)
  }))

  validation {
    condition     = length(var.runner_class_sizes) > 0 && alltrue([for name in keys(var.runner_class_sizes) : can(regex("^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", name))])
    error_message = "runner_class_sizes needs at least one class; class names (used in `class:<name>` labels and task definition families) must be 1-32 lowercase letters, digits or inner hyphens."
  }

  # Each message names the classes that break its rule.

  # Fargate's valid task sizes (cpu units => memory MiB), as in the Fargate documentation.
  validation {
    condition = alltrue([for size in values(var.runner_class_sizes) : size.docker || contains(lookup({
      "256"   = [512, 1024, 2048]
      "512"   = [1024, 2048, 3072, 4096]
      "1024"  = range(2048, 8193, 1024)
      "2048"  = range(4096, 16385, 1024)
      "4096"  = range(8192, 30721, 1024)
      "8192"  = range(16384, 61441, 4096)
      "16384" = range(32768, 122881, 8192)
    }, tostring(size.cpu), []), size.memory)])
    error_message = "Each runner class must be a valid Fargate size (docker classes aside): cpu 256 => memory 512, 1024 or 2048; 512 => 1024-4096 (1024 steps); 1024 => 2048-8192; 2048 => 4096-16384; 4096 => 8192-30720 (1024 steps); 8192 => 16384-61440 (4096 steps); 16384 => 32768-122880 (8192 steps). Not a Fargate size: ${join(", ", [for name, size in var.runner_class_sizes : name if !size.docker && !contains(lookup({ "256" = [512, 1024, 2048], "512" = [1024, 2048, 3072, 4096], "1024" = range(2048, 8193, 1024), "2048" = range(4096, 16385, 1024), "4096" = range(8192, 30721, 1024), "8192" = range(16384, 61441, 4096), "16384" = range(32768, 122881, 8192) }, tostring(size.cpu), []), size.memory)])}."
  }

  # ECS task sizes on EC2: cpu 128-196608 units (0.125-192 vCPU), memory from 128 MiB.
  validation {
    condition     = alltrue([for size in values(var.runner_class_sizes) : !size.docker || (size.cpu >= 128 && size.cpu <= 196608 && floor(size.cpu) == size.cpu && size.memory >= 128 && floor(size.memory) == size.memory)])
    error_message = "A docker class must be a valid EC2 task size: cpu a whole number of units from 128 to 196608, memory a whole number of MiB from 128. Not an EC2 task size: ${join(", ", [for name, size in var.runner_class_sizes : name if size.docker && !(size.cpu >= 128 && size.cpu <= 196608 && floor(size.cpu) == size.cpu && size.memory >= 128 && floor(size.memory) == size.memory)])}."
  }

  validation {
    condition     = alltrue([for size in values(var.runner_class_sizes) : contains(["x86_64", "arm64"], size.architecture)])
    error_message = "A runner class's architecture must be x86_64 or arm64. Not so: ${join(", ", [for name, size in var.runner_class_sizes : name if !contains(["x86_64", "arm64"], size.architecture)])}."
  }

  validation {
    condition     = alltrue([for size in values(var.runner_class_sizes) : size.ephemeral_storage_gib == null || try(size.ephemeral_storage_gib >= 21 && size.ephemeral_storage_gib <= 200 && floor(size.ephemeral_storage_gib) == size.ephemeral_storage_gib, false)])
    error_message = "ephemeral_storage_gib must be null (Fargate's 20 GiB) or a whole number of GiB from 21 to 200. Not so: ${join(", ", [for name, size in var.runner_class_sizes : name if !(size.ephemeral_storage_gib == null || try(size.ephemeral_storage_gib >= 21 && size.ephemeral_storage_gib <= 200 && floor(size.ephemeral_storage_gib) == size.ephemeral_storage_gib, false))])}."
  }

  validation {
    condition     = alltrue([for size in values(var.runner_class_sizes) : !size.docker || size.ephemeral_storage_gib == null])
    error_message = "ephemeral_storage_gib is for Fargate classes: a docker class's disk is its instance's root volume (docker_volume_size_gib). Docker classes with ephemeral_storage_gib: ${join(", ", [for name, size in var.runner_class_sizes : name if size.docker && size.ephemeral_storage_gib != null])}."
  }

  validation {
    condition     = alltrue([for size in values(var.runner_class_sizes) : size.capacity_strategy == null || contains(["FARGATE", "FARGATE_SPOT", "spotPreferred"], coalesce(size.capacity_strategy, "-"))])
    error_message = "A class's capacity_strategy must be null (the module-wide capacity_strategy), FARGATE, FARGATE_SPOT or spotPreferred. Not so: ${join(", ", [for name, size in var.runner_class_sizes : name if !(size.capacity_strategy == null || contains(["FARGATE", "FARGATE_SPOT", "spotPreferred"], coalesce(size.capacity_strategy, "-")))])}."
  }

  validation {
    condition     = alltrue([for size in values(var.runner_class_sizes) : !size.docker || size.capacity_strategy == null])
    error_message = "capacity_strategy is for Fargate classes: a docker class runs on its architecture's EC2 capacity provider (docker_spot chooses Spot instances). Docker classes with capacity_strategy: ${join(", ", [for name, size in var.runner_class_sizes : name if size.docker && size.capacity_strategy != null])}."
  }
}

variable "runner_image_tag" {
  description = "Tag, in this module's ECR repository, of the runner image the class task definitions run (an image built from runner/Dockerfile)."
  type        = string
  default     = "default"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.runner_image_tag))
    error_message = "runner_image_tag must be a Docker tag: 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'."
  }
}

variable "container_insights" {
  description = "CloudWatch Container Insights on the cluster: enabled, enhanced or disabled."
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be one of enabled, enhanced, disabled."
  }
}

variable "log_retention_days" {
  description = "Retention of the runner log group, in days (a CloudWatch Logs retention value)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "ecr_force_delete" {
  description = "Let `terraform destroy` delete the ECR repository even when it still holds images."
  type        = bool
  default     = false
}

variable "ecr_max_image_count" {
  description = "The ECR lifecycle policy keeps this many most recent images besides the runner_image_tag image, which it never expires (untagged images expire after a day)."
  type        = number
  default     = 100

  validation {
    condition     = var.ecr_max_image_count >= 1 && floor(var.ecr_max_image_count) == var.ecr_max_image_count
    error_message = "ecr_max_image_count must be a whole number >= 1."
  }
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into runner tasks (`ecsrunner runners exec`): the task role then holds the ssmmessages channel actions and writes the session log to its own group, nothing else of the fleet's."
  type        = bool
  default     = true
}

variable "runner_job_policy_arns" {
  description = "IAM policy ARNs attached to the runner task role for job steps that need AWS access without GitHub OIDC. Empty (the default): job steps get no AWS credentials at all."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.runner_job_policy_arns : can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$", arn))])
    error_message = "runner_job_policy_arns must hold IAM policy ARNs (arn:<partition>:iam::<account or aws>:policy/<name>)."
  }
}

variable "iam_role_path" {
  description = "Path of the IAM roles this module creates."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7E]{0,510}/)?$", var.iam_role_path))
    error_message = "iam_role_path must start and end with '/' (e.g. \"/\" or \"/ci/\"), at most 512 characters."
  }
}

variable "iam_permissions_boundary" {
  description = "ARN of a permissions boundary policy set on every IAM role this module creates (null: none)."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$", var.iam_permissions_boundary))
    error_message = "iam_permissions_boundary must be an IAM policy ARN."
  }
}

################################################################################
# Docker classes (runner_class_sizes with docker = true): EC2 capacity
################################################################################

variable "docker_instance_types" {
  description = "Instance types of the Docker classes' Auto Scaling groups, per architecture (x86_64, arm64): the first has priority on demand, Spot picks by price and capacity. Only architectures a docker class uses get a group; a class must fit the smallest type of its architecture. Plan reads each type (DescribeInstanceTypes): a type your region does not offer fails it, so list types offered there."
  type        = map(list(string))
  default = {
    x86_64 = ["m7i.xlarge", "m6i.xlarge", "m5.xlarge"]
    arm64  = ["m7g.xlarge", "m6g.xlarge"]
  }

  validation {
    condition     = alltrue([for arch, types in var.docker_instance_types : contains(["x86_64", "arm64"], arch) && length(types) > 0 && length(types) <= 20 && length(distinct(types)) == length(types) && alltrue([for type in types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", type))])])
    error_message = "docker_instance_types: keys x86_64 and/or arm64, each 1-20 distinct instance types (family.size, e.g. m7i.xlarge)."
  }
}

variable "docker_spot" {
  description = "The Docker classes' instances are Spot instances (price-capacity-optimized) instead of on-demand. A Spot interruption stops the instance's task: a runner that has not taken its job yet is relaunched, a job already running is failed by GitHub, as on Fargate Spot."
  type        = bool
  default     = false
}

variable "docker_min_instances" {
  description = "Instances each Docker Auto Scaling group (one per architecture a docker class uses) keeps running, idle or not. 0: a job on a cold class waits minutes for an instance; more: faster starts, billed around the clock."
  type        = number
  default     = 0

  validation {
    condition     = var.docker_min_instances >= 0 && var.docker_min_instances <= 1000 && floor(var.docker_min_instances) == var.docker_min_instances
    error_message = "docker_min_instances must be a whole number from 0 to 1000."
  }
}

variable "docker_max_instances" {
  description = "Most instances of each Docker Auto Scaling group: with one Docker task per instance (docker_distinct_instance), the most Docker jobs running at once per architecture."
  type        = number
  default     = 10

  validation {
    condition     = var.docker_max_instances >= 1 && var.docker_max_instances <= 1000 && floor(var.docker_max_instances) == var.docker_max_instances
    error_message = "docker_max_instances must be a whole number from 1 to 1000."
  }
}

variable "docker_volume_size_gib" {
  description = "Size of the Docker instances' root volume (encrypted gp3), in GiB: the jobs' images, layers and build cache live there while their task runs."
  type        = number
  default     = 100

  validation {
    condition     = var.docker_volume_size_gib >= 30 && var.docker_volume_size_gib <= 16384 && floor(var.docker_volume_size_gib) == var.docker_volume_size_gib
    error_message = "docker_volume_size_gib must be a whole number from 30 (the ECS-optimized AMI's snapshot) to 16384."
  }
}

variable "docker_ami_id" {
  description = "AMI of the Docker instances per architecture (x86_64, arm64): an ECS-optimized image, or one with the ECS agent and Docker. A missing architecture (or null) takes the recommended ECS-optimized Amazon Linux 2023 AMI from its public SSM parameter, read at each plan."
  type        = map(string)
  default     = null

  validation {
    condition     = var.docker_ami_id == null || alltrue([for arch, id in coalesce(var.docker_ami_id, {}) : contains(["x86_64", "arm64"], arch) && can(regex("^ami-[0-9a-f]{8,17}$", id))])
    error_message = "docker_ami_id: keys x86_64 and/or arm64, values AMI IDs (ami-...)."
  }
}

variable "subnet_ids" {
  description = "Subnets of the Docker instances (the runner tasks' subnets: private, with a NAT route)."
  type        = list(string)
  default     = []
}

variable "security_groups" {
  description = "Security groups of the Docker instances (the runner tasks' groups: egress only)."
  type        = list(string)
  default     = []
}
