"""Runner images for `image:<base>` labels (docs/image-builds.md): `refs` names and tags
images (pure), `builds` decides and starts CodeBuild builds, `records` stores them in the state
table, `events` settles builds and their waiting jobs on CodeBuild's state changes."""
