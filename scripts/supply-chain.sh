#!/usr/bin/env bash
# Supply chain (deny.toml): licenses, bans (aws-lc-rs as the one crypto provider), sources and RustSec
# advisories, on every run. The advisory database is cloned from GitHub; when that fails (a
# network the project does not control), the dated snapshot in the git bundle
# ../shared/rustsec-advisory-db.bundle (or $RUSTSEC_ADVISORY_DB_BUNDLE) is cloned to the
# directory cargo-deny uses for that database, and the full check runs offline against it,
# printing the snapshot's date. With neither the live database nor a bundle, this fails: a run
# never passes with advisories unchecked.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if cargo deny --locked fetch db 2>"$log"; then
  cat "$log" >&2
  for db in "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/advisory-db-*/; do
    [[ -d $db/.git ]] || continue
    echo "advisories: RustSec database fetched from $(git -C "$db" remote get-url origin)," \
      "last commit $(git -C "$db" log -1 --format='%cd (%h)' --date=short)" >&2
  done
  exec cargo deny --locked check
fi
cat "$log" >&2

bundle=${RUSTSEC_ADVISORY_DB_BUNDLE:-}
if [[ -z $bundle ]]; then
  for candidate in ../shared/rustsec-advisory-db.bundle /work/shared/rustsec-advisory-db.bundle; do
    if [[ -f $candidate ]]; then
      bundle=$candidate
      break
    fi
  done
fi
if [[ -z $bundle || ! -f $bundle ]]; then
  echo "error: the RustSec advisory database could not be fetched and no snapshot bundle was" \
    "found (../shared/rustsec-advisory-db.bundle or RUSTSEC_ADVISORY_DB_BUNDLE): advisories" \
    "cannot be checked" >&2
  exit 1
fi

# The directory cargo-deny clones that URL into, as its failed clone named it
# (["clone", ..., URL, DIR]); the layout of cargo-deny 0.20 otherwise.
db_dir=$(grep -o '"clone",[^]]*' "$log" | head -1 | sed 's/.*"\([^"]*\)"$/\1/' || true)
if [[ -z $db_dir || $db_dir != /* ]]; then
  db_dir="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
fi
rm -rf "$db_dir"
mkdir -p "$(dirname "$db_dir")"
git clone --quiet --branch main "$bundle" "$db_dir"
# The snapshot answers for the real database: the next run's fetch tries GitHub again (and
# falls back here if it fails), instead of "fetching" from the bundle and calling it live.
git -C "$db_dir" remote set-url origin "https://github.com/rustsec/advisory-db"
snapshot=$(git -C "$db_dir" log -1 --format='%cd (commit %h)' --date=short)
# --offline reaches cargo metadata too, which then needs every crate of Cargo.lock on disk, the
# other platforms' included (a build downloads only the host's: r-efi, anstyle-wincon... are
# missing on a new machine). crates.io is reachable here even when GitHub is not.
cargo fetch --locked --quiet || {
  echo "error: cargo fetch failed: the offline check against the RustSec snapshot needs every" \
    "crate of Cargo.lock on disk; check that crates.io (or the configured registry) is reachable" >&2
  exit 1
}
echo "################################################################################" >&2
echo "advisories: the live RustSec database is unreachable; checking against the snapshot" >&2
echo "  $bundle, dated $snapshot" >&2
echo "################################################################################" >&2
cargo deny --locked --offline check
echo "advisories: checked against the RustSec snapshot of $snapshot" >&2
