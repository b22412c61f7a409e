################################################################################
# General
################################################################################

variable "aws_region" {
  description = "AWS region of the fleet. The region comes from your provider configuration; when set, this must equal it (plan fails otherwise)."
  type        = string
  default     = null

  validation {
    condition     = var.aws_region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as us-east-1, or null."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (docs/CONTRACTS.md): the ECS cluster, `<prefix>-<class>` task definitions, `<prefix>-state` table, `/<prefix>/` SSM path, and so on."
  type        = string
  default     = "runner-fleet"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix)) && !strcontains(var.name_prefix, "--")
    error_message = "name_prefix must be 3-24 characters: lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit."
  }
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}

  # AWS's tag rules, so that a bad tag fails the plan instead of the apply half-way.
  validation {
    condition = length(var.tags) <= 45 && alltrue([
      for key, value in var.tags : can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]{1,128}$", key))
      && can(regex("^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]{0,256}$", value)) && !startswith(lower(key), "aws:")
    ])
    error_message = "tags: at most 45 (AWS allows 50 per resource; the module adds its own), keys of 1-128 and values of 0-256 letters, digits, spaces or _ . : / = + - @, no key starting with aws:."
  }
}

################################################################################
# GitHub
################################################################################

variable "github_pat" {
  description = "GitHub token for registering runners (PAT auth: a fine-grained token with the repository's or organization's self-hosted runners write permission). Stored as an SSM SecureString, never in the Lambda environment. Set this or the three github_app_* variables."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.github_pat == null || can(regex("^[A-Za-z0-9_]{20,255}$", var.github_pat))
    error_message = "github_pat must be a GitHub token (20-255 letters, digits or '_', e.g. ghp_... or github_pat_...), or null for GitHub App auth."
  }
}

variable "github_app_id" {
  description = "GitHub App ID (App auth, with github_app_private_key and github_app_installation_id)."
  type        = string
  default     = null

  validation {
    condition     = var.github_app_id == null || can(regex("^[0-9]{1,20}$", var.github_app_id))
    error_message = "github_app_id must be the App's numeric ID."
  }
}

variable "github_app_private_key" {
  description = "PEM private key of the GitHub App (App auth). Stored as an SSM SecureString."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.github_app_private_key == null || can(regex("-----BEGIN (RSA )?PRIVATE KEY-----", var.github_app_private_key))
    error_message = "github_app_private_key must be the App's PEM private key (-----BEGIN RSA PRIVATE KEY----- ...)."
  }
}

variable "github_app_installation_id" {
  description = "Installation ID of the GitHub App on the repository's owner or on the organization (App auth)."
  type        = string
  default     = null

  validation {
    condition     = var.github_app_installation_id == null || can(regex("^[0-9]{1,20}$", var.github_app_installation_id))
    error_message = "github_app_installation_id must be the installation's numeric ID."
  }
}

variable "github_repo" {
  description = "Repository (`owner/repo`) whose jobs the fleet serves: runners register to it (repository scope). Set this or github_org."
  type        = string
  default     = null

  validation {
    condition     = var.github_repo == null || can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repo))
    error_message = "github_repo must be `owner/repo`, e.g. octo-org/octo-repo."
  }
}

variable "github_org" {
  description = "Organization whose jobs the fleet serves: runners register to it (organization scope). Set this or github_repo."
  type        = string
  default     = null

  validation {
    condition     = var.github_org == null || can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$", var.github_org))
    error_message = "github_org must be an organization login (letters, digits and hyphens, at most 39)."
  }
}

variable "github_api_url" {
  description = "GitHub REST API URL: https://api.github.com, or https://<host>/api/v3 for GitHub Enterprise Server."
  type        = string
  default     = "https://api.github.com"

  validation {
    condition     = can(regex("^https?://[^/\\s]+(/[^\\s]*)?$", var.github_api_url))
    error_message = "github_api_url must be an http(s) URL such as https://api.github.com or https://github.example.com/api/v3."
  }
}

