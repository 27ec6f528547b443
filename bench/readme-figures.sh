#!/usr/bin/env bash
# Regenerates the README's performance table: builds Release, runs `s2lab bench --readme` (the headline quick
# measurements, the scale run, and whole-process timings of `s2lab demo` and `s2lab combine --batch`) and prints the
# Markdown table to paste over the one in README.md ("## Performance").
#
#   bench/readme-figures.sh            # the table (a few minutes on 2 cores: the scale runs dominate)
#   bench/readme-figures.sh --bdn      # also the BenchmarkDotNet counterparts of the timed rows (--job short; minutes)
#
# ITERATIONS (default 15) sets the timed iterations of each quick measurement (the best is reported).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

dotnet build src/S2Lab.Cli -c Release -v quiet -nologo >&2
src/S2Lab.Cli/bin/Release/net10.0/s2lab bench --readme --iterations "${ITERATIONS:-15}"

if [ "${1:-}" = "--bdn" ]; then
  echo >&2
  echo "BenchmarkDotNet (the counterpart named for each timed row in src/S2Lab.Cli/Bench/ReadmeFigures.cs):" >&2
  dotnet run -c Release --project bench/S2Lab.Benchmarks -- --job short --join --buildTimeout 900 \
    --filter '*Stage2FreshMapBenchmarks.Map1GiBWith4KPages*' '*Stage2TranslateBenchmarks.TlbHit*' \
             '*Stage2TranslateBenchmarks.Walk*' '*Stage2ScaleMapBenchmarks*' '*KernelMemslotLookup.RandomGfnToMemslot*' \
             '*KernelStage2Fault*' '*KernelMemslotCreateDelete*' '*DemoScenarioBenchmarks*' '*CombineBatchBenchmarks*' \
             '*GuestAccessVsTlbHit*' '*MigrateLargeVm*' '*MigratePerWrittenPage*'
fi
