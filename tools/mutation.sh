#!/usr/bin/env bash
# Mutation testing with Stryker.NET (pinned in .config/dotnet-tools.json). Not part of CI: a full run takes tens of
# minutes on 2 cores. Scope (tools/stryker/*.json): the designs and the stage-2 fault handler of S2Lab.Kernel against
# S2Lab.Kernel.Tests, and the scorecard of S2Lab.Lab against S2Lab.Lab.Tests, with per-test coverage so each mutant
# only runs the tests that reach it.
#
#   tools/mutation.sh [kernel|lab|all]     (default: all)
#
# Reports: out/mutation/<scope>/reports/mutation-report.html (and .json); the score is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

dotnet tool restore >/dev/null
root=$PWD
run() {
  local tests=$1 scope=$2
  echo "== mutation: $scope (tests: $tests) =="
  (cd "tests/$tests" && nice dotnet stryker --config-file "$root/tools/stryker/$scope.json" --output "$root/out/mutation/$scope")
}

case "${1:-all}" in
  kernel) run S2Lab.Kernel.Tests kernel ;;
  lab) run S2Lab.Lab.Tests lab ;;
  all) run S2Lab.Kernel.Tests kernel; run S2Lab.Lab.Tests lab ;;
  *) echo "usage: tools/mutation.sh [kernel|lab|all]" >&2; exit 2 ;;
esac