variable "github_jit_configs_per_minute" {
  description = "Fleet-wide pace of JIT runner registrations (generate-jitconfig calls a minute, across all concurrent Lambda invocations). GitHub allows a GitHub App about 180 a minute; the default leaves room for the fleet's other calls."
  type        = number
  default     = 150

  validation {
    condition     = var.github_jit_configs_per_minute > 0
    error_message = "github_jit_configs_per_minute must be a number above 0."
  }
}

variable "webhook_secret" {
  description = "Secret of the GitHub webhook: every delivery's X-Hub-Signature-256 is checked against it. Stored as an SSM SecureString."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.webhook_secret) >= 16 && trimspace(var.webhook_secret) == var.webhook_secret
    error_message = "webhook_secret must be at least 16 characters, without leading or trailing whitespace."
  }
}

variable "webhook_secret_previous" {
  description = "The webhook secret being rotated out: deliveries signed with it are still accepted for webhook_secret_previous_grace_hours after it is set, so a rotation refuses none (docs/security.md). Stored as an SSM SecureString. Null: only webhook_secret is accepted."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.webhook_secret_previous == null || try(length(var.webhook_secret_previous) >= 16 && trimspace(var.webhook_secret_previous) == var.webhook_secret_previous, false)
    error_message = "webhook_secret_previous must be null, or at least 16 characters without leading or trailing whitespace."
  }
}

variable "webhook_secret_previous_grace_hours" {
  description = "Hours for which webhook_secret_previous is accepted, counted from when its SSM parameter was last written (the apply that set or changed it)."
  type        = number
  default     = 24
  nullable    = false

  validation {
    condition     = var.webhook_secret_previous_grace_hours >= 1 && var.webhook_secret_previous_grace_hours <= 720 && floor(var.webhook_secret_previous_grace_hours) == var.webhook_secret_previous_grace_hours
    error_message = "webhook_secret_previous_grace_hours must be a whole number between 1 and 720 (30 days)."
  }
}

variable "kms_key_arn" {
  description = "Customer KMS key for the SSM SecureStrings that hold the secrets and for the bucket of one-shot JIT runner configs (null: the AWS managed aws/ssm key for the secrets, and a key the module creates, with rotation, for the bucket)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "runner_group_id" {
  description = "Runner group the runners join (1 is the Default group)."
  type        = number
  default     = 1

  validation {
    condition     = var.runner_group_id >= 1 && floor(var.runner_group_id) == var.runner_group_id
    error_message = "runner_group_id must be a whole number >= 1."
  }
}

variable "runner_extra_labels" {
  description = "Labels, besides self-hosted, class:<name> and image:<ref>, that the fleet serves and gives its runners."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.runner_extra_labels) <= 90 && alltrue([for label in var.runner_extra_labels : can(regex("^[A-Za-z0-9._-][A-Za-z0-9._:/-]{0,99}$", label)) && !startswith(label, "class:") && !startswith(label, "image:")])
    error_message = "runner_extra_labels: at most 90 labels of 1-100 letters, digits, '.', '_', '-', ':' or '/', none starting with class: or image:."
  }
}

################################################################################
# Runners
################################################################################

variable "subnet_ids" {
  description = "Subnets of the runner tasks (they need a route to GitHub, ECR and SSM: a NAT gateway, or public subnets with assign_public_ip)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && length(var.subnet_ids) <= 16 && length(distinct(var.subnet_ids)) == length(var.subnet_ids) && alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "subnet_ids must be a non-empty list of subnet IDs (subnet-...): at most 16 (ECS's limit), no duplicates."
  }
}

variable "security_groups" {
  description = "Security groups of the runner tasks (egress to GitHub, ECR and SSM; runners need no ingress)."
  type        = list(string)

  validation {
    condition     = length(var.security_groups) > 0 && length(var.security_groups) <= 5 && length(distinct(var.security_groups)) == length(var.security_groups) && alltrue([for id in var.security_groups : can(regex("^sg-[0-9a-f]+$", id))])
    error_message = "security_groups must be 1-5 distinct security group IDs (sg-...)."
  }
}

