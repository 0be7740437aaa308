#!/bin/sh
# The include rules of src/sinks/README.md, checked on the source text:
# - what the kinds share (src/sinks/*.h, *.cc) and the pipeline (src/pipeline/) include no
#   sink kind's header (src/sinks/<kind>/): only the daemon's factory knows the kinds;
# - a sink kind never includes another kind.
set -eu
cd "$1"
status=0
kind_include='#include "src/sinks/[^/"]+/'
shared=$(find src/sinks -maxdepth 1 -type f \( -name '*.h' -o -name '*.cc' \))
bad=$(grep -nE "$kind_include" $shared src/pipeline/*.h src/pipeline/*.cc || true)
if [ -n "$bad" ]; then
  echo "a sink kind's header included outside the kinds (only src/daemon/ may):"
  echo "$bad"
  status=1
fi
for dir in src/sinks/*/; do
  kind=$(basename "$dir")
  bad=$(find "$dir" -type f \( -name '*.h' -o -name '*.cc' \) -exec grep -nHE "$kind_include" {} + |
        grep -v "\"src/sinks/$kind/" || true)
  if [ -n "$bad" ]; then
    echo "sink kind $kind includes another kind:"
    echo "$bad"
    status=1
  fi
done
exit $status
