"""Base image references of `image:<ref>` labels, and the tag of the runner image built on one.

Pure functions (docs/CONTRACTS.md "Runner image tags"):

- `normalise(text)`: validates a reference against Docker's grammar and writes it the way
  Docker resolves it: `ubuntu` → `docker.io/library/ubuntu:latest`, `ubuntu:22.04` →
  `docker.io/library/ubuntu:22.04`, `ghcr.io/o/i@sha256:<hex>` kept as it is. Anything else is
  refused with the reason; since the grammar admits only letters, digits and `._-/:@`, no shell
  metacharacter, space or newline ever reaches the build.
- `runner_fingerprint(files)`: the Python twin of the fingerprint Terraform computes over
  runner/Dockerfile and runner/entrypoint.sh (modules/image-build) and the buildspec checks.
- `variant_suffix(docker, architecture)`: what ends the tag of a runner image of a variant
  (`runner` or `docker`, runner/Dockerfile's targets) and architecture: "" for the plain
  x86_64 image, "-arm64", "-docker", "-docker-arm64" (mirrored once in modules/ecs-fleet).
- `image_tag(normalised, fingerprint, rebuilt_on, *, docker, architecture)`: THE tag of the
  runner image built on a base; a changed Dockerfile, entrypoint or runner version (pinned in
  the Dockerfile) changes the fingerprint, hence every tag, so nothing stale is ever reused.
  `tag_variant(tag)` reads the variant and architecture back (what a build of it must make).
- `rebuild_day(ref, max_age_days, now)`: the day the base's current max-age period began,
  part of the tag of a base with a mutable tag, so that its image is built again (new base
  layers, security patches) once that old; digest-pinned content never changes: no period.
- `base_allowed(normalised, patterns)`: whether a base matches `allowed_base_images`.

Grammar (github.com/distribution/reference, reference.go), restricted to what a build needs:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := domain-component ["." domain-component]* [":" port]
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [_.] | __ | -+
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := "sha256:" 64 lowercase hex digits (the only algorithm registries use)
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from control_plane.classes import ARCHITECTURES

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")
OFFICIAL_NAMESPACE = "library"
MAX_LENGTH = 255  # the whole normalised reference (the buildspec refuses longer ones too)
TAG_LENGTH = 32  # hex characters of the image tag (128 bits)
FINGERPRINT_FILES = ("Dockerfile", "entrypoint.sh")  # runner/ files the tag depends on
# The Docker Official Images, on both registries that serve them (module input
# allowed_base_images): the default of what `image:` labels may build on.
DEFAULT_ALLOWED_BASE_IMAGES = ("public.ecr.aws/docker/library/*", "docker.io/library/*")
DAY_SECONDS = 86400
DEFAULT_MAX_AGE_DAYS = 7  # module input image_max_age_days

_DOMAIN_COMPONENT = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
_ALLOWED = re.compile(r"[A-Za-z0-9._/:@-]+", re.ASCII)
_FINGERPRINT = re.compile(r"[0-9a-f]{64}", re.ASCII)


class InvalidReference(ValueError):
    """Not an image reference the fleet can build on (the message says why)."""


@dataclass(frozen=True)
class ImageRef:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = f"{self.domain}/{self.path}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split_name(name: str) -> tuple[str, str]:
    """(domain, path) as Docker splits them: the first component is a registry only if it
    has a dot or a port, or is `localhost`."""
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DEFAULT_DOMAIN, name


def normalise(text: str) -> ImageRef:
    """The reference Docker would pull for `text`; raises InvalidReference with the reason."""
    if not text or not text.strip():
        raise InvalidReference("the image reference is empty")
    if not _ALLOWED.fullmatch(text):
        bad = sorted({c for c in text if not _ALLOWED.fullmatch(c)})
        shown = " ".join(repr(c) for c in bad[:5])
        raise InvalidReference(
            f"characters not allowed in an image reference: {shown} "
            "(only letters, digits and . _ - / : @)"
        )
    reference, at, digest = text.partition("@")
    if at and not re.fullmatch(_DIGEST, digest, re.ASCII):
        raise InvalidReference("a digest must be @sha256: followed by 64 lowercase hex digits")
    name, tag = reference, None
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:  # a colon in the last component starts the tag (one before is a port)
        name, _, tag = reference.rpartition(":")
        if not re.fullmatch(_TAG, tag, re.ASCII):
            raise InvalidReference(
                f"tag {tag!r} is not valid: 1-128 letters, digits, '_', '.' or '-', "
                "not starting with '.' or '-'"
            )
    domain, path = _split_name(name)
    if not re.fullmatch(_DOMAIN, domain, re.ASCII):
        raise InvalidReference(f"registry {domain!r} is not a host name (with an optional port)")
    if domain in LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if path != path.lower():
        raise InvalidReference("the repository name must be lowercase")
    if not re.fullmatch(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", path, re.ASCII):
        raise InvalidReference(
            f"repository {path!r} is not valid: lowercase letters and digits, separated by "
            "'/', '.', '_', '__' or dashes"
        )
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    ref = ImageRef(domain, path, tag if tag or at else "latest", digest or None)
    if len(str(ref)) > MAX_LENGTH:
        raise InvalidReference(f"the reference is longer than {MAX_LENGTH} characters")
    return ref


def runner_fingerprint(files: Mapping[str, bytes]) -> str:
    """sha256 of `sha256sum Dockerfile entrypoint.sh` output: what Terraform computes from
    runner/ (modules/image-build, output `runner_fingerprint`) and the buildspec checks."""
    listing = "".join(
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in FINGERPRINT_FILES
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def variant(docker: bool) -> str:
    """runner/Dockerfile's target for a class: `docker` (Docker classes) or `runner`."""
    return "docker" if docker else "runner"