variable "assign_public_ip" {
  description = "Give runner tasks a public IP. Needed when subnet_ids are public subnets without a NAT gateway, as in the seed example. Not with docker classes: awsvpc tasks on EC2 get no public IP, so they need private subnets with a NAT route."
  type        = bool
  default     = false
}

variable "runner_image_tag" {
  description = "Tag of the runner image, in the module's ECR repository `<prefix>-runner`, that the class task definitions run: push an image built from runner/Dockerfile under this tag. Tags are immutable: use a new tag for each new image. Null (the default): with image_build_project set, the default image is built on default_base_image on first use; without it, the tag `default`."
  type        = string
  default     = null

  validation {
    condition     = var.runner_image_tag == null || can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.runner_image_tag))
    error_message = "runner_image_tag must be a Docker tag: 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'."
  }
}

variable "runner_class_sizes" {
  description = "Runner classes: name => { cpu (ECS units), memory (MiB), architecture (x86_64 or arm64), ephemeral_storage_gib (21-200; null: Fargate's 20 GiB), docker (true: an EC2 capacity provider and a privileged runner with its own Docker daemon), capacity_strategy (a Fargate class's override of capacity_strategy) }, chosen by a job's `class:<name>` label. A Fargate class is a valid Fargate size, a docker class a valid EC2 task size that fits its architecture's docker_instance_types; each class gets a task definition `<prefix>-<name>`."
  type = map(object({
    cpu                   = number
    memory                = number
    architecture          = optional(string, "x86_64")
    ephemeral_storage_gib = optional(number)
    docker                = optional(bool, false)
    capacity_strategy     = optional(string)
  }))
  default = {
    small  = { cpu = 512, memory = 1024 }
    medium = { cpu = 1024, memory = 2048 }
    large  = { cpu = 2048, memory = 4096 }
  }

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

variable "default_class" {
  description = "Class of jobs without a class:<name> label; must be a key of runner_class_sizes (null: the smallest class)."
  type        = string
  default     = null
}

variable "capacity_strategy" {
  description = "Where runners run: FARGATE (on-demand), FARGATE_SPOT, or spotPreferred (Spot, retried on FARGATE when Spot has no capacity). Spot tasks can be stopped with two minutes' notice."
  type        = string
  default     = "FARGATE"

  validation {
    condition     = contains(["FARGATE", "FARGATE_SPOT", "spotPreferred"], var.capacity_strategy)
    error_message = "capacity_strategy must be FARGATE, FARGATE_SPOT or spotPreferred."
  }
}

variable "runner_timeout_minutes" {
  description = "The cleanup stops a runner task that has run this long (GitHub's default job timeout is 360 minutes)."
  type        = number
  default     = 360

  validation {
    condition     = var.runner_timeout_minutes >= 5 && var.runner_timeout_minutes <= 7200 && floor(var.runner_timeout_minutes) == var.runner_timeout_minutes
    error_message = "runner_timeout_minutes must be a whole number between 5 and 7200 (5 days)."
  }
}

variable "runner_idle_minutes" {
  description = "The cleanup stops a runner that has not taken a job after this many minutes."
  type        = number
  default     = 15

  validation {
    condition     = var.runner_idle_minutes >= 1 && var.runner_idle_minutes <= 1440 && floor(var.runner_idle_minutes) == var.runner_idle_minutes
    error_message = "runner_idle_minutes must be a whole number between 1 and 1440."
  }
}

variable "max_relaunches" {
  description = "How often a job is relaunched while GitHub still shows it queued after its runner stopped before taking a job (any cause: Spot interruption, no capacity, failed start, entrypoint exit); a job whose runner took another job is relaunched whenever that happens (not capped: that runner ran another queued job). 0 turns relaunches off."
  type        = number
  default     = 2

  validation {
    condition     = var.max_relaunches >= 0 && var.max_relaunches <= 10 && floor(var.max_relaunches) == var.max_relaunches
    error_message = "max_relaunches must be a whole number between 0 and 10."
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

variable "ecr_force_delete" {
  description = "Let `terraform destroy` delete the ECR repository even when it still holds images."
  type        = bool
  default     = false
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

variable "docker_distinct_instance" {
  description = "One Docker task per instance (RunTask placement constraint distinctInstance): a privileged job can reach its instance, so no two jobs share one at a time. false packs Docker tasks onto instances (fewer instances; a job can then see and tamper with its neighbours: docs/security.md)."
  type        = bool
  default     = true
}

variable "docker_instance_reuse" {
  description = "Let a Docker instance serve job after job. false (the default): each instance runs one job; the control plane drains it when its task starts and terminates it when the task stops, so a job that tampered with its host never meets another job there (docs/security.md). true: faster starts on warm instances, at that risk; needed by docker_distinct_instance = false."
  type        = bool
  default     = false
}

variable "docker_capacity_wait_minutes" {
  description = "The cleanup reports (log error, metric TasksWaitingForCapacity, alarm `<prefix>-capacity-wait`) a Docker task still waiting for an instance after this many minutes."
  type        = number
  default     = 15

  validation {
    condition     = var.docker_capacity_wait_minutes >= 1 && var.docker_capacity_wait_minutes <= 1440 && floor(var.docker_capacity_wait_minutes) == var.docker_capacity_wait_minutes
    error_message = "docker_capacity_wait_minutes must be a whole number from 1 to 1440."
  }
}

################################################################################
# Image builds
################################################################################

variable "image_build_project" {
  description = "Name of a CodeBuild project the module creates to build runner images for `image:<base>` labels (null: no image builds)."
  type        = string
  default     = null

  validation {
    condition     = var.image_build_project == null || can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,149}$", var.image_build_project))
    error_message = "image_build_project must be 2-150 letters, digits, '-' or '_', starting with a letter or digit."
  }
}

variable "default_base_image" {
  description = "Base image of the default runner image (runner/Dockerfile's BASE_IMAGE)."
  type        = string
  default     = "public.ecr.aws/docker/library/ubuntu:22.04"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$", var.default_base_image))
    error_message = "default_base_image must be an image reference such as public.ecr.aws/docker/library/ubuntu:22.04."
  }
}

variable "allowed_base_images" {
  description = "Base images that runner images may be built on: glob patterns (`*` any characters, `/` included; `?` one character) matched against the normalised reference (`ubuntu:24.04` is `docker.io/library/ubuntu:24.04`, see docs/image-builds.md). A job whose `image:` label names any other base is rejected with the reason, and default_base_image must match one. The default allows the Docker Official Images; end a pattern with `/` before the `*` (`ghcr.io/my-org/*`) so that it does not match other owners' names too."
  type        = list(string)
  default     = ["public.ecr.aws/docker/library/*", "docker.io/library/*"]
  nullable    = false

  validation {
    condition     = length(var.allowed_base_images) > 0 && alltrue([for pattern in var.allowed_base_images : can(regex("^[A-Za-z0-9._/:@*?-]{1,255}$", pattern))])
    error_message = "allowed_base_images must be a non-empty list of patterns of 1-255 letters, digits, '.', '_', '-', '/', ':', '@', '*' or '?'."
  }
}

variable "image_max_age_days" {
  description = "Age in days after which a runner image built on a mutable base tag (one not pinned with `@sha256:`) is built again, so runners pick up the base's security patches; 0: never rebuilt for age. The image tag of such a base includes the day its current period began (docs/image-builds.md)."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.image_max_age_days >= 0 && var.image_max_age_days <= 365 && floor(var.image_max_age_days) == var.image_max_age_days
    error_message = "image_max_age_days must be a whole number between 0 and 365."
  }
}

################################################################################
# Control plane
################################################################################

variable "event_bus_name" {
  description = "Name of the EventBridge bus the webhook events go to (null: `<prefix>-events`). The module creates it."
  type        = string
  default     = null

  validation {
    condition     = var.event_bus_name == null || (can(regex("^[A-Za-z0-9._-]{1,256}$", coalesce(var.event_bus_name, "x"))) && var.event_bus_name != "default")
    error_message = "event_bus_name must be 1-256 letters, digits, '.', '_' or '-', and not `default` (the module creates its own bus)."
  }
}

variable "cleanup_interval_minutes" {
  description = "How often the cleanup runs (stuck runners, leftover JIT configs, dead letters)."
  type        = number
  default     = 5

  validation {
    condition     = var.cleanup_interval_minutes >= 1 && var.cleanup_interval_minutes <= 60 && floor(var.cleanup_interval_minutes) == var.cleanup_interval_minutes
    error_message = "cleanup_interval_minutes must be a whole number from 1 to 60."
  }
}

variable "lambda_zip_path" {
  description = "A prebuilt control-plane Lambda zip (scripts/build_lambda.py). Null: `terraform apply` builds it with python3 whenever the sources change or the zip is missing."
  type        = string
  default     = null

  validation {
    condition     = var.lambda_zip_path == null || try(endswith(var.lambda_zip_path, ".zip") && fileexists(var.lambda_zip_path), false)
    error_message = "lambda_zip_path must be an existing .zip file (build it with scripts/build_lambda.py), or null."
  }
}

variable "lambda_timeout" {
  description = "Timeout of the control-plane Lambda, in seconds."
  type        = number
  default     = 120

  validation {
    condition     = var.lambda_timeout >= 10 && var.lambda_timeout <= 900 && floor(var.lambda_timeout) == var.lambda_timeout
    error_message = "lambda_timeout must be a whole number of seconds between 10 and 900."
  }
}

variable "lambda_memory_size" {
  description = "Memory of the control-plane Lambda, in MiB."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_size >= 128 && var.lambda_memory_size <= 10240 && floor(var.lambda_memory_size) == var.lambda_memory_size
    error_message = "lambda_memory_size must be a whole number of MiB between 128 and 10240."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of the control-plane Lambda (null: unreserved)."
  type        = number
  default     = null

  validation {
    condition     = var.lambda_reserved_concurrency == null || try(var.lambda_reserved_concurrency >= 1 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency, false)
    error_message = "lambda_reserved_concurrency must be null or a whole number >= 1 (0 would stop the control plane)."
  }
}

variable "log_level" {
  description = "Log level of the control-plane Lambda."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group of the module (runners, Lambda, image builds, API access), in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "api_access_logs_enabled" {
  description = "Write API Gateway access logs. Needs the account's API Gateway CloudWatch role (aws_api_gateway_account) to be set up."
  type        = bool
  default     = false
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second the webhook endpoint accepts."
  type        = number
  default     = 50

  validation {
    condition     = var.api_throttling_rate_limit > 0
    error_message = "api_throttling_rate_limit must be > 0."
  }
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests the webhook endpoint accepts."
  type        = number
  default     = 100

  validation {
    condition     = var.api_throttling_burst_limit >= 1 && floor(var.api_throttling_burst_limit) == var.api_throttling_burst_limit
    error_message = "api_throttling_burst_limit must be a whole number >= 1."
  }
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into runner tasks (`ecsrunner runners exec`). The runner task role then holds the four ssmmessages channel actions and writes the session log to `/aws/ecs/<name_prefix>/exec`; with this off and no runner_job_policy_arns, tasks run with no task role at all."
  type        = bool
  default     = true
}

variable "runner_job_policy_arns" {
  description = "IAM policy ARNs attached to the runner task role, for jobs that need AWS access without GitHub OIDC (docs/security.md). Only when this is set do job steps get the task role's credentials; by default they get no AWS credentials."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.runner_job_policy_arns : can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$", arn))])
    error_message = "runner_job_policy_arns must hold IAM policy ARNs (arn:<partition>:iam::<account or aws>:policy/<name>)."
  }
}

variable "iam_role_path" {
  description = "Path of every IAM role the module creates."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7E]{0,510}/)?$", var.iam_role_path))
    error_message = "iam_role_path must start and end with '/' (e.g. \"/\" or \"/ci/\"), at most 512 characters."
  }
}

