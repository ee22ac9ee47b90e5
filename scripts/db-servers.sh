#!/usr/bin/env bash
# Installs (once) the database servers the SQL-store tests start MLflow on: PostgreSQL
# (Debian's `postgresql`) and MariaDB for MySQL (Debian's `mariadb-server`). Does nothing when
# both are there. The tests start their own servers in temporary folders (test/harness/), so
# the services the packages bring are kept from starting here.
set -euo pipefail

have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
have_mariadb() { { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } && { command -v mariadb-install-db >/dev/null 2>&1 || [ -x /usr/bin/mariadb-install-db ]; }; }

missing=()
have_postgres || missing+=(postgresql)
have_mariadb || missing+=(mariadb-server)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "the SQL-store tests need ${missing[*]} (Debian packages); install them (as root: apt-get install ${missing[*]})" >&2
  exit 1
fi

# test files run in parallel and may both find a server missing: one installs
exec 9>/tmp/trackshift-db-servers.lock
flock 9
missing=()
have_postgres || missing+=(postgresql)
have_mariadb || missing+=(mariadb-server)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing ${missing[*]} with apt-get (first time only)" >&2
# keep the packages' own services from starting (as Debian's container images do)
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