def variant_suffix(docker: bool, architecture: str) -> str:
    """The end of the tag of the runner image of a class: "" (plain, x86_64), "-arm64",
    "-docker", "-docker-arm64". Pinned images are `<runner_image_tag><suffix>`."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}")
    return ("-docker" if docker else "") + ("-arm64" if architecture == "arm64" else "")


def tag_variant(tag: str) -> tuple[bool, str]:
    """(docker, architecture) of a built tag (`image_tag`), from its suffix: what a build of
    that tag must produce. A tag without a suffix is the plain x86_64 image."""
    suffix = tag[TAG_LENGTH:]
    for docker in (True, False):
        for architecture in ARCHITECTURES:
            if suffix == variant_suffix(docker, architecture):
                return docker, architecture
    raise ValueError(f"image tag {tag!r} ends in no known variant suffix")


def image_tag(
    normalised: str,
    fingerprint: str,
    rebuilt_on: int | None = None,
    *,
    docker: bool = False,
    architecture: str = "x86_64",
) -> str:
    """The tag of the runner image built on the base `normalised` (a `normalise` result) from
    the runner files with `fingerprint`, as the variant and architecture of a class:
    32 hex characters of sha256("<ref>\\n<fingerprint>\\n<variant>\\n<architecture>"), with
    "\\n<rebuilt_on>" appended for a base rebuilt by age (`rebuild_day`), then the
    `variant_suffix` (so a tag says what it runs on, and no two variants share one)."""
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise ValueError("the runner fingerprint must be 64 lowercase hex digits")
    suffix = variant_suffix(docker, architecture)
    text = f"{normalised}\n{fingerprint}\n{variant(docker)}\n{architecture}"
    if rebuilt_on is not None:
        text += f"\n{rebuilt_on}"
    return hashlib.sha256(text.encode()).hexdigest()[:TAG_LENGTH] + suffix


def rebuild_day(ref: ImageRef, max_age_days: int, now: float) -> int | None:
    """The UTC day (days since 1970-01-01) on which the current `max_age_days` period of the
    base `ref` began, at epoch time `now`; None when the base is never rebuilt by age (pinned
    by digest, or `max_age_days` 0). Every job of one period gets the same day, hence the
    same tag and one build; the next period gets a new tag (ECR tags are immutable), so a job
    never gets an image built before its period began. Each base's periods start on a day of
    its own (an offset from its name), so the bases do not all rebuild on the same day."""
    if ref.digest or max_age_days <= 0:
        return None
    day = int(now // DAY_SECONDS)
    offset = int(hashlib.sha256(str(ref).encode()).hexdigest()[:8], 16) % max_age_days
    return day - (day + offset) % max_age_days


def base_allowed(normalised: str, patterns: Iterable[str]) -> bool:
    """Whether the normalised reference matches one of the glob `patterns` (fnmatch, case
    sensitive: `*` matches any characters, `/`, `:` and `@` included, `?` one character)."""
    return any(fnmatch.fnmatchcase(normalised, pattern) for pattern in patterns)