variable "iam_permissions_boundary" {
  description = "ARN of a permissions boundary policy set on every IAM role the module creates (null: none)."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$", var.iam_permissions_boundary))
    error_message = "iam_permissions_boundary must be an IAM policy ARN."
  }
}

################################################################################
# Observability and cost
################################################################################

variable "metrics_namespace" {
  description = "CloudWatch namespace of the control plane's metrics (EMF lines on the Lambda's stdout), the dashboard and the alarms."
  type        = string
  default     = "AWSRunnerFleet"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9A-Za-z._/#: -]{1,255}$", var.metrics_namespace)) && trimspace(var.metrics_namespace) != "" && !startswith(var.metrics_namespace, ":") && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 letters, digits, spaces or . _ - / # :, not only spaces, not starting with ':' or with 'AWS/' (reserved for AWS services)."
  }
}

variable "fargate_prices" {
  description = "Fargate prices the control plane estimates each job's cost with, in USD: per vCPU-hour and GB-hour for x86_64 and arm64, per GB-hour of ephemeral storage beyond the free 20 GB, and spot_discount, the fraction Fargate Spot takes off on-demand. The defaults are us-east-1 Linux on-demand prices from the AWS Fargate pricing page; spot_discount is an estimate (Spot prices move). Set them for your region or contract."
  type = object({
    x86_64_vcpu_hour          = optional(number, 0.04048)
    x86_64_gb_hour            = optional(number, 0.004445)
    arm64_vcpu_hour           = optional(number, 0.03238)
    arm64_gb_hour             = optional(number, 0.00356)
    ephemeral_storage_gb_hour = optional(number, 0.000111)
    spot_discount             = optional(number, 0.7)
  })
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for name, price in var.fargate_prices : price >= 0 if name != "spot_discount"]) && var.fargate_prices.spot_discount >= 0 && var.fargate_prices.spot_discount < 1
    error_message = "fargate_prices: every price must be >= 0, and spot_discount a fraction from 0 up to (not including) 1."
  }
}

