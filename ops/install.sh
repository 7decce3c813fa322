#!/usr/bin/env bash
# Set up dd0c/cost on one self-hosted box with Docker Compose:
#   1. check docker and the compose plugin
#   2. write .env with generated secrets if there is none (an existing .env is never overwritten)
#   3. docker compose up -d (builds our image from ops/Dockerfile)
#   4. wait until the api and caddy report healthy
#   5. create the first login: docker compose run --rm api dd0c-cost users add ...
#   6. print the URL
# Run it from a checkout: ops/install.sh [--domain cost.example.com] [--admin alice] [--kafka N] [--dry-run]
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly COMPOSE_FILE="${ROOT}/compose.yaml"
readonly ENV_FILE="${ROOT}/.env"  # compose reads it from the compose file's directory
readonly HEALTH_TIMEOUT="${DD0C_INSTALL_TIMEOUT:-600}"  # seconds to wait for the services to be healthy
readonly MIN_SECRET_BYTES=32

DRY_RUN=0
DOMAIN="${DD0C_DOMAIN:-}"
ADMIN="admin"
TENANT="default"
KAFKA_WORKERS=0
ASSUME_YES=0

usage() {
  cat <<'EOF'
usage: ops/install.sh [options]

  --domain NAME     the name this box answers to (TLS certificate for it); default: asks, or localhost
  --admin NAME      the first user (default admin); its password is generated and printed once
  --tenant NAME     the tenant of that user (default "default")
  --kafka N         scale out: Kafka (KRaft) + N faust workers (only when .env is created)
  --yes             do not ask anything (use the defaults)
  --dry-run         create .env if missing, print every docker step instead of running it
  -h, --help        this text

.env sits next to compose.yaml; it holds the secrets (mode 600) and is never overwritten.
EOF
}

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# Run a command, or in --dry-run print it.
run() {
  if (( DRY_RUN )); then
    printf '[dry-run] %s\n' "$*"
    return 0
  fi
  "$@"
}

compose() { run docker compose -f "${COMPOSE_FILE}" "$@"; }

parse_args() {
  while (( $# )); do
    case "$1" in
      --domain) [[ $# -ge 2 && "$2" != -* ]] || die "--domain needs a name (e.g. --domain cost.example.com)"
                DOMAIN="$2"; shift 2 ;;
      --admin) ADMIN="${2:?--admin needs a user name}"; shift 2 ;;
      --tenant) TENANT="${2:?--tenant needs a name}"; shift 2 ;;
      --kafka) KAFKA_WORKERS="${2:?--kafka needs a worker count}"; shift 2 ;;
      --yes|-y) ASSUME_YES=1; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
  done
  [[ "${KAFKA_WORKERS}" =~ ^[0-9]+$ ]] || die "--kafka needs a number of workers (got ${KAFKA_WORKERS})"
  [[ "${ADMIN}" =~ ^[A-Za-z0-9._@-]+$ ]] || die "--admin: letters, digits and . _ @ - only (got ${ADMIN})"
  [[ "${TENANT}" =~ ^[A-Za-z0-9._-]+$ ]] || die "--tenant: letters, digits and . _ - only (got ${TENANT})"
}

# ------------------------------------------------------------------------------------------- 1. prerequisites

check_docker() {
  [[ -f "${COMPOSE_FILE}" ]] || die "no compose.yaml in ${ROOT}: run this from a dd0c/cost checkout"
  if (( DRY_RUN )); then
    run docker version --format '{{.Server.Version}}'
    run docker compose version --short
    return 0
  fi
  command -v docker >/dev/null 2>&1 || die "docker is not installed (https://docs.docker.com/engine/install/)"
  docker compose version >/dev/null 2>&1 \
    || die "the docker compose plugin is missing (install docker-compose-plugin; the old docker-compose v1 will not do)"
  docker info >/dev/null 2>&1 || die "cannot reach the docker engine: is it running, and may this user use it?"
  local engine plugin
  engine="$(docker version --format '{{.Server.Version}}')"
  plugin="$(docker compose version --short)"
  say "docker ${engine}, compose ${plugin}"
}

# ------------------------------------------------------------------------------------------- 2. .env