variable "dashboard_enabled" {
  description = "Create the CloudWatch dashboard `<name_prefix>` (queue wait, start time, launches, failures, dead letters, Lambda errors, running tasks, cost)."
  type        = bool
  default     = true
  nullable    = false
}

variable "alarms_enabled" {
  description = "Create the CloudWatch alarms: dead-letter queue not empty, Lambda errors, queue wait p90 too long, jobs stranded."
  type        = bool
  default     = true
  nullable    = false
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic the alarms notify when they go into and out of alarm (null: the alarms notify no one)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be null or a standard SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)."
  }
}

variable "alarm_queue_wait_seconds" {
  description = "The queue wait alarm fires when the p90 of jobs' queue wait (GitHub created_at to started_at) stays above this many seconds for 10 minutes."
  type        = number
  default     = 300
  nullable    = false

  validation {
    condition     = var.alarm_queue_wait_seconds > 0
    error_message = "alarm_queue_wait_seconds must be a number of seconds above 0."
  }
}

variable "alarm_stranded_job_seconds" {
  description = "A job GitHub shows queued, with labels this fleet serves, for longer than this many seconds is stranded: the cleanup counts such jobs (JobsStranded), and the stranded-jobs alarm fires on any."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.alarm_stranded_job_seconds >= 60 && floor(var.alarm_stranded_job_seconds) == var.alarm_stranded_job_seconds
    error_message = "alarm_stranded_job_seconds must be a whole number of seconds, at least 60."
  }
}