# URL-safe random text: letters and digits only (it ends up inside DATABASE_URL and REDIS_URL).
random_text() {
  local bytes="$1" text
  text="$(head -c "${bytes}" /dev/urandom | base64 | tr -d '\n=+/')"
  printf '%s' "${text}"
}

# A Fernet key: 32 random bytes, URL-safe base64 (what DD0C_SECRET_KEY seals account credentials with).
fernet_key() {
  head -c 32 /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_'
}

ask_domain() {
  if [[ -n "${DOMAIN}" ]]; then
    return 0
  fi
  if (( ! ASSUME_YES )) && [[ -t 0 ]]; then
    read -r -p "Domain this box answers to (blank = localhost): " DOMAIN || true
  fi
  DOMAIN="${DOMAIN:-localhost}"
}

write_env() {
  if [[ -e "${ENV_FILE}" ]]; then
    say "keeping the existing ${ENV_FILE} (it is never overwritten)"
    local missing=() key
    for key in DD0C_DB_PASSWORD DD0C_REDIS_PASSWORD DD0C_JWT_SECRET DD0C_SECRET_KEY; do
      grep -q "^${key}=." "${ENV_FILE}" || missing+=("${key}")
    done
    (( ${#missing[@]} == 0 )) || die "${ENV_FILE} lacks ${missing[*]}: add them (or move the file away to regenerate it)"
    local asked="${DOMAIN}"
    DOMAIN="$(sed -n 's/^DD0C_DOMAIN=//p' "${ENV_FILE}" | tail -n 1)"
    DOMAIN="${DOMAIN:-localhost}"
    # a --domain that differs from the kept .env would otherwise be dropped without a word (wrong certificate)
    [[ -z "${asked}" || "${asked}" == "${DOMAIN}" ]] \
      || warn "--domain ${asked} is not applied: ${ENV_FILE} keeps DD0C_DOMAIN=${DOMAIN}; edit it there, then rerun"
    (( KAFKA_WORKERS == 0 )) || warn "--kafka is applied only to a new .env; edit ${ENV_FILE} (see compose.yaml)"
    return 0
  fi

  ask_domain
  [[ "${DOMAIN}" =~ ^[A-Za-z0-9.-]+$ ]] || die "not a host name: ${DOMAIN}"
  local jwt db_password redis_password secret_key written
  jwt="$(random_text 48)"
  db_password="$(random_text 24)"
  redis_password="$(random_text 24)"
  secret_key="$(fernet_key)"
  written="$(date -u +%Y-%m-%dT%H:%MZ)"
  (( ${#jwt} >= MIN_SECRET_BYTES )) || die "could not generate a JWT secret (is /dev/urandom readable?)"
  (( ${#db_password} >= 20 && ${#redis_password} >= 20 && ${#secret_key} == 44 )) || die "could not generate secrets"

  (
    umask 077  # secrets: readable by the owner only
    {
      printf '# dd0c/cost, written by ops/install.sh on %s. Secrets: keep this file private.\n' "${written}"
      printf '# Losing DD0C_SECRET_KEY makes stored account credentials unreadable: back it up.\n'
      printf 'DD0C_DOMAIN=%s\n' "${DOMAIN}"
      printf 'DD0C_PUBLIC_URL=https://%s\n' "${DOMAIN}"
      printf 'DD0C_TENANT=%s\n' "${TENANT}"
      printf 'DD0C_DB_PASSWORD=%s\n' "${db_password}"
      printf 'DD0C_REDIS_PASSWORD=%s\n' "${redis_password}"
      printf 'DD0C_JWT_SECRET=%s\n' "${jwt}"
      printf 'DD0C_SECRET_KEY=%s\n' "${secret_key}"
      if (( KAFKA_WORKERS > 0 )); then
        printf '# Scale-out: Kafka (KRaft) + %s faust workers; the single-box scorer stands down.\n' "${KAFKA_WORKERS}"
        printf 'COMPOSE_PROFILES=kafka\n'
        printf 'DD0C_LOG_URL=kafka://kafka:9092\n'
        printf 'DD0C_SCORERS=0\n'
        printf 'DD0C_KAFKA_WORKERS=%s\n' "${KAFKA_WORKERS}"
      else
        printf '# Scale-out on Kafka: set COMPOSE_PROFILES=kafka, DD0C_LOG_URL=kafka://kafka:9092, DD0C_SCORERS=0\n'
        printf '# and DD0C_KAFKA_WORKERS=N, then docker compose up -d (see compose.yaml).\n'
      fi
      printf '# Email digests: DD0C_SMTP_HOST, DD0C_SMTP_PORT, DD0C_SMTP_USER, DD0C_SMTP_PASSWORD, DD0C_SMTP_FROM\n'
    } > "${ENV_FILE}"
  )
  say "wrote ${ENV_FILE} with new secrets (mode 600)"
}

# ------------------------------------------------------------------------------------------- 3-4. start, wait

health_of() {
  local id
  id="$(docker compose -f "${COMPOSE_FILE}" ps -q "$1" 2>/dev/null | head -n 1)"
  [[ -n "${id}" ]] || { printf 'missing'; return 0; }
  docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "${id}"
}

wait_healthy() {
  local services=(api caddy) deadline service status all
  if (( DRY_RUN )); then
    printf '[dry-run] wait up to %ss until %s report healthy\n' "${HEALTH_TIMEOUT}" "${services[*]}"
    return 0
  fi
  say "waiting for ${services[*]} to be healthy (up to ${HEALTH_TIMEOUT}s)"
  deadline=$(( SECONDS + HEALTH_TIMEOUT ))
  while :; do
    all=1
    for service in "${services[@]}"; do
      status="$(health_of "${service}")"
      [[ "${status}" == "healthy" ]] || all=0
    done
    (( all )) && return 0
    if (( SECONDS >= deadline )); then
      docker compose -f "${COMPOSE_FILE}" ps >&2 || true
      die "not healthy after ${HEALTH_TIMEOUT}s; see: docker compose logs api caddy migrate"
    fi
    sleep 5
  done
}

# ------------------------------------------------------------------------------------------- 5. first user

create_user() {
  local password out
  password="$(random_text 18)"
  if (( DRY_RUN )); then
    printf '[dry-run] printf <generated password> | docker compose -f %s run --rm --no-deps -T api' "${COMPOSE_FILE}"
    printf ' dd0c-cost users add %s --tenant %s --password-stdin\n' "${ADMIN}" "${TENANT}"
    return 0
  fi
  if out="$(printf '%s\n' "${password}" | docker compose -f "${COMPOSE_FILE}" run --rm --no-deps -T api \
      dd0c-cost users add "${ADMIN}" --tenant "${TENANT}" --password-stdin 2>&1)"; then
    CREATED_PASSWORD="${password}"
  elif grep -q "already exists" <<<"${out}"; then
    say "user ${ADMIN} already exists in tenant ${TENANT}; reset its password with:"
    printf '    docker compose run --rm -T api dd0c-cost users add %s --tenant %s --password-stdin --replace\n' \
      "${ADMIN}" "${TENANT}"
  else
    printf '%s\n' "${out}" >&2
    die "could not create the user ${ADMIN}"
  fi
}

main() {
  parse_args "$@"
  CREATED_PASSWORD=""
  if (( DRY_RUN )); then
    say "dd0c/cost in ${ROOT} (dry run: docker is not called)"
  else
    say "dd0c/cost in ${ROOT}"
  fi
  check_docker
  write_env
  say "starting the services (the first run builds the image)"
  compose up -d --build
  wait_healthy
  create_user
  if (( DRY_RUN )); then
    say "dry run done: .env is in place; run again without --dry-run to start dd0c/cost"
  else
    say "dd0c/cost is up"
  fi
  printf '\n  Dashboard: https://%s/\n  API docs:  https://%s/docs\n' "${DOMAIN}" "${DOMAIN}"
  if [[ -n "${CREATED_PASSWORD}" ]]; then
    printf '  Login:     %s / %s   (tenant %s; shown once - keep it)\n' "${ADMIN}" "${CREATED_PASSWORD}" "${TENANT}"
  fi
  printf '\n'
}

main "$@"
